from __future__ import annotations

import numpy as np

from curate.selectors import ClusterPick, cluster_pick

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
