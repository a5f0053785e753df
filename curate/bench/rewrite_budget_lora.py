"""Rewrite budget, LoRA variant: is an adapter trained after rewriting the rows a strategy picked better than one
trained after rewriting as many random rows?

For each damaged pool (:func:`curate.bench.rewrite_budget.damage_pool`, the same pools and strategy orders as the
damaged-row recall) and each budget k, the first k rows of a strategy's order get their clean completion back (the
expert's rewrite), and a fresh LoRA adapter is trained on

* ``applied``: the whole pool with those rewrites applied (what a user trains on after the round);
* ``rewritten``: the rewritten rows only (a variant: the expert's rows without the rest of the pool).

The figure is the adapter's held-out loss on clean rows (lower = better). Random's ``applied`` curve, trained at
several budgets from 0 (the damaged pool) to n (every row rewritten), gives the budget random needs to reach each
loss: the **budget ratio at equal loss** is that budget over k (at most n / k). Random's curve is made monotone by a
running minimum over k before it is inverted, and a loss random never reaches is reported as the cap n / k.

Each finished run is handed to ``on_run`` and skipped when ``done`` already holds it, so an interrupted benchmark
resumes where it stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.bench.label_efficiency_plot import save_figure
from curate.bench.rewrite_budget import DamagedPool, Embed, StrategyScorer, damage_pool
from curate.errors import InputError

Rows = list[tuple[str, str]]
#: ``train_loss(train_rows, run_name)`` trains a fresh adapter on ``(prompt, completion)`` rows and returns its
#: held-out loss (lower = better).
TrainLoss = Callable[[Rows, str], float]
VARIANTS = ("applied", "rewritten")


def apply_rewrites(pool: DamagedPool, picked: Sequence[int], variant: str = "applied") -> Rows:
    """The training rows after rewriting the ``picked`` rows: every row of the pool with the picked ones clean
    (``applied``), or the picked rows only, clean (``rewritten``)."""
    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
    chosen = {int(i) for i in picked}
    if variant == "rewritten":
        return [(pool.prompts[i], pool.clean[i]) for i in sorted(chosen)]
    return [(p, pool.clean[i] if i in chosen else c)
            for i, (p, c) in enumerate(zip(pool.prompts, pool.completions, strict=True))]


def random_budget_at(loss: float, curve: Sequence[tuple[int, float]]) -> float:
    """The budget random needs to reach ``loss``, from its ``(k, loss)`` points (k = 0 and k = n among them).

    The curve is made non-increasing by a running minimum (the best loss random reached with at most k rewrites)
    and interpolated linearly; a loss at or above random's at k = 0 needs 0 rewrites, one below its best needs more
    than n and returns ``inf``.
    """
    points = sorted(curve)
    if not points or points[0][0] != 0:
        raise InputError("random's curve needs a point at k = 0 (the damaged pool)")
    ks = np.array([k for k, _ in points], dtype=np.float64)
    best = np.minimum.accumulate(np.array([v for _, v in points], dtype=np.float64))
    if loss >= best[0]:
        return 0.0
    if loss < best[-1]:
        return math.inf
    j = int(np.argmax(best <= loss))  # first point at or below the loss; j >= 1 here
    k0, k1, l0, l1 = ks[j - 1], ks[j], best[j - 1], best[j]
    return float(k1 if l0 == l1 else k0 + (k1 - k0) * (l0 - loss) / (l0 - l1))


def ratio_at_equal_loss(k: int, loss: float, curve: Sequence[tuple[int, float]], n: int) -> float:
    """Random's budget for ``loss`` over ``k``, capped at ``n / k`` (module docstring)."""
    return round(min(random_budget_at(loss, curve), n) / k, 3)


def _key(seed: int, strategy: str, variant: str, k: int) -> str:
    return f"seed{seed}/{strategy}/{variant}/k{k}"


def _plan(names: Sequence[str], ks: Sequence[int], random_ks: Sequence[int],
          variants: Sequence[str]) -> list[tuple[int, str, str, int]]:
    """The runs of one seed as ``(priority, strategy, variant, k)``, the most telling first: random's two ends, every
    strategy and random at the largest budget, the rest of random's curve, the other budgets, then ``rewritten``."""
    runs = [(0 if k in (random_ks[0], random_ks[-1]) else 1 if k == ks[-1] else 2, "random", "applied", k)
            for k in random_ks]
    runs += [(1 if k == ks[-1] else 3, name, "applied", k) for name in names if name != "random" for k in ks]
    if "rewritten" in variants:
        runs += [(4, name, "rewritten", k) for name in names for k in ks if k > 0]
    return sorted(runs, key=lambda r: r[0])


def _budgets(n: int, budgets: Sequence[float], random_budgets: Sequence[float]) -> tuple[list[int], list[int]]:
    """The budgets in rows: the strategies' (at least 1) and random's (with 0, n and the strategies' budgets)."""
    ks = sorted({max(1, min(n, math.ceil(b * n))) for b in budgets})
    return ks, sorted({0, n, *(min(n, math.ceil(b * n)) for b in random_budgets)} | set(ks))


def plan_size(strategies: Sequence[str], n: int, budgets: Sequence[float], random_budgets: Sequence[float],
              variants: Sequence[str] = VARIANTS) -> int:
    """How many adapters :func:`run_lora_budget` trains per seed for a pool of ``n`` rows."""
    names = ["random", *(s for s in strategies if s != "random")]
    return len(_plan(names, *_budgets(n, budgets, random_budgets), variants))


def run_lora_budget(rows: Sequence[tuple[str, str]], strategies: Sequence[str], train_loss: TrainLoss, *,
                    share: float = 0.3, budgets: Sequence[float] = (0.1, 0.3),
                    random_budgets: Sequence[float] = (0.0, 0.1, 0.3, 0.6, 1.0), variants: Sequence[str] = VARIANTS,
                    seeds: Sequence[int] = (0,), build: Callable[[str], Any], embed: Embed,
                    done: Mapping[str, float] | None = None, on_run: Callable[[str, float], None] = lambda *_: None,
                    say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Held-out losses and budget ratios at equal loss of ``strategies`` (``random`` is always run) per seed.

    ``budgets`` and ``random_budgets`` are shares of the pool; ``rewritten`` runs only at ``budgets``. Returns the
    losses per run key (``seed0/ifd/applied/k90``), random's curve and, per seed, strategy and budget, the loss and
    the ratio at equal loss (``applied``; ``capped`` when the loss is below every point of random's curve, so the
    ratio is the cap n / k), with the per-seed ratios' mean.
    """
    n = len(rows)
    if n < 4:
        raise InputError(f"the pool needs at least 4 prompt-completion rows; got {n}")
    ks, random_ks = _budgets(n, budgets, random_budgets)
    losses: dict[str, float] = dict(done or {})
    names = ["random", *(s for s in strategies if s != "random")]
    per_seed: dict[str, list[dict[str, Any]]] = {s: [] for s in names if s != "random"}
    curves: dict[int, list[tuple[int, float]]] = {}
    for seed in seeds:
        pool = damage_pool(rows, share=share, rng=np.random.default_rng(seed))
        scorer = StrategyScorer(pool, np.random.default_rng(seed + 1000), build, embed)
        for _, name, variant, k in _plan(names, ks, random_ks, variants):
            key = _key(seed, name, variant, k)
            if key not in losses:
                say(f"rewrite budget (LoRA): {key}")
                order = np.argsort(-np.nan_to_num(scorer(name), nan=-np.inf), kind="stable")
                losses[key] = float(train_loss(apply_rewrites(pool, order[:k].tolist(), variant), key))
                on_run(key, losses[key])
        curves[seed] = [(k, losses[_key(seed, "random", "applied", k)]) for k in random_ks]
        for name in per_seed:
            cells = []
            for k in ks:
                loss = losses[_key(seed, name, "applied", k)]
                cell: dict[str, Any] = {"k": k, "loss": round(loss, 4),
                                        "random_loss": round(losses[_key(seed, "random", "applied", k)], 4),
                                        "ratio_vs_random": ratio_at_equal_loss(k, loss, curves[seed], n),
                                        "capped": loss < min(v for _, v in curves[seed])}
                if "rewritten" in variants:
                    cell["rewritten_only_loss"] = round(losses[_key(seed, name, "rewritten", k)], 4)
                    cell["random_rewritten_only_loss"] = round(losses[_key(seed, "random", "rewritten", k)], 4)
                cells.append(cell)
            per_seed[name].append({"seed": seed, "damaged": int(pool.damaged.sum()), "cells": cells})
    summary = {name: [{"k": k, "ratio_vs_random": round(float(np.mean([r["cells"][j]["ratio_vs_random"]
                                                                         for r in runs])), 3),
                       "ratio_per_seed": [r["cells"][j]["ratio_vs_random"] for r in runs],
                       "loss": round(float(np.mean([r["cells"][j]["loss"] for r in runs])), 4),
                       "random_loss": round(float(np.mean([r["cells"][j]["random_loss"] for r in runs])), 4)}
                      for j, k in enumerate(ks)] for name, runs in per_seed.items()}
    return {"rows": n, "damage_share": share, "budgets": ks, "random_budgets": random_ks, "seeds": list(seeds),
            "variants": list(variants), "losses": {k: round(v, 5) for k, v in sorted(losses.items())},
            "random_curve": {str(s): [[k, round(v, 5)] for k, v in c] for s, c in curves.items()},
            "per_seed": per_seed, "summary": summary}


class SavedRuns:
    """Finished runs (run key -> held-out loss, and seconds) kept in a JSON file, valid while ``settings`` (pool,
    data, training options) are the same: a rerun after Ctrl-C trains only what is missing."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        import orjson

        self.path, self.settings = Path(path), settings
        saved = orjson.loads(self.path.read_bytes()) if self.path.exists() else {}
        fresh = {"settings": settings, "runs": {}, "seconds": {}}
        self.data: dict[str, Any] = saved if saved.get("settings") == settings else fresh
        self._clock = time.perf_counter()

    @property
    def runs(self) -> dict[str, float]:
        """Run key -> held-out loss of every finished run."""
        runs: dict[str, float] = self.data["runs"]
        return runs

    def add(self, key: str, loss: float) -> None:
        """Keep one finished run (and the seconds since the last one) on disk at once."""
        now = time.perf_counter()
        self.data["runs"][key] = loss
        self.data["seconds"][key] = round(now - self._clock, 1)
        self._clock = now
        self.set("_", None)

    def set(self, name: str, value: Any) -> None:
        """Keep a figure beside the runs (e.g. the base model's loss); ``_`` only writes the file."""
        import orjson

        if name != "_":
            self.data[name] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.data, option=orjson.OPT_INDENT_2))
        tmp.replace(self.path)


def sft_train_loss(workspace: Path, heldout: Rows, *, base: str | None = None, options: Any = None, chat: bool = True,
                   on_base_loss: Callable[[float], None] = lambda _: None,
                   on_progress: Callable[[int, int], None] | None = None) -> TrainLoss:
    """A :data:`TrainLoss` that trains a fresh SFT LoRA adapter (:func:`curate.train.train`) in ``workspace`` on
    each call and returns its loss on ``heldout`` (TRL's eval loss: mean completion-token cross-entropy). Rows are
    written as one user and one assistant message (``chat``, the base model's chat template frames them) or as
    plain prompt and completion. The first call also evaluates the base model (``on_base_loss``);
    ``on_progress(step, steps)`` follows each training run. ``options``: :class:`curate.train.TrainOptions`."""
    import shutil

    import orjson

    from curate.store.workspace import Workspace
    from curate.train import TrainOptions, train

    ws = Workspace.open(workspace)
    options = options or TrainOptions(epochs=1.0, batch_size=8, max_length=256)

    def jsonl(rows: Rows) -> bytes:
        if chat:
            return b"".join(orjson.dumps({"prompt": [{"role": "user", "content": p}],
                                          "completion": [{"role": "assistant", "content": c}]}) + b"\n"
                            for p, c in rows)
        return b"".join(orjson.dumps({"prompt": p, "completion": c}) + b"\n" for p, c in rows)

    test = jsonl(heldout)
    state = {"calls": 0}

    def run(train_rows: Rows, name: str) -> float:
        from dataclasses import replace

        folder = ws.root / "exports" / "rewrite-budget-lora" / name.replace("/", "-")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "train.jsonl").write_bytes(jsonl(train_rows))
        (folder / "test.jsonl").write_bytes(test)
        first = state["calls"] == 0
        state["calls"] += 1
        out = ws.root / "adapters" / f"rewrite-budget-{name.replace('/', '-')}"
        shutil.rmtree(out, ignore_errors=True)  # left by an interrupted run
        result = train(ws, "sft", folder, base=base, out=out, on_progress=on_progress,
                       options=replace(options, evaluate=True, eval_before=first, warm_start=False, name=None))
        if first:
            on_base_loss(float(result.metrics["eval_loss_before"]))
        shutil.rmtree(result.adapter_path, ignore_errors=True)  # only the loss is kept: adapters are ~MBs each
        return float(result.metrics["eval_loss"])

    return run


def plot_lora_budget(report: dict[str, Any], path: Path, *, base_loss: float | None = None) -> Path:
    """Draw ``report`` (from :func:`run_lora_budget`) to the PNG ``path``: held-out loss against the rewrite budget,
    random's curve per seed (dashed) and each strategy's points, with the base model's loss when given."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from curate.errors import MissingDependencyError

        raise MissingDependencyError("matplotlib", "app", "Plotting the rewrite budget") from exc
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = plt.get_cmap("tab10")
    for seed, curve in report["random_curve"].items():
        ax.plot([k for k, _ in curve], [v for _, v in curve], "--o", color="grey", alpha=0.8,
                label="random" if seed == next(iter(report["random_curve"])) else None)
    for i, (name, runs) in enumerate(report["per_seed"].items()):
        for j, run in enumerate(runs):
            cells = run["cells"]
            ratios = ", ".join(f"k={c['k']}: {c['ratio_vs_random']:.2f}x" for c in cells)
            ax.plot([c["k"] for c in cells], [c["loss"] for c in cells], "-s", color=colours(i + 1),
                    label=f"{name} ({ratios})" if j == 0 else None)
    if base_loss is not None:
        ax.set_title(f"base model before training: {base_loss:.3f}", fontsize=9)
    ax.set_xlabel(f"rows rewritten (of {report['rows']}; {report['damage_share']:.0%} damaged)")
    ax.set_ylabel("held-out loss on clean rows (lower = better)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def run_saved_lora_budget(rows: Rows, heldout: Rows, strategies: Sequence[str], *, folder: Path, share: float,
                          budgets: Sequence[float], seeds: Sequence[int], options: Any, base: str | None,
                          build: Callable[[str], Any], embed: Embed, settings: Mapping[str, Any],
                          random_budgets: Sequence[float] | None = None, variants: Sequence[str] = VARIANTS,
                          on_plan: Callable[[int, int], None] = lambda *_: None,
                          on_run: Callable[[str, float, float], None] = lambda *_: None,
                          on_step: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """:func:`run_lora_budget` with SFT adapters (``options``: :class:`curate.train.TrainOptions`) trained in
    ``folder`` and finished ones kept there (``runs.json``, valid for these rows, held-out rows, ``options`` and
    ``settings``); random's curve at 0, ``budgets`` and n unless ``random_budgets`` says otherwise.
    ``on_plan(adapters, kept)`` is called once, ``on_run(key, loss, seconds)`` after each trained adapter. Returns
    the report with ``base_model_loss`` and ``train_seconds`` per run."""
    import hashlib

    digest = hashlib.sha256(repr((list(rows), list(heldout))).encode()).hexdigest()
    saved = SavedRuns(folder / "runs.json", {**settings, "rows": digest, "share": share, "options": repr(options)})
    random_budgets = [0.0, *budgets, 1.0] if random_budgets is None else list(random_budgets)
    on_plan(plan_size(strategies, len(rows), budgets, random_budgets, variants) * len(seeds), len(saved.runs))
    train_loss = sft_train_loss(folder, heldout, base=base, options=options, on_progress=on_step,
                                on_base_loss=lambda v: saved.set("base_loss", v))

    def finished(key: str, loss: float) -> None:
        saved.add(key, loss)
        on_run(key, loss, saved.data["seconds"][key])

    report = run_lora_budget(rows, strategies, train_loss, share=share, budgets=budgets,
                             random_budgets=random_budgets, variants=variants, seeds=seeds, build=build, embed=embed,
                             done=saved.runs, on_run=finished)
    return {**report, "base_model_loss": saved.data.get("base_loss"), "train_seconds": saved.data["seconds"]}
