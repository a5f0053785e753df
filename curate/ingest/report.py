"""What one ingest did (:class:`IngestReport`), and the quarantine file its unreadable rows go to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from curate.ingest.raw_rows import places

LINES_PER_REASON = 10  # line numbers kept per distinct reason
MAX_REASONS = 200  # distinct reasons counted; the rows of any further ones are counted under OTHER_REASONS
OTHER_REASONS = "other reasons (each row's reason is in the quarantine file)"


@dataclass
class IngestReport:
    """What one ingest did. Counts are rows of the source; ``new`` + ``moved`` + ``duplicates`` = ``valid`` (minus
    rows dropped for PII).

    ``moved``: pool records this ingest into ``test``/``calibration`` moved to that split (``moved_with_tasks`` of
    them had tasks); ``already_in``: rows whose record was already in another split, by split (left there);
    ``label_conflicts``: moved records whose label in this file differs from the stored one (kept), with
    ``label_conflict_examples`` ``(line, stored, this file's)``.
    ``reasons``: rows quarantined per reason (the whole reason), most frequent first; ``reason_lines``: the first
    source lines of each; ``reason_where``: the same as text, with the element numbers of a JSON array's rows.
    """

    source: str
    format: str
    rows: int = 0
    valid: int = 0
    new: int = 0
    duplicates: int = 0
    quarantined: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    reason_lines: dict[str, list[int]] = field(default_factory=dict)
    reason_where: dict[str, str] = field(default_factory=dict)
    first_bad_lines: list[int] = field(default_factory=list)
    first_bad_rows: list[int] = field(default_factory=list)
    quarantine_path: str | None = None
    seconds: float = 0.0
    ids_digest: str = ""
    pii: dict[str, Any] = field(default_factory=dict)
    split: str = "pool"
    moved: int = 0
    moved_with_tasks: int = 0
    already_in: dict[str, int] = field(default_factory=dict)
    label_conflicts: int = 0
    label_conflict_examples: list[tuple[int, Any, Any]] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        """Rows read per second of wall time."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}


class Quarantine:
    """Writes unreadable rows, lazily, to ``quarantine/<stem>-<time>.jsonl`` with their line and reason; counts
    the rows per reason (the whole reason: rows with the same problem share one)."""

    def __init__(self, folder: Path, source: Path, *, redact: Callable[[Any], Any] | None = None) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.path = folder / f"{source.name}-{stamp}.jsonl"
        self._fh: IO[bytes] | None = None
        self.reasons: Counter[str] = Counter()
        self.reason_places: dict[str, list[tuple[int, int | None]]] = {}  # reason -> first (line, element)s
        self.redact = redact
        self.lines: list[int] = []
        self.rows: list[int] = []

    def add(self, source: str, line: int, row: int, reason: str, raw: Any, *, element: int | None = None) -> None:
        """Write one unreadable row; ``element``: its position in a JSON array (None in other formats)."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("wb")
        if self.redact is not None:
            raw = self.redact(raw)
        entry = {"source": source, "line": line, "row": row, "reason": reason, "raw": raw}
        if element is not None:
            entry["element"] = element
        self._fh.write(orjson.dumps(entry, default=str) + b"\n")
        if reason not in self.reasons and len(self.reasons) >= MAX_REASONS:
            reason = OTHER_REASONS
        self.reasons[reason] += 1
        found = self.reason_places.setdefault(reason, [])
        if len(found) < LINES_PER_REASON:
            found.append((line, element))
        self.lines.append(line)
        self.rows.append(row)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()

    def fill(self, report: IngestReport) -> None:
        """Put the quarantine's figures in ``report``."""
        report.quarantined = len(self.lines)
        if report.quarantined:
            report.quarantine_path = str(self.path)
            report.reasons = dict(self.reasons.most_common())
            found = {reason: self.reason_places[reason] for reason in report.reasons}
            report.reason_lines = {reason: [line for line, _ in places_] for reason, places_ in found.items()}
            report.reason_where = {reason: places(places_) for reason, places_ in found.items()}
            report.first_bad_lines = self.lines[:20]
            report.first_bad_rows = self.rows[:20]
