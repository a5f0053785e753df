"""Test-only fault injection: die with SIGKILL at a named point, to prove that a crash there is harmless.

Nothing happens unless the environment variable ``CURATE_FAULT`` is set. Its value is ``SITE:N`` (or several,
comma-separated): the process kills itself with ``SIGKILL`` (no clean-up, no ``finally``, no atexit; as if the
power went) the ``N``-th time it reaches ``SITE`` (``N`` defaults to 1). The reliability tests
(``tests/reliability/test_faults.py``) run a command in a subprocess with it set, then restart and check that
the workspace is consistent. Without the variable a call costs one environment lookup.

Sites (where :func:`maybe_crash` is called):

=================== ==================================================================================
``score.batch``     :func:`curate.scorers.cache.score_records`, after each batch of scores is committed
``round.commit``    :func:`curate.rounds.tasks.create_round`, inside the transaction, just before it commits
``annotate.commit`` :func:`curate.annotate.answers.submit`, inside the transaction, just before it commits
``annotate.ack``    :func:`curate.annotate.answers.submit`, after the commit, before it returns (acknowledges)
``export.write``    :func:`curate.export.writer.export`, after the data splits are written to the temp folder
``export.replace``  :func:`curate.export.writer.export`, the temp folder complete, just before ``os.replace``
=================== ==================================================================================
"""

from __future__ import annotations

import os
import signal

ENV = "CURATE_FAULT"
SITES = ("score.batch", "round.commit", "annotate.commit", "annotate.ack", "export.write", "export.replace")
_reached: dict[str, int] = {}  # how often this process reached each armed site


def armed(spec: str | None, site: str) -> int | None:
    """The count ``N`` at which ``spec`` (a ``CURATE_FAULT`` value) kills at ``site``; None when it does not.

    >>> armed("score.batch:3", "score.batch"), armed("round.commit", "round.commit"), armed("x:2", "score.batch")
    (3, 1, None)
    """
    for part in (spec or "").split(","):
        name, _, count = part.strip().partition(":")
        if name == site:
            return int(count) if count.strip() else 1
    return None


def maybe_crash(site: str) -> None:
    """Kill this process with SIGKILL if ``$CURATE_FAULT`` arms ``site`` and this is its ``N``-th arrival."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    at = armed(spec, site)
    if at is None:
        return
    _reached[site] = _reached.get(site, 0) + 1
    if _reached[site] >= at:
        os.kill(os.getpid(), signal.SIGKILL)
