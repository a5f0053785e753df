from __future__ import annotations

from curate.ingest.records import as_text, normalise_text, record_id


def test_id_is_stable_32_hex_and_ignores_surrounding_whitespace_and_line_ends():
    a = record_id("example", {"prompt": "Hi", "completion": "Hello\r\nthere"})
    b = record_id("example", {"prompt": "  Hi ", "completion": "Hello\r\nthere\n"})
    assert a == b
    assert len(a) == 32 and set(a) <= set("0123456789abcdef")


def test_id_depends_on_kind_and_content_not_on_label():
    base = record_id("text", {"text": "refund please"})
    assert base != record_id("text", {"text": "refund now"})
    assert base != record_id("example", {"prompt": "refund please", "completion": "ok"})
    assert base == record_id("text", {"text": "refund please", "label": "billing"})


def test_id_known_value_does_not_drift_between_versions():
    # Ids are stored: changing how they are computed would silently break dedup against old workspaces.
    assert record_id("text", {"text": "hello"}) == "dfbd0b0d8ad323e8693a972659c21340"


def test_normalise_text_composes_unicode_and_line_ends():
    assert normalise_text("e\u0301\r\nx\ry") == "\u00e9\nx\ny"


def test_as_text_joins_message_contents():
    assert as_text([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]) == "a\n\nb"
