"""Candidate generation with a tiny local model: shapes, chat template, determinism, errors."""

from __future__ import annotations

import pytest

from curate.errors import InputError
from curate.rounds.generate import GenerationOptions, generate_candidates, render_prompt
from tests.tiny_lm import build_tiny_lm, load_tiny_lm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_tiny_lm(build_tiny_lm(tmp_path_factory.mktemp("gen") / "lm"))


def test_candidates_per_prompt_are_deterministic_for_a_seed(tiny):
    model, tok = tiny
    prompts = ["How do I reset my password?", [{"role": "user", "content": "What is the capital of France?"}]]
    options = GenerationOptions(n=3, max_new_tokens=6, batch_size=2, seed=7)
    side = tok.padding_side
    first = generate_candidates(model, tok, prompts, options)
    assert [len(c) for c in first] == [3, 3] and all(isinstance(t, str) for c in first for t in c)
    assert generate_candidates(model, tok, prompts, options) == first
    assert tok.padding_side == side  # generation pads on the left and restores the tokenizer
    greedy = generate_candidates(model, tok, prompts[:1], GenerationOptions(n=1, temperature=0, max_new_tokens=4))
    assert len(greedy) == 1 and len(greedy[0]) == 1


def test_prompts_use_the_chat_template(tiny):
    _, tok = tiny
    text = render_prompt(tok, "Hi there")
    assert text.startswith("<|im_start|>user\nHi there<|im_end|>") and text.endswith("<|im_start|>assistant\n")


def test_bad_options_are_refused(tiny):
    model, tok = tiny
    with pytest.raises(InputError, match="n >= 1"):
        generate_candidates(model, tok, ["x"], GenerationOptions(n=0))
    with pytest.raises(InputError, match="greedy"):
        generate_candidates(model, tok, ["x"], GenerationOptions(n=2, temperature=0))


def test_an_interrupted_generation_keeps_its_batches_and_the_rerun_generates_the_same_rest(tiny, tmp_path):
    model, tok = tiny
    prompts = [f"Question number {i}?" for i in range(6)]
    options = GenerationOptions(n=2, max_new_tokens=5, batch_size=2, seed=3)
    whole = generate_candidates(model, tok, prompts, options)
    cache = tmp_path / "generations.jsonl"
    calls = []

    def stop_after_two_batches(done: int) -> None:
        calls.append(done)
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_candidates(model, tok, prompts, options, cache_file=cache, model_key="tiny",
                            on_progress=stop_after_two_batches)
    assert len(cache.read_text().splitlines()) == 2  # both finished batches were written at once
    generated = []
    original = model.generate

    def counting(*args, **kwargs):
        generated.append(1)
        return original(*args, **kwargs)

    model.generate = counting
    try:
        resumed = generate_candidates(model, tok, prompts, options, cache_file=cache, model_key="tiny")
    finally:
        model.generate = original
    assert resumed == whole and len(generated) == 1  # only the third batch ran, and gave the same text
    other = generate_candidates(model, tok, prompts[:2], GenerationOptions(n=2, max_new_tokens=5, batch_size=2,
                                                                           seed=4), cache_file=cache, model_key="tiny")
    assert len(cache.read_text().splitlines()) == 4 and len(other) == 2  # another seed is another key
