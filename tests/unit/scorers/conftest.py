"""Tiny causal LMs for the scorer tests, built once per session into a temporary folder."""

from __future__ import annotations

import pytest
import torch

from tests.tiny_lm import build_tiny_lm, chat_texts, load_tiny_lm, train_tokenizer


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """``(model, tokenizer, folder)``: a random 2-layer Llama (hidden 32) with a ChatML tokenizer."""
    torch.set_num_threads(1)
    folder = build_tiny_lm(tmp_path_factory.mktemp("tiny_lm") / "model")
    model, tokenizer = load_tiny_lm(folder)
    return model, tokenizer, folder


@pytest.fixture(scope="session")
def tiny_qa_lm(tmp_path_factory):
    """``(model, tokenizer, folder)``: the tiny Llama trained to answer :data:`tests.tiny_lm.QA_PAIRS`."""
    torch.set_num_threads(1)
    texts = chat_texts(train_tokenizer())
    folder = build_tiny_lm(tmp_path_factory.mktemp("tiny_qa_lm") / "model", train_texts=texts, train_steps=120)
    model, tokenizer = load_tiny_lm(folder)
    return model, tokenizer, folder
