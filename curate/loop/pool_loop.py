"""The pool-based active-learning loop: update the model, score, select, get answers, evaluate, repeat.

A loop is configured once (:class:`LoopConfig`: target metric, label budget, batch, strategy, where answers come
from) and stops at the first of: the target reached on the frozen test set, the budget spent, the marginal gain
per label below ``min_gain_per_label`` (:func:`curate.loop.stopping.stopping_report`), ``rounds`` rounds
done, or an empty pool. Answers come from people in the app, or from a gold column (``oracle``) to simulate.

Resumable at any point, even after ``kill -9``: what is done is read back from the database, never from memory.
A round of this loop carries ``params.loop = name``; a ``loop.round`` audit event marks it ready (assigned, with
suggestions); a ``loop.eval`` event holds its evaluation; ``loop.stop`` ends the loop. Each oracle answer is its
own transaction, so on resume only unanswered tasks are answered, and the next round starts only when the last
one is complete and evaluated. ``<workspace>/loops/<name>.json`` mirrors the config and history (written
atomically after each step); the config in it must match to resume.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import orjson
from sqlalchemy import select

from curate.errors import InputError
from curate.ingest.records import Record
from curate.loop.evaluation import (
    LOWER_IS_BETTER,
    ORACLE_USER,
    LoopModel,
    answer_with_oracle,
    ensure_oracle,
    loop_classes,
)
from curate.loop.state import (
    EventHook,
    LoopConfig,
    LoopResult,
    _check_config,
    _events,
    _locked,
    _write_state,
    history,
    loop_rounds,
    state_path,
)
from curate.loop.stopping import stopping_report
from curate.runtime.catalog import BuildContext, scorer_class, scorer_options
from curate.runtime.embeddings import Embedder
from curate.runtime.word_features import workspace_embedder
from curate.scorers.base import BaseScorer, Scorer, Scores
from curate.selectors.base import Selector
from curate.store import audit
from curate.store.workspace import Workspace


@dataclass(frozen=True)
class ColdStartScorer(BaseScorer):
    """Every record scores 1.0: with no model yet, the selector (k-center) alone decides."""

    name: ClassVar[str] = "cold_start"

    def score(self, records: Any) -> Scores:
        """``(n,)`` ones."""
        return np.ones(len(records), dtype=np.float64)


# --------------------------------------------------------------------------------------------- steps


def _scorer(ws: Workspace, config: LoopConfig, model: LoopModel, labeled: list[Record], emb: Embedder,
            feedback: tuple[list[Record], list[float]]) -> tuple[Scorer, Selector]:
    from curate.runtime.catalog import build_scorer, build_selector
    from curate.scorers.classifier import ClassifierUncertaintyScorer, CommitteeScorer
    from curate.scorers.classifier_models import classifier_c, fit_committee
    from curate.scorers.feedback import FeedbackScorer
    from curate.scorers.reward import RewardUncertaintyScorer
    from curate.selectors import KCenterGreedy

    name, selector = config.scorer_name, build_selector(config.selector)
    cls, options = scorer_class(name), scorer_options(name)
    scorer: Scorer
    if config.kind == "text" and model.classifier is None and getattr(cls, "learns_from", None) == "text":
        return ColdStartScorer(), KCenterGreedy(metric="cosine")
    if cls is ClassifierUncertaintyScorer and model.classifier is not None:  # the loop's own fitted models
        scorer = ClassifierUncertaintyScorer(featurize=emb, model=model.classifier, **options)
    elif cls is CommitteeScorer:
        texts = [r for r in labeled if r.label is not None and str(r.label) in model.classes]
        committee = fit_committee(emb.embed_records(texts), [str(r.label) for r in texts], classes=model.classes,
                                  rng=np.random.default_rng(config.seed), C=classifier_c(emb))
        scorer = CommitteeScorer(featurize=emb, committee=committee, **options)
    elif cls is RewardUncertaintyScorer:
        scorer = RewardUncertaintyScorer(featurize=emb, ensemble=model.ensemble, **options)
    else:
        ctx = EmbedderContext(cache_dir=ws.cache_dir, labeled=labeled, embedder=config.embedder,
                              seed=config.seed, injected=emb)
        scorer = build_scorer(name, ctx)
    refs, flags = feedback
    if config.feedback_weight > 0 and any(flags):
        scorer = FeedbackScorer.from_records(scorer, emb, refs, flags, weight=config.feedback_weight,
                                             k=config.feedback_k)
    return scorer, selector


@dataclass
class EmbedderContext(BuildContext):
    """A :class:`curate.runtime.catalog.BuildContext` whose embedder is the loop's (possibly injected) one."""

    injected: Embedder | None = None

    def make_embedder(self) -> Embedder:
        """The injected embedder, else the named one (cached on disk)."""
        return self.injected or super().make_embedder()


# --------------------------------------------------------------------------------------------- the loop


class _Runner:
    """One run of a loop: each pass of :meth:`run` reads the state back from the database and takes one step."""

    def __init__(self, ws: Workspace, config: LoopConfig, emb: Embedder, hook: EventHook, actor: str) -> None:
        self.ws, self.config, self.emb, self.hook, self.actor = ws, config, emb, hook, actor
        self.classes = loop_classes(ws, config)
        self.test = list(ws.store.iter_records(kind=config.kind, split="test"))
        self.calibration = list(ws.store.iter_records(kind=config.kind, split="calibration"))
        target = config.target_pair()
        needs = "calibration" if target and target[0].startswith("calibration") else "test"
        if target and not (self.calibration if needs == "calibration" else self.test):
            raise InputError(f"--target {config.target} is measured on the {needs} split, which has no "
                             f"{config.kind} records; ingest some with: curate ingest FILE --split {needs}")
        self.metric = target[0] if target and target[0] not in LOWER_IS_BETTER else (
            "accuracy" if self.test or not self.calibration else "calibration_accuracy")
        self._model: tuple[str, LoopModel] | None = None

    # -- reading the state

    def _snapshot(self) -> tuple[list[Any], list[Record], LoopModel]:
        from curate.loop.evaluation import answered_tasks, fit_model, training_records

        answered = answered_tasks(self.ws.store)
        labeled = training_records(self.ws, kind=self.config.kind, answered=answered,
                                   use_ingest_labels=self.config.use_ingest_labels)
        key = hashlib.blake2b(orjson.dumps(sorted((r.id, str(r.label), str(r.fields.get("chosen")))
                                                  for r in labeled)), digest_size=16).hexdigest()
        if self._model is None or self._model[0] != key:
            rng = np.random.default_rng([self.config.seed, len(labeled)])
            self._model = key, fit_model(self.config.kind, labeled, self.emb, classes=self.classes, rng=rng)
        return answered, labeled, self._model[1]

    def _feedback(self, answered: list[Any]) -> tuple[list[Record], list[float]]:
        from curate.loop.evaluation import overrules

        refs, flags = [], []
        for rid, overruled in overrules(answered).items():
            rec = self.ws.store.get_record(rid)
            if rec is not None and rec.kind == self.config.kind:
                refs.append(rec)
                flags.append(1.0 if overruled else 0.0)
        return refs, flags

    def _audit(self, action: str, payload: dict[str, Any]) -> None:
        with self.ws.store.write() as conn:
            audit.append(conn, action, {"loop": self.config.name, **payload}, actor=self.actor)

    def _save(self, status: str, rounds: list[dict[str, Any]], reason: str | None = None,
              waiting: int = 0) -> LoopResult:
        result = LoopResult(self.config.name, status, reason, waiting, history(self.ws, self.config.name),
                            [{k: v for k, v in r.items() if k != "config"} for r in rounds])
        _write_state(self.ws, self.config, result)
        return result

    # -- steps

    def _prepare(self, rnd: dict[str, Any], model: LoopModel, scorer_key: str = "") -> None:
        """Assign the round's tasks, store the model's suggestions, and mark the round ready (``loop.round``)."""
        from curate.loop.evaluation import suggestions
        from curate.rounds.assignment import assign_round, set_suggestions
        from curate.store.schema import Task

        people = [ORACLE_USER] if self.config.oracle else list(self.config.annotators)
        schema = self.config.schema or (f"loop-{self.config.name}" if self.config.kind == "text" else None)
        assign_round(self.ws.store, people, round_number=rnd["number"], schema=schema, seed=self.config.seed,
                     actor=self.actor)
        with self.ws.store.read() as conn:
            tasks = conn.execute(select(Task.id, Task.record_id).where(Task.round_id == rnd["round_id"])
                                 .order_by(Task.id)).all()
        records = [self.ws.store.get_record(t.record_id) for t in tasks]
        found = [(int(t.id), r) for t, r in zip(tasks, records, strict=True) if r is not None]
        advice = suggestions(model, self.emb, [r for _, r in found])
        if advice:
            set_suggestions(self.ws.store, [(tid, value, conf) for (tid, _), (value, conf)
                                            in zip(found, advice, strict=True)])
        payload = {"round_id": rnd["round_id"], "round": rnd["number"], "loop_round": rnd["loop_round"],
                   "tasks": len(tasks), "suggestions": len(advice), "model_version": model.version,
                   "scorer_key": scorer_key[:400]}
        self._audit("loop.round", payload)
        self.hook("round", payload)

    def _start_round(self, rounds: list[dict[str, Any]], pool: list[Record]) -> None:
        from curate.rounds.selection import Strategy, run_round

        answered, labeled, model = self._snapshot()
        loop_round = len(rounds) + 1
        k = min(self.config.batch, self.config.budget - sum(r["tasks"] for r in rounds))
        scorer, selector = _scorer(self.ws, self.config, model, labeled, self.emb, self._feedback(answered))
        strategy = Strategy(scorer, selector, random_mix=self.config.random_mix,
                            dedup_threshold=None if (self.config.dedup or 1.0) >= 1 else self.config.dedup)
        self.hook("select", {"loop_round": loop_round, "k": k, "candidates": len(pool), "scorer_key": scorer.key()})
        report = run_round(self.ws, strategy, k, pool=pool, rng=np.random.default_rng([self.config.seed, loop_round]),
                           embedder=self.emb, actor=self.actor,
                           model_version=f"{self.config.name}:{model.version}" if model.version else None,
                           params={"loop": self.config.name, "loop_round": loop_round,
                                   "loop_config": self.config.digest()})
        rnd = {"round_id": report.round.round_id, "number": report.round.number, "loop_round": loop_round}
        self._prepare(rnd, model, scorer.key())

    def _evaluate(self, rnd: dict[str, Any], rounds: list[dict[str, Any]]) -> None:
        from curate.loop.evaluation import evaluate, overrules

        answered, labeled, model = self._snapshot()
        metrics = evaluate(model, self.emb, test=self.test, calibration=self.calibration,
                           gold=self.config.gold_column)
        mine = {int(r["round_id"]) for r in rounds}  # this loop's overrules (the model learns from every answer)
        n_over = sum(overrules([a for a in answered if a.round_id in mine]).values())
        payload = {"round_id": rnd["round_id"], "round": rnd["number"], "loop_round": rnd["loop_round"],
                   "labels": sum(r["answered"] for r in rounds), "tasks": sum(r["tasks"] for r in rounds),
                   "train_size": model.train_size, "model_version": model.version, "metrics": metrics,
                   "overrules": int(n_over)}
        self._audit("loop.eval", payload)
        self.hook("eval", payload)

    def _stop_reason(self, rounds: list[dict[str, Any]]) -> str | None:
        hist = history(self.ws, self.config.name)
        target = self.config.target_pair()
        if target and hist:
            got = hist[-1]["metrics"].get(target[0])
            if got is not None and (got <= target[1] if target[0] in LOWER_IS_BETTER else got >= target[1]):
                return "target"
        if sum(r["tasks"] for r in rounds) >= self.config.budget:
            return "budget"
        points = [(h["labels"], h["metrics"].get(self.metric)) for h in hist]
        points = [(n, v) for n, v in points if v is not None]
        if self.config.min_gain_per_label > 0 and len(points) >= self.config.gain_window:
            report = stopping_report([v for _, v in points], [n for n, _ in points], window=self.config.gain_window,
                                     min_gain_per_label=self.config.min_gain_per_label)
            if report.stop:
                return "gain"
        return "rounds" if len(rounds) >= self.config.rounds else None

    def _stop(self, reason: str, rounds: list[dict[str, Any]]) -> None:
        hist = history(self.ws, self.config.name)
        payload = {"reason": reason, "rounds": len(rounds), "labels": sum(r["answered"] for r in rounds),
                   "tasks": sum(r["tasks"] for r in rounds), "metrics": hist[-1]["metrics"] if hist else {}}
        self._audit("loop.stop", payload)
        self.hook("stop", payload)

    def run(self, *, wait: bool, poll_seconds: float, max_wait: float | None) -> LoopResult:
        """Step until the loop stops, or (app answers, no ``wait``) until it waits for people."""
        from curate.rounds.selection import candidates

        started, name = time.monotonic(), self.config.name
        while True:
            rounds = loop_rounds(self.ws, name)
            stops = _events(self.ws, "loop.stop", name)
            if stops:
                return self._save("stopped", rounds, str(stops[0]["reason"]))
            last = rounds[-1] if rounds else None
            if last is not None:
                if last["round_id"] not in {int(e["round_id"]) for e in _events(self.ws, "loop.round", name)}:
                    self._prepare(last, self._snapshot()[2])
                    continue
                if not last["complete"]:
                    open_tasks = last["tasks"] - last["answered"]
                    if self.config.oracle:
                        answered = answer_with_oracle(self.ws, last["round_id"], self.config.oracle)
                        self.hook("answered", {"loop_round": last["loop_round"], "answered": answered})
                        if answered == 0:
                            raise InputError(f"round {last['number']} has {open_tasks} task(s) the oracle cannot "
                                             "answer (disputed or assigned to others); resolve them in the app")
                        continue
                    if not wait or (max_wait is not None and time.monotonic() - started > max_wait):
                        self.hook("waiting", {"loop_round": last["loop_round"], "round": last["number"],
                                              "open": open_tasks})
                        return self._save("waiting", rounds, waiting=open_tasks)
                    time.sleep(poll_seconds)
                    continue
                if last["round_id"] not in {int(h["round_id"]) for h in history(self.ws, name)}:
                    self._evaluate(last, rounds)
                    self._save("running", rounds)
                    continue
                reason = self._stop_reason(rounds)
                if reason:
                    self._stop(reason, rounds)
                    continue
            pool = candidates(self.ws, kind=self.config.kind, include_labeled=not self.config.use_ingest_labels)
            if not pool and last is None:
                raise InputError(f"no candidate {self.config.kind} records in the pool: ingest some first "
                                 "(curate ingest FILE), or choose another --kind")
            if not pool:
                self._stop("pool exhausted", rounds)
                continue
            self._start_round(rounds, pool)
            self._save("running", loop_rounds(self.ws, name))


def run_loop(ws: Workspace, config: LoopConfig, *, embedder: Embedder | None = None, wait: bool = False,
             poll_seconds: float = 5.0, max_wait: float | None = None, on_event: EventHook | None = None,
             actor: str | None = None) -> LoopResult:
    """Run (or resume) the loop ``config.name`` until it stops or waits for people.

    Args:
        embedder: features for the model, the scorers and the selectors (default: ``config.embedder``, cached
            in the workspace); tests inject a cheap one.
        wait: with app answers, poll every ``poll_seconds`` (at most ``max_wait`` seconds) instead of returning
            ``waiting`` at once.
        on_event: called with ``(event, payload)`` for ``words`` (fitting ``<base>+words`` features), ``select``,
            ``round``, ``answered``, ``eval``, ``waiting`` and ``stop`` (progress display).

    Returns:
        A :class:`LoopResult`; the same is mirrored to ``<workspace>/loops/<name>.json``.

    Raises:
        InputError: settings differ from the stored loop's, the loop runs elsewhere, no candidates, no schema.
    """
    hook = on_event or (lambda _event, _payload: None)
    emb = embedder or workspace_embedder(config.embedder, ws,
                                         on_fit=lambda spec, n: hook("words", {"embedder": spec, "texts": n}))
    with _locked(ws, config.name):
        _check_config(ws, config)
        check_accounts(ws, config.annotators)
        who = actor or audit.default_actor()
        if config.oracle:
            ensure_oracle(ws, actor=who)
        runner = _Runner(ws, config, emb, hook, who)
        return runner.run(wait=wait, poll_seconds=poll_seconds, max_wait=max_wait)


def check_accounts(ws: Workspace, names: tuple[str, ...] | list[str]) -> None:
    """Raise InputError naming every annotator that has no active account."""
    from curate.store.accounts import list_users

    active = {a.name for a in list_users(ws.store) if a.active}
    missing = [n for n in names if n not in active]
    if missing:
        raise InputError(f"no active account for {', '.join(missing)}; add it with: curate users add NAME "
                         "--role annotator")


def loop_status(ws: Workspace, name: str) -> LoopResult:
    """The stored state of loop ``name`` (read-only; raises InputError if there is none)."""
    path = state_path(ws, name)
    if not path.exists():
        raise InputError(f"no loop called {name!r} in {ws.root}; start one with curate loop --name {name} ...")
    data = orjson.loads(path.read_bytes())
    data.pop("config", None)
    return LoopResult(**data)


__all__ = ["ColdStartScorer", "EmbedderContext", "LoopConfig", "LoopResult", "check_accounts", "history",
           "loop_rounds", "loop_status", "run_loop", "state_path"]
