"""Keeping finished work when a long pass stops: commits by time, and a note of what an interrupted run kept.

A long pass (scoring, embedding, PII detection) hands each finished piece to a :class:`Checkpoint`, which writes
what it holds at least every :data:`CHECKPOINT_SECONDS` seconds, at the end, and on the way out of an error or a
Ctrl-C (``KeyboardInterrupt``; the CLI turns SIGTERM into one). What was written is counted in a process-wide
ledger (:func:`kept`), so the command line can say what an interrupted run kept before it exits 130; the rerun
finds that work in its cache and does only the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

#: Longest time finished work waits in memory before it is written (``$CURATE_CHECKPOINT_SECONDS`` overrides it,
#: and the embedding cache's longer interval, for every pass).
CHECKPOINT_SECONDS = 2.0
CHECKPOINT_ENV = "CURATE_CHECKPOINT_SECONDS"

_kept: dict[str, int] = {}


def checkpoint_seconds(default: float = CHECKPOINT_SECONDS) -> float:
    """Seconds between two writes: ``$CURATE_CHECKPOINT_SECONDS`` when set, else ``default``."""
    import os

    value = os.environ.get(CHECKPOINT_ENV)
    try:
        return max(float(value), 0.0) if value else default
    except ValueError:
        return default


def note_kept(what: str, n: int) -> None:
    """Count ``n`` finished items of ``what`` (e.g. ``"scores (ifd)"``) as written to disk in this process."""
    if n:
        _kept[what] = _kept.get(what, 0) + n


def kept() -> dict[str, int]:
    """What this process has written, by kind of work: ``{what: count}``."""
    return dict(_kept)


def reset_kept() -> None:
    """Forget the ledger (tests, or a long-lived process between jobs)."""
    _kept.clear()


class Checkpoint(Generic[T]):
    """Buffers finished items and writes them in one call at least every ``every`` seconds.

    Use as a context manager: leaving the block (normally, by an error or by ``KeyboardInterrupt``) writes what
    is still buffered. ``write(items)`` must be idempotent per item (a cache insert), because an interrupt may
    arrive during a write that then runs again on the way out.

    Args:
        write: stores a list of finished items.
        what: what an item is, for the ledger (``"scores (perplexity)"``).
        every: seconds between writes (default :func:`checkpoint_seconds`); 0 writes every :meth:`add`.
    """

    def __init__(self, write: Callable[[list[T]], None], what: str, *, every: float | None = None) -> None:
        self._write = write
        self.what = what
        self.every = checkpoint_seconds() if every is None else every
        self._pending: list[T] = []
        self._last = time.monotonic()
        self.written = 0

    def add(self, items: Sequence[T]) -> None:
        """Buffer finished ``items``; write the buffer when ``every`` seconds have passed since the last write."""
        self._pending.extend(items)
        if time.monotonic() - self._last >= self.every:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered now."""
        if self._pending:
            items = self._pending
            self._write(items)
            self._pending = []
            self.written += len(items)
            note_kept(self.what, len(items))
        self._last = time.monotonic()

    def __enter__(self) -> Checkpoint[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
