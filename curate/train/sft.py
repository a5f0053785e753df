"""Supervised fine-tuning of a LoRA adapter with TRL's ``SFTTrainer``.

Input: an sft export, one row per example with ``prompt`` and ``completion`` (strings, or conversational:
``prompt`` a list of ``{role, content}`` turns and ``completion`` ``[{"role": "assistant", ...}]``), passed to
TRL unchanged. The loss is the mean negative log-likelihood of the completion tokens only (nats per token;
lower = the model predicts the answers better); conversational rows are rendered with the tokenizer's chat
template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.train.options import ProgressFn, TrainOptions, finish_trainer, trainer_kwargs


def build_trainer(
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any | None,
    *,
    options: TrainOptions,
    peft_config: Any | None,
    output_dir: Path,
    callbacks: tuple[Any, ...] = (),
    on_progress: ProgressFn | None = None,
) -> Any:
    """An ``SFTTrainer`` over ``model`` (a causal LM, or a ``PeftModel`` to continue when ``peft_config`` is None)."""
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    args = SFTConfig(**trainer_kwargs(options, "sft", output_dir, has_eval=eval_dataset is not None))
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                         processing_class=tokenizer, peft_config=peft_config)
    return finish_trainer(trainer, callbacks, on_progress)


def train_sft(ws: Any, data: Path, *, base: str | None = None, out: Path | None = None,
              options: TrainOptions | None = None) -> Any:
    """:func:`curate.train.train` with ``method="sft"``; returns its :class:`curate.train.TrainResult`."""
    from curate.train import train

    return train(ws, "sft", data, base=base, out=out, options=options or TrainOptions())


__all__ = ["build_trainer", "train_sft"]
