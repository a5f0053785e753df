"""Which layer of a causal LM makes the best reward-model features? A feature check beside the preference suite.

The preference suite's reward model (a Laplace Bradley-Terry head) reads the packaged SmolLM2's **last** layer,
averaged over each response's tokens. Probing work often finds middle layers better for linear heads, so this runs
every decoder layer (and concatenations such as ``10+20+30``) through the same head on the same seeded pool/test
splits and reports, per layer spec:

* ``whole_pool``: test accuracy of the head fitted on the whole pool (the ceiling a selection can approach);
* ``random``: test accuracy after ``budgets`` random pairs (``repeats`` draws per split), the curve a selection has
  to beat; a layer whose curve rises more leaves more room for acquisition.

Accuracy is the share of test pairs whose chosen response the head ranks first (higher = better; 0.5 = chance).
One forward pass per response gives every layer (``LMHiddenStateFeaturizer(layers="all")``, cached), so the
first run costs what the suite's features cost (~20 min for UltraFeedback on one core) and a rerun reads them back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.bench.label_efficiency_data import load_labelled, make_split
from curate.bench.label_efficiency_features import lm_pair_features
from curate.bench.label_efficiency_plot import save_figure
from curate.bench.preference_suite import PreferenceSet
from curate.errors import InputError
from curate.runtime.lm_features import LMHiddenStateFeaturizer

ProgressFn = Callable[[str, int, int], None]


def parse_layer_specs(text: str, n_layers: int) -> list[tuple[str, list[int]]]:
    """``"8,16,10+20+30"`` -> ``[("8", [8]), ("16", [16]), ("10+20+30", [10, 20, 30])]``; layers are 1-based."""
    specs: list[tuple[str, list[int]]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            numbers = [int(x) for x in part.split("+")]
        except ValueError:
            numbers = []
        if not numbers or any(not 1 <= n <= n_layers for n in numbers):
            raise InputError(f"--layers: {part!r} is not a layer from 1 to {n_layers} or a '+'-joined list of them "
                             f"(e.g. 8,16,10+20+30).")
        specs.append((part, numbers))
    if not specs:
        raise InputError("--layers: give at least one layer, e.g. 8,16,24,30.")
    return specs


class _Columns:
    """A pair featurizer that returns fixed columns of features already computed for the same texts."""

    def __init__(self, raw: npt.NDArray[np.float32], columns: npt.NDArray[np.intp]) -> None:
        self.raw, self.columns = raw, columns

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> npt.NDArray[np.float32]:
        if len(responses) != len(self.raw):
            raise InputError(f"internal: {len(responses)} responses for {len(self.raw)} feature rows")
        return self.raw[:, self.columns]


def _accuracy(model: Any, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    return float(np.mean(model.prob(a, b) > 0.5))


def layer_report(pset: PreferenceSet, layers: str, *, cache_dir: Path, splits: int = 10,
                 budgets: Sequence[int] = (150, 350, 550, 800), repeats: int = 3, lm: str | None = None,
                 prior_precision: float = 1.0, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Whole-pool and random-budget accuracy of the Laplace head on each layer spec, over ``splits`` splits.

    Returns ``{"set", "layers": {spec: {"whole_pool": {"mean", "sd", "per_split"}, "random": {"budgets",
    "mean"}}}, "best", "n_layers", ...}``; ``best`` is the spec with the highest mean whole-pool accuracy.
    """
    from curate.scorers.reward_laplace import LaplaceBradleyTerry

    if splits < 1 or repeats < 1:
        raise InputError(f"--splits and --repeats must be at least 1; got {splits} and {repeats}.")
    on = None if progress is None else (lambda done, total: progress("LM features (every layer)", done, total))
    featurizer = LMHiddenStateFeaturizer(cache_dir, model=lm, layers="all", on_progress=on)
    n_layers = featurizer.n_layers
    specs = parse_layer_specs(layers, n_layers)  # before any feature is computed: a bad spec fails at once
    data = load_labelled(pset.path, "preference", mapping=pset.mapping)
    whole: dict[str, list[float]] = {}
    random: dict[str, list[list[float]]] = {}
    shown: list[int] = []
    for s in range(splits):
        split = make_split(data, "preference", test_size=pset.test_size, seed=s)
        parts = (split.pool, split.test, split.calibration)
        prompts = [t for p in parts for t in p.texts]
        responses = [r for p in parts for r in p.chosen] + [r for p in parts for r in p.rejected]
        raw = featurizer(prompts + prompts, responses)
        hidden = raw.shape[1] // n_layers
        if not shown:
            shown = [k for k in budgets if k <= len(split.pool)] or [len(split.pool)]
        n, n_test = len(split.pool), len(split.test)
        for spec, numbers in specs:
            cols = np.concatenate([np.arange((k - 1) * hidden, k * hidden) for k in numbers]).astype(np.intp)
            a, b = lm_pair_features(split, _Columns(raw, cols))
            test = (a[n:n + n_test], b[n:n + n_test])
            whole.setdefault(spec, []).append(
                _accuracy(LaplaceBradleyTerry(l2=prior_precision, min_pairs=2).fit(a[:n], b[:n]), *test))
            rng = np.random.default_rng([s, 11])
            for _ in range(repeats):
                order = rng.permutation(n)
                random.setdefault(spec, []).append([
                    _accuracy(LaplaceBradleyTerry(l2=prior_precision, min_pairs=2).fit(a[order[:k]], b[order[:k]]),
                              *test) for k in shown])  # a later split's smaller pool: all of it
        if progress is not None:
            progress("splits", s + 1, splits)
    out: dict[str, Any] = {"set": pset.name, "splits": splits, "repeats": repeats, "n_layers": n_layers,
                           "features": featurizer.name, "prior_precision": prior_precision, "layers": {}}
    for spec, _ in specs:
        acc = np.asarray(whole[spec])
        curves = np.asarray(random[spec])
        out["layers"][spec] = {
            "whole_pool": {"mean": round(float(acc.mean()), 4), "sd": round(float(acc.std(ddof=1)), 4) if splits > 1
                           else None, "per_split": [round(float(v), 4) for v in acc]},
            "random": {"budgets": shown, "mean": [round(float(v), 4) for v in curves.mean(axis=0)]}}
    out["best"] = max(out["layers"], key=lambda k: out["layers"][k]["whole_pool"]["mean"])
    return out


def plot_layers(report: dict[str, Any], path: Path) -> Path:
    """Accuracy against layer (single-layer specs as a line, concatenations as points) to the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    single = sorted((int(k), v) for k, v in report["layers"].items() if k.isdigit())
    budgets = next(iter(report["layers"].values()))["random"]["budgets"]
    if single:
        xs = [k for k, _ in single]
        ax.plot(xs, [v["whole_pool"]["mean"] for _, v in single], "o-", color="black", label="whole pool")
        for i, budget in enumerate(budgets):
            ax.plot(xs, [v["random"]["mean"][i] for _, v in single], ".--", label=f"{budget} random pairs")
    for k, v in report["layers"].items():
        if not k.isdigit():
            ax.axhline(v["whole_pool"]["mean"], color="grey", linestyle=":", label=f"{k} (whole pool)")
    ax.set_xlabel(f"layer (1-{report['n_layers']}; the suite uses the last)")
    ax.set_ylabel("test accuracy (chosen ranked first)")
    ax.set_title(f"{report['set']}: reward-model features by layer, {report['splits']} splits")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


__all__ = ["layer_report", "parse_layer_specs", "plot_layers"]
