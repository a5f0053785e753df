"""The selector contract.

``select(scores, k, *, embeddings=None, rng) -> NDArray[intp]``: indices into ``scores`` (and the rows of
``embeddings``), at most ``k`` of them, unique, in the order chosen. Higher scores are preferred; NaN scores are
never chosen. Selectors return indices and nothing else, whatever the arguments. Every stochastic selector
takes an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.runtime.config import config_key

Indices = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.floating]


class EmptyPoolError(InputError):
    """There is nothing to select from."""


@runtime_checkable
class Selector(Protocol):
    """Turns scores (and optionally embeddings) into a batch of indices."""

    name: ClassVar[str]

    def key(self) -> str:
        """Name and non-default parameters."""
        ...

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` unique indices into ``scores``, best first; NaN scores are never chosen."""
        ...


def validate(scores: FloatArray, k: int, embeddings: FloatArray | None = None, *,
             need_embeddings: bool = False, who: str = "select") -> np.ndarray:
    """Check the common inputs once at the boundary; returns ``scores`` as float64 (shape ``(n,)``).

    Raises :class:`EmptyPoolError` for an empty pool and :class:`InputError` for a negative ``k``, a wrong shape,
    or missing / mismatched embeddings. ``k`` larger than the pool is allowed: every scorable record is taken.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise InputError(f"{who}: scores must be one-dimensional, shape (n,); got shape {values.shape}")
    if values.size == 0:
        raise EmptyPoolError(f"{who}: the pool is empty; there is nothing to select. Ingest records first.")
    if not isinstance(k, int | np.integer) or k < 0:
        raise InputError(f"{who}: k must be a non-negative integer; got {k!r}")
    if need_embeddings and embeddings is None:
        raise InputError(f"{who} needs embeddings (one row per score); none were given")
    if embeddings is not None and (np.ndim(embeddings) != 2 or len(embeddings) != values.size):
        raise InputError(
            f"{who}: embeddings must have shape (n, d) with n = {values.size} (one row per score); "
            f"got shape {np.shape(embeddings)}"
        )
    return values


@dataclasses.dataclass(frozen=True)
class BaseSelector:
    """Base of curate's selectors: frozen configuration fields plus :meth:`key`.

    Subclasses set ``name`` and implement :meth:`select`. The fields are the whole configuration, so a selector
    is serialisable and its :meth:`key` identifies it in the audit log.
    """

    name: ClassVar[str] = "selector"
    #: Whether :meth:`select` itself reads ``embeddings`` (wrappers also need what their base needs).
    uses_embeddings: ClassVar[bool] = False

    def needs_embeddings(self) -> bool:
        """Whether :meth:`select` needs ``embeddings``: this selector's own need, or any selector it wraps."""
        wrapped = [getattr(self, f.name) for f in dataclasses.fields(self)]
        return self.uses_embeddings or any(needs_embeddings(v) for v in wrapped if isinstance(v, BaseSelector))

    def key(self) -> str:
        """``name(param=value,...)`` with only the fields that differ from their defaults.

        Fields that hold another selector (wrappers) are written as that selector's own key; fields with
        ``compare=False`` (precomputed inputs such as cluster labels) are left out.
        """
        return config_key(self)

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator) -> Indices:
        """At most ``k`` unique indices into ``scores`` (shape ``(n,)``, higher = better), best first."""
        raise NotImplementedError


def needs_embeddings(selector: object) -> bool:
    """Whether ``selector`` needs embeddings: its ``needs_embeddings()`` (False for a selector without one)."""
    check = getattr(selector, "needs_embeddings", None)
    return bool(check()) if callable(check) else False
