"""LoRA SFT of the packaged SmolLM2 on 64 Alpaca rows lowers the loss on 32 held-out rows (one CPU thread, ~2-3 min)."""

from __future__ import annotations

import json
import time

import pytest
from datasets import Dataset, DatasetDict

from curate.store.workspace import Workspace
from curate.train import TrainOptions, train
from curate.train.registry import get_version
from tests.conftest import shared_file

pytestmark = [pytest.mark.slow, pytest.mark.models, pytest.mark.shared_data]

N_TRAIN, N_TEST = 64, 32


def _alpaca_rows(n: int) -> list[dict]:
    """The first ``n`` short Alpaca rows (40-200 characters in all) as Alpaca-style prompt/completion strings.

    Short rows in plain format (no chat template with its system prompt) keep the run within a few minutes on
    one CPU thread; every row fits max_length 256 untruncated.
    """
    rows = json.loads(shared_file("alpaca_5000", "alpaca_5000.json").read_text())
    out = []
    for row in rows:
        size = len(row["instruction"]) + len(row.get("input") or "") + len(row["output"])
        if not 40 <= size <= 200 or not row["output"].strip():
            continue
        prompt = f"### Instruction:\n{row['instruction']}\n\n"
        if row.get("input"):
            prompt += f"### Input:\n{row['input']}\n\n"
        out.append({"prompt": prompt + "### Response:\n", "completion": row["output"]})
        if len(out) == n:
            break
    return out


def test_lora_sft_lowers_held_out_loss(tmp_path, smollm2_cache):
    rows = _alpaca_rows(N_TRAIN + N_TEST)
    export = tmp_path / "export"
    DatasetDict({"train": Dataset.from_list(rows[:N_TRAIN]), "test": Dataset.from_list(rows[N_TRAIN:])}
                ).save_to_disk(str(export))
    ws = Workspace.open(tmp_path / "ws")
    (ws.cache_dir / "models").symlink_to(smollm2_cache / "models", target_is_directory=True)
    (smollm2_cache / "models").mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    result = train(ws, "sft", export, options=TrainOptions(
        rank=8, alpha=16, learning_rate=1e-3, epochs=2, batch_size=8, max_length=256, eval_before=True, seed=0))
    seconds = time.perf_counter() - started
    m = result.metrics
    print(f"SmolLM2 LoRA SFT: held-out loss {m['eval_loss_before']:.4f} -> {m['eval_loss']:.4f} "
          f"(train loss {m['train_loss']:.4f}), {m['steps']} steps, training {m['seconds']:.1f} s, "
          f"total {seconds:.1f} s")
    assert m["eval_rows"] == N_TEST and m["steps"] == 2 * N_TRAIN // 8
    assert m["eval_loss"] < m["eval_loss_before"]
    info = get_version(ws.store, result.version)
    assert info.base == "smollm2" and info.method == "sft" and info.adapter_hash == result.adapter_hash
