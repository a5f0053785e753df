"""What an active-learning loop learns from and how it is measured.

- :func:`answered_tasks` / :func:`training_records`: the labeled set is every record with a *final* annotation
  (a reviewer's adjudication, else the agreed current answer): a label task gives the record its class; a rank
  task orients a preference pair so that ``chosen`` is the response people preferred (ties and "both bad" teach
  nothing and are left out). Labels given at ingest join only when asked for.
- :func:`overrules`: where the final answer differs from the model's suggestion, or a rewrite was not accepted
  as is (the feedback scorer's input).
- :func:`fit_model`: a logistic-regression classifier on frozen features (``text``) or a Bradley-Terry reward
  ensemble (``preference``).
- :func:`answer_with_oracle`: a simulated annotator (account ``oracle``) that answers from a gold column.
- :func:`evaluate`: metrics on the frozen test set (split ``test``) and the calibration slice (``calibration``):
  accuracy and macro-F1 / pairwise accuracy, and expected calibration error (10 bins). Higher accuracy = better;
  lower ECE = better.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import select

from curate.annotate.answers import final_annotations
from curate.errors import InputError
from curate.ingest.records import Record, as_text
from curate.scorers.classifier import Featurizer, featurize_checked
from curate.scorers.classifier_models import ClassifierModel, classifier_c, fit_classifier
from curate.scorers.feature_choice import base_columns
from curate.scorers.reward import BradleyTerryEnsemble, preference_features
from curate.store.database import Store
from curate.store.schema import Suggestion, Task
from curate.store.workspace import Workspace

FloatArray = npt.NDArray[np.float64]
ORACLE_USER = "oracle"
CRASH_ENV = "CURATE_LOOP_CRASH_AFTER"  # tests only: SIGKILL this process after N oracle answers
_ANSWERED = [0]  # oracle answers given by this process (for CRASH_ENV)
#: Metrics where lower is better; every other metric is higher = better.
LOWER_IS_BETTER = frozenset({"calibration_ece"})


@dataclass(frozen=True)
class Answered:
    """A task with a final annotation: its record, round, type, the final value and the model's suggestion."""

    task_id: int
    record_id: str
    round_id: int
    type: str
    value: dict[str, Any]
    suggestion: Any = None


def answered_tasks(store: Store) -> list[Answered]:
    """Every task with a final annotation, oldest task first."""
    with store.read() as conn:
        finals = final_annotations(conn)
        if not finals:
            return []
        ids = sorted(finals)
        tasks = {int(t.id): t for t in conn.execute(select(Task.id, Task.record_id, Task.round_id, Task.type)
                                                    .where(Task.id.in_(ids)))}
        suggested = {int(s.task_id): orjson.loads(s.value) for s in conn.execute(
            select(Suggestion.task_id, Suggestion.value).where(Suggestion.task_id.in_(ids)))}
    out = []
    for tid in ids:
        value = orjson.loads(finals[tid].value) if finals[tid].value else {}
        task = tasks[tid]
        out.append(Answered(tid, str(task.record_id), int(task.round_id), str(task.type),
                            value if isinstance(value, dict) else {}, suggested.get(tid)))
    return out


def _swap(record: Record) -> Record:
    fields = {**record.fields, "chosen": record.fields.get("rejected"), "rejected": record.fields.get("chosen")}
    return dataclasses.replace(record, fields=fields)


def training_records(ws: Workspace, *, kind: str, answered: Sequence[Answered] | None = None,
                     use_ingest_labels: bool = False) -> list[Record]:
    """The labeled set of ``kind`` records (module docstring); text records carry their class in ``label``,
    preference records are oriented so that ``chosen`` was preferred."""
    found = answered_tasks(ws.store) if answered is None else answered
    pool = {r.id: r for r in ws.store.iter_records(kind=kind)}
    out: dict[str, Record] = {}
    for a in found:
        rec = pool.get(a.record_id)
        if rec is None:
            continue
        if a.type == "label" and "label" in a.value:
            out[rec.id] = dataclasses.replace(rec, label=a.value["label"])
        elif a.type == "rank" and rec.kind == "preference":
            preferred = a.value.get("preferred")
            if preferred in ("chosen", "rejected"):
                out[rec.id] = rec if preferred == "chosen" else _swap(rec)
            else:
                out.pop(rec.id, None)
    if use_ingest_labels and kind == "text":
        for rec in pool.values():
            if rec.label is not None and rec.id not in out:
                out[rec.id] = rec
    return list(out.values())


def overrules(answered: Sequence[Answered]) -> dict[str, bool]:
    """``{record id: overruled}`` for answered tasks that had a suggestion (label, rank) or were rewrites.

    Overruled = another class, the other response (or a tie / both bad), or a rewrite not accepted as is.
    The latest task of a record wins.
    """
    out: dict[str, bool] = {}
    for a in answered:
        if a.type == "rewrite":
            out[a.record_id] = not bool(a.value.get("accepted_as_is", False))
        elif a.type == "label" and a.suggestion is not None and "label" in a.value:
            out[a.record_id] = a.value["label"] != a.suggestion
        elif a.type == "rank" and a.suggestion is not None and "preferred" in a.value:
            out[a.record_id] = a.value["preferred"] != a.suggestion
    return out


# --------------------------------------------------------------------------------------------- gold


def gold_of(record: Record, column: str) -> Any:
    """The gold answer of a record: ``label``, a column kept in ``meta``, or for a preference pair and column
    ``chosen`` the name ``"chosen"`` (the data's chosen response is the preferred one). None if absent."""
    if column == "label":
        return record.label
    if record.kind == "preference" and column == "chosen":
        return "chosen"
    return record.meta.get(column)


def oriented(records: Sequence[Record], column: str) -> list[Record]:
    """Preference records oriented by their gold (``chosen``/``rejected``); others (ties, missing) left out."""
    out = []
    for rec in records:
        gold = gold_of(rec, column)
        if gold == "chosen":
            out.append(rec)
        elif gold == "rejected":
            out.append(_swap(rec))
    return out


# --------------------------------------------------------------------------------------------- model


@dataclass
class LoopModel:
    """The loop's current model: a classifier (text) or a reward ensemble (preference), or neither yet.

    ``version`` hashes the fitted weights (None before there is a model); ``train_size`` counts its examples.
    """

    kind: str
    classes: tuple[str, ...] = ()
    classifier: ClassifierModel | None = None
    ensemble: BradleyTerryEnsemble | None = None
    train_size: int = 0

    @property
    def version(self) -> str | None:
        """The fitted model's version hash, or None when untrained."""
        if self.classifier is not None:
            return self.classifier.version
        if self.ensemble is not None and self.ensemble.is_trained:
            return self.ensemble.version_
        return None


def _texts(records: Sequence[Record]) -> list[str]:
    return [as_text(r.fields.get("text")) for r in records]


def fit_model(kind: str, labeled: Sequence[Record], featurize: Featurizer, *, classes: Sequence[str] = (),
              rng: np.random.Generator) -> LoopModel:
    """Fit the loop's model on the labeled set (untrained when there are fewer than 2 classes / 8 pairs)."""
    model = LoopModel(kind=kind, classes=tuple(classes))
    if kind == "text":
        usable = [r for r in labeled if r.label is not None and str(r.label) in model.classes]
        model.train_size = len(usable)
        if len({str(r.label) for r in usable}) >= 2:
            X = featurize_checked(featurize, _texts(usable), who="loop model")
            model.classifier = fit_classifier(X, [str(r.label) for r in usable], classes=model.classes, rng=rng,
                                              C=classifier_c(featurize), base=base_columns(featurize))
        return model
    pairs = [r for r in labeled if r.kind == "preference"]
    model.train_size = len(pairs)
    model.ensemble = BradleyTerryEnsemble()
    if pairs:
        chosen, rejected = preference_features(featurize, pairs)
        model.ensemble.fit(chosen, rejected, rng=rng)
    return model


def _pair_probs(model: LoopModel, featurize: Featurizer, records: Sequence[Record]) -> FloatArray:
    """``P(chosen > rejected)`` per record, averaged over the heads, shape ``(n,)``."""
    assert model.ensemble is not None
    chosen, rejected = preference_features(featurize, records)
    return np.asarray(model.ensemble.prob(chosen, rejected).mean(axis=0), dtype=np.float64)


def suggestions(model: LoopModel, featurize: Featurizer, records: Sequence[Record]) -> list[tuple[Any, float]]:
    """The model's ``(suggestion, confidence)`` per record: a class, or the preferred response's name; empty when
    there is no trained model."""
    if not records or model.version is None:
        return []
    if model.classifier is not None:
        probs = model.classifier.predict_proba(featurize_checked(featurize, _texts(records), who="suggestions"))
        best = np.argmax(probs, axis=1)
        return [(model.classes[int(b)], float(probs[i, b])) for i, b in enumerate(best)]
    p = _pair_probs(model, featurize, records)
    return [("chosen" if v >= 0.5 else "rejected", float(max(v, 1.0 - v))) for v in p]


# --------------------------------------------------------------------------------------------- metrics


def expected_calibration_error(confidence: npt.ArrayLike, correct: npt.ArrayLike, *, bins: int = 10) -> float:
    """ECE: ``sum_b (n_b / n) |accuracy_b - mean confidence_b|`` over ``bins`` equal-width confidence bins.

    Args:
        confidence: ``(n,)`` the probability of the predicted answer, in ``[0, 1]``.
        correct: ``(n,)`` whether each prediction was right.

    >>> expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 1, 1, 0])
    0.1
    """
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    right = np.asarray(correct, dtype=np.float64).reshape(-1)
    if conf.size == 0:
        return float("nan")
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        mask = which == b
        total += mask.sum() / conf.size * abs(right[mask].mean() - conf[mask].mean())
    return round(float(total), 12)


def _classify_metrics(model: LoopModel, featurize: Featurizer, records: Sequence[Record],
                      column: str) -> dict[str, float]:
    from sklearn.metrics import f1_score

    # a held-out file's class sits in its label column even when the pool's gold (--oracle) is another column
    gold = [g if (g := gold_of(r, column)) is not None else r.label for r in records]
    keep = [i for i, g in enumerate(gold) if g is not None]
    if not keep or model.classifier is None:
        return {}
    probs = model.classifier.predict_proba(featurize_checked(featurize, _texts([records[i] for i in keep]),
                                                             who="evaluate"))
    pred = [model.classes[int(b)] for b in np.argmax(probs, axis=1)]
    truth = [str(gold[i]) for i in keep]
    right = np.array([p == t for p, t in zip(pred, truth, strict=True)])
    return {"accuracy": float(right.mean()), "macro_f1": float(f1_score(truth, pred, average="macro",
                                                                         zero_division=0)),
            "ece": expected_calibration_error(probs.max(axis=1), right)}


def _preference_metrics(model: LoopModel, featurize: Featurizer, records: Sequence[Record],
                        column: str) -> dict[str, float]:
    pairs = oriented(records, column)
    if not pairs or model.version is None:
        return {}
    p = _pair_probs(model, featurize, pairs)
    return {"accuracy": float(np.mean(p > 0.5)), "ece": expected_calibration_error(np.maximum(p, 1 - p), p > 0.5)}


def evaluate(model: LoopModel, featurize: Featurizer, *, test: Sequence[Record], calibration: Sequence[Record],
             gold: str) -> dict[str, float | int | None]:
    """Flat metrics: ``accuracy`` (+ ``macro_f1`` for text) on ``test``, ``calibration_accuracy`` and
    ``calibration_ece`` on ``calibration``, and the counts ``n_test`` / ``n_calibration``.

    A metric that cannot be computed (no trained model, or an empty split) is None.
    """
    measure = _classify_metrics if model.kind == "text" else _preference_metrics
    on_test = measure(model, featurize, test, gold) if test else {}
    on_cal = measure(model, featurize, calibration, gold) if calibration else {}
    out: dict[str, float | int | None] = {"accuracy": on_test.get("accuracy")}
    if model.kind == "text":
        out["macro_f1"] = on_test.get("macro_f1")
    out["calibration_accuracy"] = on_cal.get("accuracy")
    out["calibration_ece"] = on_cal.get("ece")
    out["n_test"], out["n_calibration"] = len(test), len(calibration)
    return out


# --------------------------------------------------------------------------------------------- schema, oracle


def loop_classes(ws: Workspace, config: Any) -> tuple[str, ...]:
    """The label schema's classes (text loops); with an oracle and no schema yet, one made from the gold."""
    from curate.rounds.assignment import add_label_schema, label_schema_id
    from curate.store.schema import LabelSchema

    if config.kind != "text":
        return ()
    name = config.schema or f"loop-{config.name}"
    with ws.store.read() as conn:
        try:
            sid = label_schema_id(conn, name)
        except InputError:
            sid = None
        if sid is not None:
            return tuple(orjson.loads(conn.scalar(select(LabelSchema.classes).where(LabelSchema.id == sid)) or "[]"))
    if config.oracle is None:
        raise InputError(f"no label schema called {name!r}: text tasks answered in the app need one; create it with "
                         "curate schema add NAME --classes a,b,c and pass --schema NAME")
    gold = {str(g) for split in ("pool", "test", "calibration")
            for r in ws.store.iter_records(kind="text", split=split) if (g := gold_of(r, config.oracle)) is not None}
    if len(gold) < 2:
        raise InputError(f"--oracle {config.oracle}: found {len(gold)} distinct gold value(s) in the text records; "
                         "a classifier needs at least 2. Check the column name (labels are read from 'label' or "
                         "from a source column kept with the record).")
    classes = sorted(gold, key=_class_order)
    add_label_schema(ws.store, name, classes, f"Classes of loop {config.name} (from --oracle {config.oracle}).")
    return tuple(classes)


def _class_order(name: str) -> tuple[int, float, str]:
    """Numbers in numeric order, before names ('2' before '10', so a class's index is its number from 0)."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def oracle_value(record: Record, task_id: int, task_type: str, column: str) -> dict[str, Any]:
    """The answer a gold column gives: ``{"label": gold}`` or ``{"choice": letter | "tie" | "both_bad"}``."""
    from curate.annotate.task_views import display_order

    gold = gold_of(record, column)
    if gold is None:
        raise InputError(f"--oracle {column}: record {record.id} has no value in that column; every pool record "
                         "the loop can choose needs a gold answer")
    if task_type == "label":
        return {"label": str(gold)}
    if gold in ("tie", "both_bad"):
        return {"choice": gold}
    if gold not in ("chosen", "rejected"):
        raise InputError(f"--oracle {column}: record {record.id} has {gold!r}; a preference gold must be chosen, "
                         "rejected, tie or both_bad")
    order = display_order(task_id, 2)
    return {"choice": "AB"[order.index(["chosen", "rejected"].index(gold))]}


def answer_with_oracle(ws: Workspace, round_id: int, column: str, *, on_answer: Callable[[int], None] | None = None,
                       ) -> int:
    """Answer the oracle's unanswered tasks of a round from the gold column (each its own transaction)."""
    from curate.annotate.answers import submit
    from curate.store.schema import Assignment, Task

    with ws.store.read() as conn:
        todo = conn.execute(select(Task.id, Task.record_id, Task.type).join(Assignment, Assignment.task_id == Task.id)
                            .where(Task.round_id == round_id, Assignment.annotator == ORACLE_USER,
                                   Assignment.status != "done", Task.status == "open").order_by(Task.id)).all()
    crash_after = int(os.environ.get(CRASH_ENV) or 0)
    for n, (task_id, record_id, task_type) in enumerate(todo, start=1):
        record = ws.store.get_record(record_id)
        if record is None:
            raise InputError(f"task {task_id} points to a missing record {record_id}")
        submit(ws.store, ORACLE_USER, int(task_id), oracle_value(record, int(task_id), task_type, column))
        _ANSWERED[0] += 1
        if on_answer:
            on_answer(n)
        if crash_after and _ANSWERED[0] >= crash_after:
            os.kill(os.getpid(), signal.SIGKILL)
    return len(todo)


def ensure_oracle(ws: Workspace, *, actor: str | None = None) -> None:
    """Create the ``oracle`` annotator account (random password) on first use, recorded for ``actor`` (the
    person running the loop; default :func:`curate.store.audit.default_actor`)."""
    import secrets

    from curate.store.accounts import add_user
    from curate.store.schema import User

    with ws.store.read() as conn:
        if conn.scalar(select(User.name).where(User.name == ORACLE_USER)) is not None:
            return
    add_user(ws.store, ORACLE_USER, "annotator", secrets.token_urlsafe(24), actor=actor)
