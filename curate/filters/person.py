"""PERSON spans: the spaCy NER model's, cleaned, plus context that generalises (never a list of names).

1. **NER**: the model's PERSON spans, cleaned by :func:`curate.filters.ner.clean_span` (edges cut, handles, URLs,
   digits, acronyms and one-token spans the tagger does not call a proper noun dropped).
2. **Titles and cues**: ``Mr.``/``Dr.``/``Prof.`` ... followed by capitalised tokens; ``my name is``, ``name:``,
   ``named``, ``signed``, ``regards,`` ... followed by one to three name-shaped tokens (lower case allowed after
   an explicit cue, but not words the tagger reads as adverbs, verbs or function words: "call me back").
   Weak cues (``I'm``, ``hi``, ``dear``, ``meet`` ...) need tokens the tagger reads as proper nouns.
3. **Propagation**: once a token is part of a PERSON span, its other capitalised occurrences in the same text
   are PERSON too ("directed by Ana Holm and starring Holm").
4. **Coordination**: in a list ``A, B, C and D`` of single proper nouns, if one item is a PERSON, all are.
5. **Dialogue**: lines led by ``Name:`` and a sentence, where a speaker comes back (``Ann: ... Bob: ... Ann:``):
   the labels are speakers. Lists of headings ("Across: ... Down: ...") have no returning speaker.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Final

from presidio_analyzer import EntityRecognizer, RecognizerResult

from curate.filters.ner import PERSON_LABELS, Tok, doc_tokens, ner_spans

_W: Final = r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*"  # a word of letters, inner apostrophes or hyphens
_CAP: Final = r"(?:[A-ZÀ-ÖØ-ÞĀ-ſ][^\W\d_]*(?:['’-][^\W\d_]+)*)"
_INITIAL: Final = r"(?:[A-Z]\.?(?![^\W\d_]))"
_CAP_NAME: Final = rf"{_CAP}(?:[ \t]+(?:{_CAP}|{_INITIAL})){{0,3}}"
_ANY_NAME: Final = rf"{_W}(?:[ \t]+{_W}){{0,2}}"

_TITLE_RE: Final = re.compile(
    rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Rev|Fr|Capt|Sgt|Lt|Col|Gen|Hon|Mme|Mlle|Herr|Frau)\.?[ \t]+({_CAP_NAME})"
)
_STRONG_CUE_RE: Final = re.compile(
    rf"(?i:\b(?:my|his|her|their|your|the)\s+(?:full\s+|last\s+|first\s+|sur)?name\s*(?:is|was|'s|:)|\bname\s*:|"
    rf"\bnamed|\bcalls?\s+me|\bsigned\s*,?|\bsincerely\s*,|\bregards\s*,|\bthanks\s*,|\bcheers\s*,)"
    rf"[ \t\n]*({_ANY_NAME})"
)
_WEAK_CUE_RE: Final = re.compile(
    rf"(?:\b(?:I am|I'm|I’m|this is|meet|ask for|speak to|speak with|talk to|dear|hi|hello)|"
    rf"\b(?:User|Customer|Client|Caller):)[ \t]+({_CAP_NAME})",
    re.MULTILINE,
)
_STOP: Final = frozenset(
    "a an the and or but i is was are am be from at in on of to for with by but everyone calls me my your his her "
    "this that it he she they we you not no yes just so very also here there please thanks thank".split()
)
# Words a greeting or cue is often followed by that are not names ("Hi Team", "Dear Sir", "Hello World").
_ADDRESSEES: Final = frozenset(
    "all everyone everybody team folks guys friend friends sir madam there world customer customers user users "
    "support sales admin guest".split()
)
# Tags of lower-case words that end a name after a cue ("call me back", "named after").
_NOT_NAME_TAGS: Final = frozenset({
    "RB", "RBR", "RBS", "RP", "IN", "DT", "CC", "PRP", "PRP$", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "MD", "TO",
    "WP", "WDT", "WRB", "UH", "CD", "EX",
})
_ROLES: Final = frozenset(
    "user bot assistant system human ai agent customer client caller q a note name date phone email address".split()
)
_DIALOGUE_RE: Final = re.compile(rf"^[ \t]*({_CAP})[ \t]*:[ \t]*[\"“]?(?=\S+[ \t]+\S+[ \t]+\S+)", re.MULTILINE)
_LIST_RE: Final = re.compile(rf"(?:{_CAP}\s*,\s*)+{_CAP},?\s+(?:and|or|&)\s+{_CAP}")

#: Words that are never a name on their own (stop words, addressees such as "team", roles such as "agent").
NOT_NAMES: Final = _STOP | _ADDRESSEES | _ROLES
#: A capitalised word (names' tokens: "O'Connor", "Zoë").
CAPITALISED: Final = _CAP


def _tag_at(tags: dict[int, str], pos: int) -> str:
    return tags.get(pos, "")


def _trim(name: str, offset: int, tags: dict[int, str], *, allow_lower: bool) -> tuple[int, int] | None:
    """Keep the leading name-shaped tokens of ``name`` (which starts at ``offset``); returns (start, end) or None."""
    end = 0
    for m in re.finditer(r"\S+", name):
        tok = m.group()
        word = tok.lower().strip(".'’")
        if word in _STOP or word in _ADDRESSEES:
            break
        tag = _tag_at(tags, offset + m.start())
        if not tok[0].isupper() and (not allow_lower or tag in _NOT_NAME_TAGS):
            break
        if not allow_lower and tag and tag not in ("NNP", "NNPS"):
            break
        end = m.end()
    return (0, end) if end else None


def _cue_spans(text: str, tags: dict[int, str]) -> list[tuple[int, int, float]]:
    spans = [(m.start(1), m.end(1), 0.9) for m in _TITLE_RE.finditer(text)]
    for regex, allow_lower, score in ((_STRONG_CUE_RE, True, 0.9), (_WEAK_CUE_RE, False, 0.6)):
        for m in regex.finditer(text):
            kept = _trim(m.group(1), m.start(1), tags, allow_lower=allow_lower)
            if kept is not None:
                spans.append((m.start(1) + kept[0], m.start(1) + kept[1], score))
    return spans


def _dialogue_spans(text: str, tags: dict[int, str]) -> list[tuple[int, int, float]]:
    labels = [m for m in _DIALOGUE_RE.finditer(text) if m.group(1).lower() not in _ROLES
              and _tag_at(tags, m.start(1)) in ("", "NNP", "NNPS")]
    counts = Counter(m.group(1) for m in labels)
    if len(counts) < 2 or max(counts.values()) < 2:
        return []
    return [(m.start(1), m.end(1), 0.7) for m in labels]


def _spread(text: str, spans: list[tuple[int, int, float]], tags: dict[int, str]) -> list[tuple[int, int, float]]:
    """Coordination and propagation from the spans found so far."""
    out = list(spans)
    person_tokens = {t for s, e, _ in out for t in re.findall(_CAP, text[s:e]) if len(t) >= 3}
    for m in _LIST_RE.finditer(text):
        items = [(m.start() + i.start(), m.start() + i.end()) for i in re.finditer(_CAP, m.group())]
        if any(text[a:b] in person_tokens for a, b in items) and all(
                _tag_at(tags, a) in ("", "NNP", "NNPS") for a, _ in items):
            out += [(a, b, 0.7) for a, b in items]
    person_tokens = {t for s, e, _ in out for t in re.findall(_CAP, text[s:e]) if len(t) >= 3}
    for tok in person_tokens:
        for m in re.finditer(rf"(?<![^\W_]){re.escape(tok)}(?![^\W_])", text):
            out.append((m.start(), m.end(), 0.7))
    return out


def person_spans(text: str, doc: Any, words: frozenset[str] = frozenset()) -> list[tuple[int, int, float]]:
    """PERSON ``(start, end, score)`` spans of ``text`` from its spaCy ``doc`` (see the module docstring).

    Args:
        text: the analysed text.
        doc: its spaCy ``Doc`` (tagged, with entities); None: context rules only.
        words: dictionary lemmas (:func:`curate.filters.ner.dictionary_words`).
    """
    tokens: list[Tok] = doc_tokens(doc, words) if doc is not None else []
    tags = {t.start: t.tag for t in tokens}
    spans = ([(s, e, 0.85) for s, e in ner_spans(text, doc, PERSON_LABELS, person=True, words=words)]
             if doc is not None else [])
    spans += _cue_spans(text, tags)
    spans += _dialogue_spans(text, tags)
    return _spread(text, spans, tags)


class PersonContextRecognizer(EntityRecognizer):  # type: ignore[misc]
    """PERSON spans from the NER model (cleaned), context cues, titles, dialogue, propagation and coordination.

    It reads the spaCy ``Doc`` from Presidio's ``nlp_artifacts``, so it runs inside an ``AnalyzerEngine`` whose
    NLP engine is spaCy.
    """

    def __init__(self, words: frozenset[str] = frozenset()) -> None:
        self.label = "curate:PERSON"
        self.words = words
        super().__init__(supported_entities=["PERSON"], name=self.label, supported_language="en")

    def load(self) -> None:
        """Nothing to load."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        """Find PERSON spans in ``text`` (see the module docstring for the rules)."""
        doc = getattr(nlp_artifacts, "tokens", None)
        return [RecognizerResult("PERSON", s, e, sc, recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: self.label,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
        }) for s, e, sc in person_spans(text, doc, self.words)]
