from __future__ import annotations

import numpy as np
import pytest

from curate.errors import InputError
from curate.runtime.catalog import build_selector
from curate.selectors import ClusterPick, PrefilterCentroid, centroid_pick, cluster_pick

RNG = np.random.default_rng


def three_blobs(per: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = RNG(seed)
    centres = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    labels = np.repeat(np.arange(3), per)
    x = centres[labels] + rng.normal(size=(3 * per, 2))
    return x, labels, rng.random(3 * per)


def test_one_pick_per_obvious_cluster_the_best_score_of_each() -> None:
    x, labels, scores = three_blobs()
    out = ClusterPick().select(scores, 3, embeddings=x, rng=RNG(0))
    assert sorted(labels[out].tolist()) == [0, 1, 2]
    for i in out:
        members = np.flatnonzero(labels == labels[i])
        assert i == members[np.argmax(scores[members])]
    assert scores[out].tolist() == sorted(scores[out].tolist(), reverse=True)  # best first


def test_minibatch_path_for_large_pools() -> None:
    x, labels, scores = three_blobs(per=200, seed=1)
    out = cluster_pick(scores, x, 3, rng=RNG(0), minibatch_threshold=100)
    assert sorted(labels[out].tolist()) == [0, 1, 2]


def test_empty_clusters_are_filled_with_the_next_best_scores() -> None:
    # Only two distinct points: k-means cannot make four non-empty clusters.
    x = np.array([[0.0, 0.0]] * 5 + [[9.0, 9.0]] * 5)
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    out = cluster_pick(scores, x, 4, rng=RNG(0))
    assert out[:2].tolist() == [9, 4]  # the best of each real cluster
    assert out[2:].tolist() == [8, 7]  # then the best remaining scores


def test_nan_rows_are_not_clustered_or_chosen() -> None:
    x, labels, scores = three_blobs()
    scores[labels == 2] = np.nan
    out = cluster_pick(scores, x, 2, rng=RNG(0))
    assert sorted(labels[out].tolist()) == [0, 1]


def test_cosine_clusters_directions() -> None:
    rng = RNG(2)
    directions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    lab = np.repeat([0, 1], 15)
    x = directions[lab] * rng.uniform(0.1, 100, size=(30, 1)) + rng.normal(scale=0.01, size=(30, 3))
    out = ClusterPick(metric="cosine").select(rng.random(30), 2, embeddings=x, rng=RNG(0))
    assert sorted(lab[out].tolist()) == [0, 1]


def test_centroid_pick_sends_the_most_central_record_of_each_cluster() -> None:
    x, labels, scores = three_blobs(per=30, seed=3)
    out = centroid_pick(scores, x, 3, rng=RNG(0), metric="euclidean")
    assert sorted(labels[out].tolist()) == [0, 1, 2]
    weights = scores + 1e-6
    for i in out:
        members = np.flatnonzero(labels == labels[i])
        centre = np.average(x[members], axis=0, weights=weights[members])  # the weighted k-means centroid
        assert i == members[np.argmin(np.linalg.norm(x[members] - centre, axis=1))]
    assert scores[out].tolist() == sorted(scores[out].tolist(), reverse=True)  # by descending score


def test_centroid_pick_weights_pull_the_centroid_towards_high_scores() -> None:
    # one cluster on a line: the unweighted centre is at 5, the weighted one near the high-scoring end
    x = np.arange(11, dtype=np.float64)[:, None]
    flat, steep = np.ones(11), np.where(np.arange(11) >= 8, 10.0, 0.0)
    assert centroid_pick(flat, x, 1, rng=RNG(0), metric="euclidean").tolist() == [5]
    assert centroid_pick(steep, x, 1, rng=RNG(0), metric="euclidean").tolist() == [9]


def test_centroid_pick_fills_empty_clusters_skips_nan_and_checks_shapes() -> None:
    x = np.array([[0.0, 0.0]] * 5 + [[9.0, 9.0]] * 5)
    scores = np.linspace(0.1, 1.0, 10)
    out = centroid_pick(scores, x, 4, rng=RNG(0), metric="euclidean")
    # two real clusters send their first record (all equally central), the best remaining scores fill in
    assert out.tolist() == [9, 8, 5, 0]
    nan = scores.copy()
    nan[5:] = np.nan
    assert set(centroid_pick(nan, x, 2, rng=RNG(0)).tolist()) <= {0, 1, 2, 3, 4}
    assert centroid_pick(scores, x, 20, rng=RNG(0)).tolist() == list(range(9, -1, -1))  # k >= m: all, best first
    with pytest.raises(InputError, match="shape"):
        centroid_pick(scores[:3], x, 2, rng=RNG(0))


def test_prefilter_centroid_picks_only_among_the_best_scores_and_is_zhdanovs_pick() -> None:
    rng = RNG(4)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    scores = rng.random(300)
    scores[:5] = np.nan
    picks = PrefilterCentroid(factor=4).select(scores, 10, embeddings=x, rng=RNG(1))
    top40 = np.argsort(-np.nan_to_num(scores, nan=-1.0))[:40]
    assert picks.shape == (10,) and len(set(picks.tolist())) == 10 and set(picks.tolist()) <= set(top40.tolist())
    masked = np.full(300, np.nan)
    masked[top40] = scores[top40]
    assert picks.tolist() == centroid_pick(masked, x, 10, rng=RNG(1)).tolist()
    assert build_selector("prefilter_centroid").key() == "prefilter_centroid()"
    assert PrefilterCentroid().factor == 10.0
    with pytest.raises(InputError, match="factor"):
        PrefilterCentroid(factor=0.5)
    with pytest.raises(InputError, match="needs embeddings"):
        PrefilterCentroid().select(scores, 3, rng=RNG(0))
