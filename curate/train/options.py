"""What LoRA training by SFT, DPO and reward modelling shares: options, exports, base models, trainer arguments.

* **Exports** (:func:`load_export`): a ``datasets.DatasetDict`` folder (``save_to_disk``), a single saved
  ``Dataset`` folder, or a folder (or file) of ``train.jsonl`` / ``train.parquet`` (+ ``test``, ``calibration``).
  Columns are TRL's and are passed to TRL as they are: sft ``prompt``, ``completion``; dpo and reward
  ``prompt``, ``chosen``, ``rejected`` (strings, or conversational lists of ``{role, content}``).
* **Data hash** (:func:`export_hash`): the ``content_hash`` of ``export.json`` when present, else SHA-256 of the
  data files; 64 hex characters either way.
* **Trainer arguments** (:func:`trainer_kwargs`): CPU-safe (no bf16 on a CPU, no gradient checkpointing, no
  reporting, no Hub, no checkpoints), with the knobs of :class:`TrainOptions`.
* **Adapter hash** (:func:`adapter_hash`): SHA-256 over the sorted names, sizes and bytes of
  ``adapter_config.json`` and ``adapter_model.safetensors``.

The driver that ties them together is :func:`curate.train.train`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from curate.errors import InputError, ModelError
from curate.runtime.config import comma_tuple, opt

METHODS: tuple[str, ...] = ("sft", "dpo", "reward")
ADAPTER_FILES: tuple[str, ...] = ("adapter_config.json", "adapter_model.safetensors")
LLAMA_ATTENTION: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
#: Learning rates used when ``TrainOptions.learning_rate`` is None (LoRA-sized; DPO moves more gently).
DEFAULT_LR: dict[str, float] = {"sft": 2e-4, "dpo": 5e-5, "reward": 1e-4}
#: Export formats (``export.json`` ``format``) each method accepts, and the columns it needs.
ACCEPTED_FORMATS: dict[str, tuple[str, ...]] = {"sft": ("sft",), "dpo": ("dpo", "reward"), "reward": ("reward", "dpo")}
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {"sft": ("prompt", "completion"), "dpo": ("chosen", "rejected"),
                                                "reward": ("chosen", "rejected")}
_DATA_SUFFIXES = (".jsonl", ".parquet", ".json")
_NOT_DATA = frozenset({"export.json", "state.json", "dataset_info.json", "dataset_dict.json", "provenance.jsonl"})
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
    eval_split: str | None = opt("test", "Export split to report eval_loss on, if the export has it.", cli_type=str,
                                 help_suffix=" Empty: no evaluation.", parse=lambda v: v or None)
    eval_before: bool = opt(False, "Also report the eval loss before training (eval_loss_before).")
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


# --- exports ------------------------------------------------------------------------------------------------


def _locate(path: Path) -> tuple[str, dict[str, Path]]:
    """The layout of an export (``file``, ``dict``, ``dataset`` or ``files``) and where each split lives."""
    if not path.exists():
        raise InputError(f"the export {path} does not exist. Write one with `curate export --format sft|dpo|reward "
                         "--to hf --out DIR`, then pass that folder as --data.")
    if path.is_file():
        if path.suffix not in _DATA_SUFFIXES:
            raise InputError(f"{path} is not an export: expected a folder, or a .jsonl, .json or .parquet file.")
        return "file", {"train": path}
    if (path / "dataset_dict.json").exists():
        try:
            splits = orjson.loads((path / "dataset_dict.json").read_bytes())["splits"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path / 'dataset_dict.json'} is not a DatasetDict index ({exc}); re-export.") from exc
        return "dict", {str(s): path / str(s) for s in splits}
    if (path / "state.json").exists() and (path / "dataset_info.json").exists():
        return "dataset", {"train": path}
    found: dict[str, Path] = {}
    for file in sorted(path.iterdir()):
        if file.is_file() and file.suffix in _DATA_SUFFIXES and file.name not in _NOT_DATA:
            found.setdefault(file.stem, file)
    if not found:
        names = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
        raise InputError(f"{path} holds no export: expected a saved DatasetDict (dataset_dict.json), a saved Dataset "
                         f"(state.json), or train.jsonl / train.parquet; found {names}. Pass the folder that "
                         "`curate export --out` wrote.")
    return "files", found


def export_splits(path: Path) -> list[str]:
    """Names of the splits an export holds (``train`` first when present)."""
    splits = list(_locate(Path(path).expanduser())[1])
    return sorted(splits, key=lambda s: (s != "train", s))


def read_manifest(path: Path) -> dict[str, Any] | None:
    """``export.json`` of an export folder (format, label_schema, counts, content_hash), or ``None``."""
    manifest = Path(path).expanduser() / "export.json"
    if not manifest.is_file():
        return None
    try:
        data = orjson.loads(manifest.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{manifest} is not valid JSON ({exc}); re-export, or delete it to hash the data.") from exc
    return data if isinstance(data, dict) else None


def _read_rows(file: Path) -> list[dict[str, Any]]:
    text = file.read_bytes()
    if file.suffix == ".json" and text.lstrip()[:1] == b"[":
        rows = orjson.loads(text)
        if not isinstance(rows, list):
            raise InputError(f"{file} must hold a JSON array of objects.")
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{file}, line {number}: not valid JSON ({exc}). Re-export the data.") from exc
    return rows


def _load_file(file: Path) -> Any:
    from datasets import Dataset

    try:
        if file.suffix == ".parquet":
            import pyarrow.parquet as pq

            return Dataset.from_dict(pq.read_table(file).to_pydict())
        return Dataset.from_list(_read_rows(file))
    except InputError:
        raise
    except Exception as exc:  # pyarrow type clashes, unreadable files
        raise InputError(f"cannot read {file} as a dataset: {exc}. Each column must hold one type in every row "
                         "(all strings, or all message lists).") from exc


def load_export(path: Path | str, split: str = "train") -> Any:
    """One split of an export as a ``datasets.Dataset`` with the export's columns (no conversion).

    Raises :class:`InputError` when the path is missing, holds no export, lacks ``split``, or the train split is
    empty.
    """
    path = Path(path).expanduser()
    layout, splits = _locate(path)
    if split not in splits:
        raise InputError(f"the export {path} has no {split!r} split; it has {', '.join(sorted(splits))}.")
    if layout in ("dict", "dataset"):
        from datasets import load_from_disk

        try:
            loaded = load_from_disk(str(path), keep_in_memory=True)  # TRL's map() then writes no cache files here
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load the saved dataset {path}: {exc}. Re-export it.") from exc
        ds = loaded[split] if layout == "dict" else loaded
    else:
        ds = _load_file(splits[split])
    if split == "train" and len(ds) == 0:
        raise InputError(f"the train split of {path} has no rows: there is nothing to train on. Label or ingest "
                         "records, export again, and check the export's counts.")
    return ds


def export_hash(path: Path | str) -> str:
    """SHA-256 (64 hex) of an export: ``export.json``'s ``content_hash``, else of its data files' names and bytes.

    ``datasets`` cache files (``cache-*.arrow``) are not data and are left out."""
    path = Path(path).expanduser()
    manifest = read_manifest(path) if path.is_dir() else None
    if manifest and isinstance(manifest.get("content_hash"), str):
        return str(manifest["content_hash"]).removeprefix("sha256:")[:64]
    _locate(path)
    if path.is_file():
        files, root = [path], path.parent
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (*_DATA_SUFFIXES, ".arrow")
                       and p.name not in _NOT_DATA and not p.name.startswith("cache-"))
        root = path
    h = hashlib.sha256()
    for file in files:
        h.update(f"{file.relative_to(root).as_posix()}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def _guess_format(columns: list[str]) -> str | None:
    cols = set(columns)
    if {"chosen", "rejected"} <= cols:
        return "dpo or reward"
    if {"prompt", "completion", "label"} <= cols:
        return "kto"
    if {"prompt", "completion"} <= cols or "messages" in cols:
        return "sft"
    if {"text", "label"} <= cols:
        return "classification"
    return None


def check_export(ds: Any, method: str, path: Path, manifest: dict[str, Any] | None) -> None:
    """Raise :class:`InputError` unless ``ds`` (an export split) has the columns ``method`` trains on."""
    accepted = ACCEPTED_FORMATS[method]
    fmt = (manifest or {}).get("format")
    columns = list(ds.column_names)
    needed = REQUIRED_COLUMNS[method]
    missing = [c for c in needed if c not in columns]
    if method == "sft" and "messages" in columns:
        missing = []
    guess = fmt or _guess_format(columns)
    if (fmt and fmt not in accepted) or missing or guess in ("kto", "classification"):
        found = f"a {fmt!r} export" if fmt else f"the columns {', '.join(columns)}"
        hint = f" It fits `curate train {guess.split()[0]}`." if guess in ("sft", "dpo or reward", "dpo", "reward") \
            else ""
        article = "an" if method == "sft" else "a"
        raise InputError(f"`curate train {method}` needs {article} {' or '.join(accepted)} export (columns "
                         f"{', '.join(needed)}); {path} is {found}.{hint} Export with `curate export --format "
                         f"{accepted[0]} --out DIR`.")


# --- models -------------------------------------------------------------------------------------------------


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


def resolve_base(base: str | None, cache_dir: Path) -> tuple[str, str]:
    """``(name, load_path)``: the base as recorded in the registry (``smollm2``, an absolute folder or a Hub id)
    and the folder it loads from (the packaged SmolLM2 is converted into ``cache_dir`` once)."""
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


__all__ = [
    "ACCEPTED_FORMATS", "ADAPTER_FILES", "DEFAULT_LR", "METHODS", "REQUIRED_COLUMNS", "TrainOptions", "adapter_hash",
    "check_export", "check_method", "default_target_modules", "export_hash", "export_splits", "finish_trainer",
    "load_base", "load_export", "lora_config", "progress_callback", "quiet_transformers", "read_manifest",
    "resolve_base", "trainer_kwargs", "warm_start_model",
]
