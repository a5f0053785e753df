"""How much label-teach's feature choice costs or saves: the word columns read by cross-validation, or always, or
never, on random labelled subsets of a pool.

:func:`~curate.scorers.feature_choice.choose_columns` decides, at each fit, whether a ``<base>+words`` classifier
reads the word columns. With few labels per class its cross-validation is noisy, so it may flip between rounds.
:func:`choice_report` draws ``draws`` random labelled subsets of each size, fits the classifier on the base columns
alone and on all of them, and reads test accuracy (higher = better) of each fixed option, of the product's choice
(:func:`choose_columns`, ties to the base), and of a one-standard-error rule (the words only when their
cross-validated gain exceeds its paired standard error; Breiman et al. 1984) for comparison.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

from curate.scorers.feature_choice import choose_columns, cross_validated_hits

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


def _test_accuracy(X: FloatArray, y: IntArray, X_test: FloatArray, y_test: IntArray, columns: int, C: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(C=C, max_iter=200).fit(X[:, :columns], y)
    return float(np.mean(model.predict(X_test[:, :columns]) == y_test))


def one_se_choice(X: FloatArray, y: IntArray, base: int, *, C: float, rng: np.random.Generator) -> tuple[bool, float]:
    """``(words, gain)``: whether the one-standard-error rule reads the word columns of ``X`` ``(n, d)`` (columns
    ``base:``), and their cross-validated accuracy gain over the base columns (paired, the same folds)."""
    hits = cross_validated_hits(X, y, (base, X.shape[1]), C=C, rng=rng)
    if hits is None:
        return False, 0.0
    diff = hits[1] - hits[0]
    se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
    return bool(diff.mean() > se), float(diff.mean())


def choice_report(X: FloatArray, y: IntArray, X_test: FloatArray, y_test: IntArray, *, base: int, C: float,
                  sizes: Sequence[int], draws: int = 6,
                  on_draw: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Mean test accuracy by labelled-subset size: ``{"sizes", "base", "words", "cv", "one_se", "cv_reads_words",
    "one_se_reads_words"}`` (lists, one entry per size kept; sizes above the pool are left out). ``X``: the pool's
    ``(n, d)`` features with the word columns from ``base`` on; ``y``: class indices; ``on_draw(done, total)`` after
    each subset."""
    kept = [k for k in sizes if k <= len(y)]
    out: dict[str, Any] = {"sizes": kept, "draws": draws, "base": [], "words": [], "cv": [], "one_se": [],
                           "cv_reads_words": [], "one_se_reads_words": []}
    width = X.shape[1]
    for k in kept:
        rows: list[tuple[float, float, bool, bool]] = []
        for d in range(draws):
            rng = np.random.default_rng([k, d])
            pick = rng.choice(len(y), k, replace=False)
            if len(np.unique(y[pick])) < 2:
                continue
            Xl, yl = X[pick], y[pick]
            on_base = _test_accuracy(Xl, yl, X_test, y_test, base, C)
            on_words = _test_accuracy(Xl, yl, X_test, y_test, width, C)
            cv_words = choose_columns(Xl, yl, (base, width), C=C, rng=np.random.default_rng([k, d, 1])) == width
            se_words, _ = one_se_choice(Xl, yl, base, C=C, rng=np.random.default_rng([k, d, 1]))
            rows.append((on_base, on_words, cv_words, se_words))
            if on_draw is not None:
                on_draw(kept.index(k) * draws + d + 1, len(kept) * draws)
        base_acc = np.array([r[0] for r in rows])
        words_acc = np.array([r[1] for r in rows])
        cv = np.array([r[2] for r in rows])
        se = np.array([r[3] for r in rows])
        out["base"].append(round(float(base_acc.mean()), 4))
        out["words"].append(round(float(words_acc.mean()), 4))
        out["cv"].append(round(float(np.where(cv, words_acc, base_acc).mean()), 4))
        out["one_se"].append(round(float(np.where(se, words_acc, base_acc).mean()), 4))
        out["cv_reads_words"].append(round(float(cv.mean()), 3))
        out["one_se_reads_words"].append(round(float(se.mean()), 3))
    return out


__all__ = ["choice_report", "one_se_choice"]
