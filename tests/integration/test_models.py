"""The packaged default models load offline: one perplexity from SmolLM2, one embedding from MiniLM."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from curate.cli.main import app
from curate.runtime import models

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def cache_dir(smollm2_cache):
    return smollm2_cache


def test_smollm2_converts_once_then_reloads_from_the_plain_folder(cache_dir):
    started = time.perf_counter()
    model, tokenizer = models.load_lm(cache_dir=cache_dir)
    first = time.perf_counter() - started
    folder = models.converted_lm_dir(cache_dir)
    assert (folder / "config.json").exists() and any(folder.glob("*.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    stamp = (folder / "config.json").stat().st_mtime_ns

    likely = models.completion_perplexity(model, tokenizer, "The capital of France is", " Paris.")
    unlikely = models.completion_perplexity(model, tokenizer, "The capital of France is", " purple elbow stapler.")
    assert math.isfinite(likely) and 1.0 < likely < unlikely

    started = time.perf_counter()
    model2, tokenizer2 = models.load_lm(cache_dir=cache_dir)
    second = time.perf_counter() - started
    assert (folder / "config.json").stat().st_mtime_ns == stamp  # reused, not converted again
    again = models.completion_perplexity(model2, tokenizer2, "The capital of France is", " Paris.")
    assert again == pytest.approx(likely, rel=1e-5)
    print(f"first load {first:.1f} s (with conversion), second load {second:.1f} s")


def test_minilm_embeds_384_dimensions_with_meaningful_similarity():
    embedder = models.load_embedder()
    vectors = embedder.encode(["How do I reset my password?", "I forgot my password", "Bananas are yellow"],
                              normalize_embeddings=True)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2


def test_models_command_loads_both_offline(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE", str(cache_dir))  # the module's converted model: the command reuses it
    result = CliRunner().invoke(app, ["models", "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "m.json").read_text())
    assert figures["model_cache"] == str(cache_dir)
    assert figures["checks"]["embedder"]["dimensions"] == 384
    assert 100_000_000 < figures["checks"]["lm"]["parameters"] < 200_000_000
    assert [m["ready"] for m in figures["models"]] == [True, True]
