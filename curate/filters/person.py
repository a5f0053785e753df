"""PERSON recall beyond the spaCy NER model, from context that generalises (never a list of names).

Five rules add PERSON spans on top of the NER model's:

1. **Titles and cues**: ``Mr.``/``Dr.``/``Prof.`` ... followed by capitalised tokens; ``my name is``, ``name:``,
   ``named``, ``called``, ``signed``, ``regards,`` ... followed by one to three name-shaped tokens (lower case
   allowed after an explicit "name is" cue).
2. **Propagation**: once a token is part of a PERSON span, its other capitalised occurrences in the same text
   are PERSON too ("directed by Ana Holm and starring Holm").
3. **Coordination**: in a list ``A, B, C and D`` of single capitalised tokens, if one item is a PERSON, all are.
4. **Dialogue**: two or more lines led by ``Name:`` and a sentence: the labels are speakers.
5. **Clean-up**: NER PERSON spans with digits, ``@``, line breaks or address words, or made only of short
   all-capital tokens (acronyms such as "SAML SSO"), are dropped.
"""

from __future__ import annotations

import re
from typing import Any, Final

from presidio_analyzer import EntityRecognizer, RecognizerResult

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
    rf"(?:\b(?:I am|I'm|I’m|called|this is|meet|ask for|speak to|speak with|talk to|dear|hi|hello)|"
    rf"\b(?:User|Customer|Client|Caller):)[ \t]+({_CAP_NAME})",
    re.MULTILINE,
)
_STOP: Final = frozenset(
    "a an the and or but i is was are am be from at in on of to for with by but everyone calls me my your his her "
    "this that it he she they we you not no yes just so very also here there please thanks thank".split()
)
_BAD_IN_PERSON: Final = re.compile(r"[\d@#/\\\n]|\b(?:Apt|Suite|Box|Street|St|Road|Ave|Avenue|Unit|PSC|FPO|APO)\b")
_ACRONYMS: Final = re.compile(r"[A-Z]{2,5}(?:[ \t]+[A-Z]{2,5})*")  # "SAML SSO", "IBM": not a person
_ROLES: Final = frozenset(
    "user bot assistant system human ai agent customer client caller q a note name date phone email address".split()
)
_DIALOGUE_RE: Final = re.compile(rf"^[ \t]*({_CAP})[ \t]*:[ \t]*[\"“]?(?=\S+[ \t]+\S+[ \t]+\S+)", re.MULTILINE)
_LIST_RE: Final = re.compile(rf"(?:{_CAP}\s*,\s*)+{_CAP},?\s+(?:and|or|&)\s+{_CAP}")


def _trim(name: str, *, allow_lower: bool) -> tuple[int, int] | None:
    """Keep the leading name-shaped tokens of ``name``; returns the kept (start, end) or None."""
    end = 0
    for m in re.finditer(r"\S+", name):
        tok = m.group()
        if tok.lower().strip(".'’") in _STOP:
            break
        if not allow_lower and not (tok[0].isupper()):
            break
        end = m.end()
    return (0, end) if end else None


class PersonContextRecognizer(EntityRecognizer):  # type: ignore[misc]
    """Adds PERSON spans found from context cues, titles, propagation and coordination.

    It reads the NER model's PERSON entities from Presidio's ``nlp_artifacts``, so it runs inside an
    ``AnalyzerEngine`` whose NLP engine is spaCy.
    """

    def __init__(self) -> None:
        self.label = "curate:PERSON"
        super().__init__(supported_entities=["PERSON"], name=self.label, supported_language="en")

    def load(self) -> None:
        """Nothing to load."""

    def _result(self, start: int, end: int, score: float) -> RecognizerResult:
        return RecognizerResult("PERSON", start, end, score, recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: self.label,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
        })

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        """Find PERSON spans in ``text`` (see the module docstring for the rules)."""
        spans: list[tuple[int, int, float]] = []
        ner = [(e.start_char, e.end_char) for e in getattr(nlp_artifacts, "entities", []) or [] if e.label_ == "PERSON"]
        ner = [(s, e) for s, e in ner if not _BAD_IN_PERSON.search(text[s:e]) and text[s].isupper()
               and not _ACRONYMS.fullmatch(text[s:e])]
        spans += [(s, e, 0.85) for s, e in ner]
        for m in _TITLE_RE.finditer(text):
            spans.append((m.start(1), m.end(1), 0.9))
        for regex, allow_lower, score in ((_STRONG_CUE_RE, True, 0.9), (_WEAK_CUE_RE, False, 0.6)):
            for m in regex.finditer(text):
                kept = _trim(m.group(1), allow_lower=allow_lower)
                if kept is None:
                    continue
                s, e = m.start(1) + kept[0], m.start(1) + kept[1]
                spans.append((s, e, score))
        # Dialogue: two or more lines led by a single capitalised speaker label and a sentence.
        labels = [m for m in _DIALOGUE_RE.finditer(text) if m.group(1).lower() not in _ROLES]
        if len(labels) >= 2:
            spans += [(m.start(1), m.end(1), 0.7) for m in labels]
        # Coordination: a list where one item is already a PERSON.
        person_tokens = {t for s, e, _ in spans for t in re.findall(_CAP, text[s:e]) if len(t) >= 3}
        for m in _LIST_RE.finditer(text):
            items = [(i.start(), i.end()) for i in re.finditer(_CAP, m.group())]
            if any(m.group()[a:b] in person_tokens for a, b in items):
                spans += [(m.start() + a, m.start() + b, 0.7) for a, b in items]
        # Propagation: other occurrences of a token of a PERSON span.
        person_tokens = {t for s, e, _ in spans for t in re.findall(_CAP, text[s:e]) if len(t) >= 3}
        for tok in person_tokens:
            for m in re.finditer(rf"(?<![^\W_]){re.escape(tok)}(?![^\W_])", text):
                spans.append((m.start(), m.end(), 0.7))
        return [self._result(s, e, sc) for s, e, sc in spans]
