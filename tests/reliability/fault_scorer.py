"""A cheap scorer for the fault tests: scores by length, logs which records it was asked to score, can be slow.

Loaded by ``--scorer tests.reliability.fault_scorer:RecordingLength`` in a subprocess started in the
repository root. ``$CURATE_TEST_SCORER_LOG`` names a file that gets one record id per line for every record
passed to :meth:`RecordingLength.score` (written before the scores are returned, so it survives a SIGKILL);
``$CURATE_TEST_SCORER_DELAY`` is a pause in seconds per call (a slow model, to kill it mid-batch).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import orjson

from curate.ingest.records import Record
from curate.scorers.base import BaseScorer, Scores

LOG_ENV = "CURATE_TEST_SCORER_LOG"
DELAY_ENV = "CURATE_TEST_SCORER_DELAY"
SPEC = "tests.reliability.fault_scorer:RecordingLength"


@dataclasses.dataclass(frozen=True)
class RecordingLength(BaseScorer):
    """Score = length of the record's JSON fields (higher = longer); key ``recording_length()``."""

    name: ClassVar[str] = "recording_length"

    def score(self, records: Sequence[Record]) -> Scores:
        """One score per record; appends the ids to ``$CURATE_TEST_SCORER_LOG`` first."""
        log = os.environ.get(LOG_ENV)
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write("".join(f"{r.id}\n" for r in records))
        delay = float(os.environ.get(DELAY_ENV) or 0)
        if delay:
            time.sleep(delay)
        return np.array([float(len(orjson.dumps(r.fields))) for r in records], dtype=np.float64)


def logged_ids(path: str | os.PathLike[str]) -> list[str]:
    """The ids a :class:`RecordingLength` logged to ``path``, in call order (empty if it never ran)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return [line.strip() for line in fh if line.strip()]
    except FileNotFoundError:
        return []


SMALL_BATCH_SPEC = "tests.reliability.fault_scorer:SmallBatchLength"


@dataclasses.dataclass(frozen=True)
class SmallBatchLength(RecordingLength):
    """:class:`RecordingLength` scoring 8 records per call, as a slow model would ask (key ``small_batch_length()``)."""

    name: ClassVar[str] = "small_batch_length"
    records_per_call: ClassVar[int | None] = 8
