"""Errors that curate raises on purpose.

Every message says what was expected, what was found, and what to do next. The CLI prints the message of a
``CurateError`` and exits; it never shows a traceback for one.

Hierarchy::

    CurateError
    ├── InputError            a file, row, column or argument the user gave cannot be used
    │   ├── SourceNotFoundError
    │   ├── UnsupportedFormatError
    │   └── ColumnMappingError
    ├── RecordError           one row cannot become a record (quarantined, not raised, during ingest)
    ├── StoreError            the workspace database cannot be opened or used
    ├── AuditError            the audit chain cannot be read or appended to
    ├── ModelError            a model cannot be found, converted or loaded
    ├── AccessError           the caller is not logged in or lacks the role / assignment
    ├── TaskStateError        the task cannot take this action now (closed, not yours, nothing to undo)
    └── MissingDependencyError  an optional extra is not installed
"""

from __future__ import annotations


class CurateError(Exception):
    """Base class of every error curate raises deliberately."""

    exit_code: int = 2


class InputError(CurateError):
    """Input given by the user (a file, a column, an option) cannot be used."""


class SourceNotFoundError(InputError):
    """The named source file or folder does not exist."""


class UnsupportedFormatError(InputError):
    """The source is not one of the formats curate reads."""


class ColumnMappingError(InputError):
    """A ``--map target=source`` argument is malformed or names an unknown field."""


class RecordError(CurateError):
    """One row cannot be turned into a record; ingest quarantines it with this message."""


class StoreError(CurateError):
    """The workspace database cannot be opened, created or written."""


class AuditError(CurateError):
    """The audit log cannot be read or appended to."""


class ModelError(CurateError):
    """A model cannot be found, converted or loaded."""


class AccessError(CurateError):
    """The caller is not logged in, or their role or assignments do not allow the action."""


class TaskStateError(CurateError):
    """The task cannot take this action in its current state (closed, already answered, nothing to undo)."""


class MissingDependencyError(CurateError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the package {package!r}, which is not installed. "
            f"Install it with: pip install 'curate[{extra}]'"
        )
