"""LoRA training on curate's exports, registered as model versions: ``curate train sft|dpo|reward``.

The run (:mod:`curate.train.run`) reads an export (:mod:`curate.train.exports`), loads the base model and its
LoRA config (:mod:`curate.train.base_models`), trains with TRL's trainer for the method (one table in
:mod:`curate.train.trainers`) and registers the adapter as a model version (:mod:`curate.train.registry`). The next
round's causal-LM scorers take the version by name (``curate score --model-version NAME``).

Imports are lazy: ``import curate.train`` loads neither torch nor TRL.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TrainResult": "run", "Trained": "run", "train": "run", "train_model": "run", "train_sft": "run",
    "train_dpo": "run", "train_reward": "run", "TrainOptions": "options", "METHODS": "options",
    "load_export": "exports", "export_hash": "exports", "adapter_hash": "base_models",
    "resolve_model_version": "registry", "register_model_version": "registry", "latest_version": "registry",
    "get_version": "registry", "list_versions": "registry", "VersionInfo": "registry",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'curate.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"curate.train.{module}"), name)
