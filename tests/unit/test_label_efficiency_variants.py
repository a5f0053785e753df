"""Label-efficiency strategy variants: round-robin Cluster-Margin pick, margin-prefiltered clustering, the loops."""

from __future__ import annotations

import numpy as np
import pytest

from curate.bench import label_efficiency_loops as loops
from curate.bench.label_efficiency import BenchConfig
from curate.errors import InputError
from curate.selectors.cluster import round_robin_pick


def test_round_robin_smallest_cluster_first_one_per_pass() -> None:
    scores = np.arange(10.0)[::-1].copy()  # row 0 best
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 3, 3, 3])
    got = round_robin_pick(scores, labels, 10, candidates=10, rng=np.random.default_rng(0), within="score")
    # clusters by candidate count: 2 (1), 1 (2), 3 (3), 0 (4); one per cluster per pass, best score first within
    assert got.tolist() == [6, 4, 7, 0, 5, 8, 1, 9, 2, 3]
    assert got.dtype == np.intp


def test_round_robin_only_candidates_and_never_nan() -> None:
    scores = np.array([np.nan, 5.0, 4.0, 3.0, 2.0, 1.0])
    labels = np.array([0, 0, 0, 1, 1, 2])
    got = round_robin_pick(scores, labels, 5, candidates=3, rng=np.random.default_rng(0), within="score")
    # candidates = rows 1, 2 (cluster 0) and 3 (cluster 1): cluster 1 first, then cluster 0's best, then the rest
    assert got.tolist() == [3, 1, 2]


def test_round_robin_random_within_cluster_keeps_cluster_order() -> None:
    scores = np.linspace(1.0, 0.0, 12)
    labels = np.repeat([0, 1, 2], [6, 4, 2])
    seen = set()
    for seed in range(8):
        got = round_robin_pick(scores, labels, 3, candidates=12, rng=np.random.default_rng(seed))
        assert labels[got].tolist() == [2, 1, 0]  # one per cluster, smallest cluster first
        seen.add(tuple(got.tolist()))
    assert len(seen) > 1  # the member within each cluster is random


def test_round_robin_rejects_bad_input() -> None:
    with pytest.raises(InputError):
        round_robin_pick(np.zeros(3), np.zeros(4, dtype=int), 1, candidates=3, rng=np.random.default_rng(0))
    with pytest.raises(InputError):
        round_robin_pick(np.zeros(3), np.zeros(3, dtype=int), 1, candidates=3, rng=np.random.default_rng(0),
                         within="best")
    assert round_robin_pick(np.zeros(3), np.zeros(3, dtype=int), 0, candidates=3,
                            rng=np.random.default_rng(0)).size == 0


def test_prefilter_cluster_top_picks_only_among_best_scores() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 8))
    scores = rng.random(200)
    scores[:3] = np.nan
    sel = loops.classify_selector("prefilter-cluster-margin", loops.LoopConfig(budgets=(10,), candidates_per_pick=4.0))
    assert sel.key() == "prefilter(base=cluster(metric=cosine),factor=4)"
    got = sel.select(scores, 5, embeddings=emb, rng=np.random.default_rng(1))
    top20 = set(np.argsort(-np.nan_to_num(scores, nan=-1.0))[:20].tolist())
    assert got.shape == (5,) and len(set(got.tolist())) == 5
    assert set(got.tolist()) <= top20


def test_pool_clusters_shape_and_count() -> None:
    x = np.random.default_rng(0).normal(size=(90, 6)).astype(np.float32)
    labels = loops.pool_clusters(x, 10, rng=np.random.default_rng(0))
    assert labels.shape == (90,)
    assert len(np.unique(labels)) == 9


def _toy_data(n: int = 400, n_classes: int = 5) -> loops.ClassifyData:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(n_classes, 12)) * 2
    y = rng.integers(0, n_classes, n).astype(np.intp)
    yt = rng.integers(0, n_classes, 200).astype(np.intp)
    x = (centres[y] + rng.normal(size=(n, 12))).astype(np.float32)
    xt = (centres[yt] + rng.normal(size=(200, 12))).astype(np.float32)
    return loops.ClassifyData(tuple("abcde"[:n_classes]), x, y, xt, yt, xt[:0], yt[:0])


@pytest.mark.parametrize("strategy", ["prefilter-cluster-margin", "rr-cluster-margin"])
def test_variant_loops_label_exact_budgets_without_repeats(strategy: str) -> None:
    data = _toy_data()
    initial = loops.initial_per_class(data.answers, 2, rng=np.random.default_rng(0))
    cfg = loops.LoopConfig(budgets=(10, 40, 70, 100), C=10.0, candidates_per_pick=3.0, pool_cluster_size=20)
    result = loops.run_classify(strategy, data, initial, cfg, rng=np.random.default_rng(1))
    assert len(result.curve) == 4 and all(0.0 <= a <= 1.0 for a in result.curve)
    assert result.labelled.shape == (100,) and len(set(result.labelled.tolist())) == 100
    assert result.curve[-1] > 0.6  # 5 well-separated classes: far above chance (0.2)


def test_bench_config_passes_variant_settings() -> None:
    cfg = BenchConfig(task="classify", strategies=("random", "rr-cluster-margin"), candidates_per_pick=7.0,
                      pool_cluster_size=33, round_robin_within="score").resolved()
    loop = cfg.loop_config([10, 20])
    assert (loop.candidates_per_pick, loop.pool_cluster_size, loop.round_robin_within) == (7.0, 33, "score")
