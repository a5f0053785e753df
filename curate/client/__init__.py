"""Clients of a running curate service: :class:`AnnotationClient` drives the annotation app's API from Python.

See :mod:`curate.client.annotation` for the answer each task type takes and the errors it raises.
"""

from curate.client.annotation import AnnotationClient, AnnotationTask

__all__ = ["AnnotationClient", "AnnotationTask"]
