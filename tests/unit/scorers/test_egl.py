"""Expected gradient length of LoRA parameters with the tiny Llama."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from curate.errors import InputError
from curate.ingest.records import Record
from curate.scorers.causal_lm import RecordEncoder
from curate.scorers.egl import (
    ExpectedGradientLengthScorer,
    expected_gradient_length,
    log_prob_grad_norm,
    lora_attached,
    sample_completions,
)
from tests.tiny_lm import QA_PAIRS

RECORDS = [Record(f"r{i}", "example", {"prompt": q, "completion": a}) for i, (q, a) in enumerate(QA_PAIRS[:3])]
FAST = {"samples": 2, "max_new_tokens": 6}


def snapshot(model):
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def test_egl_is_finite_non_negative_with_shape_n_and_nan_without_a_prompt(tiny_lm):
    model, tok, _ = tiny_lm
    records = [*RECORDS, Record("t", "text", {"text": "hello"}),
               Record("e", "example", {"prompt": "List three fruits.", "completion": ""})]
    scores = expected_gradient_length(model, tok, records, **FAST)
    assert scores.shape == (5,) and scores.dtype == np.float64
    assert np.isnan(scores[3])
    kept = scores[[0, 1, 2, 4]]
    assert np.isfinite(kept).all() and (kept > 0).all()  # an empty completion still has a prompt to sample from


def test_base_weights_modules_and_grad_flags_are_unchanged(tiny_lm):
    model, tok, _ = tiny_lm
    before = snapshot(model)
    modules = [name for name, _ in model.named_modules()]
    model.model.embed_tokens.weight.requires_grad_(False)  # a mixed pattern of flags, restored exactly
    try:
        flags = {name: p.requires_grad for name, p in model.named_parameters()}
        expected_gradient_length(model, tok, RECORDS, **FAST)
        after = snapshot(model)
        assert after.keys() == before.keys() and all(torch.equal(before[k], after[k]) for k in before)
        assert [name for name, _ in model.named_modules()] == modules  # the LoRA layers were removed again
        assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
        assert not hasattr(model, "peft_config") and all(p.grad is None for p in model.parameters())
    finally:
        model.model.embed_tokens.weight.requires_grad_(True)


def test_deterministic_under_a_seed_and_independent_of_the_rest_of_the_pool(tiny_lm):
    model, tok, _ = tiny_lm
    torch.manual_seed(123)
    first = expected_gradient_length(model, tok, RECORDS, seed=7, **FAST)
    torch.manual_seed(999)  # global RNG state does not matter
    again = expected_gradient_length(model, tok, RECORDS, seed=7, **FAST)
    np.testing.assert_array_equal(first, again)
    reordered = expected_gradient_length(model, tok, RECORDS[::-1][:2], seed=7, **FAST)
    np.testing.assert_allclose(reordered, first[::-1][:2], rtol=1e-10)
    other_seed = expected_gradient_length(model, tok, RECORDS, seed=8, **FAST)
    assert not np.allclose(other_seed, first)


def test_egl_is_the_mean_gradient_norm_of_the_sampled_completions(tiny_lm):
    from curate.scorers.egl import _stop_ids, record_seed

    model, tok, _ = tiny_lm
    record = RECORDS[0]
    (enc,) = RecordEncoder(tok, max_length=512).encode([record], prompts_only=True)
    with lora_attached(model, seed=3) as (wrapped, params):
        assert params and all(p.requires_grad for p in params)
        assert not any(p.requires_grad for name, p in wrapped.named_parameters() if "lora_" not in name)
        generator = torch.Generator().manual_seed(record_seed(3, record.id))
        drawn = sample_completions(wrapped, enc.prompt_ids, samples=2, max_new_tokens=6, temperature=1.0,
                                   generator=generator, stop_ids=_stop_ids(model, tok))
        norms = [log_prob_grad_norm(wrapped, params, enc.prompt_ids, y) for y in drawn]
    assert len(drawn) == 2 and all(1 <= len(y) <= 6 for y in drawn)
    assert all(t != tok.eos_token_id for y in drawn for t in y[:-1])  # sampling stops at the end of the turn
    got = expected_gradient_length(model, tok, [record], seed=3, **FAST)
    assert got[0] == pytest.approx(float(np.mean(norms)), rel=1e-6)
    seen = []
    per_token = expected_gradient_length(model, tok, [record], seed=3, per_token=True,
                                         progress=lambda d, t: seen.append((d, t)), **FAST)
    assert seen == [(1, 1)]
    assert 0 < per_token[0] < got[0]


def test_an_existing_peft_adapter_is_differentiated_and_left_untouched(tiny_lm):
    from peft import LoraConfig, get_peft_model

    model, tok, folder = tiny_lm
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(folder)
    torch.manual_seed(0)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, init_lora_weights=False)).eval()
    for p in peft_model.parameters():
        p.requires_grad_(False)  # as after PeftModel.from_pretrained for inference
    before = snapshot(peft_model)
    scores = expected_gradient_length(peft_model, tok, RECORDS, **FAST)
    assert np.isfinite(scores).all() and (scores > 0).all()
    after = snapshot(peft_model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in peft_model.parameters())
    assert hasattr(peft_model, "peft_config")  # still the same adapter model


def test_scorer_key_and_validation(tiny_lm):
    model, tok, _ = tiny_lm
    scorer = ExpectedGradientLengthScorer(lm=(model, tok), samples=2, max_new_tokens=6)
    scores = scorer.score(RECORDS)
    assert scores.shape == (3,) and scores.dtype == np.float64 and all(math.isfinite(s) for s in scores)
    np.testing.assert_array_equal(scores, expected_gradient_length(model, tok, RECORDS, **FAST))
    assert scorer.key() == f"egl(samples=2,max_new_tokens=6)@{scorer.model_version()}"
    with pytest.raises(InputError, match="temperature > 0"):
        ExpectedGradientLengthScorer(temperature=0)
    with pytest.raises(InputError, match="samples and max_new_tokens must be >= 1"):
        expected_gradient_length(model, tok, RECORDS, samples=0)


def test_egl_commits_every_record_on_its_own():
    """EGL takes seconds a record: one record per score call, so progress moves and Ctrl-C loses at most one."""
    from curate.scorers.cache import batch_plan
    from curate.scorers.egl import ExpectedGradientLengthScorer

    assert [len(r) for r in batch_plan(ExpectedGradientLengthScorer, 3)] == [1, 1, 1]
