"""Self-supervised methods, one file each, registered by name."""
