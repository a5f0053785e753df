"""Ray engine vs local engine on the same machine and the same records: throughput, overhead and identity.

Run: ``.venv/bin/python benchmarks/bench_ray.py`` (``make bench`` runs it). Writes ``benchmarks/results/ray.json``.

Passes, each run once by the local engine (this process, 2 torch threads) and once by the Ray engine (a local Ray
cluster with ``--workers`` actors of 1 CPU each, plus one logical CPU for Ray Data's reads and writes):

* **perplexity** of the first ``--n-ppl`` example records of ``--data`` (default: the shared Alpaca sample; skipped
  when absent) under SmolLM2, ``--batch`` records per scoring batch on both engines (so the batches, and hence the
  scores, are the same);
* **minhash** signatures of ``--n-minhash`` texts: the Alpaca instructions, outputs, both joined, and a lower-cased
  copy of each joined text, cycled to the requested count (synthetic sentences when the data is absent);
* **embed**: MiniLM vectors of the first ``--n-embed`` joined texts (``--embed-batch`` texts per forward pass).

Each Ray figure is the wall time of one pass on an already started cluster: writing the Parquet input, starting the
actors (each loads its model), computing, writing and reading the Parquet output, storing the results; each local
figure includes loading the model too. The cluster's start-up is reported apart. Every pass checks that both
engines' results are bit-identical; perplexity is bit-identical only at equal torch thread counts (the local engine
runs 2 threads here, each actor 1), so it also reports the largest relative difference and re-scores the first batch
with 1 thread. The load average of the machine is recorded: on a shared machine other jobs take CPU from both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alpaca_5000" / "alpaca_5000.json"
WORDS = ("data model record score label expert answer prompt cluster batch token sample review queue round "
         "rank rewrite pool filter train adapter curve random select").split()


def _texts(path: Path, n: int) -> tuple[list[str], str]:
    """``n`` texts for MinHash / embeddings, and where they came from."""
    if path.exists():
        rows = json.loads(path.read_text())
        joined = ["\n".join(str(r.get(k) or "") for k in ("instruction", "input", "output")).strip() for r in rows]
        pool = [str(r.get("instruction") or "") for r in rows] + [str(r.get("output") or "") for r in rows]
        pool += joined + [t.lower() for t in joined]
        source = str(path)
    else:
        import random

        rng = random.Random(0)
        pool = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60))) for _ in range(5000)]
        source = "synthetic (data file absent)"
    return [pool[i % len(pool)] for i in range(n)], source


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _figures(n: int, local_s: float, ray_s: float, identical: bool, **extra: Any) -> dict[str, Any]:
    return {"n": n, "local_seconds": round(local_s, 2), "ray_seconds": round(ray_s, 2),
            "local_per_s": round(n / local_s, 2), "ray_per_s": round(n / ray_s, 2),
            "ray_over_local": round(local_s / ray_s, 3), "identical": identical, **extra}


def _perplexity(args: argparse.Namespace, local_ws: Any, ray_ws: Any, ray: Any) -> dict[str, Any]:
    import numpy as np
    import torch

    from curate.ingest.sources import ingest
    from curate.runtime.catalog import BuildContext, build_scorer
    from curate.runtime.engine import get_engine

    for ws in (local_ws, ray_ws):
        ingest(ws, args.data)
    records = [r for r in local_ws.store.iter_records() if r.kind == "example"][: args.n_ppl]
    ctx = BuildContext(cache_dir=args.cache_dir)
    get_engine("local").score(local_ws, "perplexity", ctx, records[:2], batch_size=args.batch)  # convert SmolLM2 once
    records = records[2:]
    (a, _), local_s = _timed(lambda: get_engine("local").score(local_ws, "perplexity", ctx, records,
                                                               batch_size=args.batch))
    (b, report), ray_s = _timed(lambda: ray.score(ray_ws, "perplexity", ctx, records, batch_size=args.batch))
    # Different torch thread counts split matrix-product reductions differently: the last bits may differ. The
    # first batch scored again here with the actors' thread count (1) must match the Ray scores bit for bit.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    first = build_scorer("perplexity", ctx).score(records[: args.batch])
    torch.set_num_threads(threads)
    with np.errstate(invalid="ignore"):
        rel = float(np.nanmax(np.abs(a - b) / np.abs(a)))
    return _figures(len(records), local_s, ray_s, a.tobytes() == b.tobytes(), batch=args.batch,
                    batches=-(-len(records) // args.batch), scorer_key=report.scorer_key, local_threads=threads,
                    max_relative_difference=rel, differing=int((a != b).sum()),
                    first_batch_identical_at_1_thread=first.tobytes() == b[: args.batch].tobytes())


def _minhash(args: argparse.Namespace, texts: list[str], local_ws: Any, ray_ws: Any, ray: Any) -> dict[str, Any]:
    from curate.filters.dedup_minhash import MinHashParams
    from curate.runtime.engine import get_engine

    params = MinHashParams()
    (a, local_s) = _timed(lambda: get_engine("local").minhash(local_ws, texts, params))
    (b, ray_s) = _timed(lambda: ray.minhash(ray_ws, texts, params))
    identical = a[0].tobytes() == b[0].tobytes() and a[1].tolist() == b[1].tolist()
    return _figures(len(texts), local_s, ray_s, identical, texts_per_call=ray.texts_per_call["minhash"])


def _embed(args: argparse.Namespace, texts: list[str], local_ws: Any, ray_ws: Any, ray: Any) -> dict[str, Any]:
    from curate.runtime.engine import get_engine

    texts = list(dict.fromkeys(texts))[: args.n_embed]
    a, local_s = _timed(lambda: get_engine("local").embed(local_ws, texts, batch_size=args.embed_batch))
    b, ray_s = _timed(lambda: ray.embed(ray_ws, texts, batch_size=args.embed_batch))
    return _figures(len(texts), local_s, ray_s, a.tobytes() == b.tobytes(), batch=args.embed_batch,
                    chunks=-(-len(texts) // (16 * args.embed_batch)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n-ppl", type=int, default=502, help="records scored (2 warm the local model up)")
    parser.add_argument("--batch", type=int, default=125, help="records per scoring batch, on both engines")
    parser.add_argument("--n-minhash", type=int, default=20_000)
    parser.add_argument("--n-embed", type=int, default=1000)
    parser.add_argument("--embed-batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="Ray actors per pass")
    parser.add_argument("--skip", default="", help="comma-separated passes to skip: perplexity,minhash,embed")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache", help="converted models")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ray.json")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    import torch

    from curate.runtime.engine import get_engine
    from curate.runtime.engine_ray import ray_session
    from curate.store.workspace import Workspace

    torch.set_num_threads(2)
    root = ROOT / ".bench-cache" / "ray-bench"  # short: Ray's socket paths live below <workspace>/cache/ray-tmp
    shutil.rmtree(root, ignore_errors=True)
    local_ws, ray_ws = Workspace.open(root / "local"), Workspace.open(root / "ray")
    texts, source = _texts(args.data, args.n_minhash)
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                          "load_average_before": [round(x, 1) for x in os.getloadavg()]},
                              "workers": args.workers, "texts": source, "passes": {}}
    ray = get_engine("ray", workers=args.workers)
    started = time.perf_counter()
    with ray_session(None, ray_ws, num_cpus=args.workers + 1):
        result["ray_start_seconds"] = round(time.perf_counter() - started, 2)
        print(f"ray cluster started in {result['ray_start_seconds']} s", flush=True)
        if "perplexity" not in skip and args.data.exists():
            result["passes"]["perplexity"] = _perplexity(args, local_ws, ray_ws, ray)
        elif "perplexity" not in skip:
            result["passes"]["perplexity"] = f"skipped: {args.data} is absent"
        if "minhash" not in skip:
            result["passes"]["minhash"] = _minhash(args, texts, local_ws, ray_ws, ray)
        if "embed" not in skip:
            result["passes"]["embed"] = _embed(args, texts, local_ws, ray_ws, ray)
        for name, figures in result["passes"].items():
            print(name, json.dumps(figures), flush=True)
    result["machine"]["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
    shutil.rmtree(root, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
