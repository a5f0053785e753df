"""Stream-based selection: records arrive one at a time and are labelled now or auto-accepted at once.

For each JSONL line: parse it into a record, score it (higher = more worth labelling), let the budget pacer
(:class:`~curate.selectors.stream_gate.StreamGate`) decide, write the decision as one JSON line (flushed), and for
"label" store the record in the pool and add a task to the session's round (one round per stream session),
assigned to the annotators, so it shows up in the app at once. A :class:`~curate.loop.drift.DriftMonitor` compares
the stream's embeddings with a fixed random sample of the pool and writes a ``drift`` line when the stream has
moved away (time to reopen the pool or retrain).

Resumable: ``<workspace>/streams/<name>.json`` holds the gate, the monitor, the round, and the input and output
offsets, written atomically every ``checkpoint_every`` lines and at the end. A restart seeks the input back to
the checkpoint and cuts the output there, and the replayed lines get the same decisions; storing a record and
its task is idempotent, so nothing is asked twice.

Output lines: ``{"type": "decision", "line", "id", "decision": "label" | "accept", "score", "threshold",
"rate", "task_id"}``, ``{"type": "drift", "line", "at", "mmd2", "p_value", ...}`` and ``{"type": "error", "line",
"error"}`` for a line that is not a record.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
from sqlalchemy import insert, select

from curate.errors import CurateError, InputError, RecordError
from curate.ingest.records import Record
from curate.loop.drift import DriftMonitor
from curate.runtime.checkpoint import note_kept
from curate.runtime.embeddings import Embedder
from curate.runtime.word_features import workspace_embedder
from curate.scorers.base import Scorer
from curate.selectors.stream_gate import StreamGate
from curate.store import audit
from curate.store.workspace import Workspace

ADVICE = "the stream has moved away from the pool: reopen the pool (ingest recent data) or retrain"


@dataclass(frozen=True)
class StreamConfig:
    """Settings of a stream session; a restarted session must use the same ones.

    Attributes:
        name: the session (its state file and its round).
        kind: record kind of the stream; scorer: a scorer name (``curate score``) or package.module:Class.
        target_rate: share of records to label, in (0, 1]; gate_window / gate_warmup: the pacer's window.
        annotators: queues the tasks go to (none: tasks wait for ``curate assign``); schema: label schema.
        drift_window: stream records tested (0 disables the monitor); drift_alpha: test level;
        drift_reference: size of the pool sample; drift_every / drift_patience: see :class:`DriftMonitor`.
        use_ingest_labels: the scorer trains on labels given at ingest as well as on final annotations.
    """

    name: str = "stream"
    kind: str = "text"
    target_rate: float = 0.1
    scorer: str = "novelty"
    annotators: tuple[str, ...] = ()
    schema: str | None = None
    drift_window: int = 200
    drift_alpha: float = 0.01
    drift_reference: int = 300
    drift_every: int | None = None
    drift_patience: int = 2
    gate_window: int = 200
    gate_warmup: int = 20
    embedder: str = "minilm"
    seed: int = 0
    use_ingest_labels: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**dataclasses.asdict(self), "annotators": list(self.annotators)}

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """``field: stored -> mine`` for every setting that differs from a stored :meth:`to_dict`."""
        mine = self.to_dict()
        return [f"{k}: {stored.get(k)!r} -> {v!r}" for k, v in mine.items() if stored.get(k) != v]


@dataclass
class StreamSummary:
    """What a stream run did (counts over the whole session, including earlier runs)."""

    name: str
    lines: int = 0
    records: int = 0
    labelled: int = 0
    accepted: int = 0
    unscorable: int = 0
    errors: int = 0
    tasks: int = 0
    rate: float = 0.0
    target_rate: float = 0.0
    round: int | None = None
    drift: dict[str, Any] | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


def _lines(fh: IO[bytes], *, follow: bool, idle_exit: float | None, poll: float) -> Iterator[tuple[bytes, int]]:
    """``(line, offset after it)``; in ``follow`` mode waits for complete new lines (until ``idle_exit`` s idle)."""
    idle_since = time.monotonic()
    while True:
        start = fh.tell() if fh.seekable() else 0
        line = fh.readline()
        if line and (line.endswith(b"\n") or not follow):
            idle_since = time.monotonic()
            yield line, fh.tell() if fh.seekable() else 0
            continue
        if not follow:
            return
        if line:
            fh.seek(start)  # a line still being written: read it again when it is complete
        if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
            return
        time.sleep(poll)


class _Session:
    """The state of one stream session and the per-record steps."""

    def __init__(self, ws: Workspace, config: StreamConfig, emb: Embedder, scorer: Scorer, actor: str) -> None:
        self.ws, self.config, self.emb, self.scorer, self.actor = ws, config, emb, scorer, actor
        folder = ws.root / "streams"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{config.name}.json"
        self.state: dict[str, Any] = orjson.loads(self.path.read_bytes()) if self.path.exists() else {}
        if self.state:
            diff = config.differences(self.state["config"])
            if diff:
                raise InputError(f"stream session {config.name!r} exists with different settings "
                                 f"({'; '.join(diff)}); use the same settings to continue it, or another --name")
            self.gate = StreamGate.from_dict(self.state["gate"])
        else:
            self.gate = StreamGate(config.target_rate, window=config.gate_window, warmup=config.gate_warmup)
            self.state = {"config": config.to_dict(), "counts": {}, "input": {}, "output": {}}
            self._start()
        self.counts: dict[str, int] = {"lines": 0, "records": 0, "labelled": 0, "accepted": 0, "errors": 0,
                                       "tasks": 0, **self.state["counts"]}
        self.monitor = self._monitor()

    def _start(self) -> None:
        from curate.rounds.tasks import create_round
        from curate.store.schema import Source

        report = create_round(self.ws.store, [], [], scores=np.zeros(0), actor=self.actor,
                              strategy_key=f"stream:{self.scorer.key()[:300]}|gate(rate={self.config.target_rate:g})",
                              params={"stream": self.config.name, "target_rate": self.config.target_rate})
        with self.ws.store.write() as conn:
            source_id = int(conn.execute(insert(Source).values(
                path=f"stream:{self.config.name}", format="jsonl-stream", actor=self.actor).returning(Source.id))
                .scalar_one())
            audit.append(conn, "stream.start", {"stream": self.config.name, "round_id": report.round_id,
                                                "source_id": source_id, "target_rate": self.config.target_rate},
                         actor=self.actor)
        self.state.update(round_id=report.round_id, round=report.number, source_id=source_id)
        if self.config.drift_window:
            pool = [r.id for r in self.ws.store.iter_records(kind=self.config.kind)]
            rng = np.random.default_rng(self.config.seed)
            take = min(self.config.drift_reference, len(pool))
            self.state["reference_ids"] = sorted(rng.choice(pool, size=take, replace=False).tolist()) if take else []

    def _monitor(self) -> DriftMonitor | None:
        ids = self.state.get("reference_ids") or []
        records = [r for r in (self.ws.store.get_record(i) for i in ids) if r is not None]
        if not self.config.drift_window or len(records) < 2:
            return None
        reference = self.emb.embed_records(records)
        if self.state.get("drift"):
            return DriftMonitor.from_dict(self.state["drift"], reference=reference)
        return DriftMonitor(reference, window=self.config.drift_window, alpha=self.config.drift_alpha,
                            every=self.config.drift_every, patience=self.config.drift_patience, seed=self.config.seed)

    def checkpoint(self, in_offset: int | None, out_offset: int | None, line: int, source: str, out: str) -> None:
        """Write the state atomically (gate, monitor, counts, offsets); call it between lines only."""
        self.state.update(gate=self.gate.to_dict(), counts=self.counts,
                          drift=self.monitor.to_dict() if self.monitor else None)
        if in_offset is not None:
            self.state["input"] = {"path": source, "offset": in_offset, "line": line}
        if out_offset is not None:
            self.state["output"] = {"path": out, "offset": out_offset}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(self.state))
        os.replace(tmp, self.path)

    def label(self, record: Record, score: float) -> int | None:
        """Store the record in the pool and add its task to the session's round; returns the task id (the
        existing one when this round already has it, as on a replay; None if another round has it)."""
        from curate.rounds.assignment import assign_round
        from curate.rounds.tasks import insert_tasks
        from curate.store.schema import Task

        store = self.ws.store
        with store.write() as conn:
            store.insert_records(conn, [record], int(self.state["source_id"]))
            found = conn.execute(select(Task.id, Task.round_id).where(Task.record_id == record.id).limit(1)).first()
            if found is not None:
                return int(found.id) if int(found.round_id) == int(self.state["round_id"]) else None
            ids = insert_tasks(conn, int(self.state["round_id"]), [record], [score], origin="stream")
            audit.append(conn, "stream.label", {"stream": self.config.name, "record_id": record.id,
                                                "task_ids": ids, "score": score if math.isfinite(score) else None},
                         actor=self.actor)
        if self.config.annotators:
            assign_round(store, list(self.config.annotators), round_number=int(self.state["round"]),
                         schema=self.config.schema, actor=self.actor)
        return ids[0] if ids else None

    def process(self, raw: bytes, line: int) -> list[dict[str, Any]]:
        """Decide one input line; returns the output lines it produces."""
        from curate.ingest.formats import row_to_record

        row: Any = None
        try:
            row = orjson.loads(raw)
            if not isinstance(row, dict):
                raise RecordError(f"expected a JSON object; got {type(row).__name__}")
            record = row_to_record(row, source=f"stream:{self.config.name}", line=line, row_number=line,
                                   kind=self.config.kind)
        except (orjson.JSONDecodeError, RecordError) as exc:
            self.counts["errors"] += 1
            return [{"type": "error", "line": line, "error": str(exc)[:500] + _kind_hint(row, self.config.kind)}]
        self.counts["records"] += 1
        try:
            score = float(self.scorer.score([record])[0])
        except CurateError:
            score = math.nan
        threshold = self.gate.threshold()
        decision = self.gate.decide(score)
        out: dict[str, Any] = {"type": "decision", "line": line, "id": record.id,
                               "decision": "label" if decision else "accept",
                               "score": score if math.isfinite(score) else None,
                               "threshold": threshold if math.isfinite(threshold) else None,
                               "rate": round(self.gate.rate, 6)}
        if decision:
            self.counts["labelled"] += 1
            task_id = self.label(record, score)
            out["task_id"] = task_id
            self.counts["tasks"] += task_id is not None
        else:
            self.counts["accepted"] += 1
        lines = [out]
        if self.monitor is not None:
            test = self.monitor.update(self.emb.embed_records([record])[0])
            if test is not None and self.monitor.onset:
                lines.append({"type": "drift", "line": line, "at": test.n_seen, "mmd2": test.mmd2,
                              "p_value": test.p_value, "alpha": self.monitor.alpha, "window": self.monitor.window,
                              "advice": ADVICE})
        return lines

    def summary(self, seconds: float) -> StreamSummary:
        """The session's counts so far."""
        c = self.counts
        return StreamSummary(self.config.name, c["lines"], c["records"], c["labelled"], c["accepted"],
                             self.gate.n_unscorable, c["errors"], c["tasks"], self.gate.rate, self.config.target_rate,
                             self.state.get("round"), self.monitor.summary() if self.monitor else None, seconds)


def build_stream_scorer(ws: Workspace, config: StreamConfig, emb: Embedder) -> Scorer:
    """The session's scorer, trained on the labeled set (final annotations, plus ingest labels if configured)."""
    from curate.loop.evaluation import training_records
    from curate.loop.pool_loop import EmbedderContext
    from curate.runtime.catalog import build_scorer

    labeled = training_records(ws, kind=config.kind, use_ingest_labels=config.use_ingest_labels)
    ctx = EmbedderContext(cache_dir=ws.cache_dir, labeled=labeled, embedder=config.embedder, seed=config.seed,
                          injected=emb)
    return build_scorer(config.scorer, ctx)


def _kind_hint(row: Any, kind: str) -> str:
    """``"; it reads as a preference record: pass --kind preference"`` when the row is a record of another kind."""
    from curate.ingest.formats import row_to_record

    if not isinstance(row, dict):
        return ""
    try:
        other = row_to_record(row).kind
    except RecordError:
        return ""
    return f"; it reads as a{'n' if other[0] in 'aeiou' else ''} {other} record: pass --kind {other}" \
        if other != kind else ""


def _open_at_saved_offsets(state: dict[str, Any], source: Path | None,
                           out: Path | None) -> tuple[IO[bytes], IO[bytes], int]:
    """Input and output files positioned where the saved session stopped, and the last line number read."""
    in_fh: IO[bytes] = source.open("rb") if source else sys.stdin.buffer
    line_no = 0
    if source is not None and state["input"].get("path") == str(source):
        in_fh.seek(int(state["input"]["offset"]))
        line_no = int(state["input"]["line"])
    if out is None:
        return in_fh, sys.stdout.buffer, line_no
    out.parent.mkdir(parents=True, exist_ok=True)
    out_fh = out.open("ab")
    if state["output"].get("path") == str(out) and out.stat().st_size > state["output"]["offset"]:
        out_fh.truncate(int(state["output"]["offset"]))
    return in_fh, out_fh, line_no


def run_stream(ws: Workspace, config: StreamConfig, source: Path | None, out: Path | None, *, follow: bool = False,
               idle_exit: float | None = None, poll_seconds: float = 0.2, embedder: Embedder | None = None,
               scorer: Scorer | None = None, checkpoint_every: int = 50, actor: str | None = None,
               on_line: Callable[[dict[str, Any]], None] | None = None) -> StreamSummary:
    """Decide every line of ``source`` (None = stdin) and write the decisions to ``out`` (None = stdout).

    Args:
        follow: keep reading a growing file; stop after ``idle_exit`` seconds without a new line (None: never).
            Ctrl-C then ends the session like the end of input (a note in the summary says so); without
            ``follow`` it is re-raised. The state is saved either way.
        embedder: for the scorer and the drift monitor (default :class:`MemoEmbedder` of ``config.embedder``).
        scorer: default :func:`build_stream_scorer`.
        on_line: called with every output line (progress display).

    Returns:
        A :class:`StreamSummary` of the whole session.
    """
    if not 0 < config.target_rate <= 1:
        raise InputError(f"--target-rate must be in (0, 1]; got {config.target_rate}")
    if source is not None and not source.exists():
        raise InputError(f"--input {source}: no such file; give a JSONL file, or - to read stdin")
    from curate.loop.pool_loop import check_accounts

    check_accounts(ws, config.annotators)
    started = time.perf_counter()
    emb = embedder or workspace_embedder(config.embedder, ws, memo=True)
    who = actor or audit.default_actor()
    session = _Session(ws, config, emb, scorer or build_stream_scorer(ws, config, emb), who)
    src_name, out_name = str(source) if source else "-", str(out) if out else "-"
    in_fh, out_fh, line_no = _open_at_saved_offsets(session.state, source, out)
    # Checkpoints are taken only between lines, so a replay after a crash starts from a consistent state.
    done = (in_fh.tell() if source else None, out_fh.tell() if out else None, line_no)
    first_line = saved_line = line_no
    mid_line = False
    stop: KeyboardInterrupt | None = None
    try:
        for raw, in_offset in _lines(in_fh, follow=follow and source is not None, idle_exit=idle_exit,
                                     poll=poll_seconds):
            mid_line = True
            line_no += 1
            session.counts["lines"] += 1
            items = session.process(raw, line_no) if raw.strip() else []
            for item in items:
                out_fh.write(orjson.dumps(item) + b"\n")
                if on_line:
                    on_line(item)
            out_fh.flush()
            done = (in_offset if source else None, out_fh.tell() if out else None, line_no)
            mid_line = False
            if session.counts["lines"] % checkpoint_every == 0:
                session.checkpoint(*done, src_name, out_name)
                saved_line = line_no
    except KeyboardInterrupt as exc:  # with --follow, Ctrl-C is how a session ends
        stop = exc
    finally:
        if not mid_line:
            session.checkpoint(*done, src_name, out_name)
            saved_line = done[2]
        if source:
            in_fh.close()
        if out:
            out_fh.close()
    if stop is not None:
        note_kept(f"decided line(s) of stream {config.name!r} (session saved)", saved_line - first_line)
        if not follow:
            raise stop
    summary = session.summary(time.perf_counter() - started)
    if stop is not None:
        summary.notes.append(f"stopped by Ctrl-C after line {saved_line:,}; the session is saved: run the same "
                             "command again to go on from there")
    audit.record(ws.store, "stream.stop", {"stream": config.name, "lines": summary.lines, "labelled": summary.labelled,
                                           "accepted": summary.accepted, "tasks": summary.tasks,
                                           "drift_events": len((summary.drift or {}).get("events", []))}, actor=who)
    return summary
