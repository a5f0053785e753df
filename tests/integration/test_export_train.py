"""Real exports from annotated workspaces straight into TRL's trainers (no conversion), then the next round's
scorer on the new model version; and a fast variant of "LoRA lowers held-out loss" on exported SFT rows."""

from __future__ import annotations

import json

import pytest

from curate.annotate import answers as A
from curate.export.writer import export
from curate.ingest.sources import ingest
from curate.rounds.assignment import assign_round
from curate.rounds.tasks import create_round
from curate.store.accounts import add_user
from curate.train import train
from curate.train.options import TrainOptions
from curate.train.registry import resolve_model_version
from tests.tiny_lm import QA_PAIRS, build_tiny_lm
from tests.unit.test_export import _answered

pytest.importorskip("trl")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(build_tiny_lm(tmp_path_factory.mktemp("export-train") / "lm"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_each_export_trains_without_conversion_and_drives_the_next_scorer(workspace, tmp_path, tiny):
    _answered(workspace, tmp_path)
    options = TrainOptions(max_steps=1, batch_size=2, max_length=64, warm_start=False)
    versions = {}
    for fmt, method in (("sft", "sft"), ("dpo", "dpo"), ("reward", "reward")):
        out = tmp_path / f"export-{fmt}"
        export(workspace, fmt, out)
        result = train(workspace, method, out, base=tiny, options=options)
        assert result.metrics["steps"] == 1 and result.adapter_path.is_dir()
        versions[method] = result.version
    from curate.scorers.cache import score_records
    from curate.scorers.perplexity import PerplexityScorer

    base, adapter = resolve_model_version(workspace.store, versions["sft"])
    assert (base, adapter is not None) == (tiny, True)
    records = list(workspace.store.iter_records(kind="example", status=None))
    before, _ = score_records(workspace.store, PerplexityScorer(model=tiny, cache_dir=tmp_path), records)
    after, report = score_records(workspace.store, PerplexityScorer(model=base, adapter=adapter, cache_dir=tmp_path),
                                  records)
    assert report.computed == len(records) and report.cached == 0  # a new model version scores afresh
    assert report.scorer_key != "" and not (before == after).all()


def test_lora_on_exported_sft_rows_lowers_held_out_loss(workspace, tmp_path, tiny):
    """Fast variant (tiny model) of tests/integration/test_train_smollm2.py, on rows that went through export."""
    rows = [{"prompt": q, "completion": a} for q, a in QA_PAIRS]
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[2:]))
    ingest(workspace, tmp_path / "pool.jsonl")
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    ingest(workspace, tmp_path / "test.jsonl", split="test")
    add_user(workspace.store, "ann", "annotator", "correct-horse-42")
    records = sorted(workspace.store.iter_records(kind="example"), key=lambda r: r.line)
    import numpy as np

    create_round(workspace.store, records, list(range(len(records))), scores=np.zeros(len(records)),
                 strategy_key="all", task_type="rewrite")
    assign_round(workspace.store, ["ann"])
    while (view := A.get_task(workspace.store, "ann")) is not None:
        A.submit(workspace.store, "ann", view.task_id, {"accepted_as_is": True})
    out = tmp_path / "sft"
    report = export(workspace, "sft", out)
    assert report.counts["test"] == 2
    result = train(workspace, "sft", out, base=tiny,
                   options=TrainOptions(epochs=8, batch_size=4, max_length=64, learning_rate=5e-3, eval_before=True,
                                        warm_start=False, rank=16, alpha=32))
    assert result.metrics["eval_loss"] < result.metrics["eval_loss_before"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_kto_export_trains_in_trl_without_conversion(workspace, tmp_path, tiny):
    import datasets
    import torch
    from peft import LoraConfig
    from trl import KTOConfig, KTOTrainer

    from tests.tiny_lm import load_tiny_lm

    _answered(workspace, tmp_path)
    export(workspace, "kto", tmp_path / "kto")
    data = datasets.load_from_disk(str(tmp_path / "kto"))["train"]
    assert data.column_names == ["prompt", "completion", "label"] and set(data["label"]) == {True, False}
    model, tok = load_tiny_lm(tiny)
    config = KTOConfig(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=4,
                       bf16=False, report_to=[], save_strategy="no", max_length=64, logging_steps=1)
    trainer = KTOTrainer(model=model, args=config, train_dataset=data, processing_class=tok,
                         peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    before = {k: v.clone() for k, v in trainer.model.named_parameters() if "lora_B" in k}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert any(not torch.equal(before[k], after[k]) for k in before)
