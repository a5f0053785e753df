"""``--pii-types`` resolution (typos refused, after a minus too) and the advice of the changed-share warning."""

from __future__ import annotations

import pytest

from curate.errors import InputError
from curate.filters.pii_preview import share_advice


def test_an_unknown_type_is_refused_with_or_without_a_minus():
    pytest.importorskip("presidio_analyzer")
    from curate.filters.pii_workspace import check_types, resolve_types

    with pytest.raises(InputError, match=r"-LOCATON: not a type curate detects\. Choose among .*LOCATION.*"
                                         r"Did you mean 'LOCATION'\?"):
        resolve_types(["default,-LOCATON"])
    with pytest.raises(InputError, match=r"-NAMES: not a type.*the groups default, contact, secrets"):
        resolve_types(["-NAMES"])
    with pytest.raises(InputError, match=r"PERSN: not a type.*Did you mean 'PERSON'\?"):
        check_types(resolve_types(["default,PERSN"]))
    assert "LOCATION" not in resolve_types(["default,-LOCATION"])
    assert resolve_types(["contact,-NRP,-secrets"]) == resolve_types(["contact"])  # known types, not chosen: fine


def test_the_share_warning_advises_narrowing_only_when_it_helps():
    contact = share_advice({"types": ["EMAIL_ADDRESS", "PHONE_NUMBER"],
                            "records_by_type": {"PHONE_NUMBER": 5, "EMAIL_ADDRESS": 9}})
    assert "narrow --pii-types (" not in contact and "(EMAIL_ADDRESS, PHONE_NUMBER)" in contact
    assert "--pii preview" in contact and "--pii-allow" in contact and "EMAIL_ADDRESS=0.9" in contact
    assert "--revise" in contact and "--pii preview" not in share_advice({"records_by_type": {}}, preview=True)

    people = share_advice({"types": "default", "records_by_type": {"PERSON": 4, "EMAIL_ADDRESS": 9}}, preview=True)
    assert "narrow" not in people and "PERSON=0.85" in people and people.endswith("--pii-allow-file.")
    places = share_advice({"types": "default", "records_by_type": {"PERSON": 4, "LOCATION": 2}})
    assert "narrow --pii-types (e.g. default,-LOCATION)" in places and "PERSON=0.85" in places
    chosen = share_advice({"types": ["PERSON", "LOCATION"], "records_by_type": {"LOCATION": 2}})
    assert "narrow --pii-types (e.g. leave out LOCATION)" in chosen and "LOCATION=0.85" in chosen


def test_the_share_warning_names_a_drop_as_a_drop(tmp_path):
    import json

    from typer.testing import CliRunner

    from curate.cli.main import app

    src = tmp_path / "tickets.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"Write to ann.lee{i}@example.com about order {i}.",
                                       "completion": "Sent."}) + "\n" for i in range(6)))
    result = CliRunner().invoke(app, ["ingest", str(src), "-w", str(tmp_path / "ws"), "--pii", "drop",
                                      "--pii-warn-share", "0.2"])
    said = " ".join(result.output.split())
    assert "WARNING: PII dropping dropped 100% of the records" in said and "redaction changed" not in said
