"""The model a LoRA adapter trains on: the base (causal LM or reward classifier), its LoRA config, warm starts, hashes.

* **Adapter hash** (:func:`adapter_hash`): SHA-256 over the sorted names, sizes and bytes of
  ``adapter_config.json`` and ``adapter_model.safetensors``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from curate.errors import ModelError
from curate.train.options import TrainOptions

ADAPTER_FILES: tuple[str, ...] = ("adapter_config.json", "adapter_model.safetensors")
LLAMA_ATTENTION: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and weight-loading bars for the duration (restores the verbosity)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def resolve_base(base: str | None, cache_dir: Path | None = None) -> tuple[str, str]:
    """``(name, load_path)``: the base as recorded in the registry (``smollm2``, an absolute folder or a Hub id)
    and the folder it loads from (the packaged SmolLM2 is converted once into the model cache ``cache_dir``,
    default the per-user :func:`curate.runtime.models.model_cache`)."""
    from curate.runtime.models import DEFAULT_LM, lm_path

    name = base or DEFAULT_LM
    if name != DEFAULT_LM and Path(name).expanduser().exists():
        name = str(Path(name).expanduser().resolve())
    return name, lm_path(name, cache_dir)


def load_base(path: str, method: str) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in float32: a causal LM for sft/dpo, a one-output sequence classifier for reward.

    The tokenizer gets a pad token (its EOS) and, for reward, an EOS (its SEP, BERT-style) when it has none;
    ``config.pad_token_id`` is set, which a sequence classifier needs to find each sequence's last token.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(path)
            if method == "reward":
                model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
            else:
                model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the base model {path!r}: {exc}. Name a local model folder, or the default "
                         "smollm2.") from exc
    if tokenizer.eos_token is None and getattr(tokenizer, "sep_token", None):
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def default_target_modules(model: Any) -> list[str] | str:
    """The q, k, v and o projections when the model has them (Llama, Qwen, Mistral...), else ``"all-linear"``."""
    leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return list(LLAMA_ATTENTION) if set(LLAMA_ATTENTION) <= leaves else "all-linear"


def lora_config(options: TrainOptions, model: Any, method: str) -> Any:
    """A ``peft.LoraConfig`` from the options; reward models also train (save) their score head."""
    from peft import LoraConfig

    targets: list[str] | str = default_target_modules(model)
    if options.target_modules:
        targets = "all-linear" if options.target_modules == ("all-linear",) else list(options.target_modules)
    return LoraConfig(r=options.rank, lora_alpha=options.alpha, lora_dropout=options.dropout, target_modules=targets,
                      task_type="SEQ_CLS" if method == "reward" else "CAUSAL_LM", bias="none")


def warm_start_model(model: Any, adapter: str) -> Any:
    """``model`` wrapped in the LoRA adapter at ``adapter``, trainable: training continues from its weights."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, adapter, is_trainable=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot warm-start from the adapter {adapter}: {exc}. Use --no-warm-start, or "
                         "--from-version with a version trained on the same base.") from exc


def adapter_hash(folder: Path) -> str:
    """SHA-256 (64 hex) over the sorted names, sizes and bytes of :data:`ADAPTER_FILES` in ``folder``."""
    h = hashlib.sha256()
    for name in sorted(ADAPTER_FILES):
        file = folder / name
        if not file.is_file():
            raise ModelError(f"{folder} is not a saved LoRA adapter: {name} is missing.")
        h.update(f"{name}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()
