"""The recipes shipped with curate: one typed function per file (``curate recipes`` lists them)."""
