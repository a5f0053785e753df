"""Preference training of a LoRA adapter: DPO (TRL's ``DPOTrainer``) and a reward model (TRL's ``RewardTrainer``).

Input: a dpo or reward export, one row per comparison with ``prompt``, ``chosen`` and ``rejected`` (strings, or
conversational lists of ``{role, content}``; ``prompt`` may be left out when it is the shared start of
``chosen`` and ``rejected``), passed to TRL unchanged.

* **DPO** adapts a causal LM. The loss is ``-log sigmoid(beta * (log-ratio(chosen) - log-ratio(rejected)))``
  where a log-ratio is the policy's minus the reference's summed log-probability of an answer; the reference is
  the base with the adapter switched off (a fresh run) or a frozen copy of the starting adapter (a warm start).
  Lower loss = the policy prefers the chosen answers more strongly than the reference did.
* **Reward** adapts a one-output sequence classifier (the base's transformer with a new linear ``score`` head,
  trained and saved with the adapter). It outputs one score per sequence, higher = better; the loss is the
  Bradley-Terry ``-log sigmoid(r(chosen) - r(rejected))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.train.options import ProgressFn, TrainOptions, finish_trainer, trainer_kwargs


def build_dpo_trainer(
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
    """A ``DPOTrainer`` with ``beta`` from the options; no separate reference model is loaded (see module doc)."""
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer

    kwargs = trainer_kwargs(options, "dpo", output_dir, has_eval=eval_dataset is not None)
    args = DPOConfig(**kwargs, beta=options.beta)
    trainer = DPOTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                         processing_class=tokenizer, peft_config=peft_config)
    return finish_trainer(trainer, callbacks, on_progress)


def build_reward_trainer(
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
    """A ``RewardTrainer`` over a one-output sequence classifier (see :func:`curate.train.options.load_base`)."""
    from trl.trainer.reward_config import RewardConfig
    from trl.trainer.reward_trainer import RewardTrainer

    args = RewardConfig(**trainer_kwargs(options, "reward", output_dir, has_eval=eval_dataset is not None))
    trainer = RewardTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                            processing_class=tokenizer, peft_config=peft_config)
    return finish_trainer(trainer, callbacks, on_progress)


def train_dpo(ws: Any, data: Path, *, base: str | None = None, out: Path | None = None,
              options: TrainOptions | None = None) -> Any:
    """:func:`curate.train.train` with ``method="dpo"``; returns its :class:`curate.train.TrainResult`."""
    from curate.train import train

    return train(ws, "dpo", data, base=base, out=out, options=options or TrainOptions())


def train_reward(ws: Any, data: Path, *, base: str | None = None, out: Path | None = None,
                 options: TrainOptions | None = None) -> Any:
    """:func:`curate.train.train` with ``method="reward"``; returns its :class:`curate.train.TrainResult`."""
    from curate.train import train

    return train(ws, "reward", data, base=base, out=out, options=options or TrainOptions())


__all__ = ["build_dpo_trainer", "build_reward_trainer", "train_dpo", "train_reward"]
