"""Array helpers shared by the selectors: input checks, scorable indices, ranking, embeddings, groups."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.selectors.base import FloatArray, Indices

METRICS = ("euclidean", "cosine")
_FINITE_CHUNK = 8_192


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
