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


def test_two_workspaces_share_one_converted_model_in_the_user_cache(tmp_path):
    """The first workspace converts SmolLM2 into $CURATE_CACHE (announced); the second loads it, converting nothing."""
    import os
    import subprocess
    import sys

    cache = tmp_path / "user-cache"
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "Name a colour.", "completion": "Blue."}) + "\n"
                    + json.dumps({"prompt": "Two plus two?", "completion": "Four."}) + "\n", encoding="utf-8")
    env = {**os.environ, "CURATE_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    runs = []
    for name in ("first", "second"):
        ws = tmp_path / name
        for args in (["ingest", str(data)], ["score", "--scorer", "perplexity"]):
            done = subprocess.run([sys.executable, "-m", "curate", *args, "-w", str(ws)], capture_output=True,
                                  text=True, env=env, timeout=600)
            assert done.returncode == 0, done.stderr
        runs.append(done.stderr)
        assert not (ws / "cache" / "models").exists()  # nothing converted into the workspace
        if name == "first":
            folder = models.converted_lm_dir(cache)
            stamp = (folder / "config.json").stat().st_mtime_ns
    assert "converting the packaged SmolLM2" in runs[0] and "loading the language model" in runs[0]
    assert "converting" not in runs[1] and "loading the language model smollm2" in runs[1]
    assert (folder / "config.json").stat().st_mtime_ns == stamp
    assert "Converting and de-quantizing" not in runs[0]  # the library's own tqdm bars stay quiet
