"""In-process tests of the annotation app through its named API endpoints."""
