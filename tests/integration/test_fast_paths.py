"""The ONNX embedder keeps the exact path's rankings on real records (Spearman >= 0.99), in its own cache.

``Embedder(backend="onnx")``: MiniLM exported to ONNX, pairwise similarities and novelty of Alpaca texts.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from curate.ingest.records import Record
from curate.runtime.embeddings import Embedder, record_text
from curate.scorers.embedding import novelty
from tests.conftest import shared_file

pytestmark = [pytest.mark.models, pytest.mark.shared_data]


def alpaca(n: int, max_chars: int = 600) -> list[Record]:
    """The first ``n`` Alpaca records whose prompt and answer are short (keeps the test to about a minute)."""
    rows = json.loads(shared_file("alpaca_5000", "alpaca_5000.json").read_text())
    records = []
    for i, row in enumerate(rows):
        prompt = "\n\n".join(p for p in (row["instruction"], row.get("input", "")) if p)
        if len(prompt) + len(row["output"]) <= max_chars:
            records.append(Record(f"a{i}", "example", {"prompt": prompt, "completion": row["output"]}))
        if len(records) == n:
            break
    return records


def rho(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic)


def test_onnx_embedder_keeps_similarity_and_novelty_rankings_in_its_own_cache(tmp_path):
    texts = [record_text(r) for r in alpaca(200, max_chars=2000)]
    exact = Embedder("minilm", cache_dir=tmp_path)
    fast = Embedder("minilm", cache_dir=tmp_path, backend="onnx")
    a, b = exact.embed_texts(texts), fast.embed_texts(texts)
    assert b.shape == a.shape == (200, 384) and b.dtype == np.float32
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(axis=1).min()) > 0.999
    upper = np.triu_indices(200, 1)
    assert rho((a @ a.T)[upper], (b @ b.T)[upper]) >= 0.99
    assert rho(novelty(a[50:], a[:50]), novelty(b[50:], b[:50])) >= 0.99
    # its own cache folder and key: exact and ONNX vectors never mix
    assert exact.key == "minilm" and fast.key == "minilm+onnx"
    assert (tmp_path / "embeddings" / "minilm").is_dir() and (tmp_path / "embeddings" / "minilm__onnx").is_dir()
    assert any((tmp_path / "models" / "onnx").glob("minilm-*.onnx"))
    again = Embedder("minilm", cache_dir=tmp_path, backend="onnx")
    assert np.array_equal(again.embed_texts(texts), b) and again.computed_ == 0
