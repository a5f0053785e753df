"""Selection and dedup at scale: time and peak memory at 100,000 and 1,000,000 records.

Run: ``.venv/bin/python benchmarks/bench_scale.py`` (defaults: ``--sizes 100000 1000000 --k 1000``). Writes
``benchmarks/results/scale.json`` and prints it. ``--tasks`` picks a subset; ``--sizes`` others.

Each (task, size) runs in a child process of its own, so its peak resident memory (``ru_maxrss``) is its own. The
child first makes its data, then records its resident memory, then runs the task: ``input_mb`` is what the data
holds, ``task_peak_mb`` the process's peak minus its resident memory when the task started (what the task itself
needed at most; exact when ``task_set_the_peak``, else an upper bound set by making the data), ``process_peak_mb``
the whole child's peak (data + task + interpreter and libraries). Ratios between the two sizes show how time and
memory grow with the pool.

Data (seeded, reproducible):

* **embeddings**: ``n x 384`` float32 unit rows around 100 Gaussian centres of uneven size (as
  ``bench_kcenter.make_data``), 1.5 GB at 1,000,000; scores uniform in [0, 1).
* **texts**: 8-16 words from a seeded vocabulary of 20,000 pseudo-words; 2% of the records are near-copies of an
  earlier one (one word replaced, or two characters changed). Recall counts the planted (original, copy) pairs
  found; ``other_pairs`` counts pairs that are not within one planted group.

Tasks: ``kcenter`` (:func:`curate.selectors.greedy_k_center`, k centres), ``cluster_sklearn`` and ``cluster_faiss``
(:func:`curate.selectors.cluster_pick`, k clusters, the two k-means backends), ``minhash`` (the bounded-memory
:func:`curate.filters.dedup_minhash.minhash_pairs`), ``minhash_datasketch`` (the previous path: every MinHash
object plus ``datasketch.MinHashLSH``; at 100,000 only unless ``--all-baselines``, as its memory grows with every
shingle set), ``novelty`` (the embedding novelty scorer's maths against 1,000 labelled rows) and ``pipeline``
(novelty scores, then k-center weighted by them, then faiss cluster pick: scoring and selection of the whole pool).
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
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EMBEDDING_TASKS = ("kcenter", "cluster_sklearn", "cluster_faiss", "novelty", "pipeline")
TEXT_TASKS = ("minhash", "minhash_datasketch")
TASKS = EMBEDDING_TASKS + TEXT_TASKS
D = 384
LABELLED = 1000


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_embeddings(n: int, *, seed: int, clusters: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 384)`` float32 unit rows around ``clusters`` centres, and ``(n,)`` scores; made in blocks."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, D), dtype=np.float32)
    centres = rng.standard_normal((clusters, D), dtype=np.float32)
    weights = rng.dirichlet(np.full(clusters, 2.0))
    for start in range(0, n, 8192):
        block = x[start:start + 8192]
        block[:] = rng.standard_normal(block.shape, dtype=np.float32)
        block *= 0.5
        block += centres[rng.choice(clusters, size=len(block), p=weights)]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return x, rng.random(n)


def make_texts(n: int, *, seed: int, copy_rate: float = 0.02) -> tuple[list[str], np.ndarray]:
    """``n`` texts and, per text, the index of the text it near-copies (``-1`` for an original)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    sizes = rng.integers(3, 10, size=20_000)
    flat = rng.choice(letters, size=int(sizes.sum()))
    cuts = np.concatenate(([0], np.cumsum(sizes)))
    vocab = ["".join(flat[cuts[i]:cuts[i + 1]]) for i in range(len(sizes))]
    lengths = rng.integers(8, 17, size=n)
    words = rng.integers(0, len(vocab), size=int(lengths.sum()))
    ends = np.cumsum(lengths)
    texts = [" ".join(vocab[w] for w in words[e - m:e]) for e, m in zip(ends.tolist(), lengths.tolist(), strict=True)]
    source = np.full(n, -1, dtype=np.int64)
    copies = np.flatnonzero(rng.random(n) < copy_rate)
    copies = copies[copies > 0]
    for i in copies.tolist():
        j = int(rng.integers(0, i))
        while source[j] >= 0:  # copy an original, so each planted group is one original and its copies
            j = int(source[j])
        text = texts[j]
        if rng.random() < 0.5:
            parts = text.split()
            parts[int(rng.integers(len(parts)))] = vocab[int(rng.integers(len(vocab)))]
            text = " ".join(parts)
        else:
            for _ in range(2):
                p = int(rng.integers(len(text)))
                text = text[:p] + str(letters[int(rng.integers(26))]) + text[p + 1:]
        texts[i] = text
        source[i] = j
    return texts, source


def pair_quality(pairs: np.ndarray, source: np.ndarray) -> dict[str, Any]:
    group = np.where(source >= 0, source, np.arange(len(source)))
    planted = int((source >= 0).sum())
    same = group[pairs[:, 0]] == group[pairs[:, 1]] if len(pairs) else np.zeros(0, dtype=bool)
    found = pairs[same]
    # a planted (original, copy) pair is found if the pair itself came out
    is_planted = (source[found[:, 1]] == found[:, 0]) if len(found) else np.zeros(0, dtype=bool)
    return {"planted_pairs": planted, "pairs": int(len(pairs)), "planted_found": int(is_planted.sum()),
            "recall": round(int(is_planted.sum()) / max(planted, 1), 4), "pairs_within_groups": int(same.sum()),
            "other_pairs": int((~same).sum())}


def import_modules(task: str) -> None:
    """Import what the task's libraries import lazily, so the timed part holds no imports."""
    if task.startswith("cluster_") or task == "pipeline":
        import sklearn.cluster  # noqa: F401

        if task != "cluster_sklearn":
            import faiss  # noqa: F401
    if task in TEXT_TASKS:
        import datasketch  # noqa: F401


def run_task(task: str, n: int, k: int, seed: int) -> dict[str, Any]:
    """One measurement, in this (child) process."""
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if task in EMBEDDING_TASKS:
        x, scores = make_embeddings(n, seed=seed)
        input_mb = x.nbytes / 2**20
    else:
        texts, source = make_texts(n, seed=seed)
        input_mb = sum(sys.getsizeof(t) for t in texts) / 2**20
    data_seconds = time.perf_counter() - started
    from curate.filters.dedup_minhash import MinHashParams, lsh_pairs, minhash_pairs, signatures
    from curate.scorers.embedding import novelty
    from curate.selectors import cluster_pick, greedy_k_center

    import_modules(task)
    before, resident = peak_mb(), rss_mb()
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    if task == "kcenter":
        picks = greedy_k_center(x, k, rng=rng)
        extra["picked"] = int(len(picks))
    elif task.startswith("cluster_"):
        picks = cluster_pick(scores, x, k, rng=rng, backend=task.removeprefix("cluster_"))
        extra["picked"] = int(len(picks))
    elif task == "novelty":
        values = novelty(x, x[rng.choice(n, size=LABELLED, replace=False)])
        extra["score_range"] = [round(float(values.min()), 4), round(float(values.max()), 4)]
    elif task == "pipeline":
        values = novelty(x, x[rng.choice(n, size=LABELLED, replace=False)])
        t0 = time.perf_counter()
        centres = greedy_k_center(x, k, rng=rng, scores=values, score_weight=1.0)
        t1 = time.perf_counter()
        reps = cluster_pick(values, x, k, rng=rng, backend="faiss")
        t2 = time.perf_counter()
        extra.update(picked=[int(len(centres)), int(len(reps))], novelty_seconds=round(t0 - start, 2),
                     kcenter_seconds=round(t1 - t0, 2), cluster_faiss_seconds=round(t2 - t1, 2))
    elif task == "minhash":
        extra.update(pair_quality(minhash_pairs(texts), source))
    elif task == "minhash_datasketch":
        params = MinHashParams()
        mhs, values, _ = signatures(texts, params)
        extra.update(pair_quality(lsh_pairs(mhs, values, params), source))
    else:
        raise SystemExit(f"unknown task {task!r}; choose from {TASKS}")
    seconds = time.perf_counter() - start
    after = peak_mb()
    return {"task": task, "n": n, "k": k if task not in ("novelty",) + TEXT_TASKS else None,
            "seconds": round(seconds, 2), "per_record_us": round(seconds / n * 1e6, 2),
            "input_mb": round(input_mb, 1), "rss_before_task_mb": round(resident, 1),
            "task_peak_mb": round(max(0.0, after - resident), 1), "process_peak_mb": round(after, 1),
            "task_set_the_peak": after > before,
            "data_seconds": round(data_seconds, 1), **extra}


def child(task: str, n: int, k: int, seed: int, timeout: float) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", task, "--n", str(n), "--k", str(k), "--seed", str(seed)]
    print(f"{task} at n={n:,} ...", flush=True)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"task": task, "n": n, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"task": task, "n": n, "error": done.stderr.strip().splitlines()[-1:] or f"exit {done.returncode}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {result['seconds']} s, task peak {result['task_peak_mb']} MB, "
          f"process peak {result['process_peak_mb']} MB", flush=True)
    return result


def growth(results: list[dict[str, Any]], small: int, large: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    by = {(r["task"], r["n"]): r for r in results if "error" not in r}
    for task in TASKS:
        a, b = by.get((task, small)), by.get((task, large))
        if a and b:
            out[task] = {"time_ratio": round(b["seconds"] / max(a["seconds"], 1e-9), 2),
                         "task_memory_ratio": round(b["task_peak_mb"] / max(a["task_peak_mb"], 1e-9), 2),
                         "process_peak_ratio": round(b["process_peak_mb"] / a["process_peak_mb"], 2),
                         "size_ratio": large / small}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--k", type=int, default=1000, help="centres / clusters picked")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all-baselines", action="store_true", help="run minhash_datasketch at every size")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per child")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    parser.add_argument("--child", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_task(args.child, args.n, args.k, args.seed)))
        return 0
    sizes = sorted(args.sizes)
    results: list[dict[str, Any]] = []
    partial = args.out.with_name(args.out.stem + ".partial.json")
    partial.parent.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        for task in args.tasks:
            if task == "minhash_datasketch" and n != sizes[0] and not args.all_baselines:
                continue
            results.append(child(task, n, args.k, args.seed, args.timeout))
            partial.write_text(json.dumps(results, indent=2) + "\n")  # survives an interrupted run
    by = {(r["task"], r["n"]): r for r in results if "error" not in r}
    small, large = sizes[0], sizes[-1]
    comparisons: dict[str, Any] = {}
    for task, base in (("minhash", "minhash_datasketch"), ("cluster_faiss", "cluster_sklearn")):
        a, b = by.get((base, small)), by.get((task, small))
        if a and b:
            comparisons[f"{task}_vs_{base}_at_{small}"] = {
                "speedup": round(a["seconds"] / max(b["seconds"], 1e-9), 2),
                "task_memory_ratio": round(b["task_peak_mb"] / max(a["task_peak_mb"], 1e-9), 3)}
    if by.get(("cluster_faiss", large)) and by.get(("cluster_sklearn", large)):
        comparisons[f"cluster_faiss_vs_cluster_sklearn_at_{large}"] = {
            "speedup": round(by[("cluster_sklearn", large)]["seconds"] / by[("cluster_faiss", large)]["seconds"], 2)}
    limit_mb = 8 * 1024
    peaks = {f"{r['task']}@{r['n']}": r["process_peak_mb"] for r in results if "error" not in r}
    result = {
        "benchmark": "scale", "k": args.k, "seed": args.seed, "d": D,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "load_average_at_start": [round(v, 1) for v in os.getloadavg()]},
        "command": " ".join([".venv/bin/python", "benchmarks/bench_scale.py", *sys.argv[1:]]),
        "results": results, "growth": growth(results, small, large), "comparisons": comparisons,
        "memory_target_mb": limit_mb, "largest_process_peak_mb": max(peaks.values(), default=None),
        "all_under_memory_target": all(v < limit_mb for v in peaks.values()),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    partial.unlink(missing_ok=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
