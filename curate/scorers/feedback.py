"""Expert feedback: raise the scores of candidates that look like items the experts overruled.

An item is *overruled* when the final answer differs from the model's suggestion (another class, the other
response of a pair) or a rewrite was not accepted as is; *confirmed* when it matches. Both make the reference
set, with unit-norm embeddings ``r_j`` and flags ``o_j`` (1 = overruled). For a candidate ``x`` with base score
``s`` (higher = more worth labeling):

    rate(x) = sum_j w_j o_j / sum_j w_j     over the k nearest reference items j,
    w_j     = exp(-||x - r_j||^2 / (2 h^2)) h = the median pairwise distance of the reference (median heuristic)
    score   = s + weight * rate(x) * |s|    (= s * (1 + weight * rate) for s >= 0)

so a candidate whose neighbours were all confirmed keeps its score exactly, and one surrounded by overruled items
gets up to ``(1 + weight)`` times it. NaN stays NaN. The key holds the weight, ``k`` and a digest of the reference
ids and flags, so cached scores are refreshed when the overrule set changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.ingest.records import Record
from curate.runtime.embeddings import record_text
from curate.scorers.base import Scorer, Scores, as_scores
from curate.scorers.classifier import Featurizer, featurize_checked

FloatArray = npt.NDArray[np.float64]
_CHUNK = 2048


def _unit(x: FloatArray) -> FloatArray:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12), dtype=np.float64)


def reference_bandwidth(reference: npt.ArrayLike) -> float:
    """Median pairwise Euclidean distance of the unit-normalised reference rows (1.0 if fewer than 2 distinct)."""
    ref = _unit(np.asarray(reference, dtype=np.float64))
    if ref.shape[0] < 2:
        return 1.0
    d2 = np.maximum(2.0 - 2.0 * (ref @ ref.T), 0.0)[np.triu_indices(ref.shape[0], k=1)]
    d2 = d2[d2 > 1e-12]
    return float(np.sqrt(np.median(d2))) if d2.size else 1.0


def overrule_rate(candidates: npt.ArrayLike, reference: npt.ArrayLike, overruled: npt.ArrayLike, *, k: int = 10,
                  bandwidth: float | None = None) -> FloatArray:
    """Kernel-weighted share of overruled items among each candidate's ``k`` nearest reference items.

    Args:
        candidates: ``(n, d)`` embeddings (normalised here).
        reference: ``(m, d)`` embeddings of answered items that had a suggestion (normalised here).
        overruled: ``(m,)`` flags or weights in ``[0, 1]``, 1 = the expert overruled the model.
        k: neighbours (capped at ``m``).
        bandwidth: RBF ``h``; default :func:`reference_bandwidth`.

    Returns:
        ``(n,)`` float64 in ``[0, 1]``; 0 when ``m = 0``.
    """
    x = np.asarray(candidates, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    flags = np.asarray(overruled, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or ref.ndim != 2 or flags.shape[0] != ref.shape[0]:
        raise InputError(f"overrule_rate: need candidates (n, d), reference (m, d) and m flags; got {x.shape}, "
                         f"{ref.shape} and {flags.shape}")
    if ref.shape[0] == 0 or x.shape[0] == 0:
        return np.zeros(x.shape[0], dtype=np.float64)
    if ref.shape[1] != x.shape[1]:
        raise InputError(f"overrule_rate: candidates have {x.shape[1]} dimensions, the reference {ref.shape[1]}")
    h = float(bandwidth) if bandwidth is not None else reference_bandwidth(ref)
    x, ref = _unit(x), _unit(ref)
    kk = max(1, min(int(k), ref.shape[0]))
    out = np.empty(x.shape[0], dtype=np.float64)
    for start in range(0, x.shape[0], _CHUNK):
        d2 = np.maximum(2.0 - 2.0 * (x[start:start + _CHUNK] @ ref.T), 0.0)
        near = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
        nd2 = np.take_along_axis(d2, near, axis=1)
        w = np.exp(-nd2 / (2.0 * h * h)) + 1e-300
        out[start:start + _CHUNK] = np.sum(w * flags[near], axis=1) / np.sum(w, axis=1)
    return out


def overrule_digest(ids: Sequence[str], overruled: Sequence[float] | npt.ArrayLike) -> str:
    """16 hex characters identifying a reference set: its ids and flags, order-independent."""
    pairs = sorted(f"{rid}:{float(o):g}" for rid, o in zip(ids, np.asarray(overruled).reshape(-1), strict=True))
    return hashlib.blake2b("\n".join(pairs).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, eq=False)
class FeedbackScorer:
    """Wraps a scorer and boosts candidates near overruled items (module docstring); higher = more worth labeling.

    Build it with :meth:`from_records`. Attributes:
        base: the wrapped scorer.
        featurize: ``texts -> (n, d)``; embeds :func:`~curate.runtime.embeddings.record_text` of each record.
        reference: ``(m, d)`` unit-norm embeddings of the answered items; ``overruled`` their ``(m,)`` flags.
        digest: :func:`overrule_digest` of their ids and flags.
        weight: the boost at an overrule rate of 1 (0 = no change).
        k: neighbours per candidate.
        bandwidth: RBF ``h`` (the reference's median pairwise distance).
    """

    name: ClassVar[str] = "feedback"

    base: Scorer
    featurize: Featurizer
    reference: FloatArray = field(repr=False)
    overruled: FloatArray = field(repr=False)
    digest: str
    weight: float = 1.0
    k: int = 10
    bandwidth: float = 1.0

    def __post_init__(self) -> None:
        if not self.weight >= 0:
            raise InputError(f"FeedbackScorer: weight must be >= 0; got {self.weight!r}")
        if not isinstance(self.k, int) or self.k < 1:
            raise InputError(f"FeedbackScorer: k must be an integer >= 1; got {self.k!r}")

    @classmethod
    def from_records(cls, base: Scorer, featurize: Featurizer, records: Sequence[Record],
                     overruled: Sequence[float] | npt.ArrayLike, *, weight: float = 1.0,
                     k: int = 10) -> FeedbackScorer:
        """Embed the answered ``records`` once; ``overruled`` aligned with them (1 = overruled, 0 = confirmed)."""
        flags = np.asarray(overruled, dtype=np.float64).reshape(-1)
        if flags.shape[0] != len(records):
            raise InputError(f"FeedbackScorer: {len(records)} records but {flags.shape[0]} overrule flags")
        if records:
            ref = _unit(featurize_checked(featurize, [record_text(r) for r in records], who="FeedbackScorer"))
        else:
            ref = np.zeros((0, 1))
        return cls(base=base, featurize=featurize, reference=ref, overruled=flags,
                   digest=overrule_digest([r.id for r in records], flags), weight=float(weight), k=int(k),
                   bandwidth=reference_bandwidth(ref) if len(records) else 1.0)

    @property
    def set_dependent(self) -> bool:
        """As the base scorer (a set-dependent base makes the cache key include the scored set)."""
        return bool(getattr(self.base, "set_dependent", False))

    @property
    def n_overruled(self) -> int:
        """Reference items with a non-zero overrule flag."""
        return int(np.count_nonzero(self.overruled))

    def key(self) -> str:
        """``feedback(weight=..,k=..,overrules=<digest>)[<base key>]``."""
        return f"feedback(weight={self.weight:g},k={self.k},overrules={self.digest})[{self.base.key()}]"

    def rate(self, records: Sequence[Record]) -> FloatArray:
        """``(n,)`` kernel-weighted overrule rate of each record's neighbourhood, in ``[0, 1]``."""
        if not records or self.reference.shape[0] == 0:
            return np.zeros(len(records), dtype=np.float64)
        x = featurize_checked(self.featurize, [record_text(r) for r in records], who=self.name)
        return overrule_rate(x, self.reference, self.overruled, k=self.k, bandwidth=self.bandwidth)

    def score(self, records: Sequence[Record]) -> Scores:
        """``(n,)`` float64: the base score boosted by ``weight * rate * |base|``; NaN stays NaN."""
        base = as_scores(self.base.score(records), len(records), who=self.base.key())
        if self.weight == 0 or self.n_overruled == 0:
            return base
        return np.asarray(base + self.weight * self.rate(records) * np.abs(base), dtype=np.float64)
