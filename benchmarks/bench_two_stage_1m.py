"""Two-stage scoring on a generated pool of 1,000,000 prompt-completion records: what fits in an hour (issue 20).

The pool recombines the rows of a real prompt-completion set (default: the shared Alpaca sample): each record takes
one row's prompt and, mostly, its own answer, sometimes another row's answer or a truncated one, so lengths,
vocabulary and the mix of good and poor pairs are those of real data while every record is distinct. Measured in one
run: the exact scorer (IFD under SmolLM2) on a seeded sample (its rate, and the proxy's training data); the proxy's
features and predictions over the whole pool; the exact scorer on a slice of the proxy's short list (its rate there).
From those rates: the short list that fits one hour, and records per hour of the two-stage path and the exact path.
The exact stage is not run over the whole short list (hours); its time is the measured rate times its size.

Run: ``.venv/bin/python benchmarks/bench_two_stage_1m.py`` (``--n 1000000 --sample 300``). Writes
``benchmarks/results/two_stage_1m.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.bench.rewrite_budget import load_pairs  # noqa: E402
from curate.ingest.formats import parse_mapping  # noqa: E402
from curate.ingest.records import Record, record_id  # noqa: E402
from curate.runtime.catalog import BuildContext, build_scorer  # noqa: E402
from curate.scorers.cache import batch_plan  # noqa: E402
from curate.scorers.two_stage import HELDOUT_SHARE, Proxy  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alpaca_5000" / "alpaca_5000.json"
HOUR = 3600.0


def generated_pool(rows: list[tuple[str, str]], n: int, seed: int) -> list[Record]:
    """``n`` distinct records from ``rows``: 80% a row's own answer, 10% another row's, 10% its first 20-60%."""
    rng = np.random.default_rng(seed)
    own = rng.integers(len(rows), size=n)
    other = rng.integers(len(rows), size=n)
    kind = rng.random(n)
    cut = rng.uniform(0.2, 0.6, size=n)
    out = []
    for i in range(n):
        prompt, answer = rows[own[i]]
        if kind[i] < 0.1:
            answer = rows[other[i]][1]
        elif kind[i] < 0.2:
            words = answer.split()
            answer = " ".join(words[: max(1, int(len(words) * cut[i]))])
        fields = {"prompt": f"{prompt}\n(request {i})", "completion": answer}
        out.append(Record(record_id("example", fields), "example", fields))
    return out


def exact_scores(scorer: Any, records: list[Record]) -> np.ndarray:
    """``(n,)`` exact scores, in the batches the score cache uses (:func:`curate.scorers.cache.batch_plan`)."""
    parts = [np.asarray(scorer.score([records[i] for i in batch]), dtype=np.float64)
             for batch in batch_plan(scorer, len(records))]
    return np.concatenate(parts) if parts else np.zeros(0)


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--map", action="append", default=[], help="TARGET=SOURCE column mapping")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=300, help="records scored exactly to train the proxy")
    parser.add_argument("--slice", type=int, default=100, help="short-listed records scored exactly (their rate)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "two_stage_1m.json")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} is absent (the shared benchmark data is not next to this checkout)")
        return
    import torch
    from scipy.stats import spearmanr

    torch.set_num_threads(2)
    mapping = parse_mapping(args.map) or None
    rows = load_pairs(args.data, mapping)
    pool, gen_s = timed(generated_pool, rows, args.n, args.seed)
    print(f"generated {len(pool):,} records in {gen_s:.0f} s", flush=True)
    scorer = build_scorer("ifd", BuildContext(cache_dir=ROOT / ".bench-cache"))
    scorer.score(pool[:2])  # load the model outside the timed runs
    rng = np.random.default_rng(args.seed)
    in_sample = np.sort(rng.choice(len(pool), size=args.sample, replace=False))
    sampled = [pool[i] for i in in_sample]
    exact_sample, sample_s = timed(exact_scores, scorer, sampled)
    print(f"exact sample: {args.sample} records in {sample_s:.0f} s", flush=True)
    valid = np.flatnonzero(np.isfinite(exact_sample))
    order = rng.permutation(valid)
    n_test = int(round(HELDOUT_SHARE * len(order)))
    held = Proxy().fit([sampled[i] for i in order[n_test:]], exact_sample[order[n_test:]])
    rho = float(spearmanr(exact_sample[order[:n_test]], held.predict([sampled[i] for i in order[:n_test]])).statistic)
    proxy, fit_s = timed(lambda: Proxy().fit([sampled[i] for i in valid], exact_sample[valid]))
    ranked, predict_s = timed(proxy.predict, pool)
    print(f"proxy: fitted in {fit_s:.1f} s, ranked {len(pool):,} records in {predict_s:.0f} s", flush=True)
    top = np.argsort(-ranked, kind="stable")
    slice_records = [pool[i] for i in top[: args.slice]]
    _, slice_s = timed(exact_scores, scorer, slice_records)
    per_sample, per_short = sample_s / args.sample, slice_s / args.slice
    proxy_s = fit_s + predict_s
    affordable = max(0, int((HOUR - sample_s - proxy_s) / per_short))
    hour_shortlist = affordable / len(pool)
    result: dict[str, Any] = {
        "scorer": scorer.key(), "data": str(args.data), "records": len(pool), "sample": args.sample,
        "seed": args.seed, "generate_seconds": round(gen_s, 1),
        "exact_seconds_per_record_sample": round(per_sample, 4),
        "exact_seconds_per_record_shortlist": round(per_short, 4),
        "exact_records_per_hour": round(HOUR / per_sample),
        "proxy_fit_seconds": round(fit_s, 2), "proxy_predict_seconds": round(predict_s, 1),
        "proxy_records_per_hour": round(HOUR * len(pool) / predict_s),
        "proxy_spearman_heldout": round(rho, 4),
        "one_hour": {"shortlisted": affordable, "shortlist_share": round(hour_shortlist, 5),
                     "seconds": round(sample_s + proxy_s + affordable * per_short, 1),
                     "records_per_hour": round(len(pool) * HOUR / (sample_s + proxy_s + affordable * per_short))},
        "by_shortlist": {f"{share:.3f}": {
            "exact_scored": args.sample + math.ceil(share * len(pool)),
            "hours": round((sample_s + proxy_s + math.ceil(share * len(pool)) * per_short) / HOUR, 2),
            "records_per_hour": round(len(pool) * HOUR / (sample_s + proxy_s + math.ceil(share * len(pool))
                                                             * per_short))} for share in (0.001, 0.005, 0.01, 0.05)},
        "exact_path_hours": round(len(pool) * per_sample / HOUR, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "note": "exact stage time = measured seconds per short-listed record x short-list size; the proxy's time is "
                "measured over the whole pool",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
