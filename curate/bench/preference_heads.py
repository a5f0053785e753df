"""Reward-model heads compared on the same features: is the linear Laplace head what keeps accuracy low?

The preference suite's reward model is one linear Bradley-Terry head with a Laplace posterior on SmolLM2's
response-mean last layer (:mod:`curate.bench.preference_suite`); the whole pool labelled reaches only about 0.62-0.65,
which leaves acquisition little room. Issue 18 names the other shapes worth trying: small MLP heads in an ensemble,
and ensembles of linear heads. :func:`head_report` fits each head in :data:`HEADS` on the whole pool and on random
budgets over seeded pool/test splits, with the suite's features and splits, and reports test pairwise accuracy
(higher = better).

:class:`MLPEnsembleBradleyTerry` lives here, not in :mod:`curate.scorers`: no product path uses it unless it wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from curate.bench.label_efficiency_data import load_labelled, make_split
from curate.bench.label_efficiency_plot import save_figure
from curate.bench.preference_suite import PreferenceSet, ProgressFn, pair_features
from curate.errors import InputError

FloatArray = npt.NDArray[np.float64]


class PairHead(Protocol):
    """A fitted head: ``prob(a, b)`` is ``P(A preferred)`` per pair, ``(n,)`` (or ``(members, n)``, averaged)."""

    def prob(self, phi_a: npt.ArrayLike, phi_b: npt.ArrayLike) -> npt.NDArray[Any]: ...


@dataclass
class MLPEnsembleBradleyTerry:
    """Bradley-Terry reward heads ``r(x) = MLP(x)`` (one hidden GELU layer), each on its own bootstrap resample.

    ``P(A > B) = sigmoid(r(a) - r(b))``, trained full-batch with AdamW (decoupled weight decay); :meth:`prob`
    averages the members' probabilities, ``(n,)``.
    """

    members: int = 5
    hidden: int = 32
    epochs: int = 300
    weight_decay: float = 1e-2
    lr: float = 3e-3
    seed: int = 0
    nets_: list[Any] = field(default_factory=list, init=False, repr=False)

    def fit(self, phi_chosen: npt.ArrayLike, phi_rejected: npt.ArrayLike) -> MLPEnsembleBradleyTerry:
        """Fit every member on a bootstrap resample of the ``(N, d)`` pairs (chosen beat rejected)."""
        import torch

        a = torch.as_tensor(np.asarray(phi_chosen), dtype=torch.float32)
        b = torch.as_tensor(np.asarray(phi_rejected), dtype=torch.float32)
        if a.shape != b.shape or a.ndim != 2 or len(a) < 2:
            raise InputError(f"MLPEnsembleBradleyTerry.fit: chosen and rejected must be (N >= 2, d) arrays of one "
                             f"shape; got {tuple(a.shape)} and {tuple(b.shape)}.")
        draw = torch.Generator().manual_seed(self.seed)
        self.nets_ = []
        for m in range(self.members):
            torch.manual_seed(self.seed * 1000 + m)
            net = torch.nn.Sequential(torch.nn.Linear(a.shape[1], self.hidden), torch.nn.GELU(),
                                      torch.nn.Linear(self.hidden, 1))
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            rows = torch.randint(0, len(a), (len(a),), generator=draw)
            for _ in range(self.epochs):
                opt.zero_grad()
                loss = torch.nn.functional.softplus(net(b[rows]) - net(a[rows])).mean()  # -log sigmoid(r_a - r_b)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
            self.nets_.append(net.eval())
        return self

    def prob(self, phi_a: npt.ArrayLike, phi_b: npt.ArrayLike) -> FloatArray:
        """Mean over members of ``sigmoid(r(a) - r(b))``, shape ``(n,)``."""
        import torch

        if not self.nets_:
            raise InputError("MLPEnsembleBradleyTerry.prob: call fit() first.")
        a = torch.as_tensor(np.asarray(phi_a), dtype=torch.float32)
        b = torch.as_tensor(np.asarray(phi_b), dtype=torch.float32)
        with torch.no_grad():
            p = torch.stack([torch.sigmoid(net(a) - net(b)).squeeze(-1) for net in self.nets_]).mean(0)
        return p.numpy().astype(np.float64)


def _laplace(a: FloatArray, b: FloatArray, seed: int) -> PairHead:
    from curate.scorers.reward_laplace import LaplaceBradleyTerry

    return LaplaceBradleyTerry(l2=1.0, min_pairs=2).fit(a, b)


def _linear_ensemble(a: FloatArray, b: FloatArray, seed: int) -> PairHead:
    from curate.scorers.reward import BradleyTerryEnsemble

    return BradleyTerryEnsemble(min_pairs=2).fit(a, b, rng=np.random.default_rng(seed))


#: Head name -> ``fit(chosen, rejected, seed) -> head``: the suite's Laplace head (prior precision 1), the product's
#: ``--learner ensemble`` (8 bootstrapped linear heads), and two MLP ensembles (5 members): 32 hidden units trained
#: 300 epochs, and 16 trained 80 (stopped early, the less flexible one).
HEADS: dict[str, Callable[[FloatArray, FloatArray, int], PairHead]] = {
    "laplace": _laplace,
    "linear-ensemble": _linear_ensemble,
    "mlp-32": lambda a, b, seed: MLPEnsembleBradleyTerry(hidden=32, epochs=300, seed=seed).fit(a, b),
    "mlp-16-early": lambda a, b, seed: MLPEnsembleBradleyTerry(hidden=16, epochs=80, seed=seed).fit(a, b),
}


def parse_heads(text: str) -> list[str]:
    """Comma list of :data:`HEADS` names, checked."""
    names = [h.strip() for h in text.split(",") if h.strip()]
    unknown = [h for h in names if h not in HEADS]
    if not names or unknown:
        raise InputError(f"--heads: unknown head(s) {unknown or [text]}; choose from {', '.join(HEADS)}.")
    return names


def _accuracy(head: PairHead, a: FloatArray, b: FloatArray) -> float:
    p = np.asarray(head.prob(a, b), dtype=np.float64)
    return float(np.mean((p.mean(axis=0) if p.ndim == 2 else p) > 0.5))


def head_report(pset: PreferenceSet, heads: Sequence[str], *, cache_dir: Path, splits: int = 10,
                budgets: Sequence[int] = (150, 350, 550, 800), repeats: int = 3, lm: str | None = None,
                progress: ProgressFn | None = None) -> dict[str, Any]:
    """Whole-pool and random-budget test accuracy of each head in ``heads`` over ``splits`` seeded splits.

    Features: the suite's (``pair_features(split, "smollm2", ...)``, cached); ``lm`` a local model instead of the
    packaged SmolLM2. Returns ``{"set", "heads": {name: {"whole_pool": {"mean", "sd", "per_split"}, "random":
    {"budgets", "mean", "sd"}}}, "best", ...}``; ``best`` is the head with the highest mean whole-pool accuracy.
    """
    names = list(heads)
    for name in names:
        if name not in HEADS:
            raise InputError(f"unknown head {name!r}; choose from {', '.join(HEADS)}.")
    if splits < 1 or repeats < 1:
        raise InputError(f"--splits and --repeats must be at least 1; got {splits} and {repeats}.")
    data = load_labelled(pset.path, "preference", mapping=pset.mapping)
    whole: dict[str, list[float]] = {h: [] for h in names}
    random: dict[str, list[list[float]]] = {h: [] for h in names}
    shown: list[int] = []
    features = ""
    for s in range(splits):
        split = make_split(data, "preference", test_size=pset.test_size, seed=s)
        a, b, features = pair_features(split, "smollm2", cache_dir, lm, progress)
        n, n_test = len(split.pool), len(split.test)
        test = (a[n:n + n_test], b[n:n + n_test])
        shown = shown or [k for k in budgets if k <= n] or [n]
        orders = [np.random.default_rng([s, 11, r]).permutation(n) for r in range(repeats)]
        for h, name in enumerate(names):
            fit = HEADS[name]
            whole[name].append(_accuracy(fit(a[:n], b[:n], s), *test))
            for r, order in enumerate(orders):  # every head sees the same random draws
                random[name].append([_accuracy(fit(a[order[:k]], b[order[:k]], 100 * s + r), *test)
                                     for k in shown])
            if progress is not None:
                progress("heads fitted (split x head)", s * len(names) + h + 1, splits * len(names))
    out: dict[str, Any] = {"set": pset.name, "splits": splits, "repeats": repeats, "features": features,
                           "heads": {}}
    for name in names:
        acc, curves = np.asarray(whole[name]), np.asarray(random[name])
        out["heads"][name] = {
            "whole_pool": {"mean": round(float(acc.mean()), 4),
                           "sd": round(float(acc.std(ddof=1)), 4) if splits > 1 else None,
                           "per_split": [round(float(v), 4) for v in acc]},
            "random": {"budgets": shown, "mean": [round(float(v), 4) for v in curves.mean(axis=0)],
                       "sd": [round(float(v), 4) for v in curves.std(axis=0, ddof=1)] if len(curves) > 1 else None}}
    out["best"] = max(names, key=lambda h: out["heads"][h]["whole_pool"]["mean"])
    return out


def plot_heads(report: dict[str, Any], path: Path) -> Path:
    """Test accuracy against random pairs fitted on to the PNG ``path``: one line per head, its whole-pool accuracy
    dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, figures in report["heads"].items():
        xs = list(figures["random"]["budgets"])
        ys = list(figures["random"]["mean"])
        line = ax.plot(xs, ys, marker="o", label=f"{name} (whole pool {figures['whole_pool']['mean']:.3f})")[0]
        ax.axhline(figures["whole_pool"]["mean"], color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("random labelled pairs")
    ax.set_ylabel("test pairwise accuracy (higher = better)")
    ax.set_title(f"Reward heads on {report['set']}: {report['splits']} splits x {report['repeats']} draws\n"
                 "dotted: the whole pool labelled", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


__all__ = ["HEADS", "MLPEnsembleBradleyTerry", "head_report", "parse_heads", "plot_heads"]
