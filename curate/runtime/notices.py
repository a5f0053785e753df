"""Announcing long steps (loading or converting a model, evaluating, saving) through the ``curate`` logger.

The library logs; the command line shows the ``curate`` logger's INFO messages on stderr (not with ``--quiet``),
so a user sees ``converting SmolLM2 ... done in 48 s`` instead of silence, and a library user stays in control of
what is printed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("curate")


def duration(seconds: float) -> str:
    """``12 s``, ``3 min 05 s`` or ``2 h 10 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@contextmanager
def announced(what: str) -> Iterator[None]:
    """Log ``what ...`` before the block and ``what: done in N s`` after it (INFO, logger ``curate``)."""
    started = time.monotonic()
    log.info("%s ...", what)
    yield
    log.info("%s: done in %s", what, duration(time.monotonic() - started))


def logged_progress(what: str, *, every: float = 10.0) -> Callable[[int, int], None]:
    """An ``on_progress(done, total)`` that logs ``what: done / total`` at most every ``every`` seconds (and at the
    end), for a long pass inside one call that no progress bar sees (e.g. a set-dependent scorer's features)."""
    started = last = time.monotonic()

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done >= total or now - last >= every:
            last = now
            log.info("%s: %s / %s (%s)", what, f"{done:,}", f"{total:,}", duration(now - started))

    return report
