"""Embedding cache and the novelty / density maths, with a deterministic stand-in encoder."""

from __future__ import annotations

import numpy as np
import pytest

from curate.ingest.formats import row_to_record
from curate.runtime.embeddings import Embedder, EmbeddingCache, record_text, text_hash
from curate.scorers.embedding import DensityScorer, NoveltyScorer, density, novelty


def fake_encode(texts):
    """Deterministic 8-d vectors: a bag of characters (similar texts get similar vectors)."""
    out = np.zeros((len(texts), 8), dtype=np.float32)
    for i, t in enumerate(texts):
        for ch in t.lower():
            out[i, ord(ch) % 8] += 1.0
    return out


def test_novelty_is_cosine_distance_to_the_nearest_labeled_row():
    pool = np.array([[1, 0], [0, 1], [np.sqrt(0.5), np.sqrt(0.5)]], dtype=np.float32)
    labeled = np.array([[1, 0]], dtype=np.float32)
    np.testing.assert_allclose(novelty(pool, labeled), [0.0, 1.0, 1 - np.sqrt(0.5)], atol=1e-6)
    np.testing.assert_array_equal(novelty(pool, np.zeros((0, 2))), [1.0, 1.0, 1.0])


def test_density_ranks_a_cluster_above_an_outlier():
    rng = np.random.default_rng(0)
    cluster = rng.normal([5, 0, 0], 0.1, size=(20, 3))
    outlier = np.array([[0, 0, 5.0]])
    x = np.vstack([cluster, outlier]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = density(x, k=3)
    assert d.shape == (21,) and d.dtype == np.float64
    assert d[-1] < d[:-1].min()
    # hand check on three points: k=1 neighbour similarity
    three = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    np.testing.assert_allclose(density(three, k=1), [0.8, 0.8, 0.6], atol=1e-6)


def test_embedding_cache_persists_and_ignores_a_half_written_shard(tmp_path):
    cache = EmbeddingCache(tmp_path)
    keys = [text_hash("a"), text_hash("b")]
    cache.put(keys, np.eye(2, dtype=np.float32))
    again = EmbeddingCache(tmp_path)
    hits, vecs = again.get([text_hash("b"), text_hash("zz"), text_hash("a")])
    assert hits == [0, 2]
    np.testing.assert_array_equal(vecs, [[0, 1], [1, 0]])
    np.save(tmp_path / "ids-00099.npy", np.array([text_hash("c")], dtype="S16"))  # no vecs file: a crash
    assert len(EmbeddingCache(tmp_path)) == 2


def test_embedder_embeds_each_distinct_text_once_and_reuses_the_disk_cache(tmp_path):
    emb = Embedder("fake", cache_dir=tmp_path, encode=fake_encode, batch_size=2)
    texts = ["refund please", "reset password", "refund please", "card lost"]
    first = emb.embed_texts(texts)
    assert first.shape == (4, 8) and emb.computed_ == 3
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(first[0], first[2])
    fresh = Embedder("fake", cache_dir=tmp_path, encode=fake_encode)
    np.testing.assert_allclose(fresh.embed_texts(texts), first)
    assert fresh.computed_ == 0


def test_record_text_covers_every_kind():
    pref = row_to_record({"prompt": "p", "chosen": "a", "rejected": "b"})
    assert record_text(pref) == "p\n\na\n\nb"
    assert record_text(row_to_record({"text": "hello"})) == "hello"


def test_scorers_key_and_shapes(tmp_path):
    emb = Embedder("fake", encode=fake_encode)
    recs = [row_to_record({"text": t}) for t in ["aaaa", "aaab", "zzzz"]]
    novelty_scores = NoveltyScorer(embedder=emb, labeled=(recs[0],)).score(recs)
    assert novelty_scores.shape == (3,) and novelty_scores[0] == pytest.approx(0.0, abs=1e-6)
    assert novelty_scores[2] > novelty_scores[1]
    assert NoveltyScorer(embedder=emb).key().startswith("novelty()@fake+labeled:")
    assert DensityScorer(embedder=emb, k=5).key() == "density(k=5)@fake"
    assert DensityScorer(embedder=emb).score(recs).shape == (3,)


def test_a_key_ending_in_nul_bytes_is_found_after_reloading(tmp_path):
    """numpy's S16 drops trailing NULs when read back; such a key (1 text in 256) must still hit the cache."""
    text = next(f"t{i}" for i in range(100_000) if text_hash(f"t{i}").endswith(b"\0"))
    Embedder("fake", cache_dir=tmp_path, encode=fake_encode).embed_texts([text, "other"])
    again = Embedder("fake", cache_dir=tmp_path, encode=fake_encode)
    again.embed_texts([text, "other"])
    assert again.computed_ == 0
