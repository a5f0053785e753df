"""PII policies: per-type minimum scores, meta values, plans that change nothing, and the copy kept of a drop."""

from __future__ import annotations

import pytest

from curate.errors import InputError
from curate.filters.policy import PiiPolicy
from curate.ingest.records import Record

SALT = b"0123456789abcdef"


def test_min_scores_are_checked_and_lower_the_detection_threshold():
    policy = PiiPolicy(min_scores={"PERSON": 0.9, "PHONE_NUMBER": 0.3})
    assert policy.min_score("PERSON") == 0.9 and policy.min_score("EMAIL_ADDRESS") == 0.4
    assert policy.detect_threshold == 0.3
    with pytest.raises(InputError, match=r"--pii-min-score.*\[0, 1\]"):
        PiiPolicy(min_scores={"PERSON": 1.5})
    with pytest.raises(InputError, match="not among the types detected"):
        PiiPolicy(entities=("EMAIL_ADDRESS",), min_scores={"PERSON": 0.9})


def test_plans_cover_meta_and_drops_keep_a_redacted_copy():
    pytest.importorskip("presidio_analyzer")
    from curate.filters.policy import apply_plan, plan_record, redacted_copy

    rec = Record(id="t", kind="example", fields={"prompt": "Mail ann.lee@example.com", "completion": "Done."},
                 meta={"customer_email": "ann.lee@example.com", "pii_source_id": "s"})
    plan = plan_record(rec, PiiPolicy(), meta=True)
    assert rec.fields["prompt"] == "Mail ann.lee@example.com"  # planning changes nothing
    assert plan.changed() == {"prompt": "Mail ann.lee@example.com", "@meta.customer_email": "ann.lee@example.com"}
    out, report = apply_plan(plan, salt=SALT)
    assert out is not None and out.meta["customer_email"] == "<EMAIL_ADDRESS_1>" == out.fields["prompt"][5:]
    assert out.meta["pii_source_id"] == "s" and {f.field for f in report.findings} == set(plan.changed())
    strict = plan_record(rec, PiiPolicy(entities=("EMAIL_ADDRESS",), min_scores={"EMAIL_ADDRESS": 1.0}), meta=True)
    assert len(strict.changed()) == 2  # emails score 1.0
    dropped = plan_record(rec, PiiPolicy(default="drop"), meta=True)
    assert apply_plan(dropped, salt=SALT)[0] is None
    copy = redacted_copy(dropped)
    assert copy.id == "t" and "ann.lee" not in str(copy.fields) + str(copy.meta)



def _ticket() -> Record:
    """A ticket whose reply names the customer by first name only, in texts the detector misses on their own."""
    reply = "Hi Siobhan, thanks for reaching out. We'll email siobhan.oconnor@gmail.com today."
    return Record(id="tk", kind="example", fields={
        "prompt": "Hi, my name is Siobhan O'Connor and I was charged twice. Please refund one of the charges.",
        "completion": reply,
        "messages": [{"role": "user", "content": "O'Connor called twice about the invoice."},
                     {"role": "assistant", "content": reply}],
    }, meta={"note": "O'Connor called twice about the invoice."})


def test_a_redacted_name_is_redacted_in_every_text_of_the_record_with_its_placeholder():
    pytest.importorskip("presidio_analyzer")
    from curate.filters.pii import PROPAGATED
    from curate.filters.pii_vault import PiiKey
    from curate.filters.pii_workspace import PiiGuard, PiiOptions
    from curate.filters.policy import apply_plan, plan_record, redacted_copy

    out, report = apply_plan(plan_record(_ticket(), PiiPolicy(), meta=True), salt=SALT)
    assert out is not None
    assert out.fields["prompt"].startswith("Hi, my name is <PERSON_1> and")
    reply = "Hi <PERSON_1>, thanks for reaching out. We'll email <EMAIL_ADDRESS_1> today."
    assert out.fields["completion"] == reply == out.fields["messages"][1]["content"]
    assert out.fields["messages"][0]["content"] == out.meta["note"] == "<PERSON_1> called twice about the invoice."
    added = [f for f in report.findings if f.recognizer == PROPAGATED]
    assert sorted(f.field for f in added) == ["@meta.note", "completion", "messages[0].content",
                                              "messages[1].content"]
    assert all(f.entity_type == "PERSON" and f.action == "redact" for f in added)
    copy = redacted_copy(plan_record(_ticket(), PiiPolicy(default="drop"), meta=True))  # kept of a drop
    assert "Siobhan" not in str(copy.fields) and copy.fields["completion"].startswith("Hi <PERSON_1>,")

    guard = PiiGuard("redact", SALT, options=PiiOptions(key=PiiKey(bytes(32))))  # the originals to encrypt
    assert guard.process(_ticket(), keep_id=True) is not None
    originals = {path: text for _, path, text in guard.originals}
    assert originals["completion"].startswith("Hi Siobhan,") and originals["@meta.note"].startswith("O'Connor")

    allowed, _ = apply_plan(plan_record(_ticket(), PiiPolicy(allow_list=("siobhan",)), meta=True), salt=SALT)
    assert allowed is not None and "<PERSON_1>" in allowed.fields["prompt"]
    assert allowed.fields["completion"].startswith("Hi Siobhan,")  # an allowed part is never propagated
    assert allowed.meta["note"].startswith("<PERSON_1> called twice")  # the other part still is


def test_name_parts_are_capitalised_whole_words_and_not_common_words():
    pytest.importorskip("presidio_analyzer")
    from curate.filters.pii import Finding, name_parts, propagate_names, record_placeholders

    assert name_parts("Dr Li Everyone Thanks Customer Jürgen Müller") == ["Jürgen", "Müller"]
    texts = ["Dr Li Jürgen Müller wrote.", "Thanks Everyone, Li, jürgen, Jürgenson and Jürgen are here."]
    found = propagate_names(texts, [[Finding("PERSON", 3, 19, 0.9, "x")], []])
    assert [(texts[1][f.start : f.end], f.score) for f in found[1]] == [("Jürgen", 0.9)]
    placeholders = record_placeholders(texts, found)
    assert placeholders.get("PERSON", "Jürgen") == placeholders.get("PERSON", "Li Jürgen Müller") == "<PERSON_1>"
    assert placeholders.get("PERSON", "Ann Lee") == "<PERSON_2>"
