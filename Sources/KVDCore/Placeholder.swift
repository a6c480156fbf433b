public enum KVDCorePlaceholder {}
