"""Ingest: read source files row by row, turn rows into records, and quarantine what cannot be read."""
