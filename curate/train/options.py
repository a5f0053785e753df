"""The knobs of one LoRA training run (:class:`TrainOptions`, also the options of ``curate train``) and the methods."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from curate.errors import InputError
from curate.runtime.config import comma_tuple, opt

METHODS: tuple[str, ...] = ("sft", "dpo", "reward")
#: Learning rates used when ``TrainOptions.learning_rate`` is None (LoRA-sized; DPO moves more gently).
DEFAULT_LR: dict[str, float] = {"sft": 2e-4, "dpo": 5e-5, "reward": 1e-4}
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainOptions:
    """Knobs of one training run; every field's help text is also the CLI's."""

    rank: int = opt(8, "LoRA rank r.")
    alpha: int = opt(16, "LoRA alpha (the update is scaled by alpha / r).")
    dropout: float = opt(0.05, "LoRA dropout.")
    target_modules: tuple[str, ...] | None = opt(
        None, "Modules LoRA adapts, comma-separated, or all-linear (default: q,k,v,o projections when the model "
              "has them, as Llama does; else all-linear).", cli_type=str | None, parse=lambda v: comma_tuple(v) or None)
    learning_rate: float | None = opt(None, "Learning rate (default: sft 2e-4, dpo 5e-5, reward 1e-4).", flag="--lr")
    epochs: float = opt(1.0, "Training epochs (ignored when --max-steps is set).")
    max_steps: int | None = opt(None, "Stop after this many optimizer steps.")
    batch_size: int = opt(4, "Examples per device batch.")
    grad_accum: int = opt(1, "Gradient accumulation steps.")
    max_length: int = opt(512, "Longest tokenized example (prompt + answer); longer ones are truncated.")
    seed: int = opt(0, "Seed of the LoRA initialisation, the reward head and the data order.")
    beta: float = opt(0.1, "DPO beta: how far the policy may move from the reference model.")
    evaluate: bool = opt(False, "After training, report the held-out loss (eval_loss) on --eval-split, if the export "
                                "has it (a pass over that split: off unless asked).", flag="--eval")
    eval_split: str | None = opt("test", "Export split --eval reports eval_loss on.", cli_type=str,
                                 help_suffix=" Empty: no evaluation.", parse=lambda v: v or None)
    eval_before: bool = opt(False, "Also report the eval loss before training (eval_loss_before; implies --eval).")
    warm_start: bool = opt(True, "Continue the latest adapter trained with this method on this base.")
    from_version: str | None = opt(None, "Warm-start from this model version instead of the latest.")
    merge: bool = opt(False, "Also write a merged full model (base + adapter) into OUT/merged.")
    name: str | None = opt(None, "Name of the new model version (default: METHOD-BASE-N).")
    logging_steps: int = opt(10, "Log the training loss every N steps.", cli=False)

    def __post_init__(self) -> None:
        checks = [("rank", self.rank >= 1), ("alpha", self.alpha >= 1), ("dropout", 0 <= self.dropout < 1),
                  ("epochs", self.epochs > 0), ("batch_size", self.batch_size >= 1),
                  ("grad_accum", self.grad_accum >= 1), ("max_length", self.max_length >= 8),
                  ("beta", self.beta > 0), ("logging_steps", self.logging_steps >= 1),
                  ("max_steps", self.max_steps is None or self.max_steps >= 1),
                  ("learning_rate", self.learning_rate is None or self.learning_rate >= 0)]
        bad = [name for name, ok in checks if not ok]
        if bad:
            shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise InputError(f"invalid training option(s): {shown}. Use a positive rank, alpha, epochs, batch size, "
                             "beta and max steps, a dropout in [0, 1) and a max length of at least 8.")
        if self.from_version and not self.warm_start:
            raise InputError("--from-version warm-starts from a version, --no-warm-start starts fresh: use one.")

    def lr(self, method: str) -> float:
        """The learning rate for ``method``: the option, else :data:`DEFAULT_LR`."""
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LR[method]


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`, else :class:`InputError`."""
    if method not in METHODS:
        raise InputError(f"unknown training method {method!r}; use one of {', '.join(METHODS)}.")
    return method
