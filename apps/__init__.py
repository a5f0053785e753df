"""Gradio apps: thin user interfaces over curate's library functions."""
