"""Generate candidate completions with the current model, so experts can rank them.

Prompts are rendered with the tokenizer's chat template when it has one (an instruct model), batched with left
padding, and sampled (temperature / top-p) with a seed per batch, so the same call gives the same candidates. With a
``cache_file`` each finished batch is appended to it at once (keyed by the model, the options and the batch's
prompts), so an interrupted generation keeps its batches and the rerun generates only the rest, the same text it
would have generated without the interruption.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from curate.errors import InputError
from curate.ingest.records import as_text, is_conversational
from curate.runtime.checkpoint import note_kept


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """``n`` candidates per prompt, up to ``max_new_tokens`` each; ``temperature`` 0 means greedy (then n=1)."""

    n: int = 2
    max_new_tokens: int = 96
    temperature: float = 0.8
    top_p: float = 0.95
    batch_size: int = 4
    seed: int = 0


def render_prompt(tokenizer: Any, prompt: Any) -> str:
    """The text fed to the model: the chat template with a generation prompt, or the plain prompt."""
    messages = prompt if is_conversational(prompt) else [{"role": "user", "content": as_text(prompt)}]
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return as_text(prompt)


def _read_cache(path: Path | None) -> dict[str, list[list[str]]]:
    """Finished batches of earlier runs: ``{batch key: answers}`` (a line cut short by a crash is ignored)."""
    done: dict[str, list[list[str]]] = {}
    if path is None or not path.exists():
        return done
    for line in path.read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
            done[str(entry["key"])] = [[str(t) for t in a] for a in entry["answers"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
    return done


def _append(path: Path, key: str, answers: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as fh:
        fh.write(orjson.dumps({"key": key, "answers": answers}) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def generate_candidates(model: Any, tokenizer: Any, prompts: Sequence[Any],
                        options: GenerationOptions = GenerationOptions(), *,
                        on_progress: Callable[[int], None] | None = None, cache_file: Path | None = None,
                        model_key: str = "") -> list[list[str]]:
    """``n`` completions per prompt: a list (one per prompt) of ``n`` strings (stripped, possibly empty).

    Args:
        cache_file: a JSONL file that keeps every finished batch (see the module docstring); ``None``: none.
        model_key: names the model (and adapter) in the cache key.

    Raises:
        InputError: ``n`` < 1, or greedy decoding asked for more than one candidate.
    """
    import torch

    if options.n < 1:
        raise InputError(f"generation needs n >= 1 candidates per prompt; got {options.n}")
    if options.temperature <= 0 and options.n > 1:
        raise InputError("greedy decoding (temperature 0) gives one candidate per prompt; use temperature > 0 "
                         "for several")
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    out: list[list[str]] = []
    cached = _read_cache(cache_file)
    settings = orjson.dumps({"model": model_key, **asdict(options)})
    try:
        for start in range(0, len(prompts), options.batch_size):
            batch = [render_prompt(tokenizer, p) for p in prompts[start : start + options.batch_size]]
            key = hashlib.blake2b(settings + orjson.dumps([start, batch]), digest_size=16).hexdigest()
            if key in cached and len(cached[key]) == len(batch):
                out.extend(cached[key])
                if on_progress is not None:
                    on_progress(len(out))
                continue
            torch.manual_seed(options.seed * 1_000_003 + start)  # per batch: a resumed run samples the same text
            enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            sample = options.temperature > 0
            with torch.inference_mode():
                generated = model.generate(
                    **enc, max_new_tokens=options.max_new_tokens, do_sample=sample,
                    temperature=options.temperature if sample else None, top_p=options.top_p if sample else None,
                    num_return_sequences=options.n, pad_token_id=tokenizer.pad_token_id,
                )
            new = generated[:, enc["input_ids"].shape[1]:]
            texts = tokenizer.batch_decode(new, skip_special_tokens=True)
            answers = [[t.strip() for t in texts[i * options.n : (i + 1) * options.n]] for i in range(len(batch))]
            out.extend(answers)
            if cache_file is not None:
                _append(cache_file, key, answers)
                note_kept("generated prompts", len(answers))
            if on_progress is not None:
                on_progress(len(out))  # prompts done so far
    finally:
        tokenizer.padding_side = side
    return out
