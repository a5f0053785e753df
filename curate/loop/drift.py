"""Drift: has the stream moved away from the pool? A two-sample kernel test over embeddings.

The statistic is the unbiased squared maximum mean discrepancy (Gretton et al., 2012) with an RBF kernel
``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))``, ``sigma`` = the median pairwise distance of the pooled sample (the
median heuristic):

    MMD^2_u = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)

Its p-value comes from a permutation test: the pooled sample is split at random ``n_permutations`` times and
``p = (1 + #{permuted statistic >= observed}) / (1 + n_permutations)``. Every permutation reuses one kernel
matrix, so a test over ``N`` points costs one ``N x N`` kernel plus a ``(P, N) @ (N, N)`` product.

:class:`DriftMonitor` keeps a sliding window of the last ``window`` stream embeddings and tests it against a
fixed reference sample of the pool every ``every`` records. It says "drift" once ``patience`` tests in a row have
``p < alpha`` (repeated tests on overlapping windows would otherwise raise false alarms) and "settled" again at
the first test that does not reject. Its state round-trips through JSON (:meth:`DriftMonitor.to_dict`), the
reference excepted: the caller keeps the reference (for a stream, the ids of the pool sample).
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError

FloatArray = npt.NDArray[np.float64]
STATE_VERSION = 1
_MEDIAN_SAMPLE = 1000


def _as_matrix(values: npt.ArrayLike, who: str) -> FloatArray:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 2 or out.shape[0] < 2 or not np.isfinite(out).all():
        raise InputError(f"{who}: need a finite (n, d) array with n >= 2; got shape {out.shape}")
    return out


def _sq_dists(z: FloatArray) -> FloatArray:
    sq = np.sum(z * z, axis=1)
    out: FloatArray = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    return out


def median_bandwidth(z: npt.ArrayLike, *, rng: np.random.Generator | None = None) -> float:
    """Median pairwise Euclidean distance of the rows of ``z`` (shape ``(n, d)``), over at most 1000 rows.

    Zero distances (duplicate rows) are left out; returns 1.0 when every row is the same.
    """
    x = _as_matrix(z, "median_bandwidth")
    if x.shape[0] > _MEDIAN_SAMPLE:
        gen = rng or np.random.default_rng(0)
        x = x[gen.choice(x.shape[0], _MEDIAN_SAMPLE, replace=False)]
    d2 = _sq_dists(x)[np.triu_indices(x.shape[0], k=1)]
    d2 = d2[d2 > 1e-12]
    return float(np.sqrt(np.median(d2))) if d2.size else 1.0


def _mmd2_from_kernel(k0: FloatArray, u: FloatArray, m: int, n: int) -> FloatArray:
    """Unbiased MMD^2 for each indicator row of ``u`` (``(P, N)``, 1 = first sample) over ``k0`` (zero diagonal)."""
    uk = u @ k0
    xx = np.sum(uk * u, axis=1)
    xy = np.sum(uk, axis=1) - xx
    total = float(np.sum(k0))
    yy = total - 2.0 * xy - xx
    return np.asarray(xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2.0 * xy / (m * n), dtype=np.float64)


@dataclass(frozen=True)
class DriftTest:
    """One two-sample test: ``mmd2`` (unbiased, may be slightly negative), its permutation ``p_value``, the
    kernel ``bandwidth``, the sample sizes, and ``n_seen`` (stream records seen when it ran)."""

    mmd2: float
    p_value: float
    bandwidth: float
    n_window: int
    n_reference: int
    n_seen: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def mmd_test(x: npt.ArrayLike, y: npt.ArrayLike, *, n_permutations: int = 200, rng: np.random.Generator,
             bandwidth: float | None = None) -> DriftTest:
    """Permutation two-sample test of ``x`` (shape ``(m, d)``, e.g. the stream window) against ``y`` (``(n, d)``,
    the reference); higher ``mmd2`` / lower ``p_value`` = more evidence that their distributions differ.

    Args:
        n_permutations: random splits of the pooled sample (at least 1); the smallest p-value is
            ``1 / (n_permutations + 1)``.
        rng: draws the permutations.
        bandwidth: RBF ``sigma``; default the median heuristic on the pooled sample.
    """
    a, b = _as_matrix(x, "mmd_test"), _as_matrix(y, "mmd_test")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"mmd_test: x has {a.shape[1]} dimensions but y has {b.shape[1]}")
    if not isinstance(n_permutations, int) or n_permutations < 1:
        raise InputError(f"mmd_test: n_permutations must be an integer >= 1; got {n_permutations!r}")
    z = np.concatenate([a, b])
    sigma = float(bandwidth) if bandwidth is not None else median_bandwidth(z, rng=rng)
    k0 = np.exp(-_sq_dists(z) / (2.0 * sigma * sigma))
    np.fill_diagonal(k0, 0.0)
    m, n = a.shape[0], b.shape[0]
    observed = np.zeros((1, m + n))
    observed[0, :m] = 1.0
    stat = float(_mmd2_from_kernel(k0, observed, m, n)[0])
    perms = np.zeros((n_permutations, m + n))
    for p in range(n_permutations):
        perms[p, rng.permutation(m + n)[:m]] = 1.0
    null = _mmd2_from_kernel(k0, perms, m, n)
    p_value = float((1 + np.sum(null >= stat - 1e-12)) / (1 + n_permutations))
    return DriftTest(mmd2=stat, p_value=p_value, bandwidth=sigma, n_window=m, n_reference=n)


def _pack(rows: list[npt.NDArray[np.float32]]) -> dict[str, Any]:
    arr = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1) if rows else np.zeros((0, 0), np.float32)
    return {"shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def _unpack(packed: Mapping[str, Any]) -> list[npt.NDArray[np.float32]]:
    shape = tuple(int(v) for v in packed["shape"])
    arr = np.frombuffer(base64.b64decode(packed["b64"]), dtype=np.float32).reshape(shape)
    return [row.copy() for row in arr]


class DriftMonitor:
    """Sliding-window MMD test of a stream's embeddings against a fixed reference sample (module docstring).

    Args:
        reference: ``(n, d)`` embeddings of a random sample of the pool (n >= 2).
        window: the last ``window`` stream embeddings are tested (at least 10).
        alpha: significance level of each test.
        every: records between tests (default ``window // 4``); the first test runs once the window is full.
        n_permutations: permutations per test.
        patience: consecutive rejections before drift is declared.
        seed: seeds each test's permutations (with the record count), so a restored monitor tests identically.
    """

    def __init__(self, reference: npt.ArrayLike, *, window: int = 200, alpha: float = 0.01, every: int | None = None,
                 n_permutations: int = 200, patience: int = 2, seed: int = 0) -> None:
        self.reference = _as_matrix(reference, "DriftMonitor")
        if not isinstance(window, int) or window < 10:
            raise InputError(f"DriftMonitor: window must be an integer >= 10; got {window!r}")
        if not 0.0 < alpha < 1.0:
            raise InputError(f"DriftMonitor: alpha must be in (0, 1); got {alpha!r}")
        self.every = every if every is not None else max(1, window // 4)
        if not isinstance(self.every, int) or self.every < 1:
            raise InputError(f"DriftMonitor: every must be an integer >= 1; got {every!r}")
        if not isinstance(n_permutations, int) or 1.0 / (n_permutations + 1) >= alpha:
            raise InputError(f"DriftMonitor: with {n_permutations!r} permutations the p-value can never be below "
                             f"alpha={alpha}; use at least {int(np.ceil(1.0 / alpha))} permutations")
        if not isinstance(patience, int) or patience < 1:
            raise InputError(f"DriftMonitor: patience must be an integer >= 1; got {patience!r}")
        self.window, self.alpha, self.n_permutations = window, float(alpha), int(n_permutations)
        self.patience, self.seed = patience, int(seed)
        self.recent: deque[npt.NDArray[np.float32]] = deque(maxlen=window)
        self.n_seen = 0
        self.last_test_at = 0
        self.n_tests = 0
        self.streak = 0
        self.drifted = False
        self.events: list[dict[str, Any]] = []
        self.last: DriftTest | None = None

    def update(self, vector: npt.ArrayLike) -> DriftTest | None:
        """Add one stream embedding (shape ``(d,)`` or ``(1, d)``); returns the test if one ran now.

        After the call, ``drifted`` says whether the stream has drifted and ``events`` lists every onset.
        """
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape[0] != self.reference.shape[1]:
            raise InputError(f"DriftMonitor: embedding has {vec.shape[0]} dimensions; the reference has "
                             f"{self.reference.shape[1]}")
        self.recent.append(vec)
        self.n_seen += 1
        if len(self.recent) < self.window or self.n_seen - self.last_test_at < self.every:
            return None
        return self.test()

    def test(self) -> DriftTest:
        """Test the current window against the reference now (and update the drift state)."""
        rng = np.random.default_rng([self.seed, self.n_seen])
        result = mmd_test(np.stack(list(self.recent)), self.reference, n_permutations=self.n_permutations, rng=rng)
        result = DriftTest(**{**result.as_dict(), "n_seen": self.n_seen})
        self.last, self.last_test_at = result, self.n_seen
        self.n_tests += 1
        self.streak = self.streak + 1 if result.p_value < self.alpha else 0
        if self.streak >= self.patience and not self.drifted:
            self.drifted = True
            self.events.append({"at": self.n_seen, "mmd2": result.mmd2, "p_value": result.p_value})
        elif self.streak == 0:
            self.drifted = False
        return result

    @property
    def onset(self) -> bool:
        """Whether the latest test is the one that declared drift."""
        return bool(self.events) and self.drifted and self.events[-1]["at"] == self.last_test_at == self.n_seen

    def to_dict(self) -> dict[str, Any]:
        """The state (window packed as base64 float32), without the reference."""
        return {
            "version": STATE_VERSION, "window": self.window, "alpha": self.alpha, "every": self.every,
            "n_permutations": self.n_permutations, "patience": self.patience, "seed": self.seed,
            "recent": _pack(list(self.recent)), "n_seen": self.n_seen, "last_test_at": self.last_test_at,
            "n_tests": self.n_tests, "streak": self.streak, "drifted": self.drifted, "events": list(self.events),
            "last": self.last.as_dict() if self.last else None,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any], *, reference: npt.ArrayLike) -> DriftMonitor:
        """Rebuild a monitor from :meth:`to_dict` output and the same reference; it continues where it stopped."""
        try:
            if state["version"] != STATE_VERSION:
                raise InputError(f"DriftMonitor.from_dict: state version {state['version']!r} is not supported")
            mon = cls(reference, window=int(state["window"]), alpha=float(state["alpha"]), every=int(state["every"]),
                      n_permutations=int(state["n_permutations"]), patience=int(state["patience"]),
                      seed=int(state["seed"]))
            mon.recent.extend(_unpack(state["recent"]))
            mon.n_seen, mon.last_test_at = int(state["n_seen"]), int(state["last_test_at"])
            mon.n_tests, mon.streak, mon.drifted = int(state["n_tests"]), int(state["streak"]), bool(state["drifted"])
            mon.events = [dict(e) for e in state["events"]]
            mon.last = DriftTest(**state["last"]) if state.get("last") else None
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"DriftMonitor.from_dict: the state is incomplete or malformed ({exc!r}); expected the "
                             "dict written by DriftMonitor.to_dict()") from None
        return mon

    def summary(self) -> dict[str, Any]:
        """Counts, the latest test and every drift onset (JSON-ready)."""
        return {"window": self.window, "alpha": self.alpha, "tests": self.n_tests, "drifted": self.drifted,
                "events": list(self.events), "last": self.last.as_dict() if self.last else None}
