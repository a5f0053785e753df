"""Two-stage scoring vs exact scoring of the same pool, side by side in one run (issue 20, first step).

The exact path scores every record of a seeded pool with the exact scorer (IFD under SmolLM2 by default). The
two-stage path (:func:`curate.scorers.two_stage.two_stage_scores`) runs in a fresh workspace, so nothing comes from
the cache: it scores a seeded sample exactly, fits the proxy, and scores exactly only the proxy's short list and a
random check slice. Reported: records per hour of each path; the proxy's Spearman on held-out sample records
and on every pool record outside its sample; against the exact path's scores of the whole pool, how much of the exact
top 1% / 5% the two-stage path scored exactly (recall) and how much of the exact top-k a top-k selection from
two-stage scores keeps. The figures for a pool of 1,000,000 are extrapolated from the measured per-record costs of
each stage.

Run: ``.venv/bin/python benchmarks/bench_two_stage.py --n 1000 --sample 200`` (any prompt-completion file through
``--data`` / ``--map``; default: the shared Alpaca sample). Writes ``benchmarks/results/two_stage.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.ingest.formats import parse_mapping  # noqa: E402
from curate.ingest.sources import ingest  # noqa: E402
from curate.runtime.catalog import BuildContext, build_scorer  # noqa: E402
from curate.runtime.embeddings import Embedder  # noqa: E402
from curate.scorers.cache import score_records  # noqa: E402
from curate.scorers.proxy import ProxySettings, relevance  # noqa: E402
from curate.scorers.two_stage import Proxy, two_stage_scores  # noqa: E402
from curate.store.workspace import Workspace  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alpaca_5000" / "alpaca_5000.json"


def top_share(exact: np.ndarray, chosen: np.ndarray, share: float) -> float:
    """Of the exact top ``share`` of the pool, the fraction inside the boolean mask ``chosen``."""
    k = max(1, math.ceil(share * len(exact)))
    top = np.argsort(-np.nan_to_num(exact, nan=-np.inf), kind="stable")[:k]
    return float(chosen[top].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--map", action="append", default=[], help="TARGET=SOURCE column mapping")
    parser.add_argument("--scorer", default="ifd")
    parser.add_argument("--n", type=int, default=1000, help="pool size")
    parser.add_argument("--sample", type=int, default=200, help="records scored exactly to train the proxy")
    parser.add_argument("--shortlist", type=float, default=0.05)
    parser.add_argument("--check", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text-proxy", action="store_true",
                        help="a proxy without the MiniLM prompt-answer cosine (curate score --no-proxy-embeddings)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "two_stage.json")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} is absent (the shared benchmark data is not next to this checkout)")
        return
    import torch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="curate-bench-") as tmp:
        exact_ws = Workspace.open(Path(tmp) / "exact")
        ingest(exact_ws, args.data, mapping=parse_mapping(args.map))
        everything = list(exact_ws.store.iter_records())
        pick = np.sort(np.random.default_rng(args.seed).choice(len(everything), min(args.n, len(everything)),
                                                               replace=False))
        records = [everything[i] for i in pick]
        scorer = build_scorer(args.scorer, BuildContext(cache_dir=ROOT / ".bench-cache"))
        scorer.score(records[:2])  # load the model outside the timed runs
        print(f"exact path: {len(records)} records", flush=True)
        start = time.perf_counter()
        exact, _ = score_records(exact_ws.store, scorer, records,
                                 on_progress=lambda d, t: print(f"  exact {d}/{t}", flush=True))
        exact_s = time.perf_counter() - start
        two_ws = Workspace.open(Path(tmp) / "two")
        ingest(two_ws, args.data, mapping=parse_mapping(args.map))
        print("two-stage path", flush=True)
        start = time.perf_counter()
        settings = ProxySettings(embedder=None if args.text_proxy else "minilm")
        embed = None if args.text_proxy else Embedder("minilm", cache_dir=two_ws.cache_dir).embed_texts
        values, report = two_stage_scores(two_ws.store, scorer, records, shortlist=args.shortlist,
                                          sample=args.sample, check=args.check, seed=args.seed, settings=settings,
                                          embed=embed)
        two_s = time.perf_counter() - start
        # The same seeded sample as the two-stage run, its proxy, and its ranking of every record outside it.
        n = len(records)
        in_sample = np.sort(np.random.default_rng(args.seed).choice(n, size=min(args.sample, n), replace=False))
        fit_on = [i for i in in_sample if np.isfinite(exact[i])]
        cosine = None if embed is None else relevance(records, embed)  # from the cache the run filled
        part = (lambda rows: None) if cosine is None else (lambda rows: cosine[rows])
        proxy = Proxy(settings).fit([records[i] for i in fit_on], exact[fit_on], part(fit_on))
        start = time.perf_counter()
        ranked = proxy.predict(records, cosine)
        proxy_s = time.perf_counter() - start
    from scipy.stats import spearmanr

    outside = np.setdiff1d(np.flatnonzero(np.isfinite(exact)), in_sample)
    rho_pool = float(spearmanr(ranked[outside], exact[outside]).statistic)

    chosen = ~np.isnan(values)
    k = math.ceil(args.shortlist * len(records))
    exact_top = set(np.argsort(-np.nan_to_num(exact, nan=-np.inf), kind="stable")[:k].tolist())
    two_top = set(np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:k].tolist())
    per_exact = exact_s / len(records)
    per_proxy = (proxy_s + report.embed_seconds) / len(records)  # ranking, and embedding for the cosine
    million = 1_000_000
    exact_million = args.sample + math.ceil((args.shortlist + args.check) * million)
    result = {
        "scorer": report.scorer_key, "data": str(args.data), "records": len(records), "sample": args.sample,
        "shortlist": args.shortlist, "check": args.check, "seed": args.seed,
        "exact_seconds": round(exact_s, 1), "exact_records_per_hour": round(3600 / per_exact),
        "two_stage_seconds": round(two_s, 1), "two_stage_records_per_hour": round(3600 * len(records) / two_s),
        "speedup": round(exact_s / two_s, 2), "exact_scored_by_two_stage": report.exact_scored,
        "proxy_spearman_heldout": report.spearman_heldout,
        "proxy_recall_top5_heldout": report.recall_top5_heldout,
        "recall_exact_top1": round(top_share(exact, chosen, 0.01), 3),
        "recall_exact_top5": round(top_share(exact, chosen, 0.05), 3),
        "topk_overlap_with_exact": round(len(exact_top & two_top) / k, 3),
        "proxy_spearman_pool": round(rho_pool, 4),
        "extrapolated_1m": {
            "exact_scored": exact_million, "exact_hours": round(exact_million * per_exact / 3600, 1),
            "proxy_hours": round(million * per_proxy / 3600, 2),
            "records_per_hour": round(million / (exact_million * per_exact + million * per_proxy) * 3600),
            "note": "exact cost per record x (sample + (shortlist + check) x 1M) + proxy cost per record (ranking "
                    "and embedding prompt and answer) x 1M",
        },
        "proxy_key": report.proxy_key, "proxy_features": report.proxy_features,
        "embed_seconds": report.embed_seconds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
