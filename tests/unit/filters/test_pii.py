"""PII and secret filters: planted secrets found in full, checksums, placeholders, allow-list, policies."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("presidio_analyzer")

from curate.filters import PiiPolicy, apply_policy, detect, iban_valid, luhn_valid, redact  # noqa: E402
from curate.filters.pii import build_analyzer  # noqa: E402
from curate.ingest.records import Record, record_id  # noqa: E402

SALT = b"test-salt-0123456789abcdef"

# Fake secrets, written here; none is a real credential.
SECRETS = {
    "AWS_ACCESS_KEY": ["AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A", "AKIA0123456789ABCDEF"],
    "AWS_SECRET_KEY": ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "abcdEFGHijklMNOPqrstUVWX+yz0123456789/AB"],
    "GITHUB_TOKEN": ["ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8", "gho_" + "Z" * 36, "ghu_" + "0a" * 18,
                     "ghs_" + "Ab9" * 12, "ghr_" + "x7Y" * 12, "github_pat_11ABCDEFG0_" + "q" * 59],
    "SLACK_TOKEN": ["xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx", "xoxp-2222-3333-4444-abcdef0123",
                    "xoxa-2-abcdef123456", "xoxr-9876543210-zzz", "xoxs-1111111111-x1"],
    "SLACK_WEBHOOK": ["https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"],
    "OPENAI_API_KEY": ["sk-" + "A1b2C3d4E5" * 4 + "F6g7H8i9", "sk-proj-" + "Xy9_Zw8-" * 8, "sk-abc123DEF456ghi789JKL0"],
    "JWT": ["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJjdXJhdGUifQ.c2lnbmF0dXJlLXBhcnQtaGVyZQ"],
    "PRIVATE_KEY": ["-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7\n"
                    "-----END RSA PRIVATE KEY-----",
                    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIN0t+fake+key+material==\n"
                    "-----END PRIVATE KEY-----",
                    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n"
                    "-----END OPENSSH PRIVATE KEY-----"],
    "BEARER_TOKEN": ["abcDEF123456ghiJKL789mnoPQR", "tok_live_51Hx.Zy-9~abc/def+ghi"],
    "URL_PASSWORD": ["hunter2", "s3cr3t!Pass"],
}
TEMPLATES = {
    "AWS_SECRET_KEY": ["aws_secret_access_key = {}", 'AWS_SECRET_ACCESS_KEY="{}"', "my aws secret key: {}"],
    "BEARER_TOKEN": ["curl -H 'Authorization: Bearer {}' https://api.example.com", "Authorization: bearer {}"],
    "URL_PASSWORD": ["postgres://admin:{}@db.internal:5432/app", "DSN is https://bob:{}@example.org/path"],
}


@pytest.fixture(scope="session")
def analyzer():
    return build_analyzer()


def _cases():
    for entity, values in SECRETS.items():
        for i, value in enumerate(values):
            templates = TEMPLATES.get(entity, ["Here is the key: {} (do not share)", "{}", "config:\n  token: '{}'\n"])
            yield entity, value, templates[i % len(templates)].format(value)


@pytest.mark.parametrize(("entity", "value", "text"), list(_cases()))
def test_secret_detected_in_full(analyzer, entity, value, text):
    findings = detect(text)
    start = text.index(value)
    covering = [f for f in findings if f.start <= start and f.end >= start + len(value)]
    assert covering, f"{entity} {value!r} not covered in {text!r}: {findings}"
    assert covering[0].entity_type == entity
    assert value not in redact(text, findings)


@pytest.mark.parametrize("text", ["no secrets here, just sk-learn and xox", "AKIA is a prefix", "eyJ.eyJ.x",
                                  "ghp_short", "Authorization: Basic"])
def test_no_secret_false_positives(analyzer, text):
    assert not [f for f in detect(text) if f.entity_type not in {"PERSON", "LOCATION"}]


def test_luhn_and_iban_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89 3704 0044 0532 0130 00") and not iban_valid("DE88 3704 0044 0532 0130 00")


def test_card_failing_luhn_is_not_a_card(analyzer):
    assert [f.entity_type for f in detect("Charge my card 4111 1111 1111 1111 please")] == ["CREDIT_CARD"]
    assert not [f for f in detect("Charge my card 4111 1111 1111 1112 please") if f.entity_type == "CREDIT_CARD"]
    assert not [f for f in detect("Reference 1234567812345678 on the card") if f.entity_type == "CREDIT_CARD"]


def test_bad_iban_check_digit_is_not_an_iban(analyzer):
    assert "IBAN_CODE" in {f.entity_type for f in detect("Send it to IBAN DE89 3704 0044 0532 0130 00 today")}
    assert "IBAN_CODE" not in {f.entity_type for f in detect("Send it to IBAN DE88 3704 0044 0532 0130 00 today")}


def test_person_from_context(analyzer):
    text = "Hello, my name is borna jerković. Dr. Ilse Varga signed it; later Varga left."
    persons = [text[f.start : f.end] for f in detect(text) if f.entity_type == "PERSON"]
    assert "borna jerković" in persons and "Ilse Varga" in persons and persons.count("Varga") == 1


def test_placeholders_consistent_within_record(analyzer):
    rec = Record(id="x", kind="example", fields={
        "prompt": "Email jane.roe@example.com or call Jane Roe.",
        "completion": "I wrote to jane.roe@example.com; bob.stone@example.org was copied.",
    })
    new, report = apply_policy(rec, PiiPolicy(), salt=SALT)
    assert new is not None and report.action == "redacted"
    assert new.fields["prompt"].startswith("Email <EMAIL_ADDRESS_1> or call <PERSON_1>")
    assert new.fields["completion"] == "I wrote to <EMAIL_ADDRESS_1>; <EMAIL_ADDRESS_2> was copied."
    assert new.id == record_id("example", new.fields) and new.meta["pii_source_id"] == "x"


def test_messages_are_redacted(analyzer):
    rec = Record(id="m", kind="example", fields={"messages": [
        {"role": "user", "content": "My key is AKIAIOSFODNN7EXAMPLE"},
        {"role": "assistant", "content": "Never share AKIAIOSFODNN7EXAMPLE."},
    ]})
    new, report = apply_policy(rec, PiiPolicy(), salt=SALT)
    assert new is not None
    assert [m["content"] for m in new.fields["messages"]] == ["My key is <AWS_ACCESS_KEY_1>",
                                                               "Never share <AWS_ACCESS_KEY_1>."]
    assert [f.field for f in report.findings] == ["messages[0].content", "messages[1].content"]
    assert report.findings[0].value_hash == report.findings[1].value_hash


def test_allow_list(analyzer):
    text = "Ask Dr. Acme Cloud or Dr. Vera Holt"
    found = [text[f.start : f.end] for f in detect(text, allow_list=["acme cloud"])]
    assert "Acme Cloud" not in found and "Vera Holt" in found


def test_drop_and_flag_policies(analyzer):
    rec = Record(id="d", kind="text", fields={"text": "Mail me at ann.lee@example.com, Ann Lee"})
    dropped, report = apply_policy(rec, PiiPolicy(actions={"EMAIL_ADDRESS": "drop"}), salt=SALT)
    assert dropped is None and report.action == "dropped"
    flagged, report = apply_policy(rec, PiiPolicy(default="flag"), salt=SALT)
    assert flagged is not None and flagged.fields == rec.fields and report.action == "flagged"
    assert "EMAIL_ADDRESS" in flagged.meta["pii_flags"]
    mixed, _ = apply_policy(rec, PiiPolicy(actions={"PERSON": "flag"}), salt=SALT)
    assert mixed is not None and mixed.fields["text"] == "Mail me at <EMAIL_ADDRESS_1>, Ann Lee"


def test_report_holds_no_values(analyzer):
    planted = [v for values in SECRETS.values() for v in values] + ["ann.lee@example.com", "4111 1111 1111 1111"]
    text = "\n".join(text for _, _, text in _cases()) + "\nann.lee@example.com card 4111 1111 1111 1111"
    rec = Record(id="r", kind="text", fields={"text": text})
    new, report = apply_policy(rec, PiiPolicy(), salt=SALT)
    dumped = json.dumps(report.to_dict())
    assert new is not None and report.findings
    for value in planted:
        assert value not in dumped
        assert value not in new.fields["text"]


def test_bad_policy_and_salt_rejected():
    from curate.errors import InputError

    with pytest.raises(InputError, match="must be one of"):
        PiiPolicy(actions={"PERSON": "erase"})
    with pytest.raises(InputError, match="16 to 64 bytes"):
        apply_policy(Record(id="r", kind="text", fields={"text": "x"}), PiiPolicy(), salt=b"short")


@pytest.mark.parametrize(("text", "number"), [
    ("mobile: 99 577450", "99 577450"),
    ("Office 085 175 7641, 3660170548-Fax", "3660170548"),
    ("reach me on +447700677662 mobile", "+447700677662"),
])
def test_phone_numbers_with_context_are_found(text, number):
    found = [text[f.start:f.end] for f in detect(text) if f.entity_type == "PHONE_NUMBER"]
    assert number in found


def test_an_ssn_shaped_number_is_not_a_phone_number():
    text = "Call me back about my social security number 536-90-4399."
    types = {f.entity_type for f in detect(text) if text[f.start:f.end] == "536-90-4399"}
    assert types == {"US_SSN"}


def test_spacy_model_choice_from_environment(monkeypatch, tmp_path):
    from curate.errors import InputError
    from curate.filters.pii import SPACY_MODEL, SPACY_MODEL_ENV, spacy_model, spacy_model_name

    try:
        monkeypatch.setenv(SPACY_MODEL_ENV, SPACY_MODEL)
        spacy_model.cache_clear()
        assert spacy_model() == SPACY_MODEL
        monkeypatch.setenv(SPACY_MODEL_ENV, str(tmp_path / "no-such-model"))
        spacy_model.cache_clear()
        with pytest.raises(InputError, match="CURATE_PII_SPACY_MODEL.*no-such-model.*neither"):
            spacy_model()
        monkeypatch.delenv(SPACY_MODEL_ENV)
        spacy_model.cache_clear()
        # the default is the medium model when its PyPI package is installed (make install does), else the small one
        assert spacy_model_name().startswith(("en_core_web_md", SPACY_MODEL))
    finally:
        spacy_model.cache_clear()


def test_acronyms_are_not_people(analyzer):
    text = "SAML SSO is available on the Business plan. Configure it under Settings > Security > SSO."
    assert [f for f in detect(text) if f.entity_type == "PERSON"] == []
    other = "Ask Dr. Okafor about it."
    assert [other[f.start:f.end] for f in detect(other) if f.entity_type == "PERSON"] == ["Okafor"]
