"""The perplexity and IFD scorers with the real packaged SmolLM2-135M-Instruct (converted once per module)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from curate.ingest.records import Record
from curate.runtime import models
from curate.scorers.perplexity import IFDScorer, PerplexityScorer

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def cache_dir(smollm2_cache):
    return smollm2_cache


def example(rid, prompt, completion):
    return Record(rid, "example", {"prompt": prompt, "completion": completion})


def test_a_predictable_completion_is_less_perplexing_than_nonsense(cache_dir):
    torch.set_num_threads(1)
    records = [
        example("a", "What is the capital of France?", "The capital of France is Paris."),
        example("b", "What is the capital of France?", "Purple elbow stapler quantum seventeen banana."),
        example("c", "Count from one to five.", "One, two, three, four, five."),
    ]
    scorer = PerplexityScorer(cache_dir=cache_dir)
    ppl = scorer.score(records)
    assert ppl.shape == (3,) and np.isfinite(ppl).all() and (ppl >= 1).all()
    assert ppl[0] < 3 and ppl[2] < 3 and ppl[1] > 10 * ppl[0]
    assert scorer.key().startswith("perplexity()@smollm2:")

    model, tokenizer = scorer.load()  # the same numbers as a plain forward through the chat-formatted text
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           tokenize=False, add_generation_prompt=True)
    assert ppl[0] == pytest.approx(
        models.completion_perplexity(model, tokenizer, prompt, "The capital of France is Paris.<|im_end|>\n"),
        rel=1e-3,
    )
    ifd = IFDScorer(lm=(model, tokenizer)).details(records)
    assert np.isfinite(ifd.ifd).all() and ifd.ifd[0] < 1 and ifd.ifd[0] < ifd.ifd[1]
