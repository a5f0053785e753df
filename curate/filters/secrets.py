"""Regex recognizers with checksums and context: secrets, payment numbers and phone numbers.

Every recognizer here is a :class:`RegexRecognizer`: a list of :class:`Rule` objects (a compiled regex, the
group that holds the value, a base score), an optional validator that rejects a candidate (Luhn for cards,
mod-97 for IBANs, a JSON header for JWTs), and optional context words that raise the score when they occur
shortly before (or, for phone numbers, just after) the match.

Entity types added by curate: ``AWS_ACCESS_KEY``, ``AWS_SECRET_KEY``, ``GITHUB_TOKEN``, ``SLACK_TOKEN``,
``SLACK_WEBHOOK``, ``OPENAI_API_KEY``, ``JWT``, ``PRIVATE_KEY``, ``BEARER_TOKEN``, ``URL_PASSWORD``; and
curate's own ``CREDIT_CARD``, ``IBAN_CODE`` and ``PHONE_NUMBER`` rules (which add to Presidio's).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from presidio_analyzer import EntityRecognizer, RecognizerResult

#: Entity types of secrets (credentials) that curate detects.
SECRET_TYPES: Final[tuple[str, ...]] = (
    "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "GITHUB_TOKEN", "SLACK_TOKEN", "SLACK_WEBHOOK", "OPENAI_API_KEY", "JWT",
    "PRIVATE_KEY", "BEARER_TOKEN", "URL_PASSWORD",
)


def luhn_valid(number: str) -> bool:
    """Whether the digits of ``number`` pass the Luhn checksum (separators are ignored).

    >>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112")
    (True, False)
    """
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """Whether ``iban`` (spaces allowed) has a valid ISO 13616 mod-97 check.

    >>> iban_valid("GB82 WEST 1234 5698 7654 32"), iban_valid("GB83 WEST 1234 5698 7654 32")
    (True, False)
    """
    s = re.sub(r"[\s-]", "", iban).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s):
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _card_valid(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 12 <= len(digits) <= 19 and digits[0] in "123456" and len(set(digits)) > 1 and luhn_valid(digits)


def _jwt_valid(candidate: str) -> bool:
    header = candidate.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    except (binascii.Error, ValueError):
        return False
    return raw.startswith(b"{") and (b'"alg"' in raw or b'"typ"' in raw)


def _phone_possible(candidate: str) -> bool:
    """Whether a phone-shaped candidate of 9+ digits is a possible number in international form or in the
    national form of the UK, Germany, France or the US (phonenumbers' length rules)."""
    if not _phone_valid(candidate) or len(re.sub(r"\D", "", candidate)) < 9:
        return False
    import phonenumbers

    regions: tuple[str | None, ...] = (None,) if candidate.lstrip().startswith("+") else ("GB", "DE", "FR", "US")
    for region in regions:
        try:
            if phonenumbers.is_possible_number(phonenumbers.parse(candidate, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _phone_valid(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate.split("x")[0].split("ext")[0])
    if not 7 <= len(digits) <= 15:
        return False
    # Dates, times and the 3-2-4 shape of US social security numbers are not phone numbers.
    return not re.fullmatch(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{3}([- .])\d{2}\1\d{4}",
                            candidate.strip())


@dataclass(frozen=True, slots=True)
class Rule:
    """One regex of a :class:`RegexRecognizer`.

    Attributes:
        name: a short name, shown in the analysis explanation.
        regex: the compiled pattern.
        score: the score of a match without context (0 means: report only with context).
        group: the group whose span is the value (0: the whole match).
    """

    name: str
    regex: re.Pattern[str]
    score: float
    group: int = 0


class RegexRecognizer(EntityRecognizer):  # type: ignore[misc]
    """A Presidio recognizer from regex rules, a validator and context words.

    Args:
        entity: the entity type it reports.
        rules: the patterns.
        validator: returns False to reject a candidate value (checksums); None accepts all.
        context: a regex of context words; a match within ``window`` characters before the value (or
            ``after`` characters after it) raises the score to ``context_score``.
        window: characters before the value searched for context.
        after: characters after the value searched for context.
        context_score: the score of a match with context.
    """

    def __init__(
        self,
        entity: str,
        rules: Sequence[Rule],
        *,
        validator: Callable[[str], bool] | None = None,
        context: str | None = None,
        window: int = 40,
        after: int = 0,
        context_score: float = 1.0,
    ) -> None:
        self.rules = list(rules)
        self.validator = validator
        self.context_re = re.compile(context, re.IGNORECASE) if context else None
        self.window, self.after, self.context_score = window, after, context_score
        self.label = f"curate:{entity}"
        super().__init__(supported_entities=[entity], name=self.label, supported_language="en")

    def load(self) -> None:
        """Nothing to load."""

    def _has_context(self, text: str, start: int, end: int) -> bool:
        if self.context_re is None:
            return False
        before = text[max(0, start - self.window) : start]
        following = text[end : end + self.after] if self.after else ""
        return bool(self.context_re.search(before) or self.context_re.search(following))

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        """Find the values of this recognizer's entity in ``text``."""
        entity = self.supported_entities[0]
        results: list[RecognizerResult] = []
        for rule in self.rules:
            for m in rule.regex.finditer(text):
                start, end = m.span(rule.group)
                value = text[start:end]
                if start == end or (self.validator is not None and not self.validator(value)):
                    continue
                score = self.context_score if self._has_context(text, start, end) else rule.score
                if score <= 0:
                    continue
                results.append(RecognizerResult(entity, start, end, score, recognition_metadata={
                    RecognizerResult.RECOGNIZER_NAME_KEY: self.label,
                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                }))
        return results


def _r(name: str, pattern: str, score: float, group: int = 0, flags: int = 0) -> Rule:
    return Rule(name, re.compile(pattern, flags), score, group)


_TOKEN_END = r"(?![A-Za-z0-9_-])"
_TOKEN_START = r"(?<![A-Za-z0-9_-])"


def secret_recognizers() -> list[EntityRecognizer]:
    """Recognizers for credentials that show up in LLM data (see :data:`SECRET_TYPES`)."""
    return [
        RegexRecognizer("AWS_ACCESS_KEY", [
            _r("aws id", r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])", 0.95),
        ]),
        RegexRecognizer("AWS_SECRET_KEY", [_r(
            "aws secret",
            r"(?i:aws.{0,20}?secret|secret.?access.?key)[\w\"' ]{0,20}?[\"']?\s*[:=>]+\s*[\"']?"
            r"(?<![A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
            0.9, 1)]),
        RegexRecognizer("GITHUB_TOKEN", [
            _r("github classic", _TOKEN_START + r"gh[pousr]_[A-Za-z0-9]{36,255}" + _TOKEN_END, 0.95),
            _r("github fine-grained", _TOKEN_START + r"github_pat_[A-Za-z0-9_]{22,255}" + _TOKEN_END, 0.95),
        ]),
        RegexRecognizer("SLACK_TOKEN", [
            _r("slack", _TOKEN_START + r"xox[bpars]-[A-Za-z0-9-]{10,250}" + _TOKEN_END, 0.95),
        ]),
        RegexRecognizer("SLACK_WEBHOOK", [_r(
            "slack webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{10,}", 0.95)]),
        RegexRecognizer("OPENAI_API_KEY", [_r(
            "sk key", _TOKEN_START + r"sk-(?:proj-|svcacct-|admin-|ant-)?(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,200}"
            + _TOKEN_END, 0.9)]),
        RegexRecognizer("JWT", [_r(
            "jwt", _TOKEN_START + r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}" + _TOKEN_END, 0.95)],
            validator=_jwt_valid),
        RegexRecognizer("PRIVATE_KEY", [_r(
            "pem",
            r"-----BEGIN[ A-Z0-9]*PRIVATE KEY-----(?:[\s\S]*?-----END[ A-Z0-9]*PRIVATE KEY-----|[A-Za-z0-9+/=\s]*)",
            1.0)]),
        RegexRecognizer("BEARER_TOKEN", [
            _r("authorization",
               r"(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?i:bearer)\s+([A-Za-z0-9._~+/=-]{8,})", 0.95, 1),
            _r("bearer", r"(?i:\bbearer)\s+([A-Za-z0-9._~+/-]{20,}=*)", 0.8, 1),
        ]),
        RegexRecognizer("URL_PASSWORD", [_r(
            "url credentials", r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/@]+:([^\s:/@]+)@[^\s/@]+", 0.95, 1)]),
    ]


_CARD_CONTEXT: Final = r"\b(?:card|cc|credit|debit|visa|master\s?card|amex|discover|jcb|maestro|payment|pay)\b"
_PHONE_CONTEXT: Final = (
    r"\b(?:phone|tel|telephone|mobile|cell|cellphone|call|called|calling|fax|office|desk|sms|text|whatsapp|"
    r"contact|reach|dial|ring|answering|messages?|registered|number|home|work)\b"
)
_STREET_TYPES: Final = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl|Square|Sq|Terrace|"
    r"Parkway|Pkwy|Circle|Highway|Hwy|Trail|Crescent|Close|Alley|Plaza|Row|Walk|Gardens|Strasse|Straße|Rue|Rua|Via|"
    r"Calle|Avenida|Ulica|ul"
)
_CAP_WORD: Final = r"(?:[A-ZÀ-ÖØ-Þ][\w.'’-]*|\d{1,3}(?:st|nd|rd|th))"
_PARTICLES: Final = r"(?:de|del|della|da|do|dos|das|la|le|les|du|des|di|van|von|der|den|y)"
_LATIN_TYPES: Final = r"(?:Rue|Rua|Via|Viale|Calle|Avenida|Piazza|Plaza|Praça|Ulica|ul\.|Chemin|Allée|Boulevard|Bd)"
_UNIT: Final = r"(?:,?[ \t]*(?:Apt|Apartment|Suite|Unit|Flat)\.?[ \t]*#?\d{1,5}[A-Za-z]?)?"
# A street address needs a street-type word: digits alone ("020 7946 0958") are never an address.
_STREET: Final = (
    # 221B Baker Street, 350 5th Ave NW, 10 Downing St., 12 rue de la Paix
    rf"\b\d{{1,6}}[A-Za-z]?(?:-\d{{1,6}})?,?[ \t]+(?:{_CAP_WORD}[ \t]+){{1,4}}?(?:{_STREET_TYPES})\b\.?"
    rf"(?:[ \t]+(?:N|S|E|W|NE|NW|SE|SW)\b)?{_UNIT}"
    rf"|\b\d{{1,6}},?[ \t]+(?i:{_LATIN_TYPES})[ \t]+(?:(?i:{_PARTICLES})[ \t]+){{0,3}}[^\W\d_][\w'’-]*"
    rf"(?:[ \t]+{_CAP_WORD}){{0,3}}{_UNIT}"
    # Via Roma 131, Rua Diadema 1903, Calle Mayor 5
    rf"|\b{_LATIN_TYPES}(?:[ \t]+(?:{_PARTICLES}|{_CAP_WORD})){{1,4}}[ \t]+\d{{1,5}}[a-z]?\b{_UNIT}"
    # Friedhofstrasse 33, Rooseveltlaan 110, Puruntie 82, Hlíðarvegur 97
    r"|\b[A-ZÀ-ÖØ-Þ][^\W\d_]*(?:straße|strasse|str\.|weg|gasse|platz|allee|damm|laan|straat|gracht|gatan|vägen|"
    rf"gade|vej|tie|katu|vegur|utca)[ \t]+\d{{1,5}}[a-z]?\b{_UNIT}"
)
# Written the way people write phone numbers: +country code, a (0) or (area code), a leading trunk 0 with groups,
# or the US 3-3-4 shape. Reported without context words.
_PHONE_WRITTEN: Final = (
    r"(?<![\w+/.-])(?:\+\d{1,3}[ .-]?(?:\(0\)[ ]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]\d{2,8}){1,5}"
    r"|\(0?\d{2,5}\)[ .-]?\d{2,5}(?:[ .-]\d{2,5}){1,3}|0\d{1,4}(?:[ .-]\d{2,8}){1,4}"
    r"|(?:1[ .-])?\d{3}[.-]\d{3}[.-]\d{4})(?![\w/]|[.-]\d)"
)
_PHONE_SHAPE: Final = (
    r"(?<![\w+/.-])(?:\+\d{1,3}[\s.-]?)?(?:\(0\)\s?)?(?:\(\d{1,4}\)\s?[\s.-]?)?\d{1,10}(?:[\s.-]\d{1,8}){0,4}"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w/])"
)


def number_recognizers() -> list[EntityRecognizer]:
    """curate's checksum- and context-based recognizers for CREDIT_CARD, IBAN_CODE and PHONE_NUMBER."""
    return [
        RegexRecognizer(
            "CREDIT_CARD",
            [
                _r("card 13-19", r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", 0.6),
                _r("card 12", r"(?<![\d-])\d(?:[ -]?\d){11}(?![\d-])", 0.0),
            ],
            validator=_card_valid, context=_CARD_CONTEXT, window=40,
        ),
        RegexRecognizer(
            "LOCATION",
            [
                _r("street address", _STREET, 0.9),
                _r("military address", r"\b(?:(?:PSC|Unit)[ \t]+\d{3,5},?[ \t]+Box[ \t]+\d{3,5}|"
                   r"(?:USNS|USNV|USS|USCGC)[ \t]+[^\W\d_]+)(?:\s*[FDA]PO[ \t]+A[AEP][ \t]+\d{5})?", 0.6),
            ],
        ),
        RegexRecognizer(
            "IBAN_CODE",
            [_r("iban", r"\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]{4}){2,7}(?:[ -]?[A-Za-z0-9]{1,4})?\b", 0.9)],
            validator=iban_valid,
        ),
        RegexRecognizer(
            "PHONE_NUMBER",
            [_r("phone shape", _PHONE_SHAPE, 0.0)],
            validator=_phone_valid, context=_PHONE_CONTEXT, window=30, after=12, context_score=0.9,
        ),
        RegexRecognizer(
            "PHONE_NUMBER", [_r("phone as written", _PHONE_WRITTEN, 0.7)], validator=_phone_possible,
            context=_PHONE_CONTEXT, window=30, after=12, context_score=0.9,
        ),
    ]
