from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.errors import InputError
from curate.filters.dedup import (
    MinHashParams,
    clusters_from_pairs,
    cross_set_flags,
    cross_set_records,
    dedup,
    dedup_records,
    exact_clusters,
    keep_mask,
    minhash_clusters,
    normalise_for_dedup,
    semantic_clusters,
    semantic_pairs,
)
from curate.filters.dedup_semantic import semantic_cross
from curate.ingest.records import Record, record_id
from curate.runtime.embeddings import Embedder

ORIGINAL = ("Explain the difference between supervised and unsupervised learning, with one example of each "
            "and a short note on when to prefer which approach.")
TYPO = ORIGINAL.replace("difference", "diference").replace("example", "exmaple")
UNRELATED = "Write a haiku about autumn leaves falling on a quiet mountain lake at dawn, in five seven five."


def fake_encode(texts: list[str]) -> np.ndarray:
    """Deterministic bag-of-words embedding: each word hashed to one of 64 dimensions."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in normalise_for_dedup(t).split():
            out[i, int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little") % 64] += 1.0
    return out


def fake_embedder() -> Embedder:
    return Embedder("fake", cache_dir=None, encode=fake_encode)


def assert_consistent(ids: np.ndarray) -> None:
    """Cluster id = lowest index of the cluster: each id is a member of its own cluster and its minimum."""
    for i, c in enumerate(ids):
        assert ids[c] == c
        assert c <= i


# --- normalisation and exact ---------------------------------------------------------------------------------


def test_normalisation_folds_case_whitespace_punctuation_and_unicode() -> None:
    assert normalise_for_dedup("  Café,\t\nWORLD!! ") == normalise_for_dedup("cafe\u0301 world")
    assert normalise_for_dedup("Don't stop.") == "dont stop"
    assert normalise_for_dedup("$5 + 3") == "$5 + 3"  # symbols and digits are kept


def test_exact_duplicates_up_to_case_whitespace_punctuation_cluster_together() -> None:
    texts = ["Hello, world!", "other text", "hello   WORLD", "HELLO world.", "other text!", "third"]
    ids = exact_clusters(texts)
    assert ids.tolist() == [0, 1, 0, 0, 1, 5]
    assert_consistent(ids)


def test_exact_does_not_merge_different_words() -> None:
    assert exact_clusters(["hello world", "hello word"]).tolist() == [0, 1]


# --- MinHash ----------------------------------------------------------------------------------------------------


def test_minhash_clusters_typo_variant_but_not_unrelated_text() -> None:
    ids = minhash_clusters([ORIGINAL, UNRELATED, TYPO])
    assert ids.tolist() == [0, 1, 0]


def test_minhash_word_shingles_and_verification() -> None:
    small_edit = ORIGINAL.replace("short note", "brief note")
    params = MinHashParams(shingle="word", k=2, threshold=0.6, num_perm=128)
    assert minhash_clusters([ORIGINAL, small_edit, UNRELATED], params).tolist() == [0, 0, 2]


def test_minhash_ignores_empty_texts_but_exact_catches_them() -> None:
    texts = ["", "  ", "...", ORIGINAL]
    assert minhash_clusters(texts).tolist() == [0, 1, 2, 3]
    assert exact_clusters(texts).tolist() == [0, 0, 0, 3]


def test_minhash_is_deterministic_under_a_fixed_seed() -> None:
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(200)]
    texts = [" ".join(rng.choice(words, size=30)) for _ in range(40)]
    texts += [t + " extra" for t in texts[:10]]
    params = MinHashParams(k=4, threshold=0.6, seed=3)
    first = minhash_clusters(texts, params)
    assert np.array_equal(first, minhash_clusters(texts, params))
    assert all(first[40 + i] == first[i] for i in range(10))


@pytest.mark.parametrize("bad", [{"k": 0}, {"threshold": 1.5}, {"shingle": "byte"}, {"num_perm": 1}])
def test_minhash_params_are_validated(bad: dict[str, object]) -> None:
    with pytest.raises(InputError):
        MinHashParams(**bad)  # type: ignore[arg-type]


# --- semantic ---------------------------------------------------------------------------------------------------


def test_semantic_dedup_with_a_deterministic_fake_embedding() -> None:
    texts = [ORIGINAL, UNRELATED, ORIGINAL.replace("short", "brief"), UNRELATED.upper()]
    r = dedup(texts, method="semantic", embedder=fake_embedder(), semantic_threshold=0.9)
    assert r.cluster_id.tolist() == [0, 1, 0, 1]
    assert r.keep.tolist() == [True, True, False, False]


def test_semantic_tiles_agree_with_the_full_matrix() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((30, 8))
    x = np.concatenate([base, base[:10] + 0.05 * rng.standard_normal((10, 8))])
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = u @ u.T
    want = {(i, j) for i in range(len(x)) for j in range(i + 1, len(x)) if sims[i, j] >= 0.95}
    got = semantic_pairs(x, threshold=0.95, block=7, backend="numpy")
    assert {tuple(p) for p in got.tolist()} == want
    assert len(want) >= 10
    ids = semantic_clusters(x, threshold=0.95, block=7, backend="numpy")
    assert_consistent(ids)
    assert all(ids[30 + i] == ids[i] for i in range(10))


def test_semantic_needs_embeddings_or_an_embedder() -> None:
    with pytest.raises(InputError, match="embedder"):
        dedup(["a", "b"], method="semantic")
    with pytest.raises(InputError, match="one row per text"):
        dedup(["a", "b"], method="semantic", embeddings=np.ones((3, 4)))


# --- keep policies ----------------------------------------------------------------------------------------------


def test_keep_first_longest_highest_score() -> None:
    texts = ["hello world", "unique", "Hello, World!!!", "HELLO   world"]
    assert dedup(texts, keep="first").keep.tolist() == [True, True, False, False]
    assert dedup(texts, keep="longest").keep.tolist() == [False, True, True, False]
    scores = np.array([0.1, 0.0, 0.2, 0.9])
    r = dedup(texts, keep="highest_score", scores=scores)
    assert r.keep.tolist() == [False, True, False, True]
    assert (r.n, r.n_kept, r.n_removed, r.n_duplicate_clusters) == (4, 2, 2, 1)
    assert r.counts()["pairs_exact"] == 2


def test_keep_ties_go_to_the_lowest_index_and_bad_scores_are_rejected() -> None:
    ids = np.array([0, 0, 2, 0, 2])
    assert keep_mask(ids, "highest_score", scores=[1, 1, 0, 1, 5]).tolist() == [True, False, False, False, True]
    with pytest.raises(InputError, match="finite"):
        keep_mask(ids, "highest_score", scores=[1, np.nan, 0, 1, 5])
    with pytest.raises(InputError, match="shape"):
        keep_mask(ids, "highest_score", scores=[1, 2])
    with pytest.raises(InputError, match="scores"):
        keep_mask(ids, "highest_score")
    with pytest.raises(InputError, match="keep policy"):
        keep_mask(ids, "random")  # type: ignore[arg-type]


def test_methods_combine_transitively() -> None:
    texts = [ORIGINAL, TYPO.upper(), UNRELATED, TYPO]
    r = dedup(texts, method=("exact", "minhash"))
    assert r.cluster_id.tolist() == [0, 0, 2, 0]
    assert r.methods == ("exact", "minhash")
    with pytest.raises(InputError, match="unknown dedup method"):
        dedup(texts, method="fuzzy")  # type: ignore[arg-type]


def test_near_copies_do_not_chain_into_one_cluster() -> None:
    """A ~ B and B ~ C, but A and C are not copies: A stays, B goes as A's copy, C stays (connected components
    would have removed C as a "duplicate" of A)."""
    a, b, c = np.array([1.0, 0.0]), np.array([0.92, 0.39]), np.array([0.70, 0.71])
    x = np.stack([a, b, c]) / np.linalg.norm(np.stack([a, b, c]), axis=1, keepdims=True)
    assert (x @ x.T)[0, 1] > 0.9 and (x @ x.T)[1, 2] > 0.9 and (x @ x.T)[0, 2] < 0.75
    r = dedup(["A", "B", "C"], method="semantic", embeddings=x, semantic_threshold=0.9)
    assert r.keep.tolist() == [True, False, True] and r.cluster_id.tolist() == [0, 0, 2]
    assert semantic_clusters(x, threshold=0.9).tolist() == [0, 0, 0]  # the components chain
    # the keep policy decides who goes first: B, the longest, takes both A and C
    longest = dedup(["A", "BBB", "C"], method="semantic", embeddings=x, semantic_threshold=0.9, keep="longest")
    assert longest.keep.tolist() == [False, True, False] and longest.cluster_id.tolist() == [1, 1, 1]
    # and a survivor chosen by scores afterwards keeps the rule: each removed text copies its survivor directly
    rescored = r.rekept("highest_score", np.array([0.0, 0.0, 1.0]))
    assert rescored.keep.tolist() == [True, False, True] and rescored.cluster_id.tolist() == [0, 2, 2]


def test_exact_groups_are_taken_whole_with_their_near_copies() -> None:
    texts = [ORIGINAL, UNRELATED, ORIGINAL.upper() + "!!", TYPO]  # 0 == 2 exactly; 3 ~ 0 and 2
    r = dedup(texts, method=("exact", "minhash"), keep="longest")
    assert r.keep.tolist() == [False, True, True, False]  # the longest of the exact pair survives, takes the typo
    assert r.cluster_id.tolist() == [2, 1, 2, 2]
    assert r.linked().tolist() == [True, False, True, True]


# --- cross-set --------------------------------------------------------------------------------------------------


def test_cross_set_flags_near_copies_of_reference_items_only() -> None:
    reference = [ORIGINAL, "What is the capital of France?"]
    pool = [UNRELATED, TYPO, "what is the CAPITAL of france", "Name three primary colours."]
    r = cross_set_flags(pool, reference)
    assert r.flagged.tolist() == [False, True, True, False]
    assert r.match.tolist() == [-1, 0, 1, -1]
    assert r.by_method["exact"].tolist() == [False, False, True, False]
    assert r.counts()["flagged"] == 2


def test_cross_set_semantic_with_fake_embedder() -> None:
    reference = [ORIGINAL]
    pool = [UNRELATED, ORIGINAL.replace("short", "brief")]
    r = cross_set_flags(pool, reference, method="semantic", embedder=fake_embedder(), semantic_threshold=0.9)
    assert r.flagged.tolist() == [False, True]
    match, best = semantic_cross(np.ones((2, 3)), np.zeros((0, 3)))
    assert match.tolist() == [-1, -1] and np.isinf(best).all()


def test_records_layer() -> None:
    def rec(prompt: str, completion: str) -> Record:
        fields = {"prompt": prompt, "completion": completion}
        return Record(record_id("example", fields), "example", fields)

    pool = [rec("Say hi", "Hi!"), rec("say HI", "hi"), rec("Count to 3", "1 2 3")]
    assert dedup_records(pool).keep.tolist() == [True, False, True]
    assert cross_set_records(pool, [rec("count to 3.", "1, 2, 3")]).flagged.tolist() == [False, False, True]


# --- edge cases and invariants ----------------------------------------------------------------------------------


def test_empty_input() -> None:
    r = dedup([], method=("exact", "minhash", "semantic"), embedder=fake_embedder())
    assert r.n == 0 and r.keep.shape == (0,) and r.cluster_id.dtype == np.intp
    assert r.counts()["duplicate_clusters"] == 0
    assert cross_set_flags([], ["x"]).flagged.shape == (0,)
    assert cross_set_flags(["x"], []).flagged.tolist() == [False]
    assert clusters_from_pairs(0, np.empty((0, 2), dtype=np.intp)).shape == (0,)


def test_non_string_text_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"texts\[1\]"):
        dedup(["a", 3])  # type: ignore[list-item]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 19), st.integers(0, 19)), max_size=30))
def test_cluster_ids_are_consistent_and_order_free(edges: list[tuple[int, int]]) -> None:
    pairs = np.array(edges, dtype=np.intp).reshape(-1, 2)
    ids = clusters_from_pairs(20, pairs)
    assert_consistent(ids)
    for a, b in edges:
        assert ids[a] == ids[b]
    assert np.array_equal(ids, clusters_from_pairs(20, pairs[::-1, ::-1]))
    assert keep_mask(ids).sum() == len(set(ids.tolist()))
