"""Generate candidate completions with the current model, so experts can rank them.

Prompts are rendered with the tokenizer's chat template when it has one (an instruct model), batched with left
padding, and sampled (temperature / top-p) with a fixed seed, so the same call gives the same candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from curate.errors import InputError
from curate.ingest.records import as_text, is_conversational


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


def generate_candidates(model: Any, tokenizer: Any, prompts: Sequence[Any],
                        options: GenerationOptions = GenerationOptions(), *,
                        on_progress: Callable[[int], None] | None = None) -> list[list[str]]:
    """``n`` completions per prompt: a list (one per prompt) of ``n`` strings (stripped, possibly empty).

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
    try:
        torch.manual_seed(options.seed)
        for start in range(0, len(prompts), options.batch_size):
            batch = [render_prompt(tokenizer, p) for p in prompts[start : start + options.batch_size]]
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
            for i in range(len(batch)):
                out.append([t.strip() for t in texts[i * options.n : (i + 1) * options.n]])
            if on_progress is not None:
                on_progress(len(out))  # prompts done so far
    finally:
        tokenizer.padding_side = side
    return out
