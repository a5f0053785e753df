"""LoRA training (curate.train): exports in, adapters out, registered versions that the scorers then use.

Everything runs on the tiny local Llama of tests/tiny_lm.py (a few hundred kilobytes), 1-3 steps, max_length 64.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    LlamaForSequenceClassification,
    TrainerCallback,
)

from curate.errors import InputError
from curate.store.workspace import Workspace
from curate.train import TrainOptions, train, train_model
from curate.train.base_models import adapter_hash
from curate.train.exports import export_hash, export_splits, load_export
from curate.train.registry import get_version, latest_version, resolve_model_version
from tests.tiny_lm import QA_PAIRS, build_tiny_lm

FAST = {"max_steps": 2, "batch_size": 2, "max_length": 64, "logging_steps": 1, "evaluate": True}
SFT_ROWS = [{"prompt": q, "completion": a} for q, a in QA_PAIRS]
CHAT_ROWS = [{"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": a}]}
             for q, a in QA_PAIRS]
PREF_ROWS = [{"prompt": q, "chosen": a, "rejected": QA_PAIRS[(i + 1) % len(QA_PAIRS)][1]}
             for i, (q, a) in enumerate(QA_PAIRS)]
CONTENT_HASH = "ab" * 32


def _hf_export(folder: Path, rows: list[dict], fmt: str, *, test: bool = True, manifest: bool = True) -> Path:
    splits = {"train": Dataset.from_list(rows)}
    if test:
        splits["test"] = Dataset.from_list(rows[:2])
    DatasetDict(splits).save_to_disk(str(folder))
    (folder / "provenance.jsonl").write_text("{}\n")
    if manifest:
        (folder / "export.json").write_text(json.dumps({"format": fmt, "label_schema": None, "counts": {
            s: len(d) for s, d in splits.items()}, "content_hash": f"sha256:{CONTENT_HASH}"}))
    (folder / "README.md").write_text("# export\n")
    return folder


def _jsonl_export(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    (folder / "test.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows[:2]))
    return folder


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("train") / "lm")


@pytest.fixture(scope="module")
def reward_lm(lm: Path, tmp_path_factory) -> Path:
    """A tiny LlamaForSequenceClassification (num_labels=1) with the causal LM's config and tokenizer."""
    model = AutoModelForCausalLM.from_pretrained(lm)
    config = model.config
    config.num_labels = 1
    assert config.pad_token_id is not None
    torch.manual_seed(0)
    classifier = LlamaForSequenceClassification(config)
    classifier.model.load_state_dict(model.model.state_dict())
    folder = tmp_path_factory.mktemp("train") / "rm"
    classifier.save_pretrained(folder)
    AutoTokenizer.from_pretrained(lm).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    return {
        "sft-hf": _hf_export(root / "sft-hf", SFT_ROWS, "sft"),
        "sft-jsonl": _jsonl_export(root / "sft-jsonl", SFT_ROWS),
        "chat-hf": _hf_export(root / "chat-hf", CHAT_ROWS, "sft", manifest=False),
        "pref-hf": _hf_export(root / "pref-hf", PREF_ROWS, "dpo"),
        "pref-jsonl": _jsonl_export(root / "pref-jsonl", PREF_ROWS),
    }


@pytest.fixture
def ws(tmp_path: Path):
    workspace = Workspace.open(tmp_path / "ws")
    yield workspace
    workspace.store.dispose()


class Snapshot(TrainerCallback):
    """Keeps a copy of the model's state dict when training starts."""

    start: dict[str, torch.Tensor]

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.start = {k: v.detach().clone() for k, v in model.state_dict().items()}


def _lora_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The default adapter's LoRA tensors, named as in a saved adapter file."""
    return {k.replace(".default", ""): v for k, v in state.items() if "lora_" in k and ".default." in k}


def _load_adapter_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


IDS = torch.tensor([[1, 5, 9, 17, 33, 65, 120, 7]])


# --- exports ------------------------------------------------------------------------------------------------


def test_load_export_reads_every_layout_with_the_columns_unchanged(tmp_path, exports):
    hf = load_export(exports["sft-hf"])
    assert hf.column_names == ["prompt", "completion"] and len(hf) == len(SFT_ROWS)
    assert export_splits(exports["sft-hf"]) == ["train", "test"]
    assert load_export(exports["sft-jsonl"], "test")[0] == SFT_ROWS[0]
    assert export_splits(exports["sft-jsonl"]) == ["train", "test"]  # provenance.jsonl etc. are not splits
    Dataset.from_list(PREF_ROWS).save_to_disk(str(tmp_path / "single"))
    assert load_export(tmp_path / "single").column_names == ["prompt", "chosen", "rejected"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "pq").mkdir()
    pq.write_table(pa.Table.from_pylist(CHAT_ROWS), tmp_path / "pq" / "train.parquet")
    assert load_export(tmp_path / "pq")[0]["completion"] == CHAT_ROWS[0]["completion"]
    assert load_export(exports["pref-jsonl"] / "train.jsonl")[1] == PREF_ROWS[1]


def test_data_hash_is_the_manifest_hash_else_a_stable_hash_of_the_data_files(tmp_path, exports):
    assert export_hash(exports["sft-hf"]) == CONTENT_HASH
    first = export_hash(exports["chat-hf"])
    assert len(first) == 64
    (exports["chat-hf"] / "train" / "cache-0123.arrow").write_bytes(b"datasets cache, not data")
    assert export_hash(exports["chat-hf"]) == first
    assert export_hash(exports["sft-jsonl"]) != export_hash(exports["pref-jsonl"])


def test_missing_empty_and_mismatched_exports_are_clear_input_errors(tmp_path, ws, exports, lm):
    with pytest.raises(InputError, match="does not exist.*curate export"):
        train(ws, "sft", tmp_path / "nope", base=str(lm), options=TrainOptions(**FAST))
    _jsonl_export(tmp_path / "empty", [])
    with pytest.raises(InputError, match="has no rows"):
        load_export(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="holds no export.*notes.txt"):
        load_export(tmp_path / "other")
    with pytest.raises(InputError, match="no 'calibration' split"):
        load_export(exports["sft-hf"], "calibration")
    with pytest.raises(InputError, match=r"needs a dpo or reward export.*'sft' export.*curate train sft"):
        train(ws, "dpo", exports["sft-hf"], base=str(lm), options=TrainOptions(**FAST))
    with pytest.raises(InputError, match=r"columns chosen, rejected.*prompt, completion"):
        train(ws, "reward", exports["sft-jsonl"], base=str(lm), options=TrainOptions(**FAST))
    with pytest.raises(InputError, match=r"needs an sft export.*columns prompt, chosen, rejected"):
        train(ws, "sft", exports["pref-jsonl"], base=str(lm), options=TrainOptions(**FAST))
    _jsonl_export(tmp_path / "kto", [{**r, "label": True} for r in SFT_ROWS])
    with pytest.raises(InputError, match=r"needs an sft export.*columns prompt, completion, label"):
        train(ws, "sft", tmp_path / "kto", base=str(lm), options=TrainOptions(**FAST))
    with pytest.raises(InputError, match="unknown training method"):
        train(ws, "ppo", exports["sft-hf"], base=str(lm))
    assert not (ws.root / "adapters").exists() or not any((ws.root / "adapters").iterdir())


# --- training -------------------------------------------------------------------------------------------------


def test_training_evaluates_only_when_asked(ws, lm, exports):
    options = {k: v for k, v in FAST.items() if k != "evaluate"}
    result = train(ws, "sft", exports["sft-hf"], base=str(lm), options=TrainOptions(**options, warm_start=False))
    assert "eval_loss" not in result.metrics and result.metrics["eval_rows"] == 0  # the test split was not run
    asked = train(ws, "sft", exports["sft-hf"], base=str(lm), options=TrainOptions(**options, evaluate=True,
                                                                                  warm_start=False))
    assert asked.metrics["eval_rows"] == 2 and asked.metrics["eval_loss"] > 0


@pytest.mark.parametrize(("method", "export", "base_kind"), [
    ("sft", "sft-hf", "lm"), ("sft", "chat-hf", "lm"), ("sft", "sft-jsonl", "lm"), ("dpo", "pref-hf", "lm"),
    ("dpo", "pref-jsonl", "lm"), ("reward", "pref-hf", "classifier"), ("reward", "pref-jsonl", "lm"),
])
def test_each_method_trains_only_the_lora_weights_and_the_adapter_reloads_exactly(ws, lm, reward_lm, exports,
                                                                                  method, export, base_kind):
    """A reward model starts from a sequence classifier, or from a causal LM given a new score head."""
    base = reward_lm if base_kind == "classifier" else lm
    snap = Snapshot()
    trained = train_model(ws, method, exports[export], base=str(base), options=TrainOptions(**FAST),
                          callbacks=(snap,))
    result = trained.result
    assert result.metrics["steps"] == 2 and result.metrics["train_rows"] == len(SFT_ROWS)
    assert result.metrics["eval_rows"] == 2 and result.metrics["eval_loss"] > 0
    end = trained.model.state_dict()
    lora = [k for k in end if "lora_" in k]
    assert lora and any(not torch.equal(snap.start[k], end[k]) for k in lora)
    frozen = [k for k in end if "lora_" not in k]
    assert frozen and all(torch.equal(snap.start[k], end[k]) for k in frozen if "modules_to_save" not in k)
    if method == "reward":  # the new score head is trained and saved with the adapter
        assert any(not torch.equal(snap.start[k], end[k]) for k in frozen if "modules_to_save" in k)

    cls = AutoModelForSequenceClassification if method == "reward" else AutoModelForCausalLM
    kwargs = {"num_labels": 1} if method == "reward" else {}
    fresh = cls.from_pretrained(base, **kwargs)
    from peft import PeftModel

    reloaded = PeftModel.from_pretrained(fresh, result.adapter_path).eval()
    with torch.inference_mode():
        assert torch.allclose(trained.model(input_ids=IDS).logits, reloaded(input_ids=IDS).logits, atol=1e-6)
        plain = cls.from_pretrained(base, **kwargs).eval()
        assert not torch.allclose(plain(input_ids=IDS).logits, reloaded(input_ids=IDS).logits, atol=1e-6)
    assert torch.equal(fresh.model.layers[0].self_attn.q_proj.base_layer.weight,
                       plain.model.layers[0].self_attn.q_proj.weight)  # the base file itself is untouched


def test_versions_are_registered_audited_and_warm_started(workspace, lm, exports):
    from curate.store import audit

    first = train(workspace, "sft", exports["sft-hf"], base=str(lm), options=TrainOptions(**FAST))
    info = get_version(workspace.store, first.version)
    assert info.base == str(lm.resolve()) and info.adapter_path == str(first.adapter_path)
    assert info.adapter_hash == adapter_hash(first.adapter_path) == first.adapter_hash
    assert info.data_hash == CONTENT_HASH and info.parent_id is None and info.method == "sft"
    assert {"train_loss", "eval_loss", "steps", "seconds"} <= set(info.metrics)

    snap = Snapshot()
    second = train_model(workspace, "sft", exports["sft-jsonl"], base=str(lm), options=TrainOptions(**FAST),
                         callbacks=(snap,)).result
    assert second.parent == first.version
    assert get_version(workspace.store, second.version).parent_id == info.id
    start, saved = _lora_only(snap.start), _load_adapter_weights(first.adapter_path)
    assert start.keys() == saved.keys() and all(torch.equal(start[k], saved[k]) for k in saved)
    assert latest_version(workspace.store, str(lm.resolve()), "sft").name == second.version
    assert latest_version(workspace.store, str(lm.resolve()), "dpo") is None

    picked = train(workspace, "sft", exports["sft-hf"], base=str(lm),
                   options=TrainOptions(**FAST, from_version=first.version, name="round-3"))
    fresh = train(workspace, "sft", exports["sft-hf"], base=str(lm), options=TrainOptions(**FAST, warm_start=False))
    assert picked.version == "round-3" and picked.parent == first.version and fresh.parent is None

    with workspace.store.read() as conn:
        from sqlalchemy import select

        from curate.store.schema import AuditEvent

        events = conn.execute(select(AuditEvent).where(AuditEvent.action == "train")).all()
    assert [e.model_version for e in events] == [first.version, second.version, "round-3", fresh.version]
    payload = json.loads(events[1].payload)
    assert payload["parent_id"] == info.id and payload["data_hash"] and payload["adapter_hash"]
    assert audit.verify(workspace.store).ok


def test_warm_start_and_output_errors(ws, lm, reward_lm, exports):
    first = train(ws, "sft", exports["sft-hf"], base=str(lm), options=TrainOptions(**FAST))
    with pytest.raises(InputError, match="cannot warm-start reward from .*sft adapter"):
        train(ws, "reward", exports["pref-hf"], base=str(lm), options=TrainOptions(**FAST, from_version=first.version))
    with pytest.raises(InputError, match="trained on"):
        train(ws, "dpo", exports["pref-hf"], base=str(reward_lm),
              options=TrainOptions(**FAST, from_version=first.version))
    with pytest.raises(InputError, match="exists already"):
        train(ws, "sft", exports["sft-hf"], base=str(lm), options=TrainOptions(**FAST, name=first.version))
    with pytest.raises(InputError, match="not an empty folder"):
        train(ws, "sft", exports["sft-hf"], base=str(lm), out=first.adapter_path, options=TrainOptions(**FAST))
    with pytest.raises(InputError, match="use one"):
        TrainOptions(warm_start=False, from_version=first.version)
    with pytest.raises(InputError, match="rank=0"):
        TrainOptions(rank=0)
    # DPO continues an SFT adapter when asked to.
    dpo = train(ws, "dpo", exports["pref-hf"], base=str(lm), options=TrainOptions(**FAST, from_version=first.version))
    assert dpo.parent == first.version


def test_merge_writes_a_full_model_with_the_adapters_logits(ws, lm, exports):
    progress: list[tuple[int, int]] = []
    result = train(ws, "sft", exports["sft-hf"], base=str(lm), options=TrainOptions(**FAST, merge=True),
                   on_progress=lambda step, total: progress.append((step, total)))
    assert progress == [(0, 2), (1, 2), (2, 2)]
    assert result.merged_path == result.adapter_path / "merged"
    from peft import PeftModel

    with torch.inference_mode():
        merged = AutoModelForCausalLM.from_pretrained(result.merged_path).eval()
        adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(lm), result.adapter_path).eval()
        assert torch.allclose(merged(input_ids=IDS).logits, adapted(input_ids=IDS).logits, atol=1e-4)
    assert AutoTokenizer.from_pretrained(result.merged_path).eos_token == "<|im_end|>"
    assert adapter_hash(result.adapter_path) == result.adapter_hash  # the merged folder is not part of the hash


def test_the_next_rounds_scorer_uses_the_new_version(tmp_path, ws, lm, exports):
    from curate.ingest.sources import ingest
    from curate.rounds.selection import candidates
    from curate.scorers import PerplexityScorer
    from curate.scorers.cache import score_records

    result = train(ws, "sft", exports["sft-hf"], base=str(lm), options=TrainOptions(**FAST, learning_rate=1e-2))
    base, adapter = resolve_model_version(ws.store, result.version)
    assert (base, adapter) == (str(lm.resolve()), str(result.adapter_path))
    before = PerplexityScorer(model=base, cache_dir=ws.cache_dir)
    after = PerplexityScorer(model=base, adapter=adapter, cache_dir=ws.cache_dir)
    assert before.model_version() != after.model_version() and before.key() != after.key()
    (tmp_path / "pool.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in SFT_ROWS[:3]))
    ingest(ws, tmp_path / "pool.jsonl")
    records = candidates(ws)
    old, _ = score_records(ws.store, before, records)
    assert score_records(ws.store, before, records)[1].cached == 3
    new, report = score_records(ws.store, after, records)
    assert report.computed == 3 and report.cached == 0 and not (old == new).any()


def test_unknown_or_missing_versions_name_the_known_ones(ws, lm, exports):
    with pytest.raises(InputError, match="no model version called 'nope'.*none yet"):
        resolve_model_version(ws.store, "nope")
    result = train(ws, "sft", exports["sft-hf"], base=str(lm), options=TrainOptions(**FAST))
    with pytest.raises(InputError, match=f"Known versions: {result.version}"):
        resolve_model_version(ws.store, "nope")
    import shutil

    shutil.rmtree(result.adapter_path)
    with pytest.raises(InputError, match="no longer exists"):
        resolve_model_version(ws.store, result.version)


# --- CLI ------------------------------------------------------------------------------------------------------


def test_cli_train_then_score_with_the_model_version(tmp_path, lm, exports):
    from typer.testing import CliRunner

    import curate.cli.train  # noqa: F401  (registers `train`)
    from curate.cli.main import app

    runner = CliRunner()
    ws = str(tmp_path / "ws")
    pool = tmp_path / "pool.jsonl"
    pool.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in SFT_ROWS))
    assert runner.invoke(app, ["ingest", str(pool), "-w", ws]).exit_code == 0
    result = runner.invoke(app, ["train", "sft", "--data", str(exports["sft-hf"]), "--base", str(lm), "--max-steps",
                                 "1", "--batch-size", "2", "--max-length", "64", "--rank", "4", "--eval-before",
                                 "--name", "cli-v1", "-w", ws, "--json", str(tmp_path / "train.json")])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "train.json").read_text())
    assert figures["version"] == "cli-v1" and figures["metrics"]["steps"] == 1
    assert figures["metrics"]["lora"]["r"] == 4 and "eval_loss_before" in figures["metrics"]
    assert "model version cli-v1" in result.output
    assert "curate score --scorer perplexity --model-version cli-v1" in " ".join(result.output.split())

    reward = runner.invoke(app, ["train", "reward", "--data", str(exports["pref-jsonl"]), "--base", str(lm),
                                 "--max-steps", "1", "--batch-size", "2", "--max-length", "64", "--rank", "4",
                                 "--name", "cli-r1", "-w", ws])
    assert reward.exit_code == 0, reward.output
    said = " ".join(reward.output.split())  # no advice that the score command would refuse
    assert "--model-version cli-r1" not in said and "AutoModelForSequenceClassification" in said

    result = runner.invoke(app, ["score", "--scorer", "perplexity", "--model-version", "cli-v1", "-w", ws,
                                 "--json", str(tmp_path / "score.json")])
    assert result.exit_code == 0, result.output
    key = json.loads((tmp_path / "score.json").read_text())["scorer_key"]
    assert "+cli-v1:" in key and json.loads((tmp_path / "score.json").read_text())["computed"] == len(SFT_ROWS)

    result = runner.invoke(app, ["train", "dpo", "--data", str(exports["sft-hf"]), "--base", str(lm), "-w", ws])
    assert isinstance(result.exception, InputError) and "needs a dpo or reward export" in str(result.exception)

    # As a user runs it: one clear line naming the known versions, exit code 2, no traceback.
    proc = subprocess.run([sys.executable, "-m", "curate", "score", "--scorer", "perplexity", "--model-version",
                           "nope", "-w", ws], capture_output=True, text=True, timeout=120)
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "no model version called 'nope'" in message and "cli-v1" in message
    assert "Traceback" not in proc.stderr + proc.stdout
