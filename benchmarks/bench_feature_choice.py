"""label-teach's feature choice on random labelled subsets (see :mod:`curate.bench.feature_choice_check`): test
accuracy with the word columns never read, always read, read where cross-validation says they help (the product's
rule), and by a one-standard-error rule, on the classification suite's sets and splits (MiniLM + words features).

Writes ``benchmarks/results/feature_choice.json``. MiniLM embeddings are cached in ``--cache-dir``.

Usage::

    .venv/bin/python benchmarks/bench_feature_choice.py [--sets banking77,trec6,ag_news] [--draws 6]
        [--sizes 60,100,200,400,800,1500]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="banking77,trec6,ag_news")
    parser.add_argument("--sizes", default="60,100,200,400,800,1500", help="labelled-subset sizes")
    parser.add_argument("--draws", type=int, default=6, help="random subsets per size")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "feature_choice.json")
    args = parser.parse_args()

    import numpy as np
    from threadpoolctl import threadpool_limits

    from curate.bench.classify_suite import shared_classify_sets
    from curate.bench.feature_choice_check import choice_report
    from curate.bench.label_efficiency import rich_progress
    from curate.bench.label_efficiency_data import load_labelled, make_split
    from curate.bench.label_efficiency_features import EmbeddingPlusWords, MiniLMFeaturizer, classify_features

    wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
    sets = [s for s in shared_classify_sets(args.data) if s.name in wanted]
    if not sets:
        print(f"skipped: none of {wanted} found under {args.data}. Put ../shared/data beside the repository.")
        return
    sizes = [int(k) for k in args.sizes.split(",") if k.strip()]
    report: dict[str, object] = {"benchmark": "feature_choice", "metric": "test accuracy (higher = better)",
                                 "sets": {}}
    with threadpool_limits(limits=1), rich_progress(transient=True) as progress:
        for s in sets:
            data = load_labelled(s.data, "classify", mapping=s.mapping)
            test = load_labelled(s.test, "classify", mapping=s.mapping) if s.test is not None else None
            split = make_split(data, "classify", test=test, test_size=s.test_size)
            featurize = EmbeddingPlusWords(MiniLMFeaturizer(args.cache_dir, progress))
            x, C, base = classify_features(featurize, split, 10.0)
            classes = {c: i for i, c in enumerate(sorted(set(split.pool.labels) | set(split.test.labels)))}
            n, n_test = len(split.pool), len(split.test)
            y = np.array([classes[c] for c in split.pool.labels])
            y_test = np.array([classes[c] for c in split.test.labels])
            X = np.asarray(x, dtype=np.float64)
            assert base is not None
            figures = choice_report(X[:n], y, X[n:n + n_test], y_test, base=base % X.shape[1], C=C, sizes=sizes,
                                    draws=args.draws,
                                    on_draw=lambda done, total, name=s.name: progress(f"{name}: subsets", done, total))
            report["sets"][s.name] = {"classes": len(classes), "pool": n, "test": n_test, **figures}  # type: ignore[index]
            print(f"{s.name} ({len(classes)} classes):")
            for i, k in enumerate(figures["sizes"]):
                print(f"  {k:>5} labels: never {figures['base'][i]:.3f}, always {figures['words'][i]:.3f}, "
                      f"cross-validation {figures['cv'][i]:.3f} (reads words {figures['cv_reads_words'][i]:.2f}), "
                      f"one-SE {figures['one_se'][i]:.3f} ({figures['one_se_reads_words'][i]:.2f})", flush=True)
    report["command"] = " ".join([".venv/bin/python", "benchmarks/bench_feature_choice.py",
                                  *map(shlex.quote, sys.argv[1:])])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
