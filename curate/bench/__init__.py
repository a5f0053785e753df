"""Benchmarks that users run through ``curate bench`` on their own data (column mapping, formats)."""
