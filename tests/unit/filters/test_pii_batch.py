"""Batched PII detection (nlp.pipe) and the findings cache that makes an interrupted pass resumable."""

from __future__ import annotations

import sqlite3

import pytest

pytest.importorskip("presidio_analyzer", reason="PII detection needs the pii extra")

from curate.filters.pii import detect  # noqa: E402
from curate.filters.pii_batch import Detector, FindingsCache, detect_many, settings_key  # noqa: E402

TEXTS = [
    "Call Maria Gonzalez on +44 20 7946 0958 or write to maria.gonzalez@example.org.",
    "",
    "   ",
    "The recipe needs two eggs and a cup of flour; bake it for 20 minutes.",
    "My card 4111 1111 1111 1111 expires soon, and my IBAN is GB82 WEST 1234 5698 7654 32.",
    "Token ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + " leaked from the repo of John Carter in Boston.",
] * 3


def test_batched_detection_finds_what_one_text_at_a_time_finds():
    assert list(detect_many(TEXTS, batch_size=4)) == [detect(t) for t in TEXTS]
    assert list(detect_many([])) == []


def test_the_cache_answers_a_second_detector_and_holds_no_value(tmp_path):
    cache = FindingsCache(tmp_path / "findings.sqlite")
    first = Detector(cache)
    first.warm(TEXTS)
    unique = len({t for t in TEXTS if t.strip()})
    assert (first.detected, first.from_cache) == (unique, 0) and first.chars_per_second > 0
    assert [first(t) for t in TEXTS] == [detect(t) for t in TEXTS]

    again = Detector(FindingsCache(tmp_path / "findings.sqlite"))
    again.warm(TEXTS)
    assert (again.detected, again.from_cache) == (0, unique)
    assert [again(t) for t in TEXTS] == [detect(t) for t in TEXTS]
    with sqlite3.connect(tmp_path / "findings.sqlite") as conn:
        stored = b"".join(bytes(row[0]) for row in conn.execute("SELECT findings FROM findings"))
    assert b"Maria" not in stored and b"example.org" not in stored and b"4111" not in stored  # offsets only

    other = Detector(FindingsCache(tmp_path / "findings.sqlite"), allow_list=("Maria Gonzalez",))
    assert other.settings != first.settings
    other.warm(TEXTS)
    assert other.from_cache == 0 and other.detected == unique  # other settings: detected afresh
    assert settings_key(("PERSON",), (), 0.4) != settings_key(("PERSON",), (), 0.5)
