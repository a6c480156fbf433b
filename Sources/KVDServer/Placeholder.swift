public enum KVDServerPlaceholder {}
