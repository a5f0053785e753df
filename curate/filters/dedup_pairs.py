"""Shared pieces of the dedup filters: the text normalisation, pair arrays and pairs -> cluster ids.

The normalisation used for exact hashing (and, by default, before MinHash shingling) is, in order:

1. Unicode NFC (so a composed and a decomposed ``é`` are equal),
2. case folding (``str.casefold``: ``"Straße"`` and ``"STRASSE"`` are equal),
3. punctuation deleted: every character of a Unicode ``P*`` category (``. , ! ? ' " - ( ) ...``) is removed
   (not replaced by a space, so ``"don't"`` == ``"dont"``); symbols (``$ + = %``, emoji) and digits are kept,
4. whitespace collapsed: every run of Unicode whitespace becomes one space, and the ends are stripped.

>>> normalise_for_dedup("  Hello,\\tWORLD!! ")
'hello world'
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from curate.errors import InputError

Pairs = npt.NDArray[np.intp]
"""Shape ``(p, 2)`` ``intp``: index pairs ``(i, j)`` with ``i < j``."""
Labels = npt.NDArray[np.intp]
"""Shape ``(n,)`` ``intp``: the cluster id of each text (the lowest index in its cluster)."""


class _PunctuationTable(dict[int, int | None]):
    """A ``str.translate`` table that deletes Unicode punctuation, filled lazily one code point at a time."""

    def __missing__(self, code: int) -> int | None:
        value = None if unicodedata.category(chr(code)).startswith("P") else code
        self[code] = value
        return value


_PUNCT: Final = _PunctuationTable()


def normalise_for_dedup(text: str) -> str:
    """The comparison form of a text: NFC, case-folded, punctuation deleted, whitespace collapsed.

    Args:
        text: any string.

    Returns:
        The normalised string (see the module docstring for the exact steps).
    """
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.casefold().translate(_PUNCT).split())


def empty_pairs() -> Pairs:
    """A ``(0, 2)`` pair array."""
    return np.empty((0, 2), dtype=np.intp)


def as_pairs(rows: list[tuple[int, int]] | Pairs) -> Pairs:
    """Pairs as a ``(p, 2)`` ``intp`` array with ``i < j`` in each row, duplicates and self-pairs removed."""
    arr = np.asarray(rows, dtype=np.intp).reshape(-1, 2)
    if arr.size == 0:
        return empty_pairs()
    arr = np.sort(arr, axis=1)
    arr = arr[arr[:, 0] != arr[:, 1]]
    return np.unique(arr, axis=0) if len(arr) else empty_pairs()


def clusters_from_pairs(n: int, pairs: Pairs) -> Labels:
    """Connected components of the graph whose edges are ``pairs``, labelled by their lowest member index.

    Args:
        n: the number of items.
        pairs: shape ``(p, 2)`` indices in ``[0, n)``.

    Returns:
        Shape ``(n,)`` ``intp``: ``labels[i]`` is the smallest index in ``i``'s cluster, so a singleton's label is
        its own index, members of one cluster share a label, and labels do not depend on the order of ``pairs``.

    >>> clusters_from_pairs(5, np.array([[3, 1], [4, 3]])).tolist()
    [0, 1, 2, 1, 1]
    """
    parent = np.arange(n, dtype=np.intp)
    if n == 0 or len(pairs) == 0:
        return parent
    p = np.asarray(pairs, dtype=np.intp)
    if p.min() < 0 or p.max() >= n:
        raise InputError(f"pair indices must lie in [0, {n}); found [{int(p.min())}, {int(p.max())}]")
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(p), dtype=np.int8), (p[:, 0], p[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    lowest = np.full(int(comp.max()) + 1, n, dtype=np.intp)
    np.minimum.at(lowest, comp, parent)
    return np.asarray(lowest[comp], dtype=np.intp)


def star_clusters(n: int, pairs: Pairs, key: Any, same: Labels | None = None) -> Labels:
    """Clusters in which every member is a direct copy of the one survivor: no chains.

    Connected components chain: "waiting for your mail" ~ "waiting for your call" ~ "call me when free" puts the
    first and the last in one cluster though they are not copies of each other. Here texts are taken best first
    (highest ``key``, then lowest index); each one not yet taken becomes a survivor and takes every text it is
    paired with directly. Texts that ``same`` groups together (exact duplicates: an equivalence) are taken
    together, by their best member.

    Args:
        n: the number of texts.
        pairs: shape ``(p, 2)`` direct near-copy pairs.
        key: shape ``(n,)`` priority, higher = kept first.
        same: shape ``(n,)`` labels of exact-duplicate groups (e.g. :func:`clusters_from_pairs` of exact pairs).

    Returns:
        Shape ``(n,)`` ``intp``: the index of the survivor each text copies (its own index for a survivor).

    >>> star_clusters(4, np.array([[0, 1], [1, 2], [2, 3]]), np.zeros(4)).tolist()  # a chain: 0-1, then 2-3
    [0, 0, 2, 2]
    """
    index = np.arange(n, dtype=np.intp)
    group = index if same is None else np.asarray(same, dtype=np.intp)
    order = np.lexsort((index, -np.asarray(key, dtype=np.float64)))  # best first, ties: lowest index
    _, first = np.unique(group[order], return_index=True)
    best = np.full(n, -1, dtype=np.intp)
    best[group[order[first]]] = order[first]  # each group's best member
    center = np.full(n, -1, dtype=np.intp)  # per group id: the group whose survivor it copies
    p = np.asarray(pairs, dtype=np.intp).reshape(-1, 2)
    g = group[p] if len(p) else np.empty((0, 2), dtype=np.intp)
    g = g[g[:, 0] != g[:, 1]]
    if len(g):
        from scipy.sparse import csr_matrix

        both = np.concatenate([g, g[:, ::-1]])
        adjacency = csr_matrix((np.ones(len(both), dtype=np.int8), (both[:, 0], both[:, 1])), shape=(n, n))
        for i in order[np.isin(order, best[np.unique(g)])]:  # the best member of each linked group, best first
            gi = group[i]
            if center[gi] >= 0:
                continue
            center[gi] = gi
            linked = adjacency.indices[adjacency.indptr[gi]:adjacency.indptr[gi + 1]]
            center[linked[center[linked] < 0]] = gi
    groups = np.unique(group)
    center[groups[center[groups] < 0]] = groups[center[groups] < 0]
    return np.asarray(best[center[group]], dtype=np.intp)


def check_texts(texts: Sequence[str], what: str = "texts") -> list[str]:
    """``texts`` as a list of strings, or :class:`InputError` naming the first non-string item."""
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError(f"{what}[{i}] must be a string; found {type(t).__name__}. Pass plain texts "
                             f"(for records, use the *_records functions, which take record_text of each).")
    return out


def check_threshold(value: float, name: str) -> float:
    """``value`` if it lies in ``[0, 1]``, else :class:`InputError`."""
    if not 0.0 <= float(value) <= 1.0:
        raise InputError(f"{name} must lie in [0, 1]; found {value!r}")
    return float(value)
