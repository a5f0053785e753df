"""``--embedder <base>+words``: word features fitted once on a workspace's pool, frozen, beside the embedding."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from curate.cli.main import app
from curate.errors import InputError
from curate.ingest.sources import ingest
from curate.loop.pool_loop import LoopConfig, run_loop
from curate.runtime.embeddings import Embedder, MemoEmbedder
from curate.runtime.tfidf_svd import TfidfSvdFeaturizer
from curate.runtime.word_features import (
    WORD_WEIGHT,
    beside,
    embedder_for_spec,
    sample_texts,
    words_path,
    workspace_embedder,
)
from tests.unit.test_loop import seed_texts, text_rows, write_jsonl

BLIND = "tests.unit.test_word_features:blind_encode"


def blind_encode(texts):
    """An embedder that cannot tell the words apart: 8 dimensions from the text's length only."""
    lengths = np.array([len(t) for t in texts], dtype=np.float32)[:, None]
    return np.hstack([np.ones_like(lengths), np.sin(lengths * np.arange(1, 8, dtype=np.float32) / 7.0)])


def test_a_saved_featurizer_loads_with_identical_features(tmp_path):
    texts = [f"how many {w} are there in {v}" for w in "cats dogs cars".split() for v in "paris rome oslo".split()]
    fitted = TfidfSvdFeaturizer(dim=4).fit(texts)
    fitted.save(tmp_path / "w.npz")
    loaded = TfidfSvdFeaturizer.load(tmp_path / "w.npz")
    new = ["how many cats in oslo", "an unseen sentence entirely"]
    np.testing.assert_allclose(loaded(texts + new), fitted(texts + new), rtol=1e-5, atol=1e-6)  # float32 SVD
    assert np.array_equal(loaded(new), TfidfSvdFeaturizer.load(tmp_path / "w.npz")(new))  # every load alike
    assert loaded(new).shape == (2, 4) and (loaded.dim, loaded.hash_bits) == (4, 18)
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    with pytest.raises(InputError, match=r"bad\.npz: not a saved TfidfSvdFeaturizer.*delete it"):
        TfidfSvdFeaturizer.load(tmp_path / "bad.npz")


def test_beside_gives_unit_rows_with_the_words_weighted():
    dense = np.eye(2, 3, dtype=np.float32)
    words = np.array([[3.0, 4.0], [0.0, 0.0]])  # the second text has no word features
    out = beside(dense, words)
    assert out.shape == (2, 5) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert np.allclose(out[0, 3:] / out[0, 0], [WORD_WEIGHT * 0.6, WORD_WEIGHT * 0.8])  # unit words, then weighted
    assert np.allclose(out[1], [0, 1, 0, 0, 0])


def test_sample_texts_keeps_at_most_the_limit_in_stream_order():
    texts = [f"t{i}" for i in range(1000)]
    kept = sample_texts(iter(texts), 50)
    assert len(kept) == 50 and len(set(kept)) == 50
    assert kept == sorted(kept, key=lambda t: int(t[1:])) and kept == sample_texts(texts, 50)
    assert sample_texts(texts[:10], 50) == texts[:10]


def test_words_are_fitted_once_on_the_pool_and_frozen(workspace, tmp_path):
    seed_texts(workspace, tmp_path)  # 160 pool, 80 test, 60 calibration texts
    told: list[tuple[str, int]] = []
    spec = BLIND + "+words"
    emb = workspace_embedder(spec, workspace, on_fit=lambda s, n: told.append((s, n)))
    path = words_path(workspace.cache_dir, spec)
    note = json.loads(path.with_suffix(".json").read_text())
    pool = [r.fields["text"] for r in workspace.store.iter_records(split="pool")]
    assert told == [(spec, 160)] and note["texts"] == len(set(pool)) and note["dim"] == 256
    probe = ["please refund my invoice", "the parcel is late again"]
    first = emb.embed_texts(probe)
    assert first.shape[0] == 2 and first.shape[1] > 8 and np.allclose(np.linalg.norm(first, axis=1), 1.0)
    # more records later: the fit is loaded, not redone, so the old texts keep their vectors
    ingest(workspace, write_jsonl(tmp_path / "more.jsonl", text_rows(200, 9, 0.9)))
    stamp = path.stat().st_mtime_ns
    again = workspace_embedder(spec, workspace, on_fit=lambda s, n: told.append((s, n)))
    assert len(told) == 1 and path.stat().st_mtime_ns == stamp
    assert np.array_equal(again.embed_texts(probe), first)
    assert np.array_equal(embedder_for_spec(spec, workspace.cache_dir).embed_texts(probe), first)
    memo = workspace_embedder(spec, workspace, memo=True)  # what curate stream uses: vectors kept in memory
    assert isinstance(memo.base, MemoEmbedder) and np.array_equal(memo.embed_texts(probe), first)


def test_classifiers_on_word_rows_keep_the_embeddings_regularisation(workspace, tmp_path):
    from curate.loop.evaluation import fit_model
    from curate.scorers.classifier_models import DEFAULT_C, classifier_c, fit_classifier

    seed_texts(workspace, tmp_path, signal_share=0.6)
    emb = workspace_embedder(BLIND + "+words", workspace)
    assert emb.c_scale == pytest.approx(1 + WORD_WEIGHT**2)
    labeled = [r for r in workspace.store.iter_records(split="pool") if r.label is not None][:60]
    classes = sorted({str(r.label) for r in labeled})
    model = fit_model("text", labeled, emb, classes=classes, rng=np.random.default_rng(0))  # the loop's model
    assert model.classifier is not None
    assert model.classifier.estimator.C == pytest.approx(classifier_c(emb)) == pytest.approx(DEFAULT_C * 1.25)
    # unit rows with C * (1 + w^2) are the un-renormalised rows [base, w * unit(words)] with C
    texts = [str(r.fields["text"]) for r in labeled]
    dense, words = emb.base.embed_texts(texts), emb.words(texts)
    raw = np.hstack([dense, WORD_WEIGHT * words / np.linalg.norm(words, axis=1, keepdims=True)])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    on_raw = fit_classifier(raw, [str(r.label) for r in labeled], classes=classes, rng=np.random.default_rng(0),
                            max_iter=2000)
    on_unit = fit_classifier(emb.embed_texts(texts), [str(r.label) for r in labeled], classes=classes,
                             rng=np.random.default_rng(0), C=classifier_c(emb), max_iter=2000)
    np.testing.assert_allclose(on_unit.predict_proba(emb.embed_texts(texts)), on_raw.predict_proba(raw), atol=2e-3)
    assert classifier_c(emb.base) == DEFAULT_C  # plain embedders keep C


def test_unfitted_or_model_built_words_embedders_fail_clearly(workspace, tmp_path):
    with pytest.raises(InputError, match=r"minilm\+words: its word features are not fitted in this workspace"):
        embedder_for_spec("minilm+words", workspace.cache_dir)
    with pytest.raises(InputError, match="word features are fitted per workspace"):
        Embedder("minilm+words").embed_texts(["a text"])
    with pytest.raises(InputError, match="at least 2 distinct texts in the pool"):
        workspace_embedder(BLIND + "+words", workspace)  # an empty workspace


def test_the_loop_learns_from_the_words_an_embedding_cannot_see(workspace, tmp_path):
    seed_texts(workspace, tmp_path, signal_share=0.6)
    accuracy = {}
    for name, spec in (("blind", BLIND), ("words", BLIND + "+words")):
        config = LoopConfig(name=name, rounds=3, budget=60, batch=20, oracle="label", min_gain_per_label=0,
                            embedder=spec)
        result = run_loop(workspace, config)  # no injected embedder: the loop builds it from the spec
        assert result.stop_reason == "budget"
        accuracy[name] = result.history[-1]["metrics"]["accuracy"]
    assert accuracy["blind"] < 0.5 < 0.8 < accuracy["words"], accuracy
    assert words_path(workspace.cache_dir, BLIND + "+words").exists()


def test_curate_loop_takes_a_words_embedder_and_says_it_fits_it(tmp_path):
    ws = tmp_path / "ws"
    runner = CliRunner()
    for name, split in (("pool", "pool"), ("test", "test")):
        path = write_jsonl(tmp_path / f"{name}.jsonl", text_rows(80 if split == "pool" else 40, len(name), 0.6))
        assert runner.invoke(app, ["ingest", str(path), "--split", split, "-w", str(ws)]).exit_code == 0
    result = runner.invoke(app, ["loop", "--name", "w", "--rounds", "1", "--batch", "10", "--budget", "10",
                                 "--oracle", "label", "--min-gain-per-label", "0", "--embedder", BLIND + "+words",
                                 "-w", str(ws)])
    assert result.exit_code == 0, result.output
    assert "fitting the word features of --embedder" in " ".join(result.output.split())
    assert words_path(ws / "cache", BLIND + "+words").exists()


def test_label_teach_takes_a_words_embedder_and_reports_the_fit(tmp_path):
    from recipes.label_teach import label_teach

    rows = ["text,topic"] + [f"refund for invoice {i} please,billing" for i in range(12)] + \
           [f"the app crashes on screen {i},bug" for i in range(12)]
    (tmp_path / "texts.csv").write_text("\n".join(rows) + "\n")
    result = label_teach(files=[tmp_path / "texts.csv"], workspace=tmp_path / "ws", classes="billing,bug",
                         schema="topic", oracle="topic", rounds=2, batch=4, budget=8, embedder=BLIND + "+words")
    loop = next(s for s in result.steps if s.name == "loop")
    assert loop.summary["word_features_fitted_on"] == 24 and loop.summary["stop_reason"] == "budget"
    assert words_path(tmp_path / "ws" / "cache", BLIND + "+words").exists()


def test_seed_embed_and_select_take_a_words_embedder(tmp_path):
    ws = tmp_path / "ws"
    runner = CliRunner()
    rows = [{"text": r["text"]} for r in text_rows(40, 1, 0.6)]  # unlabelled: candidates for a cold start
    assert runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / "pool.jsonl", rows)), "-w", str(ws)]).exit_code == 0
    seeded = runner.invoke(app, ["seed", "--method", "centroids", "-k", "4", "--embedder", BLIND + "+words",
                                 "-w", str(ws)])
    said = " ".join(seeded.output.split())
    assert seeded.exit_code == 0, seeded.output
    assert "fitting the word features" in said and "4 cold-start task(s) by centroids from 40 candidates" in said
    out = tmp_path / "embed.json"
    embedded = runner.invoke(app, ["embed", "--embedder", BLIND + "+words", "-w", str(ws), "--json", str(out)])
    assert embedded.exit_code == 0, embedded.output
    report = json.loads(out.read_text())
    assert report["records"] == 36 and report["dimensions"] > 8  # the 4 seeded records have tasks now
    assert "fitting the word features" not in " ".join(embedded.output.split())  # fitted once, by seed
    selected = runner.invoke(app, ["select", "--scorer", "density", "-k", "4", "--embedder", BLIND + "+words",
                                   "-w", str(ws)])  # the scorer and the selector share the command's one embedder
    assert selected.exit_code == 0, selected.output
    assert "round 2: 4 task(s) from 36 candidates" in " ".join(selected.output.split())


def test_curate_stream_takes_a_words_embedder(workspace, tmp_path):
    from curate.rounds.assignment import add_label_schema
    from curate.store.accounts import add_user
    from tests.unit.test_loop import CLASSES
    from tests.unit.test_stream import read_lines, topic_rows

    ingest(workspace, write_jsonl(tmp_path / "pool.jsonl", topic_rows(sorted(CLASSES), 60, 1)))
    add_user(workspace.store, "ann", "annotator", "correct-horse-42")
    add_label_schema(workspace.store, "topic", sorted(CLASSES))
    source = write_jsonl(tmp_path / "stream.jsonl", topic_rows(sorted(CLASSES), 200, 2))
    out = tmp_path / "decisions.jsonl"
    result = CliRunner().invoke(app, [
        "stream", "--input", str(source), "--out", str(out), "--target-rate", "0.1",
        "--scorer", "tests.unit.test_stream:LengthScorer", "--embedder", BLIND + "+words", "--drift-window", "50",
        "--drift-reference", "50", "--annotators", "ann", "--schema", "topic",
        "-w", str(workspace.root), "--db", workspace.db_url])
    assert result.exit_code == 0, result.output
    decisions = [x for x in read_lines(out) if x["type"] == "decision"]
    assert len(decisions) == 200 and any(x["decision"] == "label" for x in decisions)
    assert words_path(workspace.cache_dir, BLIND + "+words").exists()  # fitted on the pool, for the drift monitor


def test_the_loop_model_reads_the_word_columns_when_the_embedding_cannot_tell(workspace, tmp_path):
    from curate.loop.evaluation import fit_model
    from curate.scorers.feature_choice import base_columns

    seed_texts(workspace, tmp_path, signal_share=0.6)
    emb = workspace_embedder(BLIND + "+words", workspace)
    assert emb.word_columns == emb.words.width > 0 and base_columns(emb) == -emb.word_columns
    assert base_columns(emb.base) is None  # plain embedders: every column, no choice
    labeled = [r for r in workspace.store.iter_records(split="pool") if r.label is not None][:60]
    classes = sorted({str(r.label) for r in labeled})
    model = fit_model("text", labeled, emb, classes=classes, rng=np.random.default_rng(0))
    assert model.classifier is not None
    assert model.classifier.columns_used == model.classifier.n_features == 8 + emb.word_columns
