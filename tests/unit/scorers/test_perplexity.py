"""Perplexity and IFD with the tiny Llama: batched scoring equals a per-example loop, only completion tokens count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from curate.errors import InputError
from curate.ingest.records import Record
from curate.scorers.base import Scorer
from curate.scorers.causal_lm import RecordEncoder
from curate.scorers.nll import completion_nll, ifd_flags, length_batches, sequence_nll
from curate.scorers.perplexity import IFDScorer, PerplexityScorer
from tests.tiny_lm import CORPUS, QA_PAIRS


def example(prompt, completion, rid=None):
    return Record(rid or f"{prompt}|{completion}", "example", {"prompt": prompt, "completion": completion})


LINES = [line for line in CORPUS.splitlines() if line]
RECORDS = [example(LINES[i], LINES[i + 1][: 15 + 9 * i]) for i in range(0, 16, 2)] + [
    example(q, a) for q, a in QA_PAIRS
]


def naive_nll(model, prompt_ids, completion_ids):
    """One forward per record with full logits; HF's loss over the unmasked (completion) labels."""
    ids = torch.tensor([prompt_ids + completion_ids])
    labels = ids.clone()
    labels[0, : len(prompt_ids)] = -100
    with torch.no_grad():
        return model(input_ids=ids, labels=labels).loss.item()


def hand_nll(model, context, target):
    """Mean of -log softmax(logits)[next token] over the target positions, from one unpadded forward."""
    ids = torch.tensor([context + target])
    with torch.no_grad():
        logp = model(input_ids=ids).logits[0].double().log_softmax(-1)
    return -float(np.mean([logp[len(context) + j - 1, t].item() for j, t in enumerate(target)]))


@pytest.mark.parametrize("head_only", [True, False])
def test_batched_length_sorted_scoring_equals_a_per_example_loop_in_the_original_order(tiny_lm, head_only):
    model, tok, _ = tiny_lm
    encoded = RecordEncoder(tok).encode(RECORDS)
    expected = [naive_nll(model, e.prompt_ids, e.completion_ids) for e in encoded]
    lengths = [len(e.prompt_ids) + len(e.completion_ids) for e in encoded]
    assert len(set(lengths)) > 8  # varied lengths, so sorting really reorders
    batches = length_batches(lengths, batch_tokens=120, max_batch_size=64)
    assert len(batches) > 3 and any(len(b) > 1 for b in batches)
    got = completion_nll(model, tok, RECORDS, batch_tokens=120, head_only=head_only)
    np.testing.assert_allclose(got.conditional, expected, atol=1e-4, rtol=0)
    assert got.n_tokens.tolist() == [len(e.completion_ids) for e in encoded]


def test_prompt_and_padding_do_not_count(tiny_lm):
    model, tok, _ = tiny_lm
    context, target = tok("The cat sat on the")["input_ids"], tok(" mat and looked.")["input_ids"]
    long_ones = [(tok(line)["input_ids"], tok(line)["input_ids"][:5]) for line in LINES[:6]]
    alone, n_alone = sequence_nll(model, [(context, target)])
    mixed, n_mixed = sequence_nll(model, [*long_ones, (context, target)], batch_tokens=10_000, pad_token_id=7)
    other_pad, _ = sequence_nll(model, [*long_ones, (context, target)], batch_tokens=10_000, pad_token_id=123)
    assert mixed[-1] == pytest.approx(alone[0], abs=1e-5)  # heavy right padding in a big batch: same loss
    assert other_pad[-1] == pytest.approx(alone[0], abs=1e-5)  # and the pad id is never seen
    assert n_alone[0] == n_mixed[-1] == len(target)  # the prompt's tokens are not counted
    assert alone[0] == pytest.approx(hand_nll(model, context, target), abs=1e-5)
    shorter, n_short = sequence_nll(model, [(context[-2:], target)])
    assert n_short[0] == len(target) and shorter[0] != pytest.approx(alone[0], abs=1e-4)  # context matters


def test_empty_context_skips_the_first_target_token(tiny_lm):
    model, tok, _ = tiny_lm
    target = tok("The cat sat on the mat.")["input_ids"]
    nll, n = sequence_nll(model, [([], target), ([], target[:1]), ([1], [])])
    assert n.tolist() == [len(target) - 1, 0, 0]
    assert nll[0] == pytest.approx(hand_nll(model, target[:1], target[1:]), abs=1e-5)
    assert np.isnan(nll[1:]).all()


def test_ifd_equals_the_ratio_of_perplexities_computed_by_hand(tiny_lm):
    model, tok, _ = tiny_lm
    record = example("What is the capital of France?", "The capital of France is Paris.")
    (e,) = RecordEncoder(tok).encode([record])
    header = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    ppl_cond = math.exp(hand_nll(model, e.prompt_ids, e.completion_ids))
    ppl_uncond = math.exp(hand_nll(model, header, e.completion_ids))
    details = IFDScorer(lm=(model, tok)).details([record])
    assert details.perplexity[0] == pytest.approx(ppl_cond, rel=1e-5)
    assert details.perplexity_unconditional[0] == pytest.approx(ppl_uncond, rel=1e-5)
    assert IFDScorer(lm=(model, tok)).score([record])[0] == pytest.approx(ppl_cond / ppl_uncond, rel=1e-5)


def test_ifd_above_one_flags_answers_the_prompt_does_not_help_predict(tiny_qa_lm):
    model, tok, _ = tiny_qa_lm
    matched = [example(q, a) for q, a in QA_PAIRS]
    mismatched = [example(QA_PAIRS[i][0], QA_PAIRS[(i + 2) % len(QA_PAIRS)][1]) for i in range(len(QA_PAIRS))]
    scorer = IFDScorer(lm=(model, tok))
    details = scorer.details([*matched, *mismatched, example("Q?", "")])
    ifd = details.ifd
    assert (ifd[:6] < 0.95).all()  # the trained model answers from the question: the prompt helps
    assert (ifd[6:12] > 1.2).all()  # the wrong question makes the answer less likely than no question
    assert details.flagged.tolist() == [False] * 6 + [True] * 6 + [False]  # NaN (empty answer) is not flagged
    assert scorer.flags(matched[:2] + mismatched[:2]).tolist() == [False, False, True, True]
    assert (details.perplexity[:6] < 1.05).all() and (details.perplexity[6:12] > 1.5).all()


def test_ifd_flags_handles_nan():
    assert ifd_flags(np.array([0.2, 1.0, 1.0001, np.nan, np.inf])).tolist() == [False, False, True, False, True]
    assert ifd_flags([]).shape == (0,)


def test_empty_completions_and_records_without_a_completion_score_nan(tiny_lm):
    model, tok, _ = tiny_lm
    records = [example("Q?", ""), example("List three fruits.", "Apple."), Record("t", "text", {"text": "x"}),
               Record("u", "example", {"messages": [{"role": "user", "content": "hi"}]})]
    for scorer in (PerplexityScorer(lm=(model, tok)), IFDScorer(lm=(model, tok))):
        scores = scorer.score(records)
        assert np.isnan(scores[[0, 2, 3]]).all() and np.isfinite(scores[1])
    details = PerplexityScorer(lm=(model, tok)).details(records)
    assert details.n_tokens.tolist()[0] == 0 and details.n_tokens[1] > 0


def test_scorers_return_n_float64_and_keys_name_their_config(tiny_lm):
    model, tok, folder = tiny_lm
    ppl = PerplexityScorer(lm=(model, tok))
    scores = ppl.score(RECORDS)
    assert isinstance(ppl, Scorer) and scores.shape == (len(RECORDS),) and scores.dtype == np.float64
    assert (scores > 1).all() and np.isfinite(scores).all()
    assert ppl.key() == f"perplexity()@{ppl.model_version()}" and ppl.model_version().startswith("model:")
    tuned = IFDScorer(lm=(model, tok), max_length=64, template="plain", batch_tokens=99, progress=True)
    assert tuned.key().startswith("ifd(template=plain,max_length=64)@model:")  # speed and display options: no
    assert IFDScorer(lm=(model, tok)).score(RECORDS).shape == (len(RECORDS),)
    with pytest.raises(InputError, match="template must be one of"):
        PerplexityScorer(template="alpaca")
    with pytest.raises(InputError, match="max_length must be >= 2"):
        PerplexityScorer(max_length=0)


def test_scorer_loads_a_model_folder_once_and_applies_an_adapter(tiny_lm, tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model

    from curate.runtime import models

    model, tok, folder = tiny_lm
    calls = []
    real_load = models.load_lm
    monkeypatch.setattr(models, "load_lm", lambda *a, **k: calls.append(a) or real_load(*a, **k))
    scorer = PerplexityScorer(model=str(folder), cache_dir=tmp_path)
    np.testing.assert_allclose(scorer.score(RECORDS[:3]), PerplexityScorer(lm=(model, tok)).score(RECORDS[:3]),
                               rtol=1e-6)
    scorer.score(RECORDS[:3])
    assert len(calls) == 1  # loaded lazily, once

    fresh, _ = models.load_lm(str(folder), cache_dir=tmp_path)
    torch.manual_seed(0)
    peft_model = get_peft_model(fresh, LoraConfig(r=4, lora_alpha=8, init_lora_weights=False))  # B != 0
    peft_model.save_pretrained(tmp_path / "adapter")
    adapted = PerplexityScorer(model=str(folder), adapter=str(tmp_path / "adapter"), cache_dir=tmp_path)
    with_adapter = adapted.score(RECORDS[:3])
    np.testing.assert_allclose(with_adapter, PerplexityScorer(lm=(peft_model.eval(), tok)).score(RECORDS[:3]),
                               rtol=1e-5)
    assert not np.allclose(with_adapter, scorer.score(RECORDS[:3]), rtol=1e-4)
    assert adapted.key() != scorer.key() and "+adapter:" in adapted.key()


def test_truncation_scores_the_start_of_a_long_completion(tiny_lm):
    model, tok, _ = tiny_lm
    record = example(" ".join(LINES[:3]), " ".join(LINES[3:6]))
    details = completion_nll(model, tok, [record], max_length=40)
    (e,) = RecordEncoder(tok, max_length=40).encode([record])
    assert details.truncated.tolist() == [True] and details.n_tokens[0] == len(e.completion_ids) == 20
    assert details.conditional[0] == pytest.approx(hand_nll(model, e.prompt_ids, e.completion_ids), abs=1e-5)


def test_progress_bar(tiny_lm, capsys):
    model, tok, _ = tiny_lm
    PerplexityScorer(lm=(model, tok), progress=True).score(RECORDS[:3])
    err = capsys.readouterr().err
    assert "perplexity" in err and "3/3" in err


def test_progress_callback_and_training_mode_restored(tiny_lm):
    model, tok, _ = tiny_lm
    seen = []
    model.train()
    try:
        completion_nll(model, tok, RECORDS, unconditional=True, batch_tokens=100,
                       progress=lambda done, total: seen.append((done, total)))
        assert model.training
    finally:
        model.eval()
    assert seen[-1] == (2 * len(RECORDS), 2 * len(RECORDS))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) > 2


def test_length_batches_cover_every_index_once_within_the_token_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=300)
    batches = length_batches(lengths, batch_tokens=512, max_batch_size=16)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(300))
    for b in batches:
        assert len(b) <= 16 and (len(b) == 1 or len(b) * lengths[b].max() <= 512)
        assert len(b) * lengths[b].max() - lengths[b].sum() <= 0.1 * len(b) * lengths[b].max()  # <= 10% padding
    assert (np.diff(lengths[flat]) <= 0).all()  # longest first: each batch holds similar lengths


def test_sharing_the_common_context_prefix_changes_nothing(tiny_lm):
    from curate.scorers.nll import _shared_prefix

    model, tok, _ = tiny_lm
    system = {"role": "system", "content": "You are a careful assistant. Answer in one short sentence."}
    records = [Record(f"s{i}", "example", {"messages": [system, {"role": "user", "content": q},
                                                       {"role": "assistant", "content": a}]})
               for i, (q, a) in enumerate(QA_PAIRS)]
    encoded = RecordEncoder(tok).encode(records)
    length, cache = _shared_prefix(model, None, [e.prompt_ids for e in encoded])
    system_ids = tok.apply_chat_template([system], tokenize=False) + "<|im_start|>user\n"
    assert length == len(tok(system_ids, add_special_tokens=False)["input_ids"]) > 10 and cache is not None
    shared = completion_nll(model, tok, records, unconditional=True, batch_tokens=100)
    plain = completion_nll(model, tok, records, unconditional=True, batch_tokens=100, share_prefix=False)
    np.testing.assert_allclose(shared.conditional, plain.conditional, atol=1e-5, rtol=0)
    np.testing.assert_allclose(shared.unconditional, plain.unconditional, atol=1e-5, rtol=0)
    expected = [naive_nll(model, e.prompt_ids, e.completion_ids) for e in encoded]
    np.testing.assert_allclose(shared.conditional, expected, atol=1e-4, rtol=0)
