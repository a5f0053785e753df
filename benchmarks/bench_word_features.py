"""What ``--embedder minilm+words`` buys a classifier: accuracy on random label subsets, MiniLM alone vs beside words.

Every classification set of the selection suite (banking77, trec6, ag_news; the same pool/test splits): logistic
regression (C=10, curate's ``DEFAULT_C``) on MiniLM embeddings, and on the product's ``minilm+words`` rows
(:class:`~curate.bench.label_efficiency_features.EmbeddingPlusWords`: word features fitted on the pool alone, as the
loop fits them on a workspace's pool; C=12.5, scaled as the loop scales it, ``classifier_c``), trained on random
subsets of the pool's gold labels (``--seeds`` subsets per size) and on the whole pool; test accuracy, higher =
better. No selection strategy is involved: this is the features' own worth, the curve random sampling would climb.

Writes benchmarks/results/word_features.json.

Usage::

    .venv/bin/python benchmarks/bench_word_features.py [--sizes 150,300,500,1000,1500] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.bench.classify_suite import shared_classify_sets  # noqa: E402
from curate.bench.label_efficiency import rich_progress  # noqa: E402
from curate.bench.label_efficiency_data import load_labelled, make_split  # noqa: E402
from curate.bench.label_efficiency_features import EmbeddingPlusWords, MiniLMFeaturizer  # noqa: E402
from curate.scorers.classifier_models import DEFAULT_C, classifier_c  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def accuracies(x_pool: np.ndarray, y_pool: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
               sizes: list[int], seeds: int, C: float = DEFAULT_C) -> dict[str, list[float]]:
    """``{size: [test accuracy per seed]}`` of logistic regression on random pool subsets (``"pool"``: all of it)."""
    from sklearn.linear_model import LogisticRegression

    out: dict[str, list[float]] = {}
    for size in [*sizes, len(y_pool)]:
        runs = []
        for seed in range(seeds if size < len(y_pool) else 1):
            idx = np.random.default_rng(seed).choice(len(y_pool), size, replace=False)
            clf = LogisticRegression(C=C, max_iter=1000).fit(x_pool[idx], y_pool[idx])
            runs.append(float((clf.predict(x_test) == y_test).mean()))
        out["pool" if size == len(y_pool) else str(size)] = runs
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="150,300,500,1000,1500", help="label counts of the random subsets")
    ap.add_argument("--seeds", type=int, default=5, help="random subsets per size")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    ap.add_argument("--data-dir", type=Path, default=SHARED)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "word_features.json")
    args = ap.parse_args(argv)
    sets = shared_classify_sets(args.data_dir, say=print)
    if not sets:
        print(f"skipped: no classification set under {args.data_dir}")
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    started = time.perf_counter()
    report: dict[str, dict[str, object]] = {}
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), rich_progress(transient=True) as progress:
        for s in sets:
            data = load_labelled(s.data, "classify", mapping=s.mapping)
            test = load_labelled(s.test, "classify", mapping=s.mapping) if s.test else None
            split = make_split(data, "classify", test=test, test_size=s.test_size, seed=0)
            texts = split.pool.texts + split.test.texts
            y, y_test, n = np.array(split.pool.labels), np.array(split.test.labels), len(split.pool)
            minilm = MiniLMFeaturizer(args.cache_dir, progress)
            words = EmbeddingPlusWords(minilm)
            t0 = time.perf_counter()
            words.fit_pool(split.pool.texts)
            fit_seconds = time.perf_counter() - t0
            means: dict[str, dict[str, float]] = {}
            per_seed: dict[str, dict[str, list[float]]] = {}
            for name, featurize in (("minilm", minilm), ("minilm+words", words)):
                x = np.asarray(featurize(texts), dtype=np.float32)
                per_seed[name] = accuracies(x[:n], y, x[n:], y_test, [k for k in sizes if k < n], args.seeds,
                                            C=classifier_c(featurize))
                means[name] = {k: round(float(np.mean(v)), 4) for k, v in per_seed[name].items()}
            gain = {k: round(means["minilm+words"][k] - means["minilm"][k], 4) for k in means["minilm"]}
            report[s.name] = {"pool": n, "test": len(y_test), "word_fit_seconds": round(fit_seconds, 2), **means,
                              "gain": gain, "per_seed": per_seed}
            print(f"{s.name}: " + ", ".join(f"{k} {means['minilm'][k]:.3f} -> {means['minilm+words'][k]:.3f}"
                                             for k in gain), flush=True)
    out = {"benchmark": "word_features", "metric": "test accuracy (higher = better)",
           "classifier": f"LogisticRegression(C={DEFAULT_C}; C={DEFAULT_C * 1.25} on minilm+words rows, as the loop "
                         "fits them) on random subsets of the pool's gold labels",
           "features": {"minilm": "MiniLM (all-MiniLM-L6-v2) unit rows",
                        "minilm+words": "curate.runtime.word_features: [minilm, 0.5 * unit(TF-IDF SVD 256)] unit rows, "
                                        "words fitted on the pool alone"},
           "seeds": args.seeds, "sets": report,
           "command": ".venv/bin/python benchmarks/bench_word_features.py " + " ".join(argv or sys.argv[1:]),
           "seconds": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
