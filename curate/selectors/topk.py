"""Top-k: the ``k`` highest scores, best first.

The baseline selector: pure exploitation of the scorer, no diversity. Ties are broken by the lower index, so the
result does not depend on the random generator at all.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from curate.selectors.arrays import check_rng, rank_desc, scorable
from curate.selectors.base import BaseSelector, FloatArray, Indices, validate


def top_k(scores: npt.NDArray[np.float64], k: int) -> Indices:
    """Indices of the ``k`` highest non-NaN scores, best first (ties: lower index first).

    Runs in O(n + k log k) with a partition, so a million scores take milliseconds.

    Args:
        scores: Shape ``(n,)``, float64, higher = more worth labeling; NaN = cannot be chosen.
        k: How many to return; more than the scorable count returns all of them.

    Returns:
        Shape ``(min(k, m),)`` ``intp`` indices into ``scores``, where ``m`` is the number of non-NaN scores.

    >>> top_k(np.array([0.1, np.nan, 0.9, 0.5]), 2).tolist()
    [2, 3]
    """
    idx = scorable(scores)
    if k <= 0 or idx.size == 0:
        return np.empty(0, dtype=np.intp)
    if k >= idx.size:
        return rank_desc(scores, idx)
    vals = scores[idx]
    kth = -np.partition(-vals, k - 1)[k - 1]
    above = idx[vals > kth]
    ties = idx[vals == kth][: k - above.size]
    return rank_desc(scores, np.concatenate([above, ties]))


@dataclasses.dataclass(frozen=True)
class TopK(BaseSelector):
    """Selector: the ``k`` highest scores, best first (see :func:`top_k`). Embeddings are ignored."""

    name: ClassVar[str] = "topk"

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` indices of the highest non-NaN ``scores`` (shape ``(n,)``, higher = better), best first.

        Raises:
            EmptyPoolError: ``scores`` is empty.
            InputError: ``k`` is negative, ``scores`` is not 1-D, or ``rng`` is not a Generator.
        """
        values = validate(scores, k, embeddings, who=self.key())
        check_rng(rng, self.key())
        return top_k(values, int(k))
