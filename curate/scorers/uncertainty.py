"""Uncertainty measures: arrays of probabilities in, one score per item out.

Every function here returns a float64 array of shape ``(n,)`` where **higher = more uncertain = more worth
labeling**. Each public function validates its input once and then calls a private ``_compute`` helper
(cleanlab style); options after the array are keyword-only. Logarithms are natural (nats).

Shapes:

* ``probs``: ``(n, K)``, one categorical distribution per row (classifier output).
* ``committee_probs``: ``(m, n, K)``, the distributions of ``m`` committee members.
* ``votes``: ``(m, n)`` integer class indices, one vote per member and item.
* ``p_members``: ``(m, n)``, Bernoulli probabilities ``P(A > B)`` of ``m`` ensemble members for ``n`` pairs.

Validation (same for every function): values must be finite and in ``[0, 1]`` and every row of a distribution
must sum to 1, both within ``atol`` (default ``1e-5``; values are then clipped to ``[0, 1]`` and rows
renormalised). A wrong shape or an invalid value raises :class:`~curate.errors.InputError` naming the row.

NaN handling: an item with a NaN anywhere in its probabilities (in any member's row, for committees and
ensembles) cannot be scored and gets a NaN score; the other items are scored normally. Selectors skip NaN.
``+-inf`` is an error, not a NaN.

>>> least_confidence([[0.5, 0.3, 0.2]]).round(3).tolist()
[0.5]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ArrayLike = npt.ArrayLike

#: Weight of the entropy tie-break inside :func:`margin` (see there).
MARGIN_TIE_EPS = 1e-9
DEFAULT_ATOL = 1e-5


# --------------------------------------------------------------------------------------------- validation


def _any(mask: npt.NDArray[Any], axis: int) -> BoolArray:
    return np.asarray(np.any(mask, axis=axis), dtype=np.bool_)


def _as_float(values: ArrayLike, *, who: str, what: str) -> FloatArray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{who}: {what} must be a numeric array; got {type(values).__name__} that numpy cannot convert "
            f"({exc}). Pass a rectangular list or numpy array of floats."
        ) from exc


def _check_range(flat: FloatArray, *, who: str, what: str, atol: float) -> None:
    """Raise for +-inf or values outside [0, 1] (NaN is allowed and ignored here)."""
    finite = np.isfinite(flat) | np.isnan(flat)
    if not finite.all():
        i = int(np.argmin(finite))
        raise InputError(f"{who}: {what} must be finite probabilities; found {flat.flat[i]} at flat index {i}. "
                         "Replace infinite values (use NaN to mark an item that cannot be scored).")
    with np.errstate(invalid="ignore"):
        bad = (flat < -atol) | (flat > 1.0 + atol)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{who}: {what} must lie in [0, 1]; found {flat.flat[i]:.6g} at flat index {i}. "
                         "Pass probabilities (apply a softmax or sigmoid to logits first).")


def check_probs(values: ArrayLike, *, who: str, what: str = "probs", ndim: int = 2, atol: float = DEFAULT_ATOL,
                min_classes: int = 2) -> tuple[FloatArray, BoolArray]:
    """Validate ``(n, K)`` (``ndim=2``) or ``(m, n, K)`` (``ndim=3``) distributions.

    Returns the array clipped to ``[0, 1]`` with rows renormalised, and the mask of rows holding a NaN
    (shape ``(n,)`` or ``(m, n)``). Raises :class:`InputError` as described in the module docstring.
    """
    arr = _as_float(values, who=who, what=what)
    axes = "(n, K)" if ndim == 2 else "(m, n, K)"
    if arr.ndim != ndim:
        raise InputError(f"{who}: {what} must have shape {axes}; got an array of shape {arr.shape}.")
    if arr.shape[-1] < min_classes:
        raise InputError(f"{who}: {what} must have at least {min_classes} classes (last axis); "
                         f"got shape {arr.shape}. Pass probabilities over every class of the label schema.")
    nan = _any(np.isnan(arr), -1)
    _check_range(arr, who=who, what=what, atol=atol)
    sums = np.where(nan, 1.0, np.nansum(arr, axis=-1))
    off = np.abs(sums - 1.0) > atol
    if off.any():
        idx = tuple(int(i) for i in np.argwhere(off)[0])
        raise InputError(f"{who}: each row of {what} must sum to 1 (tolerance {atol:g}); row {idx} sums to "
                         f"{sums[idx]:.6g}. Normalise the rows (softmax over logits) or pass atol=... .")
    clean = np.clip(np.where(nan[..., None], np.nan, arr), 0.0, 1.0) / sums[..., None]
    return clean, nan


def _check_bernoulli(values: ArrayLike, *, who: str, allow_1d: bool, atol: float) -> tuple[FloatArray, BoolArray]:
    """Validate ``(m, n)`` Bernoulli probabilities (``(n,)`` too if ``allow_1d``); returns ``(m, n)`` and NaN mask."""
    arr = _as_float(values, who=who, what="p_members")
    if arr.ndim == 1 and allow_1d:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] < 1:
        expected = "(m, n) or (n,)" if allow_1d else "(m, n) (members x pairs)"
        raise InputError(f"{who}: p_members must have shape {expected}; got an array of shape {arr.shape}. "
                         "For a single model's P(A > B) use bt_entropy.")
    _check_range(arr, who=who, what="p_members", atol=atol)
    nan = _any(np.isnan(arr), 0)
    return np.clip(arr, 0.0, 1.0), nan


def _finish(values: FloatArray, nan: BoolArray) -> FloatArray:
    out = np.asarray(values, dtype=np.float64)
    out[nan] = np.nan
    return out


# --------------------------------------------------------------------------------------------- primitives


def _xlogx(p: FloatArray) -> FloatArray:
    """``p * ln p`` with ``0 ln 0 = 0`` (NaN stays NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), np.where(np.isnan(p), np.nan, 0.0))
    return np.asarray(out, dtype=np.float64)


def _entropy(p: FloatArray) -> FloatArray:
    """Categorical entropy over the last axis, in nats."""
    return np.asarray(np.maximum(-np.sum(_xlogx(p), axis=-1), 0.0), dtype=np.float64)


def _bernoulli_entropy(p: FloatArray) -> FloatArray:
    return np.maximum(-(_xlogx(p) + _xlogx(1.0 - p)), 0.0)


# --------------------------------------------------------------------------------------------- single model


def least_confidence(probs: ArrayLike, *, atol: float = DEFAULT_ATOL) -> FloatArray:
    """Least confidence: ``1 - max_k p_k``.

    Args:
        probs: ``(n, K)`` class probabilities, rows summing to 1; NaN rows give NaN.
        atol: tolerance for row sums and the ``[0, 1]`` range.

    Returns:
        ``(n,)`` float64 in ``[0, 1 - 1/K]``; higher = less confident = more worth labeling.

    Raises:
        InputError: wrong shape, fewer than 2 classes, values outside ``[0, 1]``, or rows not summing to 1.
    """
    p, nan = check_probs(probs, who="least_confidence", what="probs", ndim=2, atol=atol)
    return _finish(1.0 - np.max(p, axis=1), nan)


def margin(probs: ArrayLike, *, tie_break: bool = True, atol: float = DEFAULT_ATOL) -> FloatArray:
    """Margin (breaking-ties) uncertainty: ``1 - (p_top1 - p_top2)``.

    Ties between items with the same margin are broken deterministically by their entropy: the returned score
    is ``(1 - eps) * (1 - (p_top1 - p_top2)) + eps * H(p) / ln K`` with ``eps =`` :data:`MARGIN_TIE_EPS`
    (``1e-9``), so among items with equal margins the one whose remaining mass is more spread out ranks first.
    The score depends only on the multiset of a row's probabilities, never on the row's position or the class
    order. Items equal in both keys score exactly the same (selectors then break the tie by index); margins that
    differ by less than about ``eps`` may be reordered by entropy, which is below any meaningful difference. Pass
    ``tie_break=False`` for the bare formula.

    Args:
        probs: ``(n, K)`` class probabilities, rows summing to 1; NaN rows give NaN.
        tie_break: add the entropy tie-break described above.
        atol: tolerance for row sums and the ``[0, 1]`` range.

    Returns:
        ``(n,)`` float64 in ``[0, 1]``; higher = the top two classes are closer = more worth labeling.

    Raises:
        InputError: wrong shape, fewer than 2 classes, values outside ``[0, 1]``, or rows not summing to 1.
    """
    p, nan = check_probs(probs, who="margin", what="probs", ndim=2, atol=atol)
    top2 = -np.partition(-np.nan_to_num(p), 1, axis=1)[:, :2]
    score = 1.0 - (top2[:, 0] - top2[:, 1])
    if tie_break:
        score = (1.0 - MARGIN_TIE_EPS) * score + MARGIN_TIE_EPS * _entropy(p) / np.log(p.shape[1])
    return _finish(score, nan)


def entropy(probs: ArrayLike, *, normalize: bool = False, atol: float = DEFAULT_ATOL) -> FloatArray:
    """Predictive entropy: ``H(p) = -sum_k p_k ln p_k`` (``0 ln 0 = 0``), optionally divided by ``ln K``.

    Args:
        probs: ``(n, K)`` class probabilities, rows summing to 1; NaN rows give NaN.
        normalize: divide by ``ln K`` so the range is ``[0, 1]`` whatever the number of classes.
        atol: tolerance for row sums and the ``[0, 1]`` range.

    Returns:
        ``(n,)`` float64 in ``[0, ln K]`` (``[0, 1]`` if normalised); higher = more uncertain.

    Raises:
        InputError: wrong shape, fewer than 2 classes, values outside ``[0, 1]``, or rows not summing to 1.
    """
    p, nan = check_probs(probs, who="entropy", what="probs", ndim=2, atol=atol)
    h = _entropy(p)
    if normalize:
        h = h / np.log(p.shape[1])
    return _finish(h, nan)


# --------------------------------------------------------------------------------------------- committees


def _check_votes(votes: FloatArray, n_classes: int | None) -> tuple[npt.NDArray[np.intp], int]:
    if votes.shape[0] < 1:
        raise InputError(f"vote_entropy: votes must have shape (m, n) with m >= 1 members; got {votes.shape}.")
    if not np.all(np.isfinite(votes)) or np.any(votes != np.round(votes)) or np.any(votes < 0):
        raise InputError("vote_entropy: votes must be non-negative integer class indices (shape (m, n)); "
                         "got non-integer, negative or NaN values. Pass argmax class indices, or the (m, n, K) "
                         "committee probabilities.")
    ints = votes.astype(np.intp)
    k = int(ints.max()) + 1 if ints.size else 1
    if n_classes is not None:
        if k > n_classes:
            raise InputError(f"vote_entropy: a vote names class {k - 1} but n_classes={n_classes}; "
                             "votes must be indices in [0, n_classes).")
        k = n_classes
    return ints, k


def vote_entropy(committee: ArrayLike, *, n_classes: int | None = None, atol: float = DEFAULT_ATOL) -> FloatArray:
    """Vote entropy of a committee: ``-sum_c (V_c / m) ln (V_c / m)``, ``V_c`` = members voting for class ``c``.

    Args:
        committee: either ``(m, n)`` integer votes (class indices), or ``(m, n, K)`` committee probabilities,
            in which case each member votes for its argmax class (ties go to the lowest class index).
            NaN in a member's probabilities gives the item a NaN score; votes may not contain NaN.
        n_classes: number of classes, used only to check ``(m, n)`` votes (must match ``K`` for probabilities).
        atol: tolerance for row sums and the ``[0, 1]`` range of probabilities.

    Returns:
        ``(n,)`` float64 in ``[0, ln min(m, K)]``; 0 when all members agree; higher = more disagreement.

    Raises:
        InputError: a shape other than ``(m, n)`` or ``(m, n, K)``, invalid probabilities, or invalid votes.
    """
    arr = _as_float(committee, who="vote_entropy", what="committee")
    if arr.ndim == 3:
        p, nan = check_probs(arr, who="vote_entropy", what="committee_probs", ndim=3, atol=atol)
        if n_classes is not None and n_classes != p.shape[2]:
            raise InputError(f"vote_entropy: n_classes={n_classes} but the committee probabilities have "
                             f"K={p.shape[2]} classes; omit n_classes or make them agree.")
        votes, k, nan = np.argmax(np.nan_to_num(p, nan=0.0), axis=2), p.shape[2], _any(nan, 0)
    elif arr.ndim == 2:
        votes, k = _check_votes(arr, n_classes)
        nan = np.zeros(arr.shape[1], dtype=bool)
    else:
        raise InputError(f"vote_entropy: committee must be votes of shape (m, n) or probabilities of shape "
                         f"(m, n, K); got an array of shape {arr.shape}.")
    m, n = votes.shape
    counts = np.zeros((n, k), dtype=np.float64)
    np.add.at(counts, (np.broadcast_to(np.arange(n), (m, n)), votes), 1.0)
    return _finish(_entropy(counts / m), nan)


def kl_to_mean(committee_probs: ArrayLike, *, atol: float = DEFAULT_ATOL) -> FloatArray:
    """Mean KL divergence of each member from the consensus: ``(1/m) sum_m KL(p_m || p_mean)``.

    ``p_mean = (1/m) sum_m p_m``. This equals ``H(p_mean) - (1/m) sum_m H(p_m)`` (the Jensen-Shannon
    divergence of the members), so it is always finite: ``p_mean > 0`` wherever some ``p_m > 0``.

    Args:
        committee_probs: ``(m, n, K)`` member probabilities, rows summing to 1; NaN in any member gives NaN.
        atol: tolerance for row sums and the ``[0, 1]`` range.

    Returns:
        ``(n,)`` float64 in ``[0, min(ln m, ln K)]``; 0 when all members are identical; higher = more
        disagreement.

    Raises:
        InputError: wrong shape, fewer than 2 classes, values outside ``[0, 1]``, or rows not summing to 1.
    """
    p, nan = check_probs(committee_probs, who="kl_to_mean", what="committee_probs", ndim=3, atol=atol)
    nan = _any(nan, 0)
    mean = np.mean(p, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(np.where(p > 0, p, 1.0)) - np.log(np.where(p > 0, mean[None], 1.0))
    kl = np.sum(np.where(p > 0, p * log_ratio, 0.0), axis=2)
    return _finish(np.maximum(np.mean(kl, axis=0), 0.0), nan)


# --------------------------------------------------------------------------------------------- pairwise (binary)


def bald(p_members: ArrayLike, *, atol: float = DEFAULT_ATOL) -> FloatArray:
    """BALD mutual information for Bernoulli preferences: ``H(mean_m p_m) - mean_m H(p_m)``.

    ``p_m = P(A > B)`` under ensemble member ``m`` and ``H`` is the Bernoulli entropy in nats. It is high when
    members are individually confident but disagree (epistemic uncertainty), and 0 when they all agree, however
    unsure each one is.

    Args:
        p_members: ``(m, n)`` probabilities that A beats B, one row per member; NaN in a column gives NaN.
        atol: tolerance for the ``[0, 1]`` range.

    Returns:
        ``(n,)`` float64 in ``[0, ln 2]``; higher = more disagreement = more worth labeling.

    Raises:
        InputError: not 2-D, or values outside ``[0, 1]``.
    """
    p, nan = _check_bernoulli(p_members, who="bald", allow_1d=False, atol=atol)
    info = _bernoulli_entropy(np.mean(p, axis=0)) - np.mean(_bernoulli_entropy(p), axis=0)
    return _finish(np.maximum(info, 0.0), nan)


def bt_entropy(p: ArrayLike, *, atol: float = DEFAULT_ATOL) -> FloatArray:
    """Bradley-Terry predictive entropy: ``H(p_bar)`` with ``p_bar`` the ensemble-mean ``P(A > B)``.

    Args:
        p: ``(m, n)`` member probabilities (averaged over members first) or ``(n,)`` one model's ``P(A > B)``.
            NaN in a column gives NaN.
        atol: tolerance for the ``[0, 1]`` range.

    Returns:
        ``(n,)`` float64 in ``[0, ln 2]``; ``ln 2`` at ``p_bar = 0.5``; higher = closer to a coin flip.

    Raises:
        InputError: not 1-D or 2-D, or values outside ``[0, 1]``.
    """
    arr, nan = _check_bernoulli(p, who="bt_entropy", allow_1d=True, atol=atol)
    return _finish(_bernoulli_entropy(np.mean(arr, axis=0)), nan)


def disagreement(p_members: ArrayLike, *, atol: float = DEFAULT_ATOL) -> FloatArray:
    """Ensemble disagreement: the standard deviation (``ddof=0``) of ``P(A > B)`` over members.

    Args:
        p_members: ``(m, n)`` probabilities that A beats B, one row per member; NaN in a column gives NaN.
        atol: tolerance for the ``[0, 1]`` range.

    Returns:
        ``(n,)`` float64 in ``[0, 0.5]``; 0 for one member or unanimous members; higher = more worth labeling.

    Raises:
        InputError: not 2-D, or values outside ``[0, 1]``.
    """
    p, nan = _check_bernoulli(p_members, who="disagreement", allow_1d=False, atol=atol)
    return _finish(np.std(p, axis=0), nan)


#: Pairwise measures by name, for scorers that take ``method=...``.
PAIRWISE_METHODS: dict[str, Callable[..., FloatArray]] = {
    "disagreement": disagreement, "bald": bald, "entropy": bt_entropy}
#: Single-model measures by name.
SINGLE_MODEL_METHODS: dict[str, Callable[..., FloatArray]] = {
    "least_confidence": least_confidence, "margin": margin, "entropy": entropy}
#: Committee measures by name.
COMMITTEE_METHODS: dict[str, Callable[..., FloatArray]] = {"vote_entropy": vote_entropy, "kl_to_mean": kl_to_mean}


def check_method(method: str, choices: Sequence[str], *, who: str) -> None:
    """Raise :class:`InputError` unless ``method`` is one of ``choices``."""
    if method not in choices:
        raise InputError(f"The 'method' parameter of {who} must be one of {sorted(choices)}; got {method!r}.")
