"""Wrappers around a base selector that say why each index was chosen: random mix, quotas, batch de-duplication.

Every wrapper is a frozen dataclass holding a ``base`` selector. ``select()`` keeps the selector contract (indices
only); ``select_tagged()`` returns a :class:`TaggedSelection`, the same indices plus one origin per index:

- ``"strategy"``: chosen by the base selector;
- ``"random"``: drawn uniformly from the scorable records the strategy did not choose (:class:`RandomMix`);
- ``"quota:<group>"``: added so that group reaches its quota (:class:`Quota`);
- ``"fill"``: added only to complete the batch after near-duplicates were refused (:class:`NoNearDuplicates`).

Groups (class or metadata labels, one per score, shape ``(n,)``, any values; compared as strings) are passed at
call time: ``select_tagged(scores, k, embeddings=..., rng=..., groups=labels)``. Wrappers nest and pass ``groups``
down, e.g. ``RandomMix(Quota(NoNearDuplicates(KCenterGreedy())), fraction=0.1)``; the function
:func:`select_tagged` tags any plain selector's picks as ``"strategy"``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Sequence
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.selectors.allocation import proportional_targets, round_robin_minimums
from curate.selectors.arrays import as_embeddings, as_groups, check_fraction, check_rng, rank_desc, scorable
from curate.selectors.base import BaseSelector, FloatArray, Indices, Selector, validate
from curate.selectors.diversity import walk_diverse

STRATEGY = "strategy"
RANDOM = "random"
FILL = "fill"
Groups = Sequence[Hashable] | npt.ArrayLike


def quota_origin(group: str) -> str:
    """The origin tag of a record added for ``group``'s quota: ``"quota:<group>"``."""
    return f"quota:{group}"


@dataclasses.dataclass(frozen=True)
class TaggedSelection:
    """Indices with the reason each was chosen.

    Attributes:
        indices: Shape ``(m,)`` ``intp``, indices into the scores, best first, unique.
        origin: Shape ``(m,)`` strings, one of ``"strategy"``, ``"random"``, ``"quota:<group>"``, ``"fill"``.
    """

    indices: Indices
    origin: npt.NDArray[np.str_]

    def __post_init__(self) -> None:
        if np.shape(self.indices) != np.shape(self.origin) or np.ndim(self.indices) != 1:
            raise InputError(f"TaggedSelection: indices and origin must both have shape (m,); got "
                             f"{np.shape(self.indices)} and {np.shape(self.origin)}")

    def __len__(self) -> int:
        return len(self.indices)

    @classmethod
    def uniform(cls, indices: npt.ArrayLike, origin: str) -> TaggedSelection:
        """All ``indices`` with the same ``origin``."""
        idx = np.asarray(indices, dtype=np.intp).reshape(-1)
        # np.full(..., dtype=np.str_) would truncate to one character; let numpy size the string dtype.
        return cls(idx, np.full(idx.size, origin) if idx.size else np.empty(0, dtype=np.str_))

    @classmethod
    def concat(cls, parts: Sequence[TaggedSelection]) -> TaggedSelection:
        """The parts one after another."""
        if not parts:
            return cls.uniform([], STRATEGY)
        return cls(np.concatenate([p.indices for p in parts]).astype(np.intp),
                   np.concatenate([p.origin.astype(np.str_) for p in parts]))

    def take(self, mask: npt.NDArray[np.bool_]) -> TaggedSelection:
        """The entries where ``mask`` (shape ``(m,)``) is true, order kept."""
        return TaggedSelection(self.indices[mask], self.origin[mask])

    def counts(self) -> dict[str, int]:
        """How many indices carry each origin."""
        labels, counts = np.unique(self.origin, return_counts=True)
        return {str(a): int(b) for a, b in zip(labels, counts, strict=True)}

    def with_origin(self, origin: str) -> Indices:
        """The indices tagged ``origin``, in order."""
        out: Indices = self.indices[self.origin == origin]
        return out


@runtime_checkable
class TaggedSelector(Protocol):
    """A selector that can also say why it chose each index."""

    @property
    def name(self) -> str:
        """The selector's name (a class attribute on curate's selectors)."""
        ...

    def key(self) -> str:
        """Name and non-default parameters."""
        ...

    def select_tagged(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
                      rng: np.random.Generator, groups: Groups | None = None) -> TaggedSelection:
        """At most ``k`` unique indices with their origins."""
        ...


def select_tagged(selector: Selector | TaggedSelector, scores: FloatArray, k: int, *,
                  embeddings: FloatArray | None = None, rng: np.random.Generator,
                  groups: Groups | None = None) -> TaggedSelection:
    """Run any selector and tag its picks: wrappers tag themselves, plain selectors' picks are ``"strategy"``.

    ``groups`` (shape ``(n,)``) is passed to wrappers that use it and ignored by plain selectors.
    """
    if isinstance(selector, TaggedSelector):
        return selector.select_tagged(scores, k, embeddings=embeddings, rng=rng, groups=groups)
    return TaggedSelection.uniform(selector.select(scores, k, embeddings=embeddings, rng=rng), STRATEGY)


def _masked(values: npt.NDArray[np.float64], keep: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """A copy of ``values`` with NaN wherever ``keep`` is false (the base selector can then only pick ``keep``)."""
    return np.where(keep, values, np.nan)


@dataclasses.dataclass(frozen=True)
class _Wrapper(BaseSelector):
    base: Selector

    def select(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
               rng: np.random.Generator, groups: Groups | None = None) -> Indices:
        """At most ``k`` unique indices, best first (the indices of :meth:`select_tagged`)."""
        return self.select_tagged(scores, k, embeddings=embeddings, rng=rng, groups=groups).indices

    def select_tagged(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
                      rng: np.random.Generator, groups: Groups | None = None) -> TaggedSelection:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class RandomMix(_Wrapper):
    """A share of every batch drawn uniformly at random, so the learning curve never loses sight of the pool.

    Of a batch of ``k``, ``r = floor(fraction * k + 0.5)`` (round half up) records are drawn uniformly without
    replacement from the scorable records the base selector did not choose, tagged ``"random"``, after the base
    selector's ``k - r`` picks. If fewer than ``r`` records remain, all of them are taken.

    Attributes:
        base: The strategy's selector.
        fraction: Share of the batch drawn at random, in [0, 1].
    """

    name: ClassVar[str] = "random_mix"
    fraction: float = 0.10

    def __post_init__(self) -> None:
        check_fraction(self.fraction, "RandomMix", "fraction")

    def n_random(self, k: int) -> int:
        """How many of a batch of ``k`` are random: ``floor(fraction * k + 0.5)``."""
        return min(int(k), int(math.floor(self.fraction * k + 0.5)))

    def select_tagged(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
                      rng: np.random.Generator, groups: Groups | None = None) -> TaggedSelection:
        """Base picks (``"strategy"`` or the base's own tags) then random ones (``"random"``); scores ``(n,)``."""
        values = validate(scores, k, embeddings, who=self.key())
        check_rng(rng, self.key())
        r = self.n_random(int(k))
        chosen = select_tagged(self.base, values, int(k) - r, embeddings=embeddings, rng=rng, groups=groups)
        free = ~np.isnan(values)
        free[chosen.indices] = False
        remaining = np.flatnonzero(free)
        draw = rng.choice(remaining, size=min(r, remaining.size), replace=False) if remaining.size else remaining
        return TaggedSelection.concat([chosen, TaggedSelection.uniform(draw, RANDOM)])


@dataclasses.dataclass(frozen=True)
class Quota(_Wrapper):
    """Per-group quotas, so rare classes or sources are not starved by the strategy.

    With ``groups`` (shape ``(n,)``) given at call time, every group among the scorable records gets a target:

    - ``proportional=False`` (default): at least ``min(minimum, group size)`` records each, no upper limit;
    - ``proportional=True``: exactly its share of ``min(k, m)`` by pool size (largest-remainder rounding), and
      never less than ``min(minimum, group size)``; the other groups' shares shrink to make room.

    When the minimums do not all fit in the batch, they are handed out one record per group per pass, rarest group
    first (ties: group label order). The base selector runs first; its picks are kept in order (tags kept) up to
    each group's upper limit; groups still short get their best records by the base selector restricted to that
    group, tagged ``"quota:<group>"``, in place of the last strategy picks of groups above their minimum.
    Without ``groups`` the wrapper is the base selector.

    Attributes:
        base: The strategy's selector.
        minimum: Records guaranteed per group (capped by the group's size).
        proportional: Mirror the pool's group sizes instead of only guaranteeing minimums.
    """

    name: ClassVar[str] = "quota"
    minimum: int = 1
    proportional: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.minimum, int) or self.minimum < 0:
            raise InputError(f"Quota: minimum must be a non-negative integer; got {self.minimum!r}")

    def targets(self, sizes: npt.NDArray[np.int64], budget: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(lower, upper) number of records per group, for group ``sizes`` and a batch of ``budget`` records."""
        floor = round_robin_minimums(sizes, self.minimum, budget)
        if not self.proportional:
            return floor, sizes.copy()
        target = proportional_targets(sizes, budget, self.minimum)
        return target, target.copy()

    def select_tagged(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
                      rng: np.random.Generator, groups: Groups | None = None) -> TaggedSelection:
        """Strategy picks adjusted to the group quotas; ``groups`` is one label per score (shape ``(n,)``)."""
        values = validate(scores, k, embeddings, who=self.key())
        check_rng(rng, self.key())
        if groups is None:
            return select_tagged(self.base, values, k, embeddings=embeddings, rng=rng)
        labels_all = as_groups(groups, values.size, self.key())
        idx = scorable(values)
        names, gid_scorable = np.unique(labels_all[idx], return_inverse=True)
        gid = np.full(values.size, -1, dtype=np.int64)
        gid[idx] = gid_scorable
        budget = min(int(k), idx.size)
        floor, cap = self.targets(np.bincount(gid_scorable, minlength=names.size).astype(np.int64), budget)
        first = select_tagged(self.base, values, int(k), embeddings=embeddings, rng=rng, groups=groups)
        keep = np.zeros(len(first), dtype=bool)
        counts = np.zeros(names.size, dtype=np.int64)
        for pos, g in enumerate(gid[first.indices]):
            if counts[g] < cap[g]:
                keep[pos] = True
                counts[g] += 1
        deficit = np.maximum(floor - counts, 0)
        excess = int(keep.sum() + deficit.sum()) - budget
        for pos in range(len(first) - 1, -1, -1):  # make room: drop the last picks of groups above their floor
            if excess <= 0:
                break
            g = gid[first.indices[pos]]
            if keep[pos] and counts[g] > floor[g]:
                keep[pos] = False
                counts[g] -= 1
                excess -= 1
        kept = first.take(keep)
        parts = [kept]
        free = ~np.isnan(values)
        free[kept.indices] = False
        for g in np.flatnonzero(deficit):
            extra = self.base.select(_masked(values, free & (gid == g)), int(deficit[g]), embeddings=embeddings,
                                     rng=rng)
            free[extra] = False
            parts.append(TaggedSelection.uniform(extra, quota_origin(str(names[g]))))
        return TaggedSelection.concat(parts)


@dataclasses.dataclass(frozen=True)
class NoNearDuplicates(_Wrapper):
    """No two records of one batch with cosine similarity above ``threshold`` (when embeddings are given).

    The base selector's picks are walked in order and near-copies of earlier picks are refused; the base selector
    is then asked again for the shortfall, with everything it already proposed excluded, up to ``max_rounds``
    times. If that is not enough, the remaining scorable records are walked by descending score, then the refused
    near-copies are used, both tagged ``"fill"``, so the batch still has ``min(k, m)`` records. Without
    embeddings the wrapper is the base selector.

    Attributes:
        base: The strategy's selector.
        threshold: Maximum cosine similarity inside a batch, in [-1, 1].
        max_rounds: How many times the base selector is asked again for replacements.
    """

    name: ClassVar[str] = "no_near_duplicates"
    uses_embeddings: ClassVar[bool] = True
    threshold: float = 0.9
    max_rounds: int = 4

    def __post_init__(self) -> None:
        check_fraction(self.threshold, "NoNearDuplicates", "threshold", low=-1.0)
        if not isinstance(self.max_rounds, int) or self.max_rounds < 0:
            raise InputError(f"NoNearDuplicates: max_rounds must be a non-negative integer; got {self.max_rounds!r}")

    def select_tagged(self, scores: FloatArray, k: int, *, embeddings: FloatArray | None = None,
                      rng: np.random.Generator, groups: Groups | None = None) -> TaggedSelection:
        """Base picks without near-copies (embeddings ``(n, d)``), topped up as described in the class doc."""
        values = validate(scores, k, embeddings, who=self.key())
        check_rng(rng, self.key())
        proposal = select_tagged(self.base, values, k, embeddings=embeddings, rng=rng, groups=groups)
        if embeddings is None:
            return proposal
        x = as_embeddings(embeddings, self.key())
        budget = min(int(k), int(np.count_nonzero(~np.isnan(values))))
        free = ~np.isnan(values)
        kept: list[TaggedSelection] = []
        refused: list[Indices] = []
        n_kept = 0
        for _ in range(self.max_rounds + 1):
            free[proposal.indices] = False
            taken = np.concatenate([p.indices for p in kept]) if kept else None
            ok, skipped, _ = walk_diverse(x, proposal.indices, budget - n_kept, threshold=self.threshold,
                                          taken=taken)
            kept.append(proposal.take(np.isin(proposal.indices, ok)))
            refused.append(skipped)
            n_kept += ok.size
            if n_kept >= budget or not free.any():
                break
            proposal = select_tagged(self.base, _masked(values, free), budget - n_kept, embeddings=embeddings,
                                     rng=rng, groups=groups)
            if len(proposal) == 0:
                break
        if n_kept < budget:
            taken = np.concatenate([p.indices for p in kept])
            ok, skipped, _ = walk_diverse(x, rank_desc(values, np.flatnonzero(free)), budget - n_kept,
                                          threshold=self.threshold, taken=taken)
            fill = np.concatenate([ok, *refused, skipped])[: budget - n_kept]
            kept.append(TaggedSelection.uniform(fill, FILL))
        return TaggedSelection.concat(kept)
