"""Near-copies for the dedup benchmark, the evaluation splits built from them, and their pair scores.

Each original text gets one variant of each kind in :data:`KINDS`: ``case`` (upper, lower or ~30% of the
characters swapped), ``whitespace`` (spaces widened or replaced by tabs / newlines, padding added),
``punctuation`` (all removed, or some removed and 1-3 marks inserted), ``typo`` (1-3 character edits) and
``small_edit`` (one word inserted, deleted or replaced by a filler word). A *group* is an original and its
variants; unrelated rows are singleton groups. :func:`score_clusters` scores predicted clusters against groups.

>>> rng = np.random.default_rng(0)
>>> variant("Hello there, world.", "case", rng).lower()
'hello there, world.'
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

KINDS: tuple[str, ...] = ("case", "whitespace", "punctuation", "typo", "small_edit")
FILLER = ["very", "also", "really", "simply", "quickly", "new", "main", "good", "often", "just", "the", "some"]
Indices = npt.NDArray[np.intp]
VariantPair = tuple[int, int, str]
"""``(variant position, original position, kind)``."""


def _case(text: str, rng: np.random.Generator) -> str:
    """All upper case, all lower case, or about 30% of the characters swapped."""
    mode = int(rng.integers(3))
    if mode == 0:
        return text.upper()
    if mode == 1:
        return text.lower()
    return "".join(c.swapcase() if rng.random() < 0.3 else c for c in text)


def _whitespace(text: str, rng: np.random.Generator) -> str:
    """Spaces replaced by wider or other whitespace; half the time padded at both ends."""
    parts = text.split(" ")
    choices = np.array([" ", "  ", "\t", "\n", " \n "])
    seps = rng.choice(choices, size=max(len(parts) - 1, 0), p=[.5, .2, .1, .1, .1])
    out = parts[0] + "".join(str(s) + p for s, p in zip(seps, parts[1:], strict=True))
    return "  " + out + "\n " if rng.random() < 0.5 else out


def _punctuation(text: str, rng: np.random.Generator) -> str:
    """All punctuation removed, or about half of it removed and 1-3 marks inserted."""
    if rng.random() < 0.5:
        return "".join(c for c in text if c not in string.punctuation)
    chars = [c for c in text if not (c in string.punctuation and rng.random() < 0.5)]
    for _ in range(int(rng.integers(1, 4))):
        chars.insert(int(rng.integers(len(chars) + 1)), str(rng.choice(list(",.;!?-"))))
    return "".join(chars)


def _typo(text: str, rng: np.random.Generator) -> str:
    """1-3 character edits: substitute, insert, delete or swap with the next character."""
    chars = list(text)
    for _ in range(int(rng.integers(1, 4))):
        pos = int(rng.integers(max(len(chars), 1)))
        op = int(rng.integers(4))
        letter = str(rng.choice(list(string.ascii_lowercase)))
        if op == 0 and chars:
            chars[pos] = letter
        elif op == 1:
            chars.insert(pos, letter)
        elif op == 2 and len(chars) > 1:
            del chars[pos]
        elif pos + 1 < len(chars):
            chars[pos], chars[pos + 1] = chars[pos + 1], chars[pos]
    return "".join(chars)


def _small_edit(text: str, rng: np.random.Generator) -> str:
    """One word inserted, deleted or replaced."""
    words = text.split(" ")
    pos = int(rng.integers(len(words)))
    op = int(rng.integers(3))
    if op == 0:
        words.insert(pos, str(rng.choice(FILLER)))
    elif op == 1 and len(words) > 1:
        del words[pos]
    else:
        words[pos] = str(rng.choice(FILLER))
    return " ".join(words)


VARIANTS: dict[str, Callable[[str, np.random.Generator], str]] = {
    "case": _case, "whitespace": _whitespace, "punctuation": _punctuation, "typo": _typo, "small_edit": _small_edit,
}


def variant(text: str, kind: str, rng: np.random.Generator) -> str:
    """One near-copy of ``text`` of the given kind (a key of ``VARIANTS``), drawn with ``rng``."""
    return VARIANTS[kind](text, rng)


def make_split(rows: list[str], originals: Indices, unrelated: Indices,
               rng: np.random.Generator) -> tuple[list[str], Indices, list[VariantPair]]:
    """Originals (indices into ``rows``) with one variant of each kind, plus unrelated rows, shuffled.

    Returns:
        ``(texts, group, variant_pairs)``: the texts, a group id per text (shape ``(n,)``; an unrelated row gets
        a unique negative id) and ``(variant position, original position, kind)`` triples.
    """
    texts: list[str] = []
    group: list[int] = []
    pairs: list[VariantPair] = []
    for g, o in enumerate(originals):
        texts.append(rows[o])
        group.append(g)
        orig_pos = len(texts) - 1
        for kind in KINDS:
            texts.append(variant(rows[o], kind, rng))
            group.append(g)
            pairs.append((len(texts) - 1, orig_pos, kind))
    for u in unrelated:
        texts.append(rows[u])
        group.append(-1 - len(texts))
    order = rng.permutation(len(texts))  # shuffle, so "first" is not always the original
    where = np.empty_like(order)
    where[order] = np.arange(len(order))
    shuffled = [texts[i] for i in order]
    grp: Indices = np.asarray(group, dtype=np.intp)[order]
    return shuffled, grp, [(int(where[a]), int(where[b]), k) for a, b, k in pairs]


def score_clusters(ids: Indices, group: Indices, pairs: list[VariantPair]) -> dict[str, Any]:
    """Pair recall over (variant, original) pairs, pair precision over all co-clustered pairs.

    Args:
        ids: shape ``(n,)`` predicted cluster ids.
        group: shape ``(n,)`` true group ids.
        pairs: ``(variant position, original position, kind)`` triples, as from :func:`make_split`.

    Returns:
        ``recall``, ``precision`` (1.0 when nothing is clustered), ``clustered_pairs``, ``wrong_pairs`` and
        ``recall_by_kind`` (kinds with no pairs are left out).

    >>> score_clusters(np.array([0, 0, 0, 3]), np.array([0, 0, 1, 1]), [(1, 0, "case"), (3, 2, "typo")])["recall"]
    0.5
    """
    ids, group = np.asarray(ids), np.asarray(group)
    hit = {k: [ids[a] == ids[b] for a, b, kk in pairs if kk == k] for k in KINDS}
    recall = float(np.mean([ids[a] == ids[b] for a, b, _ in pairs])) if pairs else 1.0
    together = total = 0
    for c in np.unique(ids):
        members = np.flatnonzero(ids == c)
        if len(members) < 2:
            continue
        _, counts = np.unique(group[members], return_counts=True)
        total += len(members) * (len(members) - 1) // 2
        together += int((counts * (counts - 1) // 2).sum())
    precision = together / total if total else 1.0
    return {"recall": round(recall, 4), "precision": round(precision, 4), "clustered_pairs": total,
            "wrong_pairs": total - together,
            "recall_by_kind": {k: round(float(np.mean(v)), 4) for k, v in hit.items() if v}}
