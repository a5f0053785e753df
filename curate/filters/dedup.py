"""De-duplication: exact, MinHash near-duplicate and semantic clusters, a keep policy, and cross-set checks.

Three methods find duplicate pairs. Exact duplicates are an equivalence; near-copies are not (A ~ B and B ~ C
does not make C a copy of A), so clusters are stars (:func:`~curate.filters.dedup_pairs.star_clusters`): each
removed text is a direct copy of the survivor it is listed with, found best first by the keep policy:

- ``"exact"``: equal BLAKE2b hashes of :func:`normalise_for_dedup` (NFC, case-folded, punctuation deleted,
  whitespace collapsed; see :mod:`curate.filters.dedup_pairs`);
- ``"minhash"``: MinHash LSH over shingles with estimated Jaccard ``>= threshold``
  (:mod:`curate.filters.dedup_minhash`, settings in :class:`MinHashParams`);
- ``"semantic"``: embedding cosine ``>= threshold`` (:mod:`curate.filters.dedup_semantic`).

Cluster ids: ``cluster_id[i]`` is the index of the survivor ``i`` copies (its own index for a survivor or a
singleton; never ``-1``). Keep policies order the survivors: ``"first"`` (lowest index), ``"longest"`` (most
characters; ties -> lowest index), ``"highest_score"`` (largest score; ties -> lowest index). The connected
components (:func:`~curate.filters.dedup_pairs.clusters_from_pairs`) are what the MinHash benchmark scores.

Cross-set dedup (:func:`cross_set_flags`) flags every pool text that is an exact, MinHash or semantic near-copy of
any reference text (a frozen test set, a calibration slice), so it can be excluded from training data.

>>> r = dedup(["Hello, world!", "hello world", "Something else"])
>>> r.cluster_id.tolist(), r.keep.tolist(), r.n_removed
([0, 0, 2], [True, False, True], 1)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.filters.dedup_minhash import MinHashParams, minhash_cross, minhash_pairs
from curate.filters.dedup_pairs import (
    Labels,
    Pairs,
    as_pairs,
    check_texts,
    check_threshold,
    clusters_from_pairs,
    empty_pairs,
    normalise_for_dedup,
    star_clusters,
)
from curate.filters.dedup_semantic import Backend, semantic_cross, semantic_pairs, unit_embeddings
from curate.ingest.records import Record
from curate.runtime.embeddings import record_text

Method = Literal["exact", "minhash", "semantic"]
KeepPolicy = Literal["first", "longest", "highest_score"]
METHODS: tuple[Method, ...] = ("exact", "minhash", "semantic")
KEEP_POLICIES: tuple[KeepPolicy, ...] = ("first", "longest", "highest_score")

__all__ = [
    "CrossSetResult", "DedupResult", "MinHashParams", "clusters_from_pairs", "cross_set_flags",
    "cross_set_records", "dedup", "dedup_records", "exact_clusters", "exact_pairs", "keep_mask",
    "minhash_clusters", "minhash_pairs", "normalise_for_dedup", "semantic_clusters", "semantic_pairs",
]


class TextEmbedder(Protocol):
    """Anything that embeds texts, such as :class:`curate.runtime.embeddings.Embedder`."""

    def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


def _digest(text: str) -> bytes:
    return hashlib.blake2b(normalise_for_dedup(text).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def exact_pairs(texts: Sequence[str]) -> Pairs:
    """Pairs ``(first, other)`` of texts with equal normalised hashes, shape ``(p, 2)`` ``intp``."""
    first: dict[bytes, int] = {}
    rows: list[tuple[int, int]] = []
    for i, t in enumerate(check_texts(texts)):
        j = first.setdefault(_digest(t), i)
        if j != i:
            rows.append((j, i))
    return as_pairs(rows)


def exact_clusters(texts: Sequence[str]) -> Labels:
    """Exact-duplicate cluster ids (after normalisation), shape ``(n,)`` ``intp``; see the module docstring."""
    return clusters_from_pairs(len(texts), exact_pairs(texts))


def minhash_clusters(texts: Sequence[str], params: MinHashParams | None = None) -> Labels:
    """MinHash near-duplicate cluster ids, shape ``(n,)`` ``intp``."""
    return clusters_from_pairs(len(texts), minhash_pairs(check_texts(texts), params))


def semantic_clusters(embeddings: Any, *, threshold: float = 0.8, block: int = 2048,
                      backend: Backend = "auto") -> Labels:
    """Semantic near-duplicate cluster ids from embeddings of shape ``(n, d)``; returns shape ``(n,)`` ``intp``."""
    x = unit_embeddings(embeddings)
    return clusters_from_pairs(len(x), semantic_pairs(x, threshold=threshold, block=block, backend=backend))


def keep_mask(cluster_id: Labels, policy: KeepPolicy = "first", *, lengths: Any = None,
              scores: Any = None) -> npt.NDArray[np.bool_]:
    """One survivor per cluster.

    Args:
        cluster_id: shape ``(n,)`` cluster ids (any integers; equal id = same cluster).
        policy: ``"first"``, ``"longest"`` (needs ``lengths``) or ``"highest_score"`` (needs ``scores``).
        lengths: shape ``(n,)`` text lengths, for ``"longest"``.
        scores: shape ``(n,)`` finite scores, higher is better, for ``"highest_score"``.

    Returns:
        Shape ``(n,)`` bool: ``True`` for the one kept member of each cluster (ties go to the lowest index).
    """
    ids = np.asarray(cluster_id, dtype=np.intp)
    n = len(ids)
    key = keep_priority(n, policy, lengths=lengths, scores=scores)
    keep = np.zeros(n, dtype=bool)
    if n:
        order = np.lexsort((np.arange(n), -key, ids))  # by cluster, then best key, then lowest index
        _, first = np.unique(ids[order], return_index=True)
        keep[order[first]] = True
    return keep


def keep_priority(n: int, policy: KeepPolicy = "first", *, lengths: Any = None,
                  scores: Any = None) -> npt.NDArray[np.float64]:
    """Shape ``(n,)`` priority of each text under a keep policy (higher = kept first; ties go to the lowest index).

    Raises :class:`InputError` for an unknown policy or missing / non-finite lengths or scores.
    """
    if policy == "first":
        key = np.zeros(n)
    elif policy == "longest":
        if lengths is None:
            raise InputError("keep='longest' needs the texts' lengths")
        key = np.asarray(lengths, dtype=np.float64)
    elif policy == "highest_score":
        if scores is None:
            raise InputError("keep='highest_score' needs scores=: one finite number per text")
        key = np.asarray(scores, dtype=np.float64)
        if key.shape != (n,):
            raise InputError(f"scores must have shape ({n},), one per text; found shape {key.shape}")
        if not np.isfinite(key).all():
            bad = int(np.flatnonzero(~np.isfinite(key))[0])
            raise InputError(f"scores must be finite; scores[{bad}] is {key[bad]}")
    else:
        raise InputError(f"unknown keep policy {policy!r}; expected one of {', '.join(KEEP_POLICIES)}")
    return key


@dataclass(frozen=True)
class DedupResult:
    """Outcome of :func:`dedup`.

    Attributes:
        cluster_id: shape ``(n,)`` ``intp``: the index of the survivor each text copies (its own for a survivor).
        keep: shape ``(n,)`` bool: the survivors (one per cluster).
        pairs / same: the direct duplicate pairs and the exact-duplicate groups the clusters were built from
            (``None`` when built otherwise), for :meth:`rekept`.
        methods: the methods whose pairs were merged.
        policy: the keep policy.
        pairs_found: duplicate pairs found per method (before merging).
    """

    cluster_id: Labels
    keep: npt.NDArray[np.bool_]
    methods: tuple[str, ...]
    policy: str
    pairs_found: dict[str, int] = field(default_factory=dict)
    pairs: Pairs | None = None
    same: Labels | None = None

    def linked(self) -> npt.NDArray[np.bool_]:
        """Shape ``(n,)``: texts with a duplicate (paired, or in an exact group of two or more)."""
        if self.pairs is None:
            sizes = np.bincount(self.cluster_id, minlength=self.n)
            return np.asarray(sizes[self.cluster_id] > 1)
        out = np.zeros(self.n, dtype=bool)
        out[np.asarray(self.pairs, dtype=np.intp).ravel()] = True
        if self.same is not None:
            out |= np.bincount(self.same, minlength=self.n)[self.same] > 1
        return out

    def rekept(self, policy: KeepPolicy, scores: Any) -> DedupResult:
        """The same duplicates with survivors chosen by another policy (e.g. cached scores)."""
        if self.pairs is None:  # clusters without their pairs: one survivor per cluster
            return replace(self, keep=keep_mask(self.cluster_id, policy, scores=scores), policy=policy)
        ids = star_clusters(self.n, self.pairs, keep_priority(self.n, policy, scores=scores), self.same)
        return replace(self, cluster_id=ids, keep=ids == np.arange(self.n), policy=policy)

    @property
    def n(self) -> int:
        """Number of texts."""
        return len(self.cluster_id)

    @property
    def n_kept(self) -> int:
        """Texts kept (= number of clusters, singletons included)."""
        return int(self.keep.sum())

    @property
    def n_removed(self) -> int:
        """Texts dropped as duplicates."""
        return self.n - self.n_kept

    @property
    def n_duplicate_clusters(self) -> int:
        """Clusters with two or more members."""
        if not self.n:
            return 0
        sizes = np.bincount(self.cluster_id, minlength=self.n)
        return int((sizes > 1).sum())

    def counts(self) -> dict[str, int]:
        """The counts as a JSON-ready dict."""
        return {"n": self.n, "kept": self.n_kept, "removed": self.n_removed,
                "duplicate_clusters": self.n_duplicate_clusters,
                **{f"pairs_{k}": v for k, v in self.pairs_found.items()}}


def _methods(method: Method | Iterable[Method]) -> tuple[Method, ...]:
    out = (method,) if isinstance(method, str) else tuple(method)
    for m in out:
        if m not in METHODS:
            raise InputError(f"unknown dedup method {m!r}; expected one of {', '.join(METHODS)}")
    if not out:
        raise InputError(f"name at least one dedup method ({', '.join(METHODS)})")
    return out


def _embeddings(texts: list[str], embeddings: Any, embedder: TextEmbedder | None, what: str) -> Any:
    if embeddings is not None:
        return unit_embeddings(embeddings, len(texts), what)
    if embedder is None:
        raise InputError(f"semantic dedup needs {what} (shape (n, d)) or an embedder "
                         f"(for example curate.runtime.embeddings.Embedder('minilm'))")
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    return unit_embeddings(embedder.embed_texts(texts), len(texts), what)


def dedup(texts: Sequence[str], *, method: Method | Iterable[Method] = "exact", keep: KeepPolicy = "first",
          scores: Any = None, embeddings: Any = None, embedder: TextEmbedder | None = None,
          minhash: MinHashParams | None = None, semantic_threshold: float = 0.8, block: int = 2048,
          backend: Backend = "auto") -> DedupResult:
    """Cluster duplicates among ``texts`` with one or more methods and choose one survivor per cluster.

    Args:
        texts: shape ``(n,)`` strings.
        method: ``"exact"``, ``"minhash"``, ``"semantic"``, or several (their pairs are merged).
        keep: the keep policy (see :func:`keep_mask`).
        scores: shape ``(n,)`` scores, for ``keep="highest_score"``.
        embeddings: shape ``(n, d)``, for ``"semantic"`` (else ``embedder`` computes them).
        embedder: computes embeddings when ``embeddings`` is not given.
        minhash: MinHash settings (default :class:`MinHashParams`).
        semantic_threshold: cosine similarity at and above which texts are semantic duplicates.
        block: tile size of the semantic similarity computation.
        backend: ``"auto"``, ``"numpy"`` or ``"faiss"`` for the semantic method.

    Returns:
        A :class:`DedupResult` with shape-``(n,)`` ``cluster_id`` and ``keep``.
    """
    items = check_texts(texts)
    methods = _methods(method)
    check_threshold(semantic_threshold, "semantic_threshold")
    found: dict[str, int] = {}
    all_pairs: list[Pairs] = []
    same: Labels | None = None
    for m in methods:
        if m == "exact":
            p = exact_pairs(items)
            same = clusters_from_pairs(len(items), p)
        elif m == "minhash":
            p = minhash_pairs(items, minhash)
        else:
            x = _embeddings(items, embeddings, embedder, "embeddings")
            p = semantic_pairs(x, threshold=semantic_threshold, block=block, backend=backend) if items else \
                empty_pairs()
        found[m] = len(p)
        all_pairs.append(p)
    priority = keep_priority(len(items), keep, lengths=[len(t) for t in items], scores=scores)
    pairs = np.concatenate(all_pairs)
    ids = star_clusters(len(items), pairs, priority, same)
    return DedupResult(ids, ids == np.arange(len(items)), methods, keep, found, pairs, same)


@dataclass(frozen=True)
class CrossSetResult:
    """Outcome of :func:`cross_set_flags`.

    Attributes:
        flagged: shape ``(n,)`` bool: pool texts that near-copy some reference text (exclude them from training).
        match: shape ``(n,)`` ``intp``: a matching reference index (first method that matched), or ``-1``.
        by_method: per method, shape ``(n,)`` bool flags of that method alone.
    """

    flagged: npt.NDArray[np.bool_]
    match: npt.NDArray[np.intp]
    by_method: dict[str, npt.NDArray[np.bool_]]

    @property
    def n_flagged(self) -> int:
        """Pool texts flagged by any method."""
        return int(self.flagged.sum())

    def counts(self) -> dict[str, int]:
        """Flag counts, total and per method, as a JSON-ready dict."""
        return {"n": len(self.flagged), "flagged": self.n_flagged,
                **{f"flagged_{k}": int(v.sum()) for k, v in self.by_method.items()}}


def cross_set_flags(pool: Sequence[str], reference: Sequence[str], *,
                    method: Method | Iterable[Method] = ("exact", "minhash"),
                    minhash: MinHashParams | None = None, pool_embeddings: Any = None,
                    reference_embeddings: Any = None, embedder: TextEmbedder | None = None,
                    semantic_threshold: float = 0.8, block: int = 2048) -> CrossSetResult:
    """Flag pool texts that are exact, MinHash or semantic near-copies of any reference text.

    Args:
        pool: shape ``(n,)`` candidate training texts.
        reference: shape ``(m,)`` texts that must not leak into training (test set, calibration slice).
        method: the methods to apply (default exact + MinHash; add ``"semantic"`` with embeddings or an embedder).
        minhash: MinHash settings.
        pool_embeddings: shape ``(n, d)``, for ``"semantic"``.
        reference_embeddings: shape ``(m, d)``, for ``"semantic"``.
        embedder: computes missing embeddings.
        semantic_threshold: cosine at and above which a pool text is a near-copy.
        block: tile size of the semantic similarity computation.

    Returns:
        A :class:`CrossSetResult` (shape-``(n,)`` ``flagged`` and ``match``).
    """
    items, refs = check_texts(pool, "pool"), check_texts(reference, "reference")
    methods = _methods(method)
    match = np.full(len(items), -1, dtype=np.intp)
    by: dict[str, npt.NDArray[np.bool_]] = {}
    for m in methods:
        if m == "exact":
            ref_index: dict[bytes, int] = {}
            for j, t in enumerate(refs):
                ref_index.setdefault(_digest(t), j)
            got = np.array([ref_index.get(_digest(t), -1) for t in items], dtype=np.intp)
        elif m == "minhash":
            got = minhash_cross(items, refs, minhash)
        else:
            px = _embeddings(items, pool_embeddings, embedder, "pool_embeddings")
            rx = _embeddings(refs, reference_embeddings, embedder, "reference_embeddings")
            got, _ = semantic_cross(px, rx, threshold=semantic_threshold, block=block)
        by[m] = got >= 0
        match = np.where((match < 0) & (got >= 0), got, match)
    return CrossSetResult(match >= 0, match, by)


def dedup_records(records: Sequence[Record], **kwargs: Any) -> DedupResult:
    """:func:`dedup` over :func:`curate.runtime.embeddings.record_text` of each record; ``kwargs`` as for
    :func:`dedup`."""
    return dedup([record_text(r) for r in records], **kwargs)


def cross_set_records(pool: Sequence[Record], reference: Sequence[Record], **kwargs: Any) -> CrossSetResult:
    """:func:`cross_set_flags` over :func:`curate.runtime.embeddings.record_text`; ``kwargs`` as for it."""
    return cross_set_flags([record_text(r) for r in pool], [record_text(r) for r in reference], **kwargs)
