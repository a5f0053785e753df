"""Score-then-diversity (DEITA, Liu et al., 2024): best scores first, skipping near-copies of what is taken.

Walk the records by descending score; take a record unless its cosine similarity to a record already taken
exceeds ``threshold`` (default 0.9); stop at ``k``.

**Fill rule** (when fewer than ``k`` records survive the filter): the batch is topped up with the best skipped
records, in descending score, after the diverse ones. So the batch always has ``min(k, m)`` records (``m`` = number
of non-NaN scores) and the contract "``k >= m`` returns every scorable record" holds; the diverse records always
come first, and :func:`walk_diverse` tells the two apart for callers that want fewer rather than near-copies.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.selectors._geometry import F32, unit_rows
from curate.selectors.arrays import as_embeddings, check_fraction, check_rng, rank_desc, require_embeddings, scorable
from curate.selectors.base import BaseSelector, FloatArray, Indices, validate

BLOCK = 256


def walk_diverse(x: F32, order: Indices, k: int, *, threshold: float = 0.9,
                 taken: Indices | None = None) -> tuple[Indices, Indices, int]:
    """Walk ``order``, keeping rows whose cosine similarity to every kept row is at most ``threshold``.

    Similarities are computed a block of ``BLOCK`` rows at a time against the kept rows (a ``(block, kept)``
    product) and within the block, so the cost is O(walked x kept x d) with no large matrix. Zero rows have
    similarity 0 to everything and are never skipped.

    Args:
        x: Embeddings, float32, shape ``(n, d)``.
        order: Rows to consider, in preference order.
        k: Stop once this many rows are kept.
        threshold: Maximum allowed cosine similarity to a kept row, in [-1, 1].
        taken: Rows kept earlier (e.g. a previous round of the same batch); candidates are compared with them too,
            and they are not returned.

    Returns:
        ``(kept, skipped, walked)``: kept rows in order, the skipped near-copies in order, and how many entries of
        ``order`` were examined (the rest were not needed).
    """
    d = x.shape[1]
    bank = np.empty((k + (0 if taken is None else len(taken)), d), dtype=np.float32)
    n_bank = 0
    if taken is not None and len(taken):
        bank[: len(taken)] = unit_rows(x[taken])
        n_bank = len(taken)
    kept: list[int] = []
    skipped: list[int] = []
    walked = 0
    thr = np.float32(threshold)
    for start in range(0, len(order), BLOCK):
        if len(kept) >= k:
            break
        block = order[start:start + BLOCK]
        units = unit_rows(x[block])
        too_close = np.zeros(len(block), dtype=bool)
        if n_bank:
            too_close = (units @ bank[:n_bank].T).max(axis=1) > thr
        inner = units @ units.T
        chosen: list[int] = []
        for j in range(len(block)):
            if len(kept) >= k:
                break
            walked += 1
            if too_close[j] or (chosen and inner[j, chosen].max() > thr):
                skipped.append(int(block[j]))
                continue
            chosen.append(j)
            kept.append(int(block[j]))
        bank[n_bank:n_bank + len(chosen)] = units[chosen]
        n_bank += len(chosen)
    return np.asarray(kept, dtype=np.intp), np.asarray(skipped, dtype=np.intp), walked


def score_then_diversity(scores: FloatArray, embeddings: FloatArray, k: int, *,
                         threshold: float = 0.9) -> Indices:
    """DEITA selection: descending score, skipping near-copies; topped up with the best skipped (module doc).

    Args:
        scores: Shape ``(n,)``, higher = better; NaN rows are never chosen.
        embeddings: Shape ``(n, d)``; cosine similarity between rows decides "near-copy".
        k: Batch size.
        threshold: A record whose cosine similarity to a taken one exceeds this is skipped (in [-1, 1]).

    Returns:
        Shape ``(min(k, m),)`` ``intp`` indices: the diverse picks by descending score, then any fill-ins.

    >>> e = np.array([[1.0, 0.0], [0.99, 0.01], [0.0, 1.0]])
    >>> score_then_diversity(np.array([0.9, 0.8, 0.1]), e, 2).tolist()
    [0, 2]
    """
    who = "score_then_diversity"
    values = np.asarray(scores, dtype=np.float64)
    x = as_embeddings(embeddings, who)
    if values.shape != (len(x),):
        raise InputError(f"{who}: scores must have shape ({len(x)},), one per embedding row; got {values.shape}")
    thr = check_fraction(threshold, who, "threshold", low=-1.0)
    order = rank_desc(values, scorable(values))
    if k <= 0 or order.size == 0:
        return np.empty(0, dtype=np.intp)
    kept, skipped, walked = walk_diverse(x, order, int(k), threshold=thr)
    if kept.size >= k:
        return kept
    fill = skipped[: int(k) - kept.size]  # the walk saw every row, so ``skipped`` is all the rest, best first
    return np.concatenate([kept, fill]).astype(np.intp)


@dataclasses.dataclass(frozen=True)
class DEITA(BaseSelector):
    """Selector: score-then-diversity with a cosine threshold (see :func:`score_then_diversity`).

    Attributes:
        threshold: Maximum cosine similarity between two records of one batch before the fill rule applies.
    """

    name: ClassVar[str] = "deita"
    uses_embeddings: ClassVar[bool] = True
    threshold: float = 0.9

    def __post_init__(self) -> None:
        check_fraction(self.threshold, "DEITA", "threshold", low=-1.0)

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` indices by descending ``scores`` (shape ``(n,)``), near-copies in ``embeddings`` skipped."""
        values = validate(scores, k, embeddings, need_embeddings=True, who=self.key())
        check_rng(rng, self.key())
        return score_then_diversity(values, require_embeddings(embeddings, self.key()), int(k),
                                    threshold=self.threshold)


def near_duplicate_pairs(embeddings: FloatArray, indices: Indices, *,
                         threshold: float = 0.9) -> npt.NDArray[np.intp]:
    """Pairs ``(i, j)`` of ``indices`` (shape ``(m,)``) whose cosine similarity exceeds ``threshold``.

    A check for tests and audits of a finished batch (O(m^2) memory in the batch size, not the pool).
    Returns shape ``(p, 2)`` ``intp``, each pair with ``i`` before ``j`` in ``indices``.
    """
    x = as_embeddings(embeddings, "near_duplicate_pairs")
    idx = np.asarray(indices, dtype=np.intp)
    units = unit_rows(x[idx])
    sims = units @ units.T
    a, b = np.nonzero(np.triu(sims > np.float32(threshold), k=1))
    return np.stack([idx[a], idx[b]], axis=1).astype(np.intp) if a.size else np.empty((0, 2), dtype=np.intp)
