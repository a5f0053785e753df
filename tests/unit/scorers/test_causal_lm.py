"""Records as token ids (chat and plain formats, truncation) and model versions of the causal-LM scorers."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from curate.errors import InputError
from curate.ingest.records import Record
from curate.runtime.models import file_digest
from curate.scorers.causal_lm import CausalLMScorer, RecordEncoder, prompt_and_completion, truncate_pair


def example(prompt, completion, rid="r"):
    return Record(rid, "example", {"prompt": prompt, "completion": completion})


def test_prompt_and_completion_of_each_record_shape():
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]
    prompt, completion = prompt_and_completion(Record("m", "example", {"messages": chat}))
    assert prompt == chat[:2] and completion == [chat[2]]  # split at the last assistant turn; later turns dropped
    assert prompt_and_completion(Record("u", "example", {"messages": chat[:2]})) is None  # no assistant turn
    assert prompt_and_completion(Record("t", "text", {"text": "hello"})) is None
    assert prompt_and_completion(Record("p", "preference", {"prompt": "Q", "chosen": "a", "rejected": "b"})) == (
        "Q", "")


def test_chat_format_puts_the_generation_prompt_in_the_prompt_and_the_end_of_turn_in_the_completion(tiny_lm):
    _, tok, _ = tiny_lm
    enc = RecordEncoder(tok)
    assert enc.chat_available and enc.header_text == "<|im_start|>assistant\n"
    (e,) = enc.encode([example("What colour is the sky?", "The sky is blue.")])
    assert tok.decode(e.prompt_ids) == "<|im_start|>user\nWhat colour is the sky?<|im_end|>\n<|im_start|>assistant\n"
    assert tok.decode(e.completion_ids) == "The sky is blue.<|im_end|>\n"
    assert enc.unconditional_context == tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    assert not e.truncated


def test_plain_format_concatenates_separately_tokenized_prompt_and_completion(tiny_lm):
    _, tok, _ = tiny_lm
    enc = RecordEncoder(tok, template="plain")
    (e,) = enc.encode([example("What colour is the sky?", " The sky is blue.")])
    assert e.prompt_ids == tok("What colour is the sky?")["input_ids"]
    assert e.completion_ids == tok(" The sky is blue.", add_special_tokens=False)["input_ids"]
    assert enc.unconditional_context == [tok.bos_token_id]  # the tokenizer adds nothing to "": BOS stands in


def test_messages_record_encodes_like_the_same_prompt_completion_strings(tiny_lm):
    _, tok, _ = tiny_lm
    msgs = Record("m", "example", {"messages": [{"role": "user", "content": "Is there a dark mode?"},
                                                {"role": "assistant", "content": "Yes."}]})
    conv = Record("c", "example", {"prompt": [{"role": "user", "content": "Is there a dark mode?"}],
                                   "completion": [{"role": "assistant", "content": "Yes."}]})
    a, b, c = RecordEncoder(tok).encode([msgs, conv, example("Is there a dark mode?", "Yes.")])
    assert a == b == c


def test_empty_completions_and_text_records(tiny_lm):
    _, tok, _ = tiny_lm
    empty, blank, text = RecordEncoder(tok).encode([example("Q?", ""), example("Q?", "   "), Record("t", "text",
                                                                                                  {"text": "x"})])
    assert empty is not None and empty.completion_ids == [] and tok.decode(empty.prompt_ids).endswith("assistant\n")
    assert blank is not None and blank.completion_ids == []
    assert text is None


def test_truncation_keeps_the_prompt_end_and_the_completion_start(tiny_lm):
    _, tok, _ = tiny_lm
    assert truncate_pair([1, 2, 3], [4, 5], 10) == ([1, 2, 3], [4, 5], False)
    assert truncate_pair(list(range(10)), [20, 21], 6) == ([6, 7, 8, 9], [20, 21], True)  # short answer: whole
    assert truncate_pair([1, 2], list(range(20, 30)), 6) == ([1, 2], [20, 21, 22, 23], True)  # short prompt: whole
    full = RecordEncoder(tok, max_length=1000).encode([example("word " * 40, "answer " * 40)])[0]
    cut = RecordEncoder(tok, max_length=32).encode([example("word " * 40, "answer " * 40)])[0]
    assert cut.truncated and len(cut.prompt_ids) + len(cut.completion_ids) == 32
    assert cut.prompt_ids == full.prompt_ids[-16:] and cut.completion_ids == full.completion_ids[:16]


def test_prompts_only_encoding_keeps_the_prompt_end_for_sampling(tiny_lm):
    _, tok, _ = tiny_lm
    (e,) = RecordEncoder(tok, max_length=8).encode([example("word " * 40, "answer")], prompts_only=True)
    assert e.completion_ids == [] and len(e.prompt_ids) == 8 and tok.decode(e.prompt_ids).endswith("assistant\n")


def test_bad_options_say_what_was_expected(tiny_lm):
    _, tok, _ = tiny_lm
    with pytest.raises(InputError, match="template must be one of"):
        RecordEncoder(tok, template="alpaca")
    with pytest.raises(InputError, match="at least 2"):
        RecordEncoder(tok, max_length=1)
    tok_plain = AutoTokenizer.from_pretrained(tiny_lm[2])
    tok_plain.chat_template = None
    with pytest.raises(InputError, match="template='plain'"):
        RecordEncoder(tok_plain, template="chat")
    assert not RecordEncoder(tok_plain).chat_available  # auto falls back to plain


def test_file_digest_follows_content(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.bin").write_bytes(b"one")
    first = file_digest(tmp_path / "a")
    assert file_digest(tmp_path / "a") == first and len(first) == 16
    (tmp_path / "a" / "w.bin").write_bytes(b"two")
    assert file_digest(tmp_path / "a") != first


def test_model_version_names_base_and_adapter(tiny_lm, tmp_path):
    model, tok, folder = tiny_lm
    injected = CausalLMScorer(lm=(model, tok))
    assert injected.model_version() == f"model:{file_digest(folder)}"
    assert CausalLMScorer(model=str(folder)).model_version() == injected.model_version()
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with_adapter = CausalLMScorer(model=str(folder), adapter=str(adapter)).model_version()
    assert with_adapter == f"model:{file_digest(folder)}+adapter:{file_digest(adapter)}"
    (adapter / "adapter_config.json").write_text('{"r": 4}')
    assert CausalLMScorer(model=str(folder), adapter=str(adapter)).model_version() != with_adapter
    assert CausalLMScorer(model="some-org/some-model").model_version() == "some-org/some-model"
