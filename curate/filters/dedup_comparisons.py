"""Pair-aware dedup: for ``preference`` and ``candidates`` records a duplicate is the same comparison.

Two such records are duplicates when their prompts are (near-)copies and their responses are (near-)copies as a
multiset: ``chosen``/``rejected`` swapped, or a candidate list reordered, is still the same comparison. Sharing
the prompt, or one response, is not: one prompt with a reference answer compared with many models' answers is the
usual shape of preference data, and every one of those pairs asks a different question.

How: every prompt and response text is matched with the others (equal after
:func:`~curate.filters.dedup_pairs.normalise_for_dedup`, plus MinHash or embedding-cosine near-copies). Two records
are the same comparison when their prompts match and their responses match one to one; each record joins the
cluster of the first earlier record it matches this way, so every removed record is a near-copy of the record its
cluster keeps, field by field (near-copies do not chain: A ~ B ~ C does not make A and C one cluster unless C
matches A). ``"minhash"`` and ``"semantic"`` also catch exact copies (an empty response equals another one).

>>> from curate.ingest.records import Record
>>> def pref(p, c, r): return Record(id=p + c + r, kind="preference", fields={"prompt": p, "chosen": c, "rejected": r})
>>> result = dedup_comparisons([pref("Q", "ref", "a"), pref("Q", "ref", "b"), pref("Q", "b", "ref")], method="exact")
>>> result.cluster_id.tolist(), result.keep.tolist()
([0, 1, 1], [True, True, False])
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.filters.dedup import DedupResult, KeepPolicy, Method, TextEmbedder, keep_mask
from curate.filters.dedup_minhash import MinHashParams, minhash_pairs
from curate.filters.dedup_pairs import Labels, Pairs, check_threshold, clusters_from_pairs, normalise_for_dedup
from curate.filters.dedup_semantic import semantic_pairs, unit_embeddings
from curate.ingest.records import Record, as_text
from curate.runtime.embeddings import record_text

#: Record kinds whose duplicates are whole comparisons (prompt + the set of responses).
PAIR_KINDS: Final[frozenset[str]] = frozenset({"preference", "candidates"})

#: MinHash settings for the fields of a comparison: Jaccard >= 0.8 (text records use 0.5). Different models' answers
#: to one prompt often share half their 4-grams (AlpacaEval: 0.39-0.78 among pairs 0.5 called copies), while a
#: response with a few typos keeps about 0.9 or more (median 0.96 with 3 typos).
PAIR_MINHASH: Final = MinHashParams(threshold=0.8)
#: Embedding cosine for the fields of a comparison with the semantic method (text records default to 0.9). On 972
#: AlpacaEval pairs without a repeated comparison, MiniLM at 0.9 called 215 duplicates, at 0.97 six close paraphrases.
PAIR_COSINE: Final = 0.97

Key = tuple[int, tuple[int, ...]]
"""A blocking key: ``(prompt's text component, sorted responses' text components)``; records that are the same
comparison always share it."""


def is_pair_kind(kind: str) -> bool:
    """Whether records of ``kind`` are deduplicated as comparisons (``preference``, ``candidates``)."""
    return kind in PAIR_KINDS


def comparison_parts(record: Record) -> tuple[str, list[str]]:
    """``(prompt, responses)`` of a preference or candidates record, as plain text (messages joined).

    A preference record's responses are ``[chosen, rejected]``; a candidates record's are its ``completions``.
    """
    f = record.fields
    if record.kind == "preference":
        responses = [f.get("chosen"), f.get("rejected")]
    elif record.kind == "candidates":
        responses = list(f.get("completions") or [])
    else:
        raise InputError(f"record {record.id} is a {record.kind!r} record; comparison dedup takes "
                         f"{' and '.join(sorted(PAIR_KINDS))} records. Use dedup_records for the other kinds.")
    return as_text(f.get("prompt")), [as_text(r) for r in responses]


def dedup_texts(records: Sequence[Record]) -> list[str]:
    """The texts :func:`curate.filters.dedup_workspace.run_dedup` hashes or embeds for ``records``, distinct, in
    first-seen order: each field of a pair-kind record, :func:`record_text` of any other record."""
    out: dict[str, None] = {}
    for rec in records:
        if is_pair_kind(rec.kind):
            prompt, responses = comparison_parts(rec)
            out.update(dict.fromkeys([prompt, *responses]))
        else:
            out[record_text(rec)] = None
    return list(out)


@dataclass(frozen=True)
class TextMatches:
    """Which texts are copies of each other: ``rep`` maps a text to its normalised form's id (exact copies share
    one), ``edges`` holds the ``(a, b)``, ``a < b``, id pairs that are near-copies, ``labels`` the connected
    components of the ids (shape ``(m,)``, a superset of the edges used to block candidate records)."""

    rep: dict[str, int]
    edges: frozenset[tuple[int, int]]
    labels: Labels

    def linked(self, a: int, b: int) -> bool:
        """Whether text ids ``a`` and ``b`` are copies (equal after normalisation, or a near-copy edge)."""
        return a == b or (min(a, b), max(a, b)) in self.edges


def _digest(text: str) -> bytes:
    return hashlib.blake2b(normalise_for_dedup(text).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def text_matches(texts: Sequence[str], method: Method | Sequence[Method], *, minhash: MinHashParams | None = None,
                 embedder: TextEmbedder | None = None, semantic_threshold: float = PAIR_COSINE) -> TextMatches:
    """Exact normalised copies among ``texts``, plus MinHash near-copies (``"minhash"``; ``minhash`` defaults to
    :data:`PAIR_MINHASH`) and/or embedding cosine ``>= semantic_threshold`` (``"semantic"``) between their distinct
    normalised forms."""
    methods = (method,) if isinstance(method, str) else tuple(method)
    unknown = [m for m in methods if m not in ("exact", "minhash", "semantic")]
    if unknown:
        raise InputError(f"unknown dedup method {unknown[0]!r}; expected exact, minhash or semantic")
    by_digest: dict[bytes, int] = {}
    rep: dict[str, int] = {}
    firsts: list[str] = []
    for text in texts:
        if text not in rep:
            rep[text] = by_digest.setdefault(_digest(text), len(by_digest))
            if rep[text] == len(firsts):
                firsts.append(text)
    found: list[Pairs] = [np.empty((0, 2), dtype=np.intp)]
    if "minhash" in methods:
        found.append(minhash_pairs(firsts, minhash or PAIR_MINHASH))
    if "semantic" in methods and firsts:
        if embedder is None:
            raise InputError("semantic comparison dedup needs an embedder "
                             "(for example curate.runtime.embeddings.Embedder('minilm'))")
        check_threshold(semantic_threshold, "semantic_threshold")
        x = unit_embeddings(embedder.embed_texts(firsts), len(firsts))
        found.append(semantic_pairs(x, threshold=semantic_threshold))
    pairs = np.concatenate(found)
    edges = frozenset((int(a), int(b)) for a, b in pairs)
    return TextMatches(rep, edges, clusters_from_pairs(len(firsts), pairs))


def _same(matches: TextMatches, a: tuple[int, list[int]], b: tuple[int, list[int]]) -> bool:
    """Whether two comparisons (prompt id, response ids) are copies: linked prompts, and the responses linked
    one to one (a perfect matching of the two multisets)."""
    if len(a[1]) != len(b[1]) or not matches.linked(a[0], b[0]):
        return False
    if sorted(a[1]) == sorted(b[1]):
        return True
    from scipy.optimize import linear_sum_assignment

    cost = np.array([[0 if matches.linked(x, y) else 1 for y in b[1]] for x in a[1]])
    rows, cols = linear_sum_assignment(cost)
    return not cost[rows, cols].any()


def _comparisons(records: Sequence[Record], method: Method | Sequence[Method],
                 options: dict[str, Any]) -> tuple[TextMatches, list[tuple[int, list[int]]], list[Key]]:
    """The text matches, each record's ``(prompt id, response ids)`` and its blocking key."""
    parts = [comparison_parts(r) for r in records]
    matches = text_matches([t for prompt, responses in parts for t in (prompt, *responses)], method, **options)
    ids = [(matches.rep[prompt], [matches.rep[r] for r in responses]) for prompt, responses in parts]
    labels = matches.labels
    keys = [(int(labels[p]), tuple(sorted(int(labels[r]) for r in rs))) for p, rs in ids]
    return matches, ids, keys


def comparison_labels(records: Sequence[Record], method: Method | Sequence[Method] = "minhash",
                      **options: Any) -> Labels:
    """Duplicate-comparison cluster ids, shape ``(n,)``: the index of the first record (in order) that each record
    copies field by field (its own index if none). Every member of a cluster copies that first record directly,
    so near-copies never chain into one cluster. ``options`` as for :func:`text_matches`."""
    matches, ids, keys = _comparisons(records, method, options)
    labels = np.arange(len(records), dtype=np.intp)
    leaders: dict[Key, list[int]] = {}
    for i, key in enumerate(keys):
        group = leaders.setdefault(key, [])
        leader = next((j for j in group if _same(matches, ids[j], ids[i])), None)
        if leader is None:
            group.append(i)
        else:
            labels[i] = leader
    return labels


def dedup_comparisons(records: Sequence[Record], *, method: Method = "minhash", keep: KeepPolicy = "first",
                      scores: Any = None, embedder: TextEmbedder | None = None,
                      minhash: MinHashParams | None = None, semantic_threshold: float = PAIR_COSINE) -> DedupResult:
    """Duplicate comparisons among preference/candidates ``records`` and one survivor per cluster.

    Args:
        records: shape ``(n,)`` records of the pair kinds (mixing them is allowed: a candidates record with
            two completions can equal a preference pair).
        method: how texts are matched field by field: ``"exact"``, ``"minhash"`` or ``"semantic"``.
        keep: the keep policy (see :func:`curate.filters.dedup.keep_mask`; ``"longest"`` counts all the
            record's text).
        scores: shape ``(n,)``, higher is better, for ``keep="highest_score"``.
        embedder: embeds the texts for ``"semantic"``.
        minhash: MinHash settings (default :data:`PAIR_MINHASH`, Jaccard 0.8).
        semantic_threshold: cosine at and above which two texts are near-copies.

    Returns:
        A :class:`DedupResult`: ``cluster_id`` shape ``(n,)`` (see :func:`comparison_labels`) and ``keep``.
    """
    ids = comparison_labels(records, method, minhash=minhash, embedder=embedder,
                            semantic_threshold=semantic_threshold)
    mask = keep_mask(ids, keep, lengths=[len(record_text(r)) for r in records], scores=scores)
    return DedupResult(ids, mask, (method,), keep, {})


def comparison_cross(pool: Sequence[Record], reference: Sequence[Record], *,
                     method: Method | Sequence[Method] = "minhash", **options: Any) -> npt.NDArray[np.intp]:
    """For each pool record, the index of the first reference record making the same comparison, else ``-1``.

    Shape ``(n,)`` ``intp``. Texts of both sides are matched together (``options`` as for :func:`text_matches`),
    so a pool pair that swaps or near-copies a test pair is matched.
    """
    matches, ids, keys = _comparisons([*pool, *reference], method, options)
    n = len(pool)
    refs: dict[Key, list[int]] = {}
    for j in range(n, len(ids)):
        refs.setdefault(keys[j], []).append(j)
    return np.array([next((j - n for j in refs.get(keys[i], []) if _same(matches, ids[i], ids[j])), -1)
                     for i in range(n)], dtype=np.intp)
