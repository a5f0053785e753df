"""Shared pieces of the selectors: the frozen-dataclass base with ``key()``, ordering and input checks.

Private module: the public names are re-exported from :mod:`curate.selectors`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.selectors.base import FloatArray, Indices

METRICS = ("euclidean", "cosine")
_FINITE_CHUNK = 8_192


def _key_value(value: Any) -> str:
    if hasattr(value, "key") and callable(value.key):
        return str(value.key())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclasses.dataclass(frozen=True)
class BaseSelector:
    """Base of curate's selectors: frozen configuration fields plus :meth:`key`.

    Subclasses set ``name`` and implement :meth:`select`. The fields are the whole configuration, so a selector
    is serialisable and its :meth:`key` identifies it in the audit log.
    """

    name: ClassVar[str] = "selector"

    def key(self) -> str:
        """``name(param=value,...)`` with only the fields that differ from their defaults.

        Fields that hold another selector (wrappers) are written as that selector's own key.
        """
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING:
                default: Any = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = dataclasses.MISSING
            if default is dataclasses.MISSING or value != default:
                parts.append(f"{f.name}={_key_value(value)}")
        return f"{self.name}({','.join(parts)})"

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` unique indices into ``scores`` (shape ``(n,)``, higher = better), best first."""
        raise NotImplementedError


def check_rng(rng: object, who: str) -> np.random.Generator:
    """Return ``rng`` if it is a :class:`numpy.random.Generator`, else raise :class:`InputError`."""
    if not isinstance(rng, np.random.Generator):
        raise InputError(
            f"{who}: rng must be a numpy.random.Generator; got {type(rng).__name__}. "
            "Pass rng=numpy.random.default_rng(seed)."
        )
    return rng


def check_metric(metric: str, who: str) -> None:
    """Raise :class:`InputError` unless ``metric`` is one of :data:`METRICS`."""
    if metric not in METRICS:
        raise InputError(f"{who}: metric must be one of {METRICS}; got {metric!r}")


def check_fraction(value: float, who: str, name: str, *, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``value`` as float if ``low <= value <= high``, else raise :class:`InputError`."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{who}: {name} must be a number in [{low:g}, {high:g}]; got {value!r}") from None
    if not low <= out <= high:
        raise InputError(f"{who}: {name} must be a number in [{low:g}, {high:g}]; got {value!r}")
    return out


def scorable(values: npt.NDArray[np.float64]) -> Indices:
    """Indices of the non-NaN entries of ``values`` (shape ``(n,)``), ascending."""
    return np.flatnonzero(~np.isnan(values)).astype(np.intp)


def rank_desc(values: npt.NDArray[np.float64], indices: Indices) -> Indices:
    """``indices`` reordered by descending ``values[indices]``; ties go to the lower index (deterministic)."""
    idx = np.asarray(indices, dtype=np.intp)
    return idx[np.lexsort((idx, -values[idx]))].astype(np.intp)


def as_indices(values: Sequence[int] | npt.ArrayLike) -> Indices:
    """A 1-D ``intp`` array (an empty list becomes an empty ``intp`` array)."""
    return np.asarray(values, dtype=np.intp).reshape(-1)


def as_embeddings(embeddings: FloatArray | npt.ArrayLike, who: str) -> npt.NDArray[np.float32]:
    """``embeddings`` as a C-contiguous float32 ``(n, d)`` array (no copy when it already is one).

    Raises :class:`InputError` if it is not two-dimensional or holds NaN or infinite values (checked in chunks,
    so a million-row matrix is never duplicated as booleans).
    """
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise InputError(f"{who}: embeddings must have shape (n, d); got shape {x.shape}")
    for start in range(0, len(x), _FINITE_CHUNK):
        block = x[start:start + _FINITE_CHUNK]
        if not np.isfinite(block).all():
            bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise InputError(
                f"{who}: embeddings must be finite; row {bad} holds NaN or infinity. "
                "Re-embed that record or drop it from the pool."
            )
    return x


def require_embeddings(embeddings: FloatArray | None, who: str) -> FloatArray:
    """``embeddings`` itself, or :class:`InputError` if it is missing (narrows the type after ``validate``)."""
    if embeddings is None:
        raise InputError(f"{who} needs embeddings, shape (n, d) with one row per score; none were given")
    return embeddings


def as_groups(groups: Sequence[Hashable] | npt.ArrayLike, n: int, who: str) -> npt.NDArray[np.str_]:
    """Group labels aligned with the scores, as strings, shape ``(n,)``."""
    raw = np.asarray(groups, dtype=object)
    out = np.asarray([str(g) for g in raw.reshape(-1)], dtype=np.str_)
    if raw.ndim != 1 or out.shape != (n,):
        raise InputError(
            f"{who}: groups must be one label per score, shape ({n},); got shape {raw.shape}. "
            "Pass an array aligned with the scores (for example the class or metadata column of the pool)."
        )
    return out


def largest_remainder(weights: npt.NDArray[np.float64], total: int,
                      caps: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Split ``total`` into integers proportional to ``weights`` (Hamilton's method), each at most its cap.

    Remainders are handed out by descending fractional part (ties to the lower position); capacity left over by a
    capped group goes to the others in proportion again.
    """
    alloc = np.zeros(len(weights), dtype=np.int64)
    total = int(min(total, int(caps.sum())))
    while alloc.sum() < total:
        open_ = alloc < caps
        w = np.where(open_, weights, 0.0)
        if w.sum() <= 0:
            w = open_.astype(np.float64)
        left = total - int(alloc.sum())
        share = w / w.sum() * left
        add = np.minimum(np.floor(share).astype(np.int64), caps - alloc)
        if add.sum() == 0:
            frac = np.where(open_, share - np.floor(share), -1.0)
            order = np.lexsort((np.arange(len(w)), -frac))
            add[order[0]] = 1
        alloc += add
    return alloc


def round_robin_minimums(sizes: npt.NDArray[np.int64], minimum: int, budget: int) -> npt.NDArray[np.int64]:
    """``min(minimum, size)`` per group, or as much as ``budget`` allows: one per group per pass, rarest first."""
    want = np.minimum(sizes, minimum)
    if int(want.sum()) <= budget:
        return want
    order = np.argsort(sizes, kind="stable")
    out = np.zeros(sizes.size, dtype=np.int64)
    left = budget
    level = 0
    while left > 0:
        level += 1
        for g in order:
            if left > 0 and want[g] >= level:
                out[g] += 1
                left -= 1
    return out


def proportional_targets(sizes: npt.NDArray[np.int64], budget: int, minimum: int) -> npt.NDArray[np.int64]:
    """Records per group: proportional to ``sizes`` (largest remainder), summing to ``min(budget, sizes.sum())``,
    but never below :func:`round_robin_minimums`; groups lifted to their minimum shrink the others' shares."""
    floor = round_robin_minimums(sizes, minimum, budget)
    fixed = np.zeros(sizes.size, dtype=bool)
    while True:
        target = np.where(fixed, floor, 0)
        free = ~fixed
        target[free] = largest_remainder(sizes[free].astype(np.float64), budget - int(floor[fixed].sum()),
                                         sizes[free])
        newly = free & (target < floor)
        if not newly.any():
            return target
        fixed |= newly
