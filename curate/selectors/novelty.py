"""Uncertainty plus a novelty bonus in embedding space (the acquisition of BAL-PM, Melo et al. 2024).

Greedy: each pick maximises ``score_i + beta * log(d_i)`` where ``d_i`` is the cosine distance of row ``i``'s
embedding to the nearest *covered* row: rows whose score is NaN (already labelled, when the caller passes them
with NaN scores) and the rows picked so far. ``log d`` is, up to constants, a k-nearest-neighbour estimate of
how much the pick adds to the entropy of the covered set's distribution, so the batch spreads over regions
(for preference pairs: over prompts) instead of piling on the most uncertain neighbourhood. ``beta = 0`` is
top-k of the scores. Scores must be on a fixed scale across rounds (e.g. a posterior variance).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.selectors.arrays import check_fraction, check_rng, rank_desc, scorable
from curate.selectors.base import BaseSelector, FloatArray, Indices, validate

_FLOOR = 1e-6


def novelty_bonus_pick(scores: FloatArray, embeddings: FloatArray, k: int, *, beta: float,
                       eligible: Indices | None = None) -> Indices:
    """Greedy ``argmax score + beta * log(cosine distance to the nearest covered row)``, ``k`` picks.

    Args:
        scores: ``(n,)`` float64, higher = more worth labeling; NaN = covered (never picked).
        embeddings: ``(n, d)`` rows (normalised here).
        k: picks; more than the scorable rows returns all of them.
        beta: weight of the novelty bonus (>= 0).
        eligible: if given, only these rows may be picked; the other non-NaN rows are ignored (neither picked
            nor counted as covered).

    Returns:
        ``(min(k, m),)`` intp indices, in pick order.
    """
    values = np.asarray(scores, dtype=np.float64)
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    free = scorable(values)
    if eligible is not None:
        free = np.intersect1d(free, np.asarray(eligible, dtype=np.intp)).astype(np.intp)
    covered = np.flatnonzero(np.isnan(values))
    nearest = np.full(free.size, 2.0)  # cosine distance is at most 2
    for start in range(0, covered.size, 4096):
        sims = x[free] @ x[covered[start:start + 4096]].T
        nearest = np.minimum(nearest, 1.0 - sims.max(axis=1))
    base = values[free]
    taken = np.zeros(free.size, dtype=bool)
    out: list[int] = []
    for _ in range(min(k, free.size)):
        value = base + beta * np.log(np.maximum(nearest, _FLOOR))
        value[taken] = -np.inf
        j = int(np.argmax(value))
        taken[j] = True
        out.append(int(free[j]))
        nearest = np.minimum(nearest, 1.0 - x[free] @ x[free[j]])
    return np.asarray(out, dtype=np.intp)


@dataclasses.dataclass(frozen=True)
class NoveltyBonus(BaseSelector):
    """Selector: score plus ``beta`` times the log distance to what is covered (see :func:`novelty_bonus_pick`).

    ``beta`` = 1 with ``reward_variance`` scores is the preference suite's default (``make bench-selection``,
    ``benchmarks/results/selection_preference.json``): the highest worst-case ratio over the judge sets.
    """

    name: ClassVar[str] = "novelty_bonus"
    uses_embeddings: ClassVar[bool] = True
    beta: float = 1.0

    def __post_init__(self) -> None:
        if not self.beta >= 0:
            raise InputError(f"novelty_bonus: beta must be >= 0; got {self.beta!r}.")

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` indices, in pick order; needs ``embeddings`` ``(n, d)``."""
        values = validate(scores, k, embeddings, need_embeddings=True, who=self.key())
        check_rng(rng, self.key())
        assert embeddings is not None
        return novelty_bonus_pick(values, embeddings, int(k), beta=self.beta)


@dataclasses.dataclass(frozen=True)
class PrefilterNovelty(BaseSelector):
    """Selector: the ``max(k, ceil(factor * k))`` best scores, then greedy farthest-first among them.

    Uncertainty narrows the pool to the rows the model doubts; coverage spreads the batch over the embedding
    space (for preference pairs: over prompts), each pick the candidate farthest (cosine) from every covered row
    (NaN score: labelled) and every earlier pick. Unlike ``Prefilter(NoveltyBonus(...))``, the rows outside the
    candidates do not count as covered. Scores only choose the candidates; the order within them is coverage's.

    Attributes:
        factor: candidates per record picked (``>= 1``).
    """

    name: ClassVar[str] = "prefilter_novelty"
    uses_embeddings: ClassVar[bool] = True
    factor: float = 5.0

    def __post_init__(self) -> None:
        check_fraction(self.factor, "PrefilterNovelty", "factor", low=1.0, high=1e6)

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` indices, in pick order; needs ``embeddings`` ``(n, d)``."""
        values = validate(scores, k, embeddings, need_embeddings=True, who=self.key())
        check_rng(rng, self.key())
        assert embeddings is not None
        cand = rank_desc(values, scorable(values))[: max(int(k), math.ceil(self.factor * k))]
        flat = np.where(np.isnan(values), np.nan, 0.0)
        return novelty_bonus_pick(flat, embeddings, int(k), beta=1.0, eligible=cand)


def group_coverage_pick(scores: FloatArray, groups: npt.ArrayLike, k: int) -> Indices:
    """Fewest-covered group first, best score within: for preference pairs grouped by prompt, the most informative
    pair of the least-asked prompts (the issue's "most informative pair per prompt" for candidate sets).

    Each pick takes, among groups with an unpicked scorable row, one whose count of covered rows (NaN score:
    labelled) plus rows picked so far is smallest, and in it the highest-scoring row; ties between groups go to the
    higher score. With one row per group this is top-k.

    Args:
        scores: ``(n,)`` float64, higher = more worth labeling; NaN = covered (never picked, counted for its group).
        groups: ``(n,)`` group id per row (e.g. the prompt's index).
        k: picks.

    Returns:
        ``(min(k, m),)`` intp indices in pick order (``m`` scorable rows).

    >>> group_coverage_pick(np.array([np.nan, 0.9, 0.5, 0.1]), np.array([0, 0, 1, 1]), 3).tolist()
    [2, 1, 3]
    """
    values = np.asarray(scores, dtype=np.float64)
    ids = np.unique(np.asarray(groups).reshape(-1), return_inverse=True)[1].reshape(-1)
    if ids.shape != values.shape:
        raise InputError(f"group_coverage_pick: scores and groups must both have shape (n,); got {values.shape} and "
                         f"{ids.shape}.")
    covered = np.bincount(ids[np.isnan(values)], minlength=int(ids.max(initial=-1)) + 1).astype(np.int64)
    free = rank_desc(values, scorable(values))  # best first
    taken = np.zeros(free.size, dtype=bool)
    out: list[int] = []
    for _ in range(min(int(k), free.size)):
        level = np.where(taken, np.iinfo(np.int64).max, covered[ids[free]])
        j = int(np.argmin(level))  # the first (best-scoring) row among the least-covered groups
        taken[j] = True
        out.append(int(free[j]))
        covered[ids[free[j]]] += 1
    return np.asarray(out, dtype=np.intp)


@dataclasses.dataclass(frozen=True, eq=False)
class GroupCoverage:
    """Selector over :func:`group_coverage_pick` for loops that know each row's group (the preference benchmark's
    ``bald-per-prompt``); not in the catalog, since its ``groups`` are per-record data, not settings."""

    groups: npt.NDArray[np.int64]
    name: ClassVar[str] = "group_coverage"

    def key(self) -> str:
        """Name (the groups are data)."""
        return f"{self.name}()"

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` indices, in pick order."""
        values = validate(scores, k, embeddings, need_embeddings=False, who=self.key())
        return group_coverage_pick(values, self.groups, int(k))
