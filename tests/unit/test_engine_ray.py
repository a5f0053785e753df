"""The Ray engine returns exactly what the local engine returns, on the same records, on a local Ray cluster.

One local cluster (2 actors) serves the whole module. Perplexity and IFD use the tiny Llama of ``tests/tiny_lm.py``,
embeddings a tiny BERT sentence-transformer built here (the same code path as MiniLM, and like MiniLM its vectors
depend in their last bits on the padding of the chunk they are encoded in), MinHash and PII a few texts with planted
near-copies and personal data. Every comparison is bit-for-bit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.data", reason="the Ray engine needs ray[data]: pip install 'curate[scale]'")

from curate.filters.dedup_minhash import MinHashParams  # noqa: E402
from curate.ingest.sources import ingest  # noqa: E402
from curate.runtime.catalog import BuildContext  # noqa: E402
from curate.runtime.embeddings import record_text  # noqa: E402
from curate.runtime.engine import get_engine  # noqa: E402
from curate.scorers.cache import cache_key, load_cached  # noqa: E402
from curate.store.workspace import Workspace  # noqa: E402
from tests.tiny_lm import build_tiny_lm  # noqa: E402

PROMPTS = [
    "What colour is the sky?", "What is the capital of France?", "List three fruits.", "Write a short poem.",
    "Translate to French: good morning.", "How do I reset my password?", "Is there a dark mode?",
    "Summarise the report in one sentence.", "Explain why the moon changes shape.", "Give me a salad recipe.",
]
ANSWERS = [
    "The sky is blue.", "Paris.", "Apple, banana and orange.", "The sea is wide, the waves are grey.",
    "Bonjour.", "Open settings, choose security and follow the link.", "Yes: settings, appearance, theme.",
    "Sales grew by ten percent this year.", "We see a different part of its lit side as it moves around the earth.",
    "Cut tomatoes, cucumber and onion, add olive oil, salt and lemon juice.",
]
PII_TEXTS = [
    "Contact Maria Gonzalez at maria.gonzalez@example.com or +1 415 555 0199.",
    "My key is AKIAIOSFODNN7EXAMPLE and the card 4111 1111 1111 1111.",
    "Nothing personal here, just a question about the weather.",
    "Send the invoice to John Smith, 42 Baker Street, London.",
]


def _rows() -> list[dict[str, str]]:
    rows = [{"prompt": p, "completion": a} for p, a in zip(PROMPTS, ANSWERS, strict=True)]
    rows.append({"prompt": "What colour is the sky??", "completion": "The sky is blue."})  # a near-copy
    rows.append({"prompt": "Who should I write to?", "completion": PII_TEXTS[0]})
    rows.append({"prompt": "Where is my key?", "completion": PII_TEXTS[1]})
    rows.append({"prompt": "An empty answer", "completion": ""})  # perplexity: NaN
    rows.append({"prompt": "?!", "completion": ""})  # perplexity: NaN; MinHash: no shingle
    return rows


def _workspace(root: Path, name: str) -> Workspace:
    ws = Workspace.open(root / name)
    (root / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    ingest(ws, root / "pool.jsonl")
    return ws


def _tiny_sentence_model(folder: Path) -> str:
    """A 2-layer BERT with mean pooling, saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({w.strip(".,:?!").lower() for t in PROMPTS + ANSWERS + PII_TEXTS for w in t.split()} - {""})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz0123456789", *words]
    hf = folder / "hf"
    hf.mkdir(parents=True)
    (hf / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(hf / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    st = SentenceTransformer(modules=[models.Transformer(str(hf)), models.Pooling(32, pooling_mode="mean")])
    st.save(str(folder / "st"))
    return str(folder / "st")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster for the module: 2 actors plus one logical CPU for Ray Data's reads and writes."""
    from curate.runtime.engine_ray import ray_session

    ws = Workspace.open(tmp_path_factory.mktemp("ray-session") / "ws")
    started = time.perf_counter()
    with ray_session(None, ws, num_cpus=3):
        print(f"ray start-up: {time.perf_counter() - started:.1f} s")
        yield get_engine("ray", workers=2)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-models")
    return {"lm": str(build_tiny_lm(root / "lm")), "st": _tiny_sentence_model(root / "st")}


@pytest.mark.parametrize("scorer", [pytest.param("perplexity", marks=pytest.mark.slow), "ifd"])
def test_scores_and_cache_entries_are_identical(cluster, models, tmp_path, scorer):
    local_ws, ray_ws = _workspace(tmp_path, "local"), _workspace(tmp_path, "ray")
    pool = list(local_ws.store.iter_records())
    assert [r.id for r in pool] == [r.id for r in ray_ws.store.iter_records()]
    ctx = {name: BuildContext(cache_dir=w.cache_dir, model=models["lm"]) for name, w in
           (("local", local_ws), ("ray", ray_ws))}
    # batch_size=4: four scoring batches spread over the two actors, each the batch the local engine scores
    a, local_report = get_engine("local").score(local_ws, scorer, ctx["local"], pool, batch_size=4)
    b, ray_report = cluster.score(ray_ws, scorer, ctx["ray"], pool, batch_size=4)
    assert np.isnan(a).sum() == 2 and np.isfinite(a).sum() == len(pool) - 2
    assert a.tobytes() == b.tobytes()  # bit-identical, NaN included
    assert (local_report.scorer_key, local_report.computed) == (ray_report.scorer_key, ray_report.computed)
    ids = [r.id for r in pool]
    stored = [load_cached(w.store, local_report.scorer_key, ids) for w in (local_ws, ray_ws)]
    assert np.array([stored[0][i] for i in ids]).tobytes() == np.array([stored[1][i] for i in ids]).tobytes()
    again, report = cluster.score(ray_ws, scorer, ctx["ray"], pool)
    assert report.computed == 0 and again.tobytes() == b.tobytes()  # all from the cache: no Ray pass at all


def test_embeddings_and_cache_shards_are_identical(cluster, models, tmp_path):
    local_ws, ray_ws = _workspace(tmp_path, "local"), _workspace(tmp_path, "ray")
    pool = list(local_ws.store.iter_records())
    texts = [record_text(r) for r in pool]
    texts += [f"{p} {a}" for p in PROMPTS for a in ANSWERS[:4]][: 40 - len(texts)]
    # batch_size=2: model calls of 2 texts, so 40 texts are 20 calls shared by the actors
    a = get_engine("local").embed(local_ws, texts, embedder=models["st"], batch_size=2)
    b = cluster.embed(ray_ws, texts, embedder=models["st"], batch_size=2)
    assert a.shape == (40, 32) and a.tobytes() == b.tobytes()
    shards = [sorted((w.cache_dir / "embeddings").rglob("*.npy")) for w in (local_ws, ray_ws)]
    assert len(shards[0]) == 2 and [p.read_bytes() for p in shards[0]] == [p.read_bytes() for p in shards[1]]
    # density reads the pool's vectors from the cache on both engines
    x, _ = get_engine("local").score(local_ws, "density", BuildContext(cache_dir=local_ws.cache_dir,
                                                                       embedder=models["st"]), pool)
    y, report = cluster.score(ray_ws, "density", BuildContext(cache_dir=ray_ws.cache_dir, embedder=models["st"]), pool)
    assert report.computed == len(pool) and x.tobytes() == y.tobytes()


def _spy(monkeypatch, engine, name):
    """Record the texts ``engine.<name>`` is called with and what it returns."""
    seen = []
    method = getattr(engine, name)

    def wrapper(ws, texts, *args, **kwargs):
        out = method(ws, texts, *args, **kwargs)
        seen.append((list(texts), out))
        return out

    monkeypatch.setattr(engine, name, wrapper)
    return seen


def test_minhash_signatures_and_dedup_are_identical(cluster, tmp_path, monkeypatch):
    local_ws, ray_ws = _workspace(tmp_path, "local"), _workspace(tmp_path, "ray")
    seen = _spy(monkeypatch, cluster, "minhash")
    local_report, ray_report = get_engine("local").filter_dedup(local_ws), cluster.filter_dedup(ray_ws)
    [(texts, (ray_sig, ray_has))] = seen
    local_sig, local_has = get_engine("local").minhash(local_ws, texts, MinHashParams())
    assert local_sig.shape == (len(_rows()), 128) and not local_has.all()  # "?!" has no shingle
    assert local_sig.tobytes() == ray_sig.tobytes() and local_has.tolist() == ray_has.tolist()
    assert local_report.removed == 1
    assert (local_report.records, local_report.removed, local_report.duplicate_clusters, local_report.by_kind) == \
        (ray_report.records, ray_report.removed, ray_report.duplicate_clusters, ray_report.by_kind)
    active = [sorted(r.id for r in w.store.iter_records()) for w in (local_ws, ray_ws)]
    assert active[0] == active[1] and local_ws.store.stats()["by_status"] == ray_ws.store.stats()["by_status"]


def test_pii_findings_and_filter_are_identical(cluster, tmp_path, monkeypatch):
    pytest.importorskip("presidio_analyzer", reason="PII detection needs the pii extra")
    from sqlalchemy import select

    from curate.store.schema import PiiFinding

    local_ws, ray_ws = _workspace(tmp_path, "local"), _workspace(tmp_path, "ray")
    seen = _spy(monkeypatch, cluster, "pii")
    local_report = get_engine("local").filter_pii(local_ws, action="redact")
    ray_report = cluster.filter_pii(ray_ws, action="redact")
    [(texts, ray_found)] = seen
    local_found = get_engine("local").pii(local_ws, texts)
    assert local_found == ray_found  # types, offsets, scores and recognizers
    kinds = {f.entity_type for fs in local_found for f in fs}
    assert {"EMAIL_ADDRESS", "AWS_ACCESS_KEY", "CREDIT_CARD"} <= kinds
    def outcome(summary):  # detection speed differs: the Ray run's texts were detected by the workers
        return {k: v for k, v in summary.items() if k != "detection"}

    assert outcome(local_report.summary) == outcome(ray_report.summary)
    assert local_report.summary["records"]["redacted"] >= 2
    columns = (PiiFinding.record_id, PiiFinding.field, PiiFinding.entity_type, PiiFinding.start, PiiFinding.end,
               PiiFinding.action)  # value_hash is keyed by each workspace's own salt
    rows = []
    for w in (local_ws, ray_ws):
        with w.store.read() as conn:
            rows.append(sorted(tuple(r) for r in conn.execute(select(*columns))))
    assert rows[0] == rows[1] and len(rows[0]) >= 4
    stored = [sorted((r.id, json.dumps(r.fields, sort_keys=True)) for r in w.store.iter_records(status=None))
              for w in (local_ws, ray_ws)]
    assert stored[0] == stored[1]


@pytest.mark.slow
def test_embedding_scorers_embed_on_ray_identically(cluster, models, tmp_path):
    local_ws, ray_ws = _workspace(tmp_path, "local"), _workspace(tmp_path, "ray")
    pool = list(local_ws.store.iter_records())
    labeled, pool = pool[:3], pool[3:]
    for name in ("novelty", "density"):
        out = []
        for engine, w in ((get_engine("local"), local_ws), (cluster, ray_ws)):
            ctx = BuildContext(cache_dir=w.cache_dir, embedder=models["st"], labeled=labeled)
            out.append(engine.score(w, name, ctx, pool, batch_size=4)[0])
        assert out[0].tobytes() == out[1].tobytes(), name
    # (Shard files are not compared here: a text whose 16-byte hash ends in a zero byte is never found again in
    # the embedding cache, which stores keys as NumPy "S16" and so drops trailing NULs; such a text is re-embedded
    # on every later call, and the two engines make different numbers of later calls.)


@pytest.mark.slow
def test_cli_score_with_the_ray_engine(cluster, models, tmp_path):
    from typer.testing import CliRunner

    from curate.cli.main import app

    runner = CliRunner()
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    figures = []
    for engine in ("local", "ray"):
        ws = str(tmp_path / engine)
        assert runner.invoke(app, ["ingest", str(tmp_path / "pool.jsonl"), "-w", ws]).exit_code == 0
        result = runner.invoke(app, ["score", "--scorer", "ifd", "--model", models["lm"], "--engine", engine, "-w", ws,
                                     "--json", str(tmp_path / f"{engine}.json")])
        assert result.exit_code == 0, result.output
        figures.append(json.loads((tmp_path / f"{engine}.json").read_text()))
    assert figures[0]["top"] == figures[1]["top"] and figures[0]["scorer_key"] == figures[1]["scorer_key"]


def test_engine_selection_errors():
    from curate.errors import InputError

    with pytest.raises(InputError, match="--engine must be one of local, ray"):
        get_engine("spark")
    with pytest.raises(InputError, match="goes with --engine ray"):
        get_engine("local", address="auto")


def test_precomputed_scores_keep_the_scorers_cache_key(models, tmp_path):
    from curate.runtime.catalog import build_scorer
    from curate.runtime.offload import PrecomputedScorer

    ws = _workspace(tmp_path, "ws")
    pool = list(ws.store.iter_records())
    built = build_scorer("perplexity", BuildContext(cache_dir=ws.cache_dir, model=models["lm"]))
    assert cache_key(PrecomputedScorer(built, {}), pool) == cache_key(built, pool)
