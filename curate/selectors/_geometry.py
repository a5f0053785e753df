"""Squared distances from rows of an ``(n, d)`` float32 matrix to a few query rows, without an n x n matrix.

Euclidean: ``||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2`` with the row norms computed once.
Cosine: the squared chord distance between the unit vectors, ``||a/|a| - b/|b| ||^2 = 2 - 2 cos(a, b)``, which is
monotone in the cosine distance ``1 - cos`` and, unlike it, a metric (so the triangle inequality holds). A zero row
has cosine 0 to every row (squared chord distance 2). Every product is a float32 matrix-vector or matrix-matrix
multiplication over a chunk of rows, so memory stays at O(n + chunk x d).

The greedy loops run their BLAS calls on one thread (:func:`one_blas_thread`): a float32 matrix-vector product is
memory-bound, so a second thread gains little when the machine is idle, and on a 2-core machine with the other
core busy it made k-center 3-5x slower (measured: 100,000 x 384, k = 200: 2.4 s on one thread, 11 s on two).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from curate.selectors.base import Indices

F32 = npt.NDArray[np.float32]
ROW_CHUNK = 16_384
GATHER_CHUNK = 4_096
COL_CHUNK = 2_048


class Geometry:
    """Precomputed row norms of ``x`` (shape ``(n, d)``, float32) for fast squared distances.

    Args:
        x: The points, float32, C-contiguous, shape ``(n, d)``; not copied.
        metric: ``"euclidean"`` or ``"cosine"``.
    """

    def __init__(self, x: F32, metric: str) -> None:
        self.x = x
        self.metric = metric
        sq = np.empty(len(x), dtype=np.float32)
        for start in range(0, len(x), ROW_CHUNK):
            block = x[start:start + ROW_CHUNK]
            sq[start:start + ROW_CHUNK] = np.einsum("ij,ij->i", block, block)
        if metric == "cosine":
            norms = np.sqrt(sq, dtype=np.float32)
            with np.errstate(divide="ignore"):
                self.inv: F32 = np.where(norms > 0, 1.0 / norms, 0.0).astype(np.float32)
            self.sq = np.ones(len(x), dtype=np.float32)
        else:
            self.inv = np.ones(len(x), dtype=np.float32)
            self.sq = sq
        # largest squared distance scale: used for float32 round-off tolerances
        self.scale = float(4.0 if metric == "cosine" else 4.0 * (float(sq.max()) if len(sq) else 0.0))

    def to_point(self, centre: int, rows: slice | Indices) -> F32:
        """Squared distances from ``x[rows]`` to the row ``centre``; shape ``(len(rows),)``, float32, >= 0."""
        dots: F32 = self.x[rows] @ self.x[centre]
        if self.metric == "cosine":
            dots *= self.inv[rows]
            dots *= np.float32(-2.0 * self.inv[centre])
            dots += np.float32(2.0)
            np.clip(dots, 0.0, 4.0, out=dots)
        else:
            dots *= np.float32(-2.0)
            dots += self.sq[rows]
            dots += self.sq[centre]
            np.maximum(dots, 0.0, out=dots)
        return dots

    def nearest(self, points: Indices, rows: slice | Indices) -> tuple[F32, npt.NDArray[np.int64]]:
        """For each row of ``x[rows]``: the squared distance to the nearest of ``x[points]`` and its position in
        ``points``. Works in blocks of ``COL_CHUNK`` points, so memory is O(rows x COL_CHUNK)."""
        xr = self.x[rows]
        sq_r = self.sq[rows]
        inv_r = self.inv[rows]
        best = np.full(len(xr), np.inf, dtype=np.float32)
        arg = np.zeros(len(xr), dtype=np.int64)
        for start in range(0, len(points), COL_CHUNK):
            cols = points[start:start + COL_CHUNK]
            d2 = self._block(xr, sq_r, inv_r, self.x[cols], self.sq[cols], self.inv[cols])
            local = np.argmin(d2, axis=1)
            vals = d2[np.arange(len(xr)), local]
            better = vals < best
            best[better] = vals[better]
            arg[better] = local[better] + start
        return best, arg

    def _block(self, xr: F32, sq_r: F32, inv_r: F32, xc: F32, sq_c: F32, inv_c: F32) -> F32:
        dots: F32 = xr @ xc.T
        if self.metric == "cosine":
            dots *= inv_r[:, None]
            dots *= inv_c[None, :]
            dots *= np.float32(-2.0)
            dots += np.float32(2.0)
            np.clip(dots, 0.0, 4.0, out=dots)
        else:
            dots *= np.float32(-2.0)
            dots += sq_r[:, None]
            dots += sq_c[None, :]
            np.maximum(dots, 0.0, out=dots)
        return dots


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (no-op if ``threadpoolctl`` is missing)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def unit_rows(x: F32) -> F32:
    """Rows scaled to unit length (zero rows stay zero); shape as ``x``, float32, a new array."""
    norms = np.linalg.norm(x, axis=1, keepdims=True).astype(np.float32)
    out: F32 = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return out
