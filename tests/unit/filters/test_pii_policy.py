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
