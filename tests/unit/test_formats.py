"""Row shapes -> records: one case per understood format, and the rows that must be refused."""

from __future__ import annotations

import pytest

from curate.errors import ColumnMappingError, RecordError
from curate.ingest.formats import parse_mapping, parse_transcript, row_to_record, split_implicit_prompt

USER = {"role": "user", "content": "Hi?"}
BOT = {"role": "assistant", "content": "Hello."}

CASES = [
    ({"prompt": "p", "completion": "c"}, "example", {"prompt": "p", "completion": "c"}),
    ({"messages": [USER, BOT]}, "example", {"messages": [USER, BOT]}),
    ({"prompt": [USER], "completion": [BOT]}, "example", {"prompt": [USER], "completion": [BOT]}),
    ({"prompt": "p", "chosen": "a", "rejected": "b"}, "preference", {"prompt": "p", "chosen": "a", "rejected": "b"}),
    ({"prompt": "p", "completions": ["a", "b", "c"]}, "candidates", {"prompt": "p", "completions": ["a", "b", "c"]}),
    ({"instruction": "Do X", "input": "data", "output": "done"}, "example",
     {"prompt": "Do X\n\ndata", "completion": "done"}),
    ({"instruction": "Do X", "input": "", "output": "done"}, "example", {"prompt": "Do X", "completion": "done"}),
    ({"text": "refund please", "label": "billing"}, "text", {"text": "refund please"}),
]


@pytest.mark.parametrize(("row", "kind", "fields"), CASES)
def test_each_format_becomes_the_right_record(row, kind, fields):
    rec = row_to_record(row, source="s.jsonl", line=7)
    assert rec.kind == kind
    assert rec.fields == fields
    assert (rec.source, rec.line) == ("s.jsonl", 7)


def test_sharegpt_conversations_become_messages():
    """ShareGPT (Vicuna, OpenHermes, SlimOrca...): ``conversations`` of ``{"from", "value"}`` turns."""
    row = {"id": "a2", "conversations": [{"from": "system", "value": "Be terse."}, {"from": "human", "value": "Hi?"},
                                         {"from": "gpt", "value": "Hello."}]}
    rec = row_to_record(row)
    assert rec.kind == "example" and rec.meta == {"id": "a2"}
    assert rec.fields == {"messages": [{"role": "system", "content": "Be terse."}, USER, BOT]}
    assert rec.id == row_to_record({"messages": [{"role": "system", "content": "Be terse."}, USER, BOT]}).id
    pair = row_to_record({"prompt": [{"from": "human", "value": "Hi?"}], "chosen": [{"from": "gpt", "value": "Hello."}],
                          "rejected": [{"from": "gpt", "value": "Go away."}]})
    assert pair.kind == "preference" and pair.fields["prompt"] == [USER] and pair.fields["chosen"] == [BOT]
    with pytest.raises(RecordError, match=r"messages\[1\]\.from must be one of .*human.*; got 'narrator'"):
        row_to_record({"conversations": [{"from": "human", "value": "Hi?"}, {"from": "narrator", "value": "..."}]})


def test_dolly_and_prompt_response_rows_are_examples():
    dolly = row_to_record({"instruction": "Summarise.", "context": "Long text.", "response": "Short.",
                           "category": "summarization"})
    assert dolly.fields == {"prompt": "Summarise.\n\nLong text.", "completion": "Short."}
    assert dolly.meta == {"category": "summarization"}
    helpsteer = row_to_record({"prompt": "p", "response": "r", "helpfulness": 3})
    assert helpsteer.fields == {"prompt": "p", "completion": "r"} and helpsteer.meta == {"helpfulness": 3}
    # a response column beside the shapes' own names is left alone (kept as metadata)
    assert row_to_record({"prompt": "p", "completion": "c", "response": "r"}).meta == {"response": "r"}
    assert row_to_record({"prompt": "p", "chosen": "a", "rejected": "b", "response": "r"}).meta == {"response": "r"}


def test_text_label_and_kto_label_are_kept_apart_from_content():
    assert row_to_record({"text": "x", "label": "billing"}).label == "billing"
    kto = row_to_record({"prompt": "p", "completion": "c", "label": False})
    assert kto.kind == "example" and kto.label is False
    assert kto.id == row_to_record({"prompt": "p", "completion": "c", "label": True}).id


def test_extra_columns_are_kept_as_meta():
    rec = row_to_record({"text": "x", "label": "a", "ticket_id": 12, "lang": "en"})
    assert rec.meta == {"ticket_id": 12, "lang": "en"}


def test_hh_transcript_prompt_is_split_on_the_last_turn():
    chosen = "\n\nHuman: Name a colour.\n\nAssistant: Blue.\n\nHuman: Another?\n\nAssistant: Green is nice."
    rejected = "\n\nHuman: Name a colour.\n\nAssistant: Blue.\n\nHuman: Another?\n\nAssistant: Grass."
    rec = row_to_record({"chosen": chosen, "rejected": rejected})
    assert rec.kind == "preference"
    assert [m["role"] for m in rec.fields["prompt"]] == ["user", "assistant", "user"]
    assert rec.fields["prompt"][-1]["content"] == "Another?"
    assert rec.fields["chosen"] == [{"role": "assistant", "content": "Green is nice."}]
    assert rec.fields["rejected"] == [{"role": "assistant", "content": "Grass."}]


def test_plain_text_implicit_prompt_uses_trls_character_prefix():
    out = split_implicit_prompt("The answer is yes", "The answer is no")
    assert out == {"prompt": "The answer is", "chosen": " yes", "rejected": " no"}


def test_pairs_that_diverge_before_the_last_turn_are_refused():
    chosen = "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d"
    rejected = "\n\nHuman: a\n\nAssistant: X\n\nHuman: c\n\nAssistant: e"
    with pytest.raises(RecordError, match="diverges before its final turn"):
        row_to_record({"chosen": chosen, "rejected": rejected})


def test_parse_transcript_rejects_non_transcripts():
    assert parse_transcript("just some text") is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "", "completion": "c"}, "'prompt' is empty"),
        ({"text": "   "}, "'text' is empty"),
        ({"prompt": 3, "completion": "c"}, "'prompt' must be a string or a list of messages; got int"),
        ({"text": ["a"]}, "'text' must be a string; got list"),
        ({"foo": "bar"}, "no known shape"),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, "identical"),
        ({"prompt": "p", "completions": ["only one"]}, "at least two"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "role must be one of"),
        ({"messages": [{"content": "x"}]}, "'role' and 'content'"),
        ({"text": "x", "label": {"a": 1}}, "'label' must be"),
        (["not", "an", "object"], "expected a JSON object"),
    ],
)
def test_bad_rows_raise_record_errors_that_say_what_was_expected(row, message):
    with pytest.raises(RecordError, match=message):
        row_to_record(row)


def test_empty_completion_is_kept_for_an_expert_to_write():
    rec = row_to_record({"instruction": "Convert 20 inches to centimetres", "input": "", "output": ""})
    assert rec.fields == {"prompt": "Convert 20 inches to centimetres", "completion": ""}


def test_column_mapping_renames_including_nested_paths():
    mapping = parse_mapping(["text=body", "label=meta.intent"])
    rec = row_to_record({"body": "card lost", "meta": {"intent": "lost_card"}}, mapping=mapping)
    assert rec.kind == "text" and rec.fields == {"text": "card lost"} and rec.label == "lost_card"


def test_mapping_to_a_missing_column_is_a_row_error():
    with pytest.raises(RecordError, match="mapped column 'body' is missing"):
        row_to_record({"text": "x"}, mapping={"text": "body"})


@pytest.mark.parametrize("item", ["text", "=body", "colour=body"])
def test_malformed_mapping_is_refused(item):
    with pytest.raises(ColumnMappingError):
        parse_mapping([item])


def test_forced_kind_is_checked():
    with pytest.raises(RecordError, match="'text' is missing"):
        row_to_record({"prompt": "p", "completion": "c"}, kind="text")


def test_the_pair_hint_for_chatbot_arena_names_the_conversations_not_the_model_names():
    turn = [{"role": "user", "content": "Name a prime."}]
    row = {"question_id": "q1", "model_a": "koala-13b", "model_b": "alpaca-13b", "winner": "model_a",
           "conversation_a": [*turn, {"role": "assistant", "content": "Seven is prime."}],
           "conversation_b": [*turn, {"role": "assistant", "content": "Nine."}]}
    with pytest.raises(RecordError, match="--map responses=conversation_a,conversation_b --map preferred=winner"):
        row_to_record(row)
    mapped = row_to_record(row, mapping=parse_mapping(["responses=conversation_a,conversation_b",
                                                       "preferred=winner"]))
    assert mapped.kind == "preference" and mapped.fields["chosen"][-1]["content"] == "Seven is prime."


def test_other_sets_role_names_are_read_as_curates():
    rec = row_to_record({"messages": [{"role": "prompter", "content": "Hi?"}, {"role": "Model", "content": "Hello."}]})
    assert [m["role"] for m in rec.fields["messages"]] == ["user", "assistant"]
    with pytest.raises(RecordError, match=r"role must be one of .* \(or prompter, human, model, gpt, bot, read as"):
        row_to_record({"messages": [{"role": "wizard", "content": "x"}]})


def test_a_transcript_in_one_text_column_reads_as_messages():
    """openassistant-guanaco keeps a whole chat in ``text`` ("### Human: ... ### Assistant: ..."); HH-style too."""
    guanaco = {"text": "### Human: How do I boil an egg?### Assistant: Simmer it for nine minutes.### Human: Soft?"
                       "### Assistant: Six minutes."}
    rec = row_to_record(guanaco, mapping=parse_mapping(["messages=text"]))
    assert rec.kind == "example"
    assert [(m["role"], m["content"]) for m in rec.fields["messages"]] == [
        ("user", "How do I boil an egg?"), ("assistant", "Simmer it for nine minutes."), ("user", "Soft?"),
        ("assistant", "Six minutes.")]
    hh = row_to_record({"chat": "\n\nHuman: Hi\n\nAssistant: Hello!"}, mapping=parse_mapping(["messages=chat"]))
    assert [m["role"] for m in hh.fields["messages"]] == ["user", "assistant"]
    with pytest.raises(RecordError, match="or a Human:/Assistant: transcript; got str"):
        row_to_record({"chat": "just some text"}, mapping=parse_mapping(["messages=chat"]))


def test_ultrafeedback_binarized_pairs_do_not_repeat_the_prompt_in_the_responses():
    """HuggingFaceH4/ultrafeedback_binarized: a prompt column, and chats that start with the same user turn."""
    user = {"role": "user", "content": "Name a prime."}
    row = {"prompt": "Name a prime.", "chosen": [user, {"role": "assistant", "content": "Seven."}],
           "rejected": [user, {"role": "assistant", "content": "Nine."}], "score_chosen": 8.0}
    rec = row_to_record(row)
    assert rec.fields == {"prompt": [user], "chosen": [{"role": "assistant", "content": "Seven."}],
                          "rejected": [{"role": "assistant", "content": "Nine."}]}
    assert rec.meta == {"score_chosen": 8.0}
    # chats that do not repeat the prompt column are left as they are
    other = {**row, "prompt": "A different question?"}
    assert row_to_record(other).fields["chosen"] == row["chosen"]


def test_alpacas_input_joins_a_mapped_prompt_instead_of_being_dropped():
    row = {"instruction": "Summarise the text.", "input": "Cats sleep a lot.", "output": "Cats nap."}
    mapped = row_to_record(row, mapping=parse_mapping(["prompt=instruction", "completion=output"]))
    assert mapped.fields == {"prompt": "Summarise the text.\n\nCats sleep a lot.", "completion": "Cats nap."}
    assert mapped.id == row_to_record(row).id  # the same record as the unmapped Alpaca row


def test_openassistant_messages_with_a_text_key_read_as_content():
    rec = row_to_record({"messages": [{"role": "prompter", "text": "Hi?"}, {"role": "assistant", "text": "Hello."}]})
    assert rec.fields["messages"] == [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]
