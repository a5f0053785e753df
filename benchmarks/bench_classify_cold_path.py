"""label-teach's own path from no labels: a cold k-center round, then its strategy, against random from there.

The selection suites start every loop from a stratified seed set (2 labels per class), which a user never has: with
no model, label-teach's first round is the cold start (``ColdStartScorer`` + ``KCenterGreedy`` on the loop's
features, :mod:`curate.loop.pool_loop`), and its strategy (DBAL: ``prefilter-centroid-margin``, 10 candidates per
pick, no random mix) takes over from the labels that round bought. Here, on the suite's sets and the two no default
was chosen on (TREC's fine labels, SMS spam): the first 20 labels by k-center greedy (cosine) on the ``minilm+words``
features, then 20 a round by label-teach's strategy or at random, to 200 labels; test accuracy (higher = better) at
every budget, 10 loop seeds (the k-center start itself is deterministic: the same for every seed).

Writes benchmarks/results/classify_cold_path.json.

Usage::

    .venv/bin/python benchmarks/bench_classify_cold_path.py [--sets sms_spam,trec6] [--seeds 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.bench import label_efficiency_loops as loops  # noqa: E402
from curate.bench.classify_suite import SuiteSet, shared_classify_sets  # noqa: E402
from curate.bench.label_efficiency import BenchConfig, ProgressFn, _classify_data, rich_progress  # noqa: E402
from curate.bench.label_efficiency_data import load_labelled, make_split  # noqa: E402
from curate.bench.label_efficiency_features import (  # noqa: E402
    EmbeddingPlusWords,
    MiniLMFeaturizer,
    classify_features,
)
from curate.selectors import KCenterGreedy  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DBAL = "prefilter-centroid-margin"
BUDGETS = (20, 40, 60, 80, 100, 140, 200)


def unseen_sets(data_dir: Path) -> list[tuple[SuiteSet, list[str] | None]]:
    """TREC's fine labels and SMS spam (``label<TAB>text``, a seeded 80/20 split), when their files exist."""
    trec, sms = data_dir / "trec6", data_dir / "sms_spam" / "SMSSpamCollection"
    out: list[tuple[SuiteSet, list[str] | None]] = []
    if (trec / "train.csv").exists() and (trec / "test.csv").exists():
        out.append((SuiteSet("trec50", trec / "train.csv", trec / "test.csv", {"label": "fine_label"}), None))
    if sms.exists():
        out.append((SuiteSet("sms_spam", sms, None, {}, test_size=0.2), ["label", "text"]))
    return out


def run_set(s: SuiteSet, columns: list[str] | None, seeds: int, cache_dir: Path,
            progress: ProgressFn | None) -> dict[str, object]:
    """Curves ``{strategy: (seeds, len(BUDGETS))}`` from the k-center start, and the start's class count."""
    cfg = BenchConfig(task="classify", seeds=seeds, strategies=("random", DBAL), features="minilm+words", batch=20,
                      random_mix=0.0, candidates_per_pick=10).resolved()
    data = load_labelled(s.data, "classify", mapping=s.mapping, columns=columns)
    test = load_labelled(s.test, "classify", mapping=s.mapping) if s.test else None
    split = make_split(data, "classify", test=test, test_size=s.test_size, seed=0)
    x, C, base = classify_features(EmbeddingPlusWords(MiniLMFeaturizer(cache_dir, progress)), split, cfg.C)
    cfg = dataclasses.replace(cfg, C=C, base=base)
    curves: dict[str, list[list[float]]] = {"random": [], DBAL: []}
    start_classes = 0
    for seed in range(seeds):
        cd = _classify_data(split, x, 0.0, seed)
        start = np.sort(np.asarray(KCenterGreedy(metric="cosine").select(
            np.ones(len(cd.x_pool)), BUDGETS[0], embeddings=cd.x_pool, rng=np.random.default_rng([seed, 1])),
            dtype=np.intp))
        start_classes = len(set(cd.answers[start].tolist()))
        for strategy, curve in curves.items():
            result = loops.run_classify(strategy, cd, start, cfg.loop_config(BUDGETS),
                                        rng=np.random.default_rng([seed, 2]))
            curve.append([round(v, 5) for v in result.curve])
    r, d = np.array(curves["random"]), np.array(curves[DBAL])
    gain = d - r
    return {"pool": len(split.pool), "test": len(split.test), "classes": len(set(split.pool.labels)),
            "classes_in_the_cold_round": start_classes,
            "random": np.round(r.mean(0), 4).tolist(), DBAL: np.round(d.mean(0), 4).tolist(),
            "gain": np.round(gain.mean(0), 4).tolist(),
            "seeds_behind_random": [int(v) for v in (gain < 0).sum(0)], "per_seed": curves}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="", help="comma list of set names (default: every one found)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    ap.add_argument("--data-dir", type=Path, default=SHARED)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "classify_cold_path.json")
    args = ap.parse_args(argv)
    found = [(s, None) for s in shared_classify_sets(args.data_dir, say=print)] + unseen_sets(args.data_dir)
    wanted = {n.strip() for n in args.sets.split(",") if n.strip()}
    sets = [(s, c) for s, c in found if not wanted or s.name in wanted]
    if not sets:
        print(f"skipped: no classification set under {args.data_dir}" + (f" named {args.sets}" if wanted else ""))
        return 0
    started, report = time.perf_counter(), {}
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), rich_progress(transient=True) as progress:
        for s, columns in sets:
            report[s.name] = row = run_set(s, columns, args.seeds, args.cache_dir, progress)
            print(f"{s.name}: gain over random {row['gain']} at {list(BUDGETS)} labels; seeds behind "
                  f"{row['seeds_behind_random']}", flush=True)
    out = {"benchmark": "classify_cold_path", "metric": "test accuracy (higher = better)", "budgets": list(BUDGETS),
           "path": "k-center greedy 20 (cosine, minilm+words), then 20 a round by label-teach's strategy or random",
           "seeds": args.seeds, "sets": report,
           "command": ".venv/bin/python benchmarks/bench_classify_cold_path.py " + " ".join(argv or sys.argv[1:]),
           "seconds": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
