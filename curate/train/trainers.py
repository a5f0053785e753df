"""TRL's trainers for the three methods, from one table: SFT, DPO and reward modelling of a LoRA adapter.

Input: an sft export (``prompt``, ``completion``) or a dpo / reward export (``prompt``, ``chosen``, ``rejected``;
strings, or conversational lists of ``{role, content}``), passed to TRL unchanged.

* **SFT** (``SFTTrainer``): the loss is the mean negative log-likelihood of the completion tokens only (nats per
  token; lower = the model predicts the answers better); conversational rows use the tokenizer's chat template.
* **DPO** (``DPOTrainer``) adapts a causal LM. The loss is ``-log sigmoid(beta * (log-ratio(chosen) -
  log-ratio(rejected)))`` where a log-ratio is the policy's minus the reference's summed log-probability of an
  answer; the reference is the base with the adapter switched off (a fresh run) or a frozen copy of the starting
  adapter (a warm start), so no separate reference model is loaded.
* **Reward** (``RewardTrainer``) adapts a one-output sequence classifier (the base's transformer with a new linear
  ``score`` head, trained and saved with the adapter; higher score = better). The loss is the Bradley-Terry
  ``-log sigmoid(r(chosen) - r(rejected))``.

Trainer arguments (:func:`trainer_kwargs`) are CPU-safe: no bf16 on a CPU, no gradient checkpointing, no reporting,
no Hub, no checkpoints.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.train.options import ProgressFn, TrainOptions


@dataclass(frozen=True)
class TrainerSpec:
    """Where TRL keeps a method's config and trainer classes, and which options the config takes beyond the shared."""

    module: str
    config: str
    trainer: str
    extra: tuple[str, ...] = ()


#: One row per training method: TRL's config and trainer, and the option fields passed to the config by name.
TRAINERS: dict[str, TrainerSpec] = {
    "sft": TrainerSpec("sft", "SFTConfig", "SFTTrainer"),
    "dpo": TrainerSpec("dpo", "DPOConfig", "DPOTrainer", extra=("beta",)),
    "reward": TrainerSpec("reward", "RewardConfig", "RewardTrainer"),
}


def build_trainer(
    method: str,
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
    """TRL's trainer for ``method`` over ``model`` (a base model, or a ``PeftModel`` to continue when
    ``peft_config`` is None), with the options, the CPU-safe arguments and ``callbacks``."""
    spec = TRAINERS[method]
    config_cls = getattr(importlib.import_module(f"trl.trainer.{spec.module}_config"), spec.config)
    trainer_cls = getattr(importlib.import_module(f"trl.trainer.{spec.module}_trainer"), spec.trainer)
    kwargs = trainer_kwargs(options, method, output_dir, has_eval=eval_dataset is not None)
    args = config_cls(**kwargs, **{name: getattr(options, name) for name in spec.extra})
    trainer = trainer_cls(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                          processing_class=tokenizer, peft_config=peft_config)
    return finish_trainer(trainer, callbacks, on_progress)


def trainer_kwargs(options: TrainOptions, method: str, output_dir: Path, *, has_eval: bool) -> dict[str, Any]:
    """Keyword arguments for TRL's ``SFTConfig``, ``DPOConfig`` or ``RewardConfig``: the options plus CPU-safe
    defaults (bf16 only on a CUDA device that supports it, no gradient checkpointing, no reporting or Hub, no
    checkpoints, no tqdm bar: :func:`progress_callback` reports progress instead)."""
    import torch

    cuda_bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return {
        "output_dir": str(output_dir), "bf16": cuda_bf16, "fp16": False, "gradient_checkpointing": False,
        "activation_checkpointing": False, "dataloader_pin_memory": torch.cuda.is_available(),
        "report_to": [], "push_to_hub": False, "save_strategy": "no", "eval_strategy": "no",
        "disable_tqdm": True, "logging_steps": options.logging_steps, "learning_rate": options.lr(method),
        "num_train_epochs": options.epochs, "max_steps": options.max_steps or -1,
        "per_device_train_batch_size": options.batch_size, "per_device_eval_batch_size": options.batch_size,
        "gradient_accumulation_steps": options.grad_accum, "max_length": options.max_length, "seed": options.seed,
        "data_seed": options.seed, "dataloader_num_workers": 0, "do_eval": has_eval,
    }


def progress_callback(on_progress: ProgressFn) -> Any:
    """A ``transformers.TrainerCallback`` calling ``on_progress(step, total_steps)`` at the start and every step."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            on_progress(0, int(state.max_steps))

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            on_progress(int(state.global_step), int(state.max_steps))

    return _Progress()


def finish_trainer(trainer: Any, callbacks: tuple[Any, ...], on_progress: ProgressFn | None) -> Any:
    """Drop the printer of log dicts, add ``callbacks`` and the progress callback; returns ``trainer``."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    for callback in callbacks:
        trainer.add_callback(callback)
    if on_progress is not None:
        trainer.add_callback(progress_callback(on_progress))
    return trainer
