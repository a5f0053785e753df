"""A weak model's drafts for the rewrite-budget benchmark's ``draft`` damage (:mod:`curate.bench.rewrite_budget`).

Model-drafted data is the damage users meet most and the hardest to see: the draft answers the right prompt, reads
fluently, and is wrong, repetitive, or cut off. :func:`lm_drafts` returns a writer that answers each prompt with a
causal LM (the packaged SmolLM2 by default, greedy, chat template), keeping every finished batch in a JSONL file in
``cache_dir``, so a rerun (or one after Ctrl-C) writes only the drafts it has not written yet.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.bench.rewrite_budget import DraftFn

ProgressFn = Callable[[int, int], None]  # (drafts written, drafts asked)


def lm_drafts(cache_dir: Path, *, lm: str | None = None, max_new_tokens: int = 128, temperature: float = 0.0,
              batch_size: int = 4, on_progress: ProgressFn | None = None) -> DraftFn:
    """A draft writer: ``prompts -> completions`` (one completion each, at most ``max_new_tokens``).

    ``temperature`` 0 (default) decodes greedily; above 0 samples (top-p 0.95, seeded per batch), as drafted data
    usually is: a sampled draft is less predictable to a language model than a greedy one. The model loads on the
    first call; ``lm``: a local causal-LM folder instead of the packaged SmolLM2. Drafts are cached in
    ``cache_dir / "rewrite_drafts" / <model>-<max_new_tokens>[-t<temperature>].jsonl``.
    """
    from curate.rounds.generate import GenerationOptions, generate_candidates

    loaded: dict[str, Any] = {}
    name = Path(lm).name if lm else "smollm2"
    suffix = f"-t{temperature:g}" if temperature > 0 else ""
    cache_file = Path(cache_dir) / "rewrite_drafts" / f"{name}-{max_new_tokens}{suffix}.jsonl"
    options = GenerationOptions(n=1, max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size)

    def write(prompts: list[str]) -> list[str]:
        if not prompts:
            return []
        if not loaded:
            from curate.runtime.models import load_lm

            loaded["model"], loaded["tokenizer"] = load_lm(lm)
        progress = None if on_progress is None else (lambda done: on_progress(done, len(prompts)))
        answers = generate_candidates(loaded["model"], loaded["tokenizer"], prompts, options,
                                      on_progress=progress, cache_file=cache_file, model_key=str(lm or "smollm2"))
        return [a[0] if a else "" for a in answers]

    return write
