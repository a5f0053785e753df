"""Scoring speed: the exact paths against the fast ones (int8 SmolLM2, ONNX MiniLM), and against the machine.

Run: ``.venv/bin/python benchmarks/bench_speed.py`` (defaults: the first 200 Alpaca records of
``../shared/data/alpaca_5000/alpaca_5000.json`` for SmolLM2, the first 1,000 for MiniLM, 2 torch threads).
Writes ``benchmarks/results/speed.json``. Any JSON/JSONL/CSV/Parquet file of prompt-completion records works
(``--map target=source`` renames columns, as in ``curate ingest``).

Everything is measured in one process, on the same records, alternating the methods ``--rounds`` times and keeping
each method's fastest round (a burst of load from outside the process cannot decide a ratio):

* **matmul**: a 2048 x 2048 @ 2048 x 2048 float32 matmul, measured before every timed phase; the fastest is the
  machine's practical peak in this run (the denominator of every "fraction of matmul").
* **perplexity, exact**: the conditional pass of :func:`curate.scorers.nll.sequence_nll` (what
  ``PerplexityScorer`` runs: length-sorted batches, LM head at completion positions only, shared prefix once), and
  the unconditional pass that IFD adds. GFLOP/s counts the useful forward work, with
  ``bench_perplexity.FlopCounter`` (no padding, no skipped head positions).
* **perplexity, int8**: the same passes on ``benchmarks/int8_experiment.py``'s SmoothQuant int8 copy (an
  experiment, not shipped: see the README); its
  GFLOP/s is the same useful work over its time (so it may exceed a float32 matmul).
* **threads**: the conditional pass, exact and int8, with 1 torch thread vs ``--threads``, on the first
  ``--thread-n`` records (on a shared 2-core machine the second thread can cost more than it gives).
* **embedder**: sentence-transformers (exact) vs ``Embedder(backend="onnx")``'s encoder, on record texts.

Rankings: the Spearman correlation of the fast path's scores with the exact path's (perplexity, IFD; for the
embedder, the pairwise cosine similarities of the first 300 texts, and novelty of the rest against the first 100).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_perplexity import DEFAULT_DATA, FlopCounter, causal_pairs, load_records, matmul_gflops  # noqa: E402


class Timer:
    """Fastest wall time per method over rounds, plus the fastest matmul seen just before any of them."""

    def __init__(self) -> None:
        self.best: dict[str, float] = {}
        self.runs: dict[str, list[float]] = {}
        self.matmul: list[float] = []
        self.out: dict[str, Any] = {}

    def run(self, name: str, fn: Any) -> Any:
        self.matmul.append(matmul_gflops(repeats=3))
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
        self.runs.setdefault(name, []).append(round(seconds, 2))
        self.best[name] = min(self.best.get(name, np.inf), seconds)
        self.out[name] = out
        print(f"  {name}: {seconds:.1f} s", flush=True)
        return out


def pass_flops(flops: FlopCounter, pairs: list[tuple[list[int], list[int]]]) -> float:
    """Useful forward FLOPs of one :func:`sequence_nll` pass over ``(context, target)`` pairs (shared prefix once)."""
    contexts = [c for c, _ in pairs]
    limit = min(len(c) for c in contexts) - 1
    prefix = min(len(os.path.commonprefix(contexts)), limit)
    prefix = prefix if prefix >= 4 else 0  # sequence_nll shares prefixes of 4 tokens or more
    fed = head = attention = 0
    for c, t in pairs:
        length = len(c) + len(t) - 1  # the last token predicts nothing scored: not fed
        fed += length - prefix
        head += len(t) if len(c) else len(t) - 1
        attention += causal_pairs(prefix, length)
    return flops.forward(fed, head, attention) + (flops.forward(prefix, 0, causal_pairs(0, prefix)) if prefix else 0)


def padding_fraction(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    padded = sum(len(b) * int(lengths[b].max()) for b in batches)
    return round(1 - float(lengths.sum()) / padded, 4)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    keep = ~(np.isnan(a) | np.isnan(b))
    return round(float(spearmanr(a[keep], b[keep]).statistic), 5)


def bench_lm(args: argparse.Namespace, records: list[Any], timer: Timer) -> dict[str, Any]:
    import torch
    from int8_experiment import quantize_int8

    from curate.runtime.models import load_lm
    from curate.runtime.onnx_embedder import torch_threads
    from curate.scorers.causal_lm import RecordEncoder
    from curate.scorers.nll import length_batches, sequence_nll

    model, tokenizer = load_lm(args.model, cache_dir=args.cache_dir)
    start = time.perf_counter()
    int8 = quantize_int8(model, tokenizer)
    quantize_seconds = time.perf_counter() - start
    encoder = RecordEncoder(tokenizer)
    encoded = [e for e in encoder.encode(records) if e is not None and e.completion_ids]
    cond = [(e.prompt_ids, e.completion_ids) for e in encoded]
    uncond = [(encoder.unconditional_context, e.completion_ids) for e in encoded]
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    options = {"pad_token_id": pad, "batch_tokens": args.batch_tokens, "max_batch_size": args.max_batch_size}
    flops = FlopCounter(model)
    work = {"conditional": pass_flops(flops, cond), "unconditional": pass_flops(flops, uncond)}
    lengths = np.array([len(c) + len(t) for c, t in cond])
    batches = length_batches(lengths, batch_tokens=args.batch_tokens, max_batch_size=args.max_batch_size)

    sequence_nll(model, cond[:8], **options)  # warm-up (allocator, thread pool)
    sequence_nll(int8, cond[:8], **options)
    for r in range(args.rounds):
        print(f"SmolLM2 round {r + 1}/{args.rounds} ({len(cond)} records)", flush=True)
        for name, m in (("exact", model), ("int8", int8)):
            for pass_name, pairs in (("conditional", cond), ("unconditional", uncond)):
                timer.run(f"{name}_{pass_name}", lambda m=m, pairs=pairs: sequence_nll(m, pairs, **options)[0])
    threads: dict[str, Any] = {}
    if args.thread_n:
        subset = cond[: args.thread_n]
        counts = (1, args.threads)
        for _ in range(args.rounds):
            for t in counts:
                for name, m in (("exact", model), ("int8", int8)):
                    with torch_threads(t):
                        timer.run(f"{name}_threads_{t}", lambda m=m: sequence_nll(m, subset, **options))
        best = {(name, t): timer.best[f"{name}_threads_{t}"] for name in ("exact", "int8") for t in counts}
        many = args.threads
        threads = {"records": len(subset), "torch_threads_in_this_process": torch.get_num_threads(),
                   "seconds": {f"{name}_{t}": round(v, 2) for (name, t), v in best.items()},
                   f"exact_speedup_{many}_vs_1_threads": round(best["exact", 1] / best["exact", many], 2),
                   f"int8_speedup_{many}_vs_1_threads": round(best["int8", 1] / best["int8", many], 2),
                   "int8_vs_exact_1_thread": round(best["exact", 1] / best["int8", 1], 2),
                   f"int8_vs_exact_{many}_threads": round(best["exact", many] / best["int8", many], 2)}

    peak = max(timer.matmul)
    n = len(cond)
    out: dict[str, Any] = {"records": n, "quantize_seconds": round(quantize_seconds, 2),
                           "padding_fraction": padding_fraction(lengths, batches),
                           "batches": len(batches), "mean_batch_size": round(n / len(batches), 1)}
    for name in ("exact", "int8"):
        entry: dict[str, Any] = {}
        for pass_name in ("conditional", "unconditional"):
            seconds = timer.best[f"{name}_{pass_name}"]
            gflops = work[pass_name] / seconds / 1e9
            entry[pass_name] = {"seconds": round(seconds, 2), "records_per_s": round(n / seconds, 2),
                                "gflop": round(work[pass_name] / 1e9, 1), "gflops_per_s": round(gflops, 1),
                                "fraction_of_matmul": round(gflops / peak, 3),
                                "runs_seconds": timer.runs[f"{name}_{pass_name}"]}
        both = entry["conditional"]["seconds"] + entry["unconditional"]["seconds"]
        entry["ifd_records_per_s"] = round(n / both, 2)
        out[name] = entry
    exact_nll = timer.out["exact_conditional"]
    int8_nll = timer.out["int8_conditional"]
    exact_ifd = exact_nll - timer.out["exact_unconditional"]
    int8_ifd = int8_nll - timer.out["int8_unconditional"]
    out["int8_vs_exact"] = {
        "throughput_perplexity": round(timer.best["exact_conditional"] / timer.best["int8_conditional"], 2),
        "throughput_ifd": round((timer.best["exact_conditional"] + timer.best["exact_unconditional"])
                                / (timer.best["int8_conditional"] + timer.best["int8_unconditional"]), 2),
        "spearman_perplexity": spearman(exact_nll, int8_nll),
        "spearman_ifd": spearman(exact_ifd, int8_ifd),
        "max_abs_nll_difference": round(float(np.nanmax(np.abs(exact_nll - int8_nll))), 4),
        "mean_abs_nll_difference": round(float(np.nanmean(np.abs(exact_nll - int8_nll))), 4),
        "top10pct_overlap_ifd": top_overlap(exact_ifd, int8_ifd, 0.1),
    }
    out["threads"] = threads
    return out


def top_overlap(a: np.ndarray, b: np.ndarray, fraction: float) -> float:
    """Share of the top ``fraction`` by ``a`` that is also in the top ``fraction`` by ``b``."""
    k = max(1, int(len(a) * fraction))
    return round(len(set(np.argsort(-a)[:k].tolist()) & set(np.argsort(-b)[:k].tolist())) / k, 3)


def bench_embedder(args: argparse.Namespace, texts: list[str], timer: Timer) -> dict[str, Any]:
    from curate.runtime.models import load_embedder
    from curate.runtime.onnx_embedder import OnnxEncoder
    from curate.scorers.causal_lm import default_cache_dir
    from curate.scorers.embedding import novelty

    st = load_embedder("minilm")
    start = time.perf_counter()
    onnx = OnnxEncoder("minilm", cache_dir=args.cache_dir or default_cache_dir(), batch_size=64)
    setup_seconds = time.perf_counter() - start

    def exact() -> np.ndarray:
        return np.asarray(st.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False))

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    st.encode(texts[:16]), onnx(texts[:16])  # warm-up
    for r in range(args.rounds):
        print(f"MiniLM round {r + 1}/{args.rounds} ({len(texts)} texts)", flush=True)
        timer.run("embed_exact", exact)
        timer.run("embed_onnx", lambda: onnx(texts))
    a, b = unit(timer.out["embed_exact"]), unit(timer.out["embed_onnx"])
    m = min(300, len(texts))
    upper = np.triu_indices(m, 1)
    ids = st.tokenizer(texts, truncation=True, max_length=st.max_seq_length)["input_ids"]
    lengths = np.array([len(i) for i in ids])
    order = np.argsort(-lengths, kind="stable")
    batches = [order[s:s + 64] for s in range(0, len(order), 64)]
    layers = st[0].auto_model.config
    d, inter, n_layers = layers.hidden_size, layers.intermediate_size, layers.num_hidden_layers
    per_token = 2 * n_layers * (4 * d * d + 2 * d * inter)
    work = per_token * lengths.sum() + 4 * n_layers * d * float((lengths.astype(np.float64) ** 2).sum())
    peak = max(timer.matmul)
    out: dict[str, Any] = {"texts": len(texts), "onnx_setup_seconds": round(setup_seconds, 1),
                           "onnx_file": str(onnx.path), "tokens_mean": round(float(lengths.mean()), 1),
                           "padding_fraction_batches_of_64": padding_fraction(lengths, batches)}
    for name in ("exact", "onnx"):
        seconds = timer.best[f"embed_{name}"]
        out[name] = {"seconds": round(seconds, 2), "texts_per_s": round(len(texts) / seconds, 1),
                     "gflops_per_s": round(work / seconds / 1e9, 1),
                     "fraction_of_matmul": round(work / seconds / 1e9 / peak, 3),
                     "runs_seconds": timer.runs[f"embed_{name}"]}
    labeled = min(100, len(texts) // 2)
    out["onnx_vs_exact"] = {
        "throughput": round(timer.best["embed_exact"] / timer.best["embed_onnx"], 2),
        "min_cosine_to_exact": round(float((a * b).sum(axis=1).min()), 6),
        "spearman_pairwise_cosine": spearman((a[:m] @ a[:m].T)[upper], (b[:m] @ b[:m].T)[upper]),
        "spearman_novelty": spearman(novelty(a[labeled:], a[:labeled]), novelty(b[labeled:], b[:labeled])),
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSON/JSONL/CSV/Parquet file of records")
    parser.add_argument("--map", action="append", default=None, help="column mapping TARGET=SOURCE (repeatable)")
    parser.add_argument("--n", type=int, default=200, help="records scored by SmolLM2 (exact and int8)")
    parser.add_argument("--embed-n", type=int, default=1000, help="texts embedded by MiniLM (exact and ONNX)")
    parser.add_argument("--thread-n", type=int, default=50, help="records of the 1-vs-N threads check (0: skip)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the methods; the fastest is kept")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2 cores)")
    parser.add_argument("--batch-tokens", type=int, default=4096)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--cache-dir", type=Path, default=None, help="workspace cache (default workspace's)")
    parser.add_argument("--skip", choices=["lm", "embedder"], action="append", default=[])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "speed.json")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"{args.data} is absent: nothing to benchmark. Pass --data FILE (prompt/completion or Alpaca columns).")
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from curate.ingest.formats import parse_mapping
    from curate.runtime.embeddings import record_text

    torch.set_num_threads(args.threads)
    records, skipped = load_records(args.data, max(args.n, args.embed_n), parse_mapping(args.map))
    if not records:
        print(f"{args.data} has no prompt-completion records ({skipped} rows skipped); nothing to benchmark.")
        return 0
    timer = Timer()
    result: dict[str, Any] = {
        "benchmark": "speed", "data": str(args.data), "threads": args.threads, "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "load_average_at_start": [round(v, 1) for v in os.getloadavg()],
        "command": " ".join([".venv/bin/python", "benchmarks/bench_speed.py", *sys.argv[1:]]),
    }
    partial = args.out.with_name(args.out.stem + ".partial.json")
    partial.parent.mkdir(parents=True, exist_ok=True)
    if "lm" not in args.skip:
        result["smollm2"] = bench_lm(args, records[: args.n], timer)
        partial.write_text(json.dumps(result, indent=2) + "\n")  # survives an interrupted run
    if "embedder" not in args.skip:
        result["minilm"] = bench_embedder(args, [record_text(r) for r in records[: args.embed_n]], timer)
    result["matmul_2048_gflops_per_s"] = {"best": round(max(timer.matmul), 1),
                                          "median": round(float(np.median(timer.matmul)), 1),
                                          "measurements": len(timer.matmul)}
    result["load_average_at_end"] = [round(v, 1) for v in os.getloadavg()]
    if "smollm2" in result:
        fraction = result["smollm2"]["exact"]["conditional"]["fraction_of_matmul"]
        result["targets"] = {"scoring_fraction_of_matmul": 0.4, "exact_meets": fraction >= 0.4,
                             "spearman": 0.99,
                             "int8_meets": min(result["smollm2"]["int8_vs_exact"]["spearman_perplexity"],
                                               result["smollm2"]["int8_vs_exact"]["spearman_ifd"]) >= 0.99}
    if "minilm" in result:
        result.setdefault("targets", {})["onnx_meets"] = min(
            result["minilm"]["onnx_vs_exact"]["spearman_pairwise_cosine"],
            result["minilm"]["onnx_vs_exact"]["spearman_novelty"]) >= 0.99
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    partial.unlink(missing_ok=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
