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

:func:`check_choice` refuses an option value with the valid ones and the closest (:func:`did_you_mean`);
:func:`environment_error` tells a full disk or a forbidden path (the machine's or the user's) from a bug in curate,
and :func:`report_place` says where to report a bug.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable


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


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the choice closest to ``value`` (case-insensitive), or "" when none is close.

    >>> did_you_mean("preferance", ["example", "preference"])
    " Did you mean 'preference'?"
    """
    options = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(value).lower(), list(options), n=1, cutoff=0.6)
    return f" Did you mean {options[close[0]]!r}?" if close else ""


def check_choice(value: str, choices: Iterable[str], option: str) -> str:
    """``value`` if it is one of ``choices``; else an :class:`InputError` naming ``option``, the valid values and
    the closest one."""
    valid = [str(c) for c in choices]
    if value in valid:
        return value
    raise InputError(f"{option} must be one of {', '.join(valid)}; got {value!r}.{did_you_mean(value, valid)}")


_FREE_SPACE = "Free some space, or choose another location, and run the command again."
_ENV_ERRNOS = {
    errno.ENOSPC: ("the disk is full", _FREE_SPACE),
    errno.EDQUOT: ("the disk quota is exceeded", _FREE_SPACE),
    errno.EROFS: ("the file system is read-only", "Choose a location you can write to."),
    errno.EMFILE: ("too many files are open", "Raise the limit (ulimit -n) or close other programs."),
    errno.ENAMETOOLONG: ("the path is too long", "Choose a shorter path."),
}


def environment_error(exc: BaseException) -> tuple[str, int] | None:
    """A message and exit code for an error of the machine or of a path the user gave (not a bug in curate), or
    ``None``. Looks through the chain of causes for the :class:`OSError` (or :class:`MemoryError`)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError):
            return ("ran out of memory. Close other programs, or work on a smaller input (fewer rows, a smaller "
                    "--batch-size where there is one).", 1)
        found = _os_message(current) if isinstance(current, OSError) else None
        if found is None and "database or disk is full" in str(current):  # SQLite's own OperationalError
            found = f"the disk holding the workspace database is full. {_FREE_SPACE}", 1
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def _os_message(exc: OSError) -> tuple[str, int] | None:
    named = exc.filename2 if isinstance(exc, IsADirectoryError) and exc.filename2 else exc.filename  # os.replace
    where = f"{named}: " if named is not None else ""
    if exc.errno in _ENV_ERRNOS:
        what, hint = _ENV_ERRNOS[exc.errno]
        return f"{where}{what} ({exc.strerror}). {hint}", 1
    if not where:  # a missing or forbidden path curate cannot name: not clearly the user's
        return None
    if isinstance(exc, FileNotFoundError):
        return f"{where}no such file or folder. Check the path and try again.", 2
    if isinstance(exc, PermissionError):
        return (f"{where}permission denied. Check that you may read (or write) it, or choose another path.", 2)
    if isinstance(exc, IsADirectoryError):
        return f"{where}is a folder, but a file is needed here. Give the path of a file.", 2
    if isinstance(exc, FileExistsError):
        return f"{where}already exists (a file, where a folder was to be made). Check the path, or choose another.", 2
    if isinstance(exc, NotADirectoryError):
        return f"{where}a part of this path is a file, but a folder is needed there. Check the path.", 2
    return None


def report_place() -> str:
    """Where to report a bug: the issue tracker (or project page) in curate's package metadata, else a generic
    phrase."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        meta = metadata("curate")
    except PackageNotFoundError:
        return "the curate issue tracker"
    urls = [(str(u).partition(",")[0], str(u).partition(",")[2]) for u in meta.get_all("Project-URL") or []]
    for label, url in urls:
        if any(word in label.lower() for word in ("issue", "bug", "tracker")):
            return url.strip()
    for _, url in urls:
        if url.strip():
            return f"the issue tracker of {url.strip()}"
    return "the curate issue tracker"
