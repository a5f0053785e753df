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


def choose_columns(X: FloatArray, codes: npt.NDArray[np.intp], options: Sequence[int], *, C: float,
                   rng: np.random.Generator, folds: int = CHOICE_FOLDS) -> int:
    """Which of ``options`` (leading-column counts of ``X``, ``(n, d)``) a logistic regression predicts the labels
    ``codes`` best from, by ``folds``-fold cross-validated accuracy; ties (and too few labels to split) go to the
    earliest option. Returns one of ``options``."""
    from sklearn.model_selection import KFold, cross_val_predict

    if len(codes) < 2 * folds or len(options) < 2:
        return int(options[0])
    splits = KFold(folds, shuffle=True, random_state=int(rng.integers(2**31 - 1)))
    best, best_accuracy = int(options[0]), -1.0
    for option in options:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                predicted = cross_val_predict(LogisticRegression(C=C, max_iter=200), X[:, :option], codes, cv=splits)
            except ValueError:  # a training fold with one class: too few labels to compare, keep the earliest
                return int(options[0])
        accuracy = float(np.mean(predicted == codes))
        if accuracy > best_accuracy + 1e-12:
            best, best_accuracy = int(option), accuracy
    return best


__all__ = ["CHOICE_FOLDS", "base_columns", "choose_columns"]
