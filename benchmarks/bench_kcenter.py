"""k-center greedy benchmark: seconds and peak memory at 100,000 x 384 float32, k = 1,000, against a naive baseline.

Run: ``.venv/bin/python benchmarks/bench_kcenter.py`` (defaults: ``--n 100000 --k 1000 --baseline-n 10000``).
Writes ``benchmarks/results/kcenter.json`` and prints it. Target: n = 100,000, k = 1,000 in under 15 s, with no
n x n matrix.

Data: clustered, sentence-embedding-like points made with an explicit ``numpy`` generator: ``--clusters`` Gaussian
clusters of uneven size (Dirichlet weights) in ``--d`` dimensions, rows scaled to unit length as MiniLM's are.
``--data uniform`` uses structureless Gaussian rows instead (the worst case for the pruning in
``curate.selectors.kcenter``: nothing can be skipped).

Each measurement runs in its own child process, so its peak resident memory (``ru_maxrss``) is its own; inside the
child, ``tracemalloc`` measures the peak of what the selection itself allocates on top of the input. Side by side,
in the same run, the baseline is the textbook implementation: build the full n x n float32 distance matrix, then
run the greedy loop over its rows; it runs at ``--baseline-n`` (10,000: a 400 MB matrix), and curate runs at the
same n for the ratio. The baseline at the full n would need ``n^2 * 4`` bytes (40 GB at 100,000): reported, not run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.selectors import greedy_k_center  # noqa: E402


def make_data(n: int, d: int, *, clusters: int, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings (n, d) float32, scores (n,) float64)``, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, d), dtype=np.float32)
    if kind == "clustered":
        centres = rng.standard_normal((clusters, d), dtype=np.float32)
        weights = rng.dirichlet(np.full(clusters, 2.0))
    for start in range(0, n, 8192):  # in blocks, so generating the data does not dominate peak memory
        block = x[start:start + 8192]
        block[:] = rng.standard_normal(block.shape, dtype=np.float32)
        if kind == "clustered":
            block *= 0.5
            block += centres[rng.choice(clusters, size=len(block), p=weights)]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return x, rng.random(n)


def covering_radius(x: np.ndarray, picks: np.ndarray) -> float:
    """The k-center objective: the largest distance from any row to its nearest pick (smaller = better cover)."""
    from curate.selectors._geometry import Geometry

    geom = Geometry(x, "euclidean")
    worst = 0.0
    for start in range(0, len(x), 8192):
        d2, _ = geom.nearest(picks, slice(start, start + 8192))
        worst = max(worst, float(d2.max()))
    return float(np.sqrt(worst))


def naive_k_center(x: np.ndarray, k: int, scores: np.ndarray) -> np.ndarray:
    """The baseline: the full n x n float32 squared-distance matrix, then greedy picks over its rows."""
    sq = np.einsum("ij,ij->i", x, x)
    dist = x @ x.T
    dist *= -2.0
    dist += sq[:, None]
    dist += sq[None, :]
    np.maximum(dist, 0.0, out=dist)
    first = int(np.argmax(scores))
    picks = [first]
    nearest = dist[first].copy()
    nearest[first] = -1.0
    while len(picks) < k:
        i = int(np.argmax(nearest))
        picks.append(i)
        np.minimum(nearest, dist[i], out=nearest)
        nearest[picks] = -1.0
    return np.asarray(picks, dtype=np.intp)


def child(args: argparse.Namespace) -> None:
    """Run one measurement and print it as JSON (called in a fresh process)."""
    x, scores = make_data(args.n, args.d, clusters=args.clusters, kind=args.data, seed=args.seed)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    start = time.perf_counter()
    if args.child == "naive":
        picks = naive_k_center(x, args.k, scores)
    else:
        picks = greedy_k_center(x, args.k, rng=np.random.default_rng(0), scores=scores,
                                prune=args.child != "curate-unpruned")
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({
        "method": args.child,
        "n": args.n,
        "d": args.d,
        "k": args.k,
        "seconds": round(seconds, 3),
        "selection_peak_mb": round(peak / 2**20, 1),
        "process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_selection_mb": round(rss_before, 1),
        "input_mb": round(x.nbytes / 2**20, 1),
        "covering_radius": round(covering_radius(x, picks), 5),
        "picks": picks.tolist(),
    }))


def measure(method: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, "--n", str(n), "--k", str(args.k),
           "--d", str(args.d), "--clusters", str(args.clusters), "--data", args.data, "--seed", str(args.seed)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{method} at n={n} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {method:16s} n={n:>9,}  {result['seconds']:8.2f} s  selection peak {result['selection_peak_mb']:8.1f} MB"
          f"  max RSS {result['process_max_rss_mb']:8.1f} MB", file=sys.stderr)
    return result


def blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        return None
    counts = [int(info["num_threads"]) for info in threadpool_info() if info.get("user_api") == "blas"]
    return max(counts) if counts else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="pool size for curate's k-center")
    parser.add_argument("--k", type=int, default=1_000, help="centres to pick")
    parser.add_argument("--d", type=int, default=384, help="embedding dimension")
    parser.add_argument("--baseline-n", type=int, default=10_000, help="pool size for the n x n baseline")
    parser.add_argument("--clusters", type=int, default=100, help="clusters in the generated data")
    parser.add_argument("--data", choices=["clustered", "uniform"], default="clustered")
    parser.add_argument("--unpruned", action="store_true", help="also time curate without pruning at --n")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "kcenter.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    print(f"k-center greedy, {args.data} data, d={args.d}, k={args.k}", file=sys.stderr)
    full = measure("curate", args.n, args)
    small = measure("curate", args.baseline_n, args)
    naive = measure("naive", args.baseline_n, args)
    unpruned = measure("curate-unpruned", args.n, args) if args.unpruned else None
    same = [a == b for a, b in zip(small["picks"], naive["picks"], strict=True)]
    for r in (full, small, naive) + ((unpruned,) if unpruned else ()):
        r.pop("picks")
    report: dict[str, Any] = {
        "benchmark": "kcenter",
        "data": {"kind": args.data, "d": args.d, "clusters": args.clusters if args.data == "clustered" else None,
                 "seed": args.seed, "rows": "unit length"},
        "machine": {"cpus": os.cpu_count(), "blas_threads": blas_threads(),
                    "curate_selection_blas_threads": 1, "python": platform.python_version(),
                    "numpy": np.__version__, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "target": {"n": 100_000, "k": 1_000, "seconds": 15.0},
        "curate": full,
        "baseline_comparison": {
            "n": args.baseline_n,
            "curate": small,
            "naive_full_matrix": naive,
            "speedup_naive_over_curate": round(naive["seconds"] / max(small["seconds"], 1e-9), 2),
            "selection_memory_ratio_naive_over_curate": round(
                naive["selection_peak_mb"] / max(small["selection_peak_mb"], 1e-9), 1),
            "covering_radius_ratio_curate_over_naive": round(
                small["covering_radius"] / max(naive["covering_radius"], 1e-12), 4),
            "identical_picks": all(same),
            "agreeing_prefix": same.index(False) if False in same else len(same),
        },
        "naive_matrix_at_n_gb": round(args.n**2 * 4 / 2**30, 1),
        "meets_target": bool(args.n >= 100_000 and args.k >= 1_000 and full["seconds"] < 15.0),
    }
    if unpruned:
        report["curate_unpruned"] = unpruned
        report["pruning_speedup"] = round(unpruned["seconds"] / max(full["seconds"], 1e-9), 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
