"""Integer budgets split over groups: largest remainder, round-robin minimums, proportional quotas."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


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
