"""Classification label efficiency on banking77, trec6 and ag_news, with the default strategy (and its settings)
chosen leave-one-data-set-out (see :mod:`curate.bench.classify_suite`).

Every set: MiniLM embeddings + logistic regression, 2 labels per class, batches of 100 up to 1,500 labels, 10%
random mix, oracle noise 0; banking77 train/test, trec6 train/test (the 6 coarse labels), ag_news (the 7,600-row
AG News test split) cut 80/20 into pool/test with split seed 0. Each candidate's ratio = labels random needs for its
1,500-label accuracy / labels the candidate needs for it. For each set left out, the candidate with the best mean
ratio on the other two (never one that lost to random there) is reported on the left-out one.

Writes benchmarks/results/selection_classify.json and selection_classify_<set>.png.

Usage::

    .venv/bin/python benchmarks/bench_selection_classify.py [--seeds 10] [--batch 100] [--strategies a,b:key=value,...]
        [--features minilm|minilm+words|minilm+tfidf] [--resume-dir DIR]
        [--out benchmarks/results/selection_classify.json]
    .venv/bin/python benchmarks/bench_selection_classify.py --merge A.json B.json --out C.json   # no runs
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.bench.classify_suite import DEFAULT_CANDIDATES, run_classify_suite, shared_classify_sets  # noqa: E402
from curate.bench.classify_suite_report import merge_suites, ratio_table, write_plots  # noqa: E402
from curate.bench.label_efficiency import BenchConfig, rich_progress  # noqa: E402
from curate.bench.label_efficiency_features import EmbeddingPlusTfidf, EmbeddingPlusWords, MiniLMFeaturizer  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
# The plain strategies (C=10, 2 clusters per pick, 5 candidates per pick, 10% random mix), plus settings chosen
# leave-one-out like the strategies (each is a candidate of its own). C=1 is what `curate loop` fits.
CANDIDATES = (
    *DEFAULT_CANDIDATES,
    "margin:random_mix=0", "cluster-margin:random_mix=0", "prefilter-cluster-margin:random_mix=0", "badge:random_mix=0",
    "cluster-margin:random_mix=0.2", "prefilter-cluster-margin:random_mix=0.2",
    "cluster-margin:clusters_per_pick=1", "cluster-margin:clusters_per_pick=4",
    "prefilter-cluster-margin:candidates_per_pick=3", "prefilter-cluster-margin:candidates_per_pick=10",
    "rr-cluster-margin:candidates_per_pick=10",
    "margin:C=1", "cluster-margin:C=1", "prefilter-cluster-margin:C=1", "badge:C=1",
    # Stage 2, added after the candidates above had run: every fold (choosing on its two other sets) chose
    # prefilter-cluster-margin:random_mix=0, so its own setting (candidates per pick) is varied around that choice.
    "prefilter-cluster-margin:candidates_per_pick=3,random_mix=0",
    "prefilter-cluster-margin:candidates_per_pick=10,random_mix=0",
    # Stage 3, added 2026-12-06 after all of the above had run: Zhdanov's DBAL proper (the record nearest each
    # centroid of a margin-weighted k-means, where prefilter-cluster-margin sends each cluster's lowest margin),
    # with the same settings as prefilter-cluster-margin (its base form is among the plain strategies above).
    "prefilter-centroid-margin:random_mix=0", "prefilter-centroid-margin:random_mix=0.2",
    "prefilter-centroid-margin:candidates_per_pick=3", "prefilter-centroid-margin:candidates_per_pick=10",
    "prefilter-centroid-margin:candidates_per_pick=3,random_mix=0",
    "prefilter-centroid-margin:candidates_per_pick=10,random_mix=0",
)


def main(argv: list[str] | None = None) -> int:
    """Run the suite and write the JSON and plots; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10,
                    help="seeds per candidate (10: at 5 the per-seed intervals were too wide to judge)")
    ap.add_argument("--strategies", default=";".join(CANDIDATES),
                    help="candidates separated by ';': strategy or strategy:key=value,key=value")
    ap.add_argument("--budget", type=int, default=None, help="last label budget (default 1500)")
    ap.add_argument("--batch", type=int, default=None,
                    help="labels per round (default 100; the label-teach recipe asks 20 per round)")
    ap.add_argument("--features", choices=("minilm", "minilm+words", "minilm+tfidf"), default="minilm",
                    help="minilm (curate's default embedder); minilm+words: the loop's --embedder minilm+words (word "
                         "features fitted on the pool, EmbeddingPlusWords); minilm+tfidf: the earlier measurement's "
                         "vocabulary TF-IDF fitted on pool and test together (EmbeddingPlusTfidf)")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    ap.add_argument("--resume-dir", type=Path, default=None,
                    help="keep each finished (set, settings) run here and reuse it when run again")
    ap.add_argument("--data-dir", type=Path, default=SHARED)
    ap.add_argument("--sets", default=None, help="comma list: only these of banking77, trec6, ag_news (default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "selection_classify.json")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="instead of running: merge suites written by this script with the same sets and settings "
                         "but other candidates (random's curves must match), and choose again over all of them")
    args = ap.parse_args(argv)
    if args.merge:
        return _write(merge_suites([json.loads(p.read_text()) for p in args.merge]), args.out,
                      argv if argv is not None else sys.argv[1:], seconds=0.0)
    sets = shared_classify_sets(args.data_dir, say=print)
    if args.sets:
        wanted = {name.strip() for name in args.sets.split(",") if name.strip()}
        if wanted - {s.name for s in sets}:
            ap.error(f"--sets: unknown or missing {', '.join(sorted(wanted - {s.name for s in sets}))}; have "
                     f"{', '.join(s.name for s in sets)}")
        sets = [s for s in sets if s.name in wanted]
    if not sets:
        print(f"skipped: no classification set under {args.data_dir}")
        return 0
    started = time.perf_counter()
    candidates = [c.strip() for c in args.strategies.split(";") if c.strip()]
    from threadpoolctl import threadpool_limits

    # one BLAS / OpenMP thread: k-means and the small logistic fits gain nothing from more, and with another job
    # on the machine two threads each ran this suite ~20x slower (measured: 0.1 vs 2.5 steps/s)
    with threadpool_limits(limits=1), rich_progress(transient=True) as progress:
        base = BenchConfig(task="classify", budget=args.budget, batch=args.batch)
        featurizer = None
        if args.features == "minilm+tfidf":
            featurizer = EmbeddingPlusTfidf(MiniLMFeaturizer(args.cache_dir, progress))
        elif args.features == "minilm+words":
            featurizer = EmbeddingPlusWords(MiniLMFeaturizer(args.cache_dir, progress))
        suite = run_classify_suite(sets, strategies=candidates, seeds=args.seeds, base=base, cache_dir=args.cache_dir,
                                   text_featurizer=featurizer, progress=progress, resume_dir=args.resume_dir,
                                   say=lambda line: print(line, flush=True))
    return _write(suite, args.out, argv if argv is not None else sys.argv[1:],
                  seconds=time.perf_counter() - started)


def _write(suite: dict[str, Any], out: Path, argv: list[str], *, seconds: float) -> int:
    """Write the suite's JSON and plots, print its table; returns the exit code."""
    suite["command"] = ".venv/bin/python benchmarks/bench_selection_classify.py " + shlex.join(argv)
    suite["seconds"] = round(seconds, 1)
    suite["plots"] = write_plots(suite, out.parent, out.stem)
    for entry in suite["sets"].values():  # per-class figures stay out of this file (bench label-efficiency has them)
        for report in entry["groups"].values():
            for final in report["runs"]["noise_0"]["final"].values():
                final.pop("per_class", None)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(suite, indent=1))
    print("\n".join(ratio_table(suite)))
    print(f"wrote {out} and {len(suite['plots'])} plots ({suite['seconds']:.0f} s; the runs took "
          f"{suite['seconds_of_runs']:.0f} s, {suite.get('runs_read_back', 0)} of {suite.get('runs', 0)} read back "
          "from --resume-dir)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
