public enum KVDHTTPPlaceholder {}
