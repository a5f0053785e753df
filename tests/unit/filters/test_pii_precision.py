"""PII precision on ordinary text, phone numbers as people write them, and planted PII still found.

Every sentence here was written for this test (no third-party text).
"""

from __future__ import annotations

import pytest

pytest.importorskip("presidio_analyzer")

from curate.filters import detect, redact  # noqa: E402

ORDINARY = [
    "Down",
    "Across: a large cat (4)\nDown: the opposite of up (2)\nAcross: not out (2)",
    "Webhook",
    "Webhook endpoints should answer within five seconds.",
    "Please call me back tomorrow.",
    "Bananas cost more than apples.",
    "The Claw Grip is the best way to hold a mouse.",
    "Java is a programming language.",
    "Kubernetes schedules pods; Terraform provisions them.",
    "Use the GitHub Actions runner with Python 3.11 and PostgreSQL 16.",
    "Photosynthesis converts light into chemical energy.",
    "Hello World! This is my first program.",
    "Hi Team, the build is green again.",
    "Ingredients:\n- 2 cups flour\n- 1 cup sugar\nInstructions:\n1. Mix well.",
    "Blockchain explained: a blockchain is a ledger shared by many computers.",
    "Caramel forms when sugar is heated slowly.",
    "Definition: a noun names a thing.",
    "Gardening tips: water the roots, not the leaves.",
    "Rain is expected later, so bring an umbrella.",
    "A 3 way handshake uses SYN and ACK packets.",
    "SAML SSO is available on the Business plan. Configure it under Settings > Security > SSO.",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_words_are_not_people_or_places(text):
    found = [(f.entity_type, text[f.start:f.end]) for f in detect(text) if f.entity_type in {"PERSON", "LOCATION"}]
    assert found == [], f"{text!r}: {found}"


PHONES = [
    # UK
    "020 7946 0958", "+44 20 7946 0958", "+44 (0)20 7946 0958", "(020) 7946 0958", "07700 900123", "+44 7700 900123",
    "0161 496 0000",
    # Germany
    "+49 30 12345678", "030 12345678", "(030) 1234-5678", "+49 (0)89 1234 5678", "+49-89-1234-5678",
    # France
    "+33 1 23 45 67 89", "01 23 45 67 89", "01.23.45.67.89", "+33 (0)1 23 45 67 89", "06-12-34-56-78",
    # US
    "(212) 555-0123", "212-555-0123", "+1 212 555 0123", "1-800-555-0199", "212.555.0123", "+1 (415) 555-2671",
]


@pytest.mark.parametrize("number", PHONES)
@pytest.mark.parametrize("template", ["{}", "Our office: {} (weekdays).", "Ring {} after six"])
def test_phone_numbers_are_found_whole(number, template):
    text = template.format(number)
    start = text.index(number)
    found = [f for f in detect(text) if f.start <= start and f.end >= start + len(number)]
    assert [f.entity_type for f in found] == ["PHONE_NUMBER"], f"{text!r}: {detect(text)}"
    assert number[-4:] not in redact(text, detect(text))


@pytest.mark.parametrize("text", ["Version 3.11.4 was released in 2023.", "The ratio is 0.125 and pi is 3.14159265.",
                                  "ISBN 978 3 16 148410 0", "Order 12 items at 4.99 each."])
def test_numbers_that_are_not_phones(text):
    assert [text[f.start:f.end] for f in detect(text) if f.entity_type == "PHONE_NUMBER"] == []


TICKET = (
    "Ticket 4411 from Maria Kovalenko (maria.kovalenko@example.com): my parcel never arrived at 221B Baker Street, "
    "London. Please call me on +44 20 7946 0958. My colleague Tomasz Nowak had the same problem.\n"
    "Regards,\nMaria Kovalenko"
)


def test_planted_pii_in_a_support_ticket_is_found():
    found = {(f.entity_type, TICKET[f.start:f.end]) for f in detect(TICKET)}
    assert {("PERSON", "Maria Kovalenko"), ("PERSON", "Tomasz Nowak"),
            ("EMAIL_ADDRESS", "maria.kovalenko@example.com"), ("PHONE_NUMBER", "+44 20 7946 0958")} <= found
    assert any(t == "LOCATION" and "Baker Street" in v for t, v in found)
    cleaned = redact(TICKET, detect(TICKET))
    for value in ("Kovalenko", "Nowak", "maria.kovalenko@example.com", "7946", "Baker Street"):
        assert value not in cleaned


@pytest.mark.parametrize(("text", "name"), [
    ("Hi, I'm Anneliese Brandt and my order is late.", "Anneliese Brandt"),
    ("Customer: Olu Adebayo\nIssue: refund", "Olu Adebayo"),
    ("Dr. Ilse Varga signed the form; later Varga left.", "Ilse Varga"),
    ("my name is borna jerković, please help", "borna jerković"),
])
def test_names_from_context_are_found(text, name):
    assert name in [text[f.start:f.end] for f in detect(text) if f.entity_type == "PERSON"]
