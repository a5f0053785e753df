"""Annotating: what a person sees for a task, how answers are stored, agreement, adjudication, relabelling."""
