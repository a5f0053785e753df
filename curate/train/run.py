"""One training run end to end: read the export, load the base, warm-start or start fresh, train, save, register.

One run: read an export (:func:`~curate.train.exports.load_export`), load the base model (``smollm2`` by default,
else a local folder or a Hub id), start a fresh LoRA adapter or continue the previous round's (warm start: the
latest version trained with the same method on the same base, or ``from_version``), train it with TRL's
trainer for the method (:mod:`curate.train.trainers`), save the adapter (and, with ``merge``, the merged full
model in ``OUT/merged``), and register it as a model version with the data's and the adapter's hashes, its parent
and its metrics, audited (:mod:`curate.train.registry`).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curate.runtime.notices import announced

if TYPE_CHECKING:
    from curate.store.database import Store
    from curate.store.workspace import Workspace
    from curate.train.options import ProgressFn, TrainOptions
    from curate.train.registry import VersionInfo


@dataclass(frozen=True)
class TrainResult:
    """A registered training run.

    Attributes:
        version, version_id: the new model version's name and id in ``model_versions``.
        adapter_path: folder of the LoRA adapter (``adapter_config.json``, ``adapter_model.safetensors``).
        adapter_hash, data_hash: SHA-256 (hex) of the adapter files and of the export.
        parent: the version this run warm-started from, or ``None`` for a fresh adapter.
        metrics: ``method``, ``train_loss``, ``eval_loss`` (when the export has the eval split; lower = better),
            ``steps``, ``seconds``, row counts, the hyperparameters and the LoRA config.
        merged_path: folder of the merged full model, or ``None``.
    """

    version: str
    version_id: int
    method: str
    base: str
    adapter_path: Path
    adapter_hash: str
    data_hash: str
    parent: str | None
    metrics: dict[str, Any]
    merged_path: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings)."""
        return {"version": self.version, "version_id": self.version_id, "method": self.method, "base": self.base,
                "adapter_path": str(self.adapter_path), "adapter_hash": self.adapter_hash,
                "data_hash": self.data_hash, "parent": self.parent, "metrics": self.metrics,
                "merged_path": str(self.merged_path) if self.merged_path else None}


@dataclass(frozen=True)
class Trained:
    """:func:`train_model`'s answer: the result plus the trained ``PeftModel`` and its tokenizer, in memory."""

    result: TrainResult
    model: Any
    tokenizer: Any


def _parent(store: Store, method: str, base: str, options: TrainOptions) -> VersionInfo | None:
    from curate.errors import InputError
    from curate.train.registry import get_version, latest_version

    if options.from_version:
        parent: VersionInfo | None = get_version(store, options.from_version)
    elif options.warm_start:
        parent = latest_version(store, base, method)
    else:
        return None
    if parent is None:
        return None
    family = ("reward",) if method == "reward" else ("sft", "dpo")
    if parent.method not in family or not parent.adapter_path:
        raise InputError(f"cannot warm-start {method} from {parent.name!r}: it is "
                         f"{'a ' + parent.method + ' adapter' if parent.method else 'not a trained adapter'}, and "
                         f"{method} continues {' or '.join(family)} adapters. Pick another --from-version, or use "
                         "--no-warm-start.")
    if parent.base != base:
        raise InputError(f"cannot warm-start from {parent.name!r}: it was trained on {parent.base!r}, not {base!r}. "
                         "Train on the same --base, or use --no-warm-start.")
    if not Path(parent.adapter_path).exists():
        raise InputError(f"cannot warm-start from {parent.name!r}: its adapter folder {parent.adapter_path} is gone. "
                         "Restore it, pick another --from-version, or use --no-warm-start.")
    return parent


def _out_dir(ws: Workspace, out: Path | None, name: str) -> Path:
    from curate.errors import InputError

    folder = Path(out).expanduser() if out else ws.adapters_dir / name
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder} exists and is not an empty folder; a trained adapter is never overwritten. "
                         "Choose another --out, or leave it out to write into the workspace's adapters folder.")
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def _eval_dataset(data: Path, options: TrainOptions) -> Any | None:
    from curate.train.exports import export_splits, load_export

    if not (options.evaluate or options.eval_before) or not options.eval_split:
        return None
    if options.eval_split not in export_splits(data):
        return None
    ds = load_export(data, options.eval_split)
    return ds if len(ds) else None


def _merge(method: str, base_path: str, adapter_dir: Path, tokenizer: Any) -> Path:
    """Base + adapter merged into plain weights, saved with the tokenizer in ``adapter_dir/merged``."""
    from peft import PeftModel

    from curate.train.base_models import load_base, quiet_transformers

    model, _ = load_base(base_path, method)
    with quiet_transformers():
        merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    target = adapter_dir / "merged"
    merged.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def _lora_summary(model: Any) -> dict[str, Any]:
    config = model.peft_config["default"]
    targets = config.target_modules
    return {"r": config.r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
            "target_modules": sorted(targets) if isinstance(targets, set | list | tuple) else targets}


def train_model(
    ws: Workspace,
    method: str,
    data: Path,
    *,
    base: str | None = None,
    out: Path | None = None,
    options: TrainOptions | None = None,
    on_progress: ProgressFn | None = None,
    callbacks: tuple[Any, ...] = (),
    actor: str | None = None,
) -> Trained:
    """Like :func:`train`, and also return the trained model and tokenizer (for notebooks and tests).

    ``callbacks`` are extra ``transformers.TrainerCallback`` objects; ``on_progress(step, total_steps)`` is
    called as training advances.
    """
    from transformers import set_seed

    from curate.errors import InputError
    from curate.train import base_models, exports
    from curate.train.options import TrainOptions, check_method
    from curate.train.registry import check_name_free, next_version_name, register_model_version
    from curate.train.trainers import build_trainer

    options = options or TrainOptions()
    check_method(method)
    data = Path(data).expanduser()
    train_ds = exports.load_export(data, "train")
    exports.check_export(train_ds, method, data, exports.read_manifest(data) if data.is_dir() else None)
    eval_ds = _eval_dataset(data, options)
    data_hash = exports.export_hash(data)
    base_name, base_path = base_models.resolve_base(base)
    parent = _parent(ws.store, method, base_name, options)
    if options.name:
        check_name_free(ws.store, options.name)
    name = options.name or next_version_name(ws.store, method, base_name)
    folder = _out_dir(ws, out, name)

    set_seed(options.seed)  # the reward head and the LoRA matrices are initialised randomly
    with announced(f"loading the base model {base_name}"):
        model, tokenizer = base_models.load_base(base_path, method)
    peft_config = None
    if parent is not None and parent.adapter_path:
        model = base_models.warm_start_model(model, parent.adapter_path)
    else:
        peft_config = base_models.lora_config(options, model, method)
    metrics: dict[str, Any] = {"method": method}
    with tempfile.TemporaryDirectory(prefix="curate-trainer-") as scratch:
        try:
            trainer = build_trainer(method, model, tokenizer, train_ds, eval_ds, options=options,
                                    peft_config=peft_config, output_dir=Path(scratch), callbacks=callbacks,
                                    on_progress=on_progress)
        except (ValueError, KeyError) as exc:
            raise InputError(f"TRL cannot prepare {data} for {method} training: {exc}") from exc
        if eval_ds is not None and options.eval_before:
            with announced(f"evaluating before training on {len(eval_ds):,} {options.eval_split} rows"):
                metrics["eval_loss_before"] = float(trainer.evaluate()["eval_loss"])
        started = time.perf_counter()
        output = trainer.train()
        metrics["seconds"] = round(time.perf_counter() - started, 3)
        if eval_ds is not None:
            with announced(f"evaluating on {len(eval_ds):,} {options.eval_split} rows"):
                metrics["eval_loss"] = float(trainer.evaluate()["eval_loss"])
    trained = trainer.model
    if "ref" in getattr(trained, "peft_config", {}):  # DPO's frozen copy of the starting adapter
        trained.delete_adapter("ref")
    trained.eval()
    with announced(f"saving the adapter into {folder}"):
        trained.save_pretrained(folder, selected_adapters=["default"])
        tokenizer.save_pretrained(folder)
    digest = base_models.adapter_hash(folder)
    merged = _merge(method, base_path, folder, tokenizer) if options.merge else None
    metrics.update({
        "train_loss": float(output.training_loss), "steps": int(trainer.state.global_step),
        "train_rows": len(train_ds), "eval_rows": len(eval_ds) if eval_ds is not None else 0,
        "learning_rate": options.lr(method), "epochs": options.epochs, "max_steps": options.max_steps,
        "batch_size": options.batch_size, "grad_accum": options.grad_accum, "max_length": options.max_length,
        "seed": options.seed, "lora": _lora_summary(trained), "warm_start": parent.name if parent else None,
        **({"beta": options.beta} if method == "dpo" else {}),
    })
    version_id = register_model_version(
        ws.store, name=name, base=base_name, adapter_path=str(folder), adapter_hash=digest, data_hash=data_hash,
        parent_id=parent.id if parent else None, metrics=metrics, actor=actor)
    result = TrainResult(name, version_id, method, base_name, folder, digest, data_hash,
                         parent.name if parent else None, metrics, merged)
    return Trained(result, trained, tokenizer)


def train(
    ws: Workspace,
    method: str,
    data: Path,
    *,
    base: str | None = None,
    out: Path | None = None,
    options: TrainOptions | None = None,
    on_progress: ProgressFn | None = None,
    actor: str | None = None,
) -> TrainResult:
    """Train a LoRA adapter on an export by ``method`` (sft, dpo or reward) and register it as a model version.

    Args:
        ws: the workspace (its database gets the version and a ``train`` audit event; its cache holds the
            converted default model).
        data: the export folder or file (see :func:`curate.train.exports.load_export`); its ``test`` split, when
            present, gives ``eval_loss``.
        base: the base model (default ``smollm2``); warm starts need the same base.
        out: folder for the adapter (must be new or empty; default ``WORKSPACE/adapters/VERSION``).
        options: hyperparameters, warm start, merge and name (:class:`~curate.train.options.TrainOptions`).

    Raises:
        InputError: missing or empty export, columns that do not fit ``method``, an unknown or incompatible
            warm-start version, a used name or a non-empty ``out``.
    """
    return train_model(ws, method, data, base=base, out=out, options=options, on_progress=on_progress,
                       actor=actor).result


def train_sft(ws: Workspace, data: Path, *, base: str | None = None, out: Path | None = None,
              options: TrainOptions | None = None) -> TrainResult:
    """:func:`train` with ``method="sft"``."""
    return train(ws, "sft", data, base=base, out=out, options=options)


def train_dpo(ws: Workspace, data: Path, *, base: str | None = None, out: Path | None = None,
              options: TrainOptions | None = None) -> TrainResult:
    """:func:`train` with ``method="dpo"``."""
    return train(ws, "dpo", data, base=base, out=out, options=options)


def train_reward(ws: Workspace, data: Path, *, base: str | None = None, out: Path | None = None,
                 options: TrainOptions | None = None) -> TrainResult:
    """:func:`train` with ``method="reward"``."""
    return train(ws, "reward", data, base=base, out=out, options=options)
