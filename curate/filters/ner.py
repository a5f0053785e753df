"""Cleaning of the spaCy NER model's PERSON and LOCATION spans: what stock Presidio reports as they come.

The model's spans are cut at the edges and dropped when they cannot be a name or a place, from the shape of the
text and the model's own part-of-speech tags (no list of names or words):

- **Edges**: tokens at either end that are handles (``@ann``), hashtags, URLs, numbers, punctuation, articles,
  possessive ``'s`` or lower-case function words are cut off: ``@jimmiebjr nope`` -> nothing,
  ``Libra http://t.co/x`` -> ``Libra``, ``the United States`` -> ``United States``. A span ends at a line break.
- **Shape**: a span that still holds a digit, ``@``, ``#``, a slash or a URL is dropped.
- **Known words**: a one-token capitalised span that the tagger does not tag as a proper noun (``NNP``/``NNPS``)
  and that is a known English word (WordNet lemma or a word vector of the model) is dropped: "Bananas cost more"
  (``NNS``), "Down" (``RB``), "Webhook endpoints" (``JJ``); so is a one-token span that the same text also writes
  in lower case ("Blockchain ... a blockchain").
- **Acronyms** (PERSON only): in mixed-case text, spans of two or more short all-capital tokens ("SAML SSO").

Choices were made on presidio_synth_pii and WNUT-17 train; WNUT-17 dev was left untouched (see
``benchmarks/results/pii.json``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

#: spaCy labels read as PERSON and as LOCATION (Presidio's mapping: GPE, LOC and FAC are locations).
PERSON_LABELS: Final = frozenset({"PERSON", "PER"})
LOCATION_LABELS: Final = frozenset({"GPE", "LOC", "FAC", "LOCATION"})
_PROPER: Final = frozenset({"NNP", "NNPS"})
_PUNCT_TAGS: Final = frozenset({"POS", ",", ".", ":", "HYPH", "NFP", "-LRB-", "-RRB-", "``", "''", "SYM", "_SP", "$"})
_FUNCTION_TAGS: Final = frozenset({
    "DT", "IN", "CC", "PRP", "PRP$", "UH", "RB", "RBR", "RBS", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "MD", "TO",
    "WP", "WP$", "WDT", "WRB", "CD", "LS", "ADD", "XX", "EX", "RP",
})
_BAD: Final = re.compile(r"[\d@#/\\]|https?:|www\.|\.(?:com|org|net|co)\b")
_ARTICLES: Final = frozenset({"the", "a", "an"})
_ACRONYMS: Final = re.compile(r"[A-Z]{2,4}(?:[ \t]+[A-Z]{2,4})+")


def _LOWER_ELSEWHERE(text: str, value: str) -> bool:  # noqa: N802 - reads as a predicate on the text
    low = value.lower()
    return low != value and re.search(rf"(?<![^\W_]){re.escape(low)}(?![^\W_])", text) is not None


class Tok(NamedTuple):
    """One token: character offsets, fine-grained part-of-speech tag (``""`` when untagged) and whether it is a
    known English word (its lemma is in spaCy's lemmatizer index, from WordNet, or its lower-case form has a word
    vector in the model)."""

    start: int
    end: int
    tag: str
    word: bool = False


def dictionary_words(nlp: Any) -> frozenset[str]:
    """Lemmas of English dictionary words (spaCy's lemmatizer index, from WordNet) of a loaded pipeline; empty
    when it has no such table."""
    try:
        index = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
    except (KeyError, ValueError, AttributeError):
        return frozenset()
    return frozenset(w for words in index.values() for w in words)


def doc_tokens(doc: Any, words: frozenset[str] = frozenset()) -> list[Tok]:
    """The tokens of a spaCy ``Doc`` as :class:`Tok` (whitespace tokens left out); ``words``: dictionary lemmas."""
    return [Tok(t.idx, t.idx + len(t.text), t.tag_, (t.lemma_ or t.text).lower() in words
                or t.vocab[t.lower_].has_vector) for t in doc if not t.is_space]


def _edge_junk(text: str, tok: Tok) -> bool:
    word = text[tok.start : tok.end]
    if _BAD.search(word) or tok.tag in _PUNCT_TAGS or not any(c.isalpha() for c in word):
        return True
    if word.lower() in _ARTICLES or word in ("'s", "’s"):
        return True
    return tok.tag in _FUNCTION_TAGS and not word[:1].isupper()


def clean_span(text: str, tokens: Sequence[Tok], start: int, end: int, *, person: bool) -> tuple[int, int] | None:
    """The cleaned ``(start, end)`` of an NER span, or None when it cannot be a name (or a place).

    Args:
        text: the analysed text.
        tokens: its tokens (:func:`doc_tokens`), in order.
        start: the NER span's first character.
        end: the character after its last.
        person: apply the PERSON-only rules (acronyms).

    >>> text = "ask @jimmiebjr nope"
    >>> toks = [Tok(0, 3, "VB"), Tok(4, 14, "NNP"), Tok(15, 19, "UH")]
    >>> clean_span(text, toks, 4, 19, person=True) is None
    True
    """
    inside = [t for t in tokens if t.start >= start and t.end <= end]
    while inside and _edge_junk(text, inside[0]):
        inside.pop(0)
    while inside and _edge_junk(text, inside[-1]):
        inside.pop()
    if not inside:
        return None
    s, e = inside[0].start, inside[-1].end
    if "\n" in text[s:e]:  # a name or place ends at a line break
        inside = [t for t in inside if t.end <= s + text[s:e].index("\n")]
        return clean_span(text, inside, s, inside[-1].end, person=person) if inside else None
    value = text[s:e]
    if _BAD.search(value):
        return None
    if len(inside) == 1:
        tok = inside[0]
        # "Bananas cost more": a capitalised known word the tagger reads as a common noun (the tagger is not asked
        # about lower-case or all-capital text, where case tells it nothing).
        if value[:1].isupper() and not value.isupper() and tok.tag and tok.tag not in _PROPER and tok.word:
            return None
        if _LOWER_ELSEWHERE(text, value):  # "Blockchain ... a blockchain": the writer uses it as a common word
            return None
    if person and len(inside) > 1 and _ACRONYMS.fullmatch(value) and _mostly_lower(text):
        return None
    return s, e


def _mostly_lower(text: str) -> bool:
    return sum(c.islower() for c in text) > sum(c.isupper() for c in text)


def ner_spans(text: str, doc: Any, labels: Iterable[str], *, person: bool,
              words: frozenset[str] = frozenset()) -> list[tuple[int, int]]:
    """The cleaned spans of ``doc.ents`` whose label is in ``labels`` (see :func:`clean_span`)."""
    wanted = frozenset(labels)
    tokens = doc_tokens(doc, words)
    out = []
    for ent in getattr(doc, "ents", ()):
        if ent.label_ in wanted:
            kept = clean_span(text, tokens, ent.start_char, ent.end_char, person=person)
            if kept is not None:
                out.append(kept)
    return out


def _recognizer_base() -> Any:
    from presidio_analyzer import EntityRecognizer

    return EntityRecognizer


class NerLocationRecognizer(_recognizer_base()):  # type: ignore[misc]
    """LOCATION spans of the spaCy NER model (GPE, LOC, FAC), cleaned by :func:`clean_span`.

    Reads the spaCy ``Doc`` from Presidio's ``nlp_artifacts``, so it runs inside an ``AnalyzerEngine`` whose NLP
    engine is spaCy. Replaces Presidio's ``SpacyRecognizer`` for LOCATION.
    """

    def __init__(self, words: frozenset[str] = frozenset(), score: float = 0.85) -> None:
        self.label = "curate:NER_LOCATION"
        self.words, self.score = words, score
        super().__init__(supported_entities=["LOCATION"], name=self.label, supported_language="en")

    def load(self) -> None:
        """Nothing to load."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
        """The cleaned LOCATION spans of the NER model in ``text``."""
        from presidio_analyzer import RecognizerResult

        doc = getattr(nlp_artifacts, "tokens", None)
        if doc is None:
            return []
        return [RecognizerResult("LOCATION", s, e, self.score, recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: self.label, RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
        }) for s, e in ner_spans(text, doc, LOCATION_LABELS, person=False, words=self.words)]
