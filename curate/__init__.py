"""curate: decide which LLM training examples deserve an expert's time, collect their answers, export for TRL."""

from curate.errors import CurateError
from curate.ingest.records import Record

__version__ = "0.1.0"
__all__ = ["CurateError", "Record", "__version__"]
