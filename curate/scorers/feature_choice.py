"""Which feature columns a classifier reads: a sentence embedding alone, or with the word columns beside it.

``<base>+words`` embedders (:mod:`curate.runtime.word_features`) put word 1-2-gram features after the embedding.
They lift short texts whose class is in the words ("how many", "who": TREC-6), and cost a little where an
embedding already separates the classes and labels are few (banking77's first rounds). So
:func:`~curate.scorers.classifier_models.fit_classifier` asks :func:`choose_columns` each time it fits: whichever
of the two predicts the labels collected so far better by cross-validation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

FloatArray = npt.NDArray[np.float64]

#: Cross-validation folds of :func:`choose_columns`.
CHOICE_FOLDS: Final = 3


def base_columns(featurize: object) -> int | None:
    """``fit_classifier``'s ``base`` for features from ``featurize``: minus its word columns (the ``word_columns``
    of a ``<base>+words`` embedder, its last columns); None for plain embedders."""
    words = getattr(featurize, "word_columns", None)
    return None if words is None else -int(words)


def cross_validated_hits(X: FloatArray, codes: npt.NDArray[np.intp], options: Sequence[int], *, C: float,
                         rng: np.random.Generator, folds: int = CHOICE_FOLDS) -> list[FloatArray] | None:
    """Per label, whether a logistic regression on each option's leading columns of ``X`` ``(n, d)`` predicts it
    right out of fold (``folds``-fold, the same folds for every option): one ``(n,)`` 0/1 array per option, or None
    when there are too few labels to split (under ``2 * folds``, or a training fold with one class)."""
    from sklearn.model_selection import KFold, cross_val_predict

    if len(codes) < 2 * folds:
        return None
    splits = KFold(folds, shuffle=True, random_state=int(rng.integers(2**31 - 1)))
    hits = []
    for option in options:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                predicted = cross_val_predict(LogisticRegression(C=C, max_iter=200), X[:, :option], codes, cv=splits)
            except ValueError:  # a training fold with one class
                return None
        hits.append((predicted == codes).astype(np.float64))
    return hits


def choose_columns(X: FloatArray, codes: npt.NDArray[np.intp], options: Sequence[int], *, C: float,
                   rng: np.random.Generator, folds: int = CHOICE_FOLDS) -> int:
    """Which of ``options`` (leading-column counts of ``X``, ``(n, d)``) a logistic regression predicts the labels
    ``codes`` best from, by ``folds``-fold cross-validated accuracy; ties (and too few labels to split) go to the
    earliest option. Returns one of ``options``."""
    if len(options) < 2:
        return int(options[0])
    hits = cross_validated_hits(X, codes, options, C=C, rng=rng, folds=folds)
    if hits is None:
        return int(options[0])
    best, best_accuracy = int(options[0]), -1.0
    for option, right in zip(options, hits, strict=True):
        accuracy = float(right.mean())
        if accuracy > best_accuracy + 1e-12:
            best, best_accuracy = int(option), accuracy
    return best


__all__ = ["CHOICE_FOLDS", "base_columns", "choose_columns", "cross_validated_hits"]
