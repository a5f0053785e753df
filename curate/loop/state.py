"""Loop configuration, results and persisted state: what a loop is, and what it has done so far.

The database is the source of truth (rounds carry ``params.loop``; ``loop.round`` / ``loop.eval`` / ``loop.stop``
audit events); ``<workspace>/loops/<name>.json`` mirrors config and history, written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlalchemy import select

from curate.errors import InputError
from curate.loop.stopping import MIN_GAIN_PER_LABEL
from curate.runtime.catalog import scorer_class, scorer_names
from curate.runtime.config import comma_tuple, opt
from curate.store.workspace import Workspace

DEFAULT_SCORER = {"text": "margin", "preference": "disagreement"}
METRICS = {"text": ("accuracy", "macro_f1", "calibration_accuracy", "calibration_ece"),
           "preference": ("accuracy", "calibration_accuracy", "calibration_ece")}
ALIASES = {"ece": "calibration_ece", "pairwise_accuracy": "accuracy", "f1": "macro_f1"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
EventHook = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class LoopConfig:
    """Everything that defines a loop; a loop resumes only with the same config.

    Attributes:
        name: the loop's name (file-name safe).
        kind: ``text`` (label tasks, classifier) or ``preference`` (rank tasks, reward ensemble).
        rounds, budget, batch: at most ``rounds`` rounds and ``budget`` tasks, ``batch`` tasks per round.
        scorer, selector, random_mix, dedup: the strategy (as ``curate select``); scorer default by kind.
        target: ``METRIC=VALUE``, e.g. ``accuracy=0.85`` (``calibration_ece`` is reached at or below VALUE).
        min_gain_per_label, gain_window: the marginal-gain stop (0 disables it).
        oracle: answer from this gold column (``label``, a source column, or ``chosen`` for preferences).
        gold: the test set's gold column (default: ``oracle``, else ``label`` / ``chosen``).
        annotators: people whose queues get the tasks (when there is no oracle).
        schema: label schema of text tasks (with an oracle, created from the gold classes if absent).
        feedback_weight, feedback_k: boost near overruled items (0 disables).
        use_ingest_labels: train on labels given at ingest too (otherwise they are hidden, as gold).
    """

    name: str = opt(help="The loop's name; run again with the same settings to resume.", cli_default="loop")
    kind: str = opt("text", "text (label tasks, classifier) or preference (rank tasks, reward ensemble).")
    rounds: int = opt(10, "At most this many rounds.")
    budget: int = opt(200, "At most this many tasks (labels) in all.")
    batch: int = opt(20, "Tasks per round.")
    scorer: str = opt("", "Scorer (as curate select); default margin for text, disagreement for preference.",
                      cli_type=str | None, cli_default=None, parse=lambda v: v or "")
    selector: str = opt("topk", "topk, kcenter, cluster, badge, deita, round_robin, or package.module:Class.")
    random_mix: float = opt(0.1, "Fraction of each batch drawn at random.")
    target: str | None = opt(None, "Stop when reached: METRIC=VALUE, e.g. accuracy=0.85 (metrics: accuracy, macro_f1, "
                                   "calibration_accuracy, calibration_ece).")
    min_gain_per_label: float = opt(MIN_GAIN_PER_LABEL, "Stop when the test metric gains less than this per label "
                                                        "over the last rounds (0: never).")
    gain_window: int = opt(3, "Rounds the marginal gain is measured over.")
    oracle: str | None = opt(None, "Simulate: answer from this gold column (label, a source column, or chosen for "
                                   "preference pairs).")
    gold: str | None = opt(None, "Gold column of the test/calibration splits (default: --oracle, else label / "
                                 "chosen).")
    annotators: tuple[str, ...] = opt((), "Comma-separated accounts whose queues get the tasks.",
                                      cli_type=str | None, cli_default=None, parse=comma_tuple)
    schema: str | None = opt(None, "Label schema of text tasks (curate schema add).")
    feedback_weight: float = opt(1.0, "Boost candidates near items experts overruled (0: off).")
    feedback_k: int = opt(10, "Overruled neighbours the feedback boost looks at.", cli=False)
    use_ingest_labels: bool = opt(False, "Also train on labels given at ingest (otherwise they are hidden, as gold "
                                         "for the oracle).")
    dedup: float | None = opt(0.95, "Cosine similarity above which batch members count as near-duplicates (1 turns "
                                    "it off).", cli_type=float, parse=lambda v: None if v >= 1 else v)
    embedder: str = opt("minilm", "Sentence embedder: minilm, a folder, a Hub id, or package.module:function "
                                  "(texts -> (n, d) array); <any of those>+words adds word TF-IDF features "
                                  "fitted once on the pool (curate.runtime.word_features).")
    seed: int = opt(0, "Seed of the model fits and selections.")

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InputError(f"loop name {self.name!r}: use 1-64 letters, digits, '_', '.' or '-'")
        if self.kind not in DEFAULT_SCORER:
            raise InputError(f"--kind must be text or preference; got {self.kind!r}")
        for what, value in (("rounds", self.rounds), ("budget", self.budget), ("batch", self.batch),
                            ("gain_window", self.gain_window), ("feedback_k", self.feedback_k)):
            if not isinstance(value, int) or value < (2 if what == "gain_window" else 1):
                raise InputError(f"--{what.replace('_', '-')} must be a positive integer; got {value!r}")
        if not 0.0 <= self.random_mix <= 1.0 or self.feedback_weight < 0 or self.min_gain_per_label < 0:
            raise InputError("--random-mix must be in [0, 1]; --feedback-weight and --min-gain-per-label >= 0")
        if bool(self.oracle) == bool(self.annotators):
            raise InputError("give either --oracle COLUMN (simulate with gold answers) or --annotators a,b "
                             "(people answer in the app), not both and not neither")
        cls = scorer_class(self.scorer_name)
        if cls is not None and cls.learns_from not in (None, self.kind):
            fitting = [n for n in scorer_names() if getattr(scorer_class(n), "learns_from", None) == self.kind]
            raise InputError(f"the {self.scorer_name} scorer does not fit --kind {self.kind}; use {', '.join(fitting)}")
        self.target_pair()

    @property
    def scorer_name(self) -> str:
        """The scorer, defaulting by kind (margin for text, disagreement for preference)."""
        return self.scorer or DEFAULT_SCORER[self.kind]

    @property
    def gold_column(self) -> str:
        """Where the test set's gold answers are."""
        return self.gold or self.oracle or ("label" if self.kind == "text" else "chosen")

    def target_pair(self) -> tuple[str, float] | None:
        """``(metric, value)`` of the target, or None."""
        if not self.target:
            return None
        metric, sep, raw = self.target.partition("=")
        metric = ALIASES.get(metric.strip(), metric.strip())
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not sep or metric not in METRICS[self.kind] or not np.isfinite(value):
            raise InputError(f"--target must be METRIC=VALUE with METRIC one of {', '.join(METRICS[self.kind])}; "
                             f"got {self.target!r}")
        return metric, value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**dataclasses.asdict(self), "annotators": list(self.annotators)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopConfig:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known},
                      "annotators": tuple(data.get("annotators", ()))})

    def digest(self) -> str:
        """16 hex characters identifying the config."""
        return hashlib.blake2b(orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()

    def differences(self, other: LoopConfig) -> list[str]:
        """``field: mine -> theirs`` for every setting that differs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {mine[k]!r} -> {theirs[k]!r}" for k in mine if mine[k] != theirs[k]]


@dataclass
class LoopResult:
    """Where a loop is: ``status`` is ``stopped`` (with ``stop_reason``) or ``waiting`` (for ``waiting_for``
    answers); ``history`` holds one evaluation per round, ``rounds`` one summary per round."""

    name: str
    status: str
    stop_reason: str | None = None
    waiting_for: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


def state_path(ws: Workspace, name: str) -> Any:
    """``<workspace>/loops/<name>.json``."""
    folder = ws.root / "loops"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.json"


def _write_state(ws: Workspace, config: LoopConfig, result: LoopResult) -> None:
    path = state_path(ws, config.name)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps({"config": config.to_dict(), **result.as_dict()}, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


@contextmanager
def _locked(ws: Workspace, name: str) -> Iterator[None]:
    import fcntl

    with open(state_path(ws, name).with_suffix(".lock"), "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"loop {name!r} is running in another process; wait for it or stop it") from None
        yield


def _events(ws: Workspace, action: str, name: str) -> list[dict[str, Any]]:
    from curate.store.schema import AuditEvent

    with ws.store.read() as conn:
        rows = conn.scalars(select(AuditEvent.payload).where(AuditEvent.action == action).order_by(AuditEvent.seq))
        payloads = [orjson.loads(p) for p in rows]
    return [p for p in payloads if p.get("loop") == name]


def loop_rounds(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """The loop's rounds in order: ``round_id``, ``number``, ``loop_round``, ``config``, task counts by status."""
    from curate.store.schema import Round, Task

    out = []
    with ws.store.read() as conn:
        for rid, number, raw in conn.execute(select(Round.id, Round.number, Round.params).order_by(Round.number)):
            params = orjson.loads(raw) if raw else {}
            if not isinstance(params, dict) or params.get("loop") != name:
                continue
            statuses = list(conn.scalars(select(Task.status).where(Task.round_id == rid)))
            final = sum(s in ("done", "adjudicated") for s in statuses)
            out.append({"round_id": int(rid), "number": int(number), "loop_round": int(params.get("loop_round", 0)),
                        "config": params.get("loop_config"), "tasks": len(statuses), "answered": final,
                        "complete": final == len(statuses)})
    return sorted(out, key=lambda r: (r["loop_round"], r["number"]))


def history(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """One ``loop.eval`` payload per evaluated round (the first recorded wins), in round order."""
    seen: dict[int, dict[str, Any]] = {}
    for payload in _events(ws, "loop.eval", name):
        seen.setdefault(int(payload["round_id"]), payload)
    return sorted(seen.values(), key=lambda p: int(p["loop_round"]))


def _check_config(ws: Workspace, config: LoopConfig) -> None:
    path = state_path(ws, config.name)
    stored: LoopConfig | None = None
    if path.exists():
        stored = LoopConfig.from_dict(orjson.loads(path.read_bytes())["config"])
    differences = stored.differences(config) if stored is not None else []
    if stored is None:
        digests = {r["config"] for r in loop_rounds(ws, config.name)}
        if digests - {config.digest()}:
            differences = ["the settings differ from those its rounds were created with"]
    if differences:
        raise InputError(f"loop {config.name!r} exists with different settings ({'; '.join(differences)}). "
                         "Resume it with the same settings, or start another loop with a new --name.")
