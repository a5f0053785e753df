"""Near-duplicate candidates with MinHash LSH (``datasketch``).

Each text is normalised (:func:`~curate.filters.dedup_pairs.normalise_for_dedup`, unless ``normalise=False``),
cut into shingles (character ``k``-grams, or ``k``-word windows), and summarised by a MinHash signature of
``num_perm`` permutations seeded with ``seed``. ``datasketch.MinHashLSH`` at the Jaccard ``threshold`` proposes
candidate pairs (texts that share at least one LSH band); with ``verify=True`` (default) a candidate is kept only
if its estimated Jaccard similarity (share of equal signature slots) is ``>= threshold``, which removes most of
the false positives LSH lets through. A text with no shingle (empty after normalisation) is never a near-duplicate
here; the exact method handles those.

:func:`minhash_pairs` works in bounded memory: signatures are computed in chunks of :data:`SIGNATURE_CHUNK` texts
(the shingle sets and ``MinHash`` objects of one chunk exist at a time) into one ``(n, num_perm)`` array of the
scheme's integers (uint32: 512 MB at 1,000,000 texts and 128 permutations), and the LSH bands are matched by
sorting each band's rows (:func:`band_pairs`) instead of filling ``MinHashLSH``'s per-bucket Python sets. It uses
``datasketch``'s own signatures and its ``(b, r)`` banding for the threshold, so it returns the same pairs as
:func:`lsh_pairs` over :func:`signatures` (checked by the tests), at a fraction of the memory.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from curate.errors import InputError, MissingDependencyError
from curate.filters.dedup_pairs import Pairs, as_pairs, check_threshold, empty_pairs, normalise_for_dedup

ShingleKind = Literal["char", "word"]
Signatures = npt.NDArray[np.unsignedinteger[Any]]
#: Texts whose shingle sets (and MinHash objects) exist at one time in :func:`signature_matrix`.
SIGNATURE_CHUNK = 4096
#: Distinct shingles whose hash :func:`signature_matrix` remembers (about 100 bytes each) before starting afresh.
HASH_MEMO_LIMIT = 2_000_000
_PERMUTE_ROWS = 65_536  # shingles permuted at once: 65,536 x 128 x 4 bytes = 32 MB


@dataclass(frozen=True, slots=True)
class MinHashParams:
    """Settings of the MinHash near-duplicate method.

    Attributes:
        shingle: ``"char"`` (character k-grams, robust to typos) or ``"word"`` (k-word windows, faster, coarser).
        k: shingle size, in characters or words.
        threshold: Jaccard similarity at and above which two texts are near-duplicates.

    The defaults (char 4-grams, Jaccard 0.5, 128 permutations) are the setting ``benchmarks/bench_dedup.py`` chose
    on Alpaca near-copies (case, whitespace, punctuation, 1-3 typos, one-word edits): recall 0.9996 at pair
    precision 0.9999 on a held-out split.
        num_perm: permutations per signature (more = a sharper estimate, slower).
        seed: the seed of the permutations (fixed: the same texts always give the same clusters).
        verify: keep an LSH candidate only if its estimated Jaccard is ``>= threshold``.
        normalise: apply ``normalise_for_dedup`` before shingling.
    """

    shingle: ShingleKind = "char"
    k: int = 4
    threshold: float = 0.5
    num_perm: int = 128
    seed: int = 1
    verify: bool = True
    normalise: bool = True

    def __post_init__(self) -> None:
        if self.shingle not in ("char", "word"):
            raise InputError(f"shingle must be 'char' or 'word'; found {self.shingle!r}")
        if self.k < 1:
            raise InputError(f"shingle size k must be >= 1; found {self.k}")
        if self.num_perm < 2:
            raise InputError(f"num_perm must be >= 2; found {self.num_perm}")
        check_threshold(self.threshold, "MinHash threshold")


def shingles(text: str, params: MinHashParams) -> set[bytes]:
    """The shingle set of one text (UTF-8 bytes); a text shorter than ``k`` is one shingle; empty -> empty set.

    >>> sorted(shingles("Ab c", MinHashParams(k=3)))
    [b'ab ', b'b c']
    """
    t = normalise_for_dedup(text) if params.normalise else text
    if not t:
        return set()
    if params.shingle == "word":
        words = t.split()
        if not words:
            return set()
        grams = {" ".join(words[i:i + params.k]) for i in range(max(1, len(words) - params.k + 1))}
    else:
        grams = {t[i:i + params.k] for i in range(max(1, len(t) - params.k + 1))}
    return {g.encode("utf-8", "surrogatepass") for g in grams}


def _datasketch() -> Any:
    try:
        import datasketch
    except ImportError as exc:  # pragma: no cover - datasketch is installed with curate
        raise MissingDependencyError("datasketch", "pii", "MinHash near-duplicate detection") from exc
    return datasketch


def signatures(texts: Sequence[str], params: MinHashParams) -> tuple[list[Any], npt.NDArray[np.uint64], list[bool]]:
    """MinHash signatures of ``texts``.

    Returns:
        ``(minhashes, hashvalues, has_shingles)``: the ``datasketch`` objects (``None`` for a text without
        shingles), their signatures stacked as shape ``(n, num_perm)`` ``uint64`` (zeros for such texts), and
        shape-``(n,)`` flags of which texts have shingles.
    """
    ds = _datasketch()
    sets = [shingles(t, params) for t in texts]
    has = [bool(s) for s in sets]
    values = np.zeros((len(texts), params.num_perm), dtype=np.uint64)
    found = [i for i, h in enumerate(has) if h]
    mhs: list[Any] = [None] * len(texts)
    if found:
        built = ds.MinHash.bulk([sets[i] for i in found], num_perm=params.num_perm, seed=params.seed)
        for i, mh in zip(found, built, strict=True):
            mhs[i] = mh
            values[i] = mh.hashvalues
    return mhs, values, has


def _lsh(params: MinHashParams) -> Any:
    return _datasketch().MinHashLSH(threshold=params.threshold, num_perm=params.num_perm)


def _verified(a: npt.NDArray[np.intp], b: npt.NDArray[np.intp], va: Signatures,
              vb: Signatures, threshold: float) -> npt.NDArray[np.bool_]:
    """Whether each candidate ``(a[m], b[m])`` has estimated Jaccard ``>= threshold``, in blocks."""
    keep = np.zeros(len(a), dtype=bool)
    for s in range(0, len(a), 65536):
        est = (va[a[s:s + 65536]] == vb[b[s:s + 65536]]).mean(axis=1)
        keep[s:s + 65536] = est >= threshold - 1e-12
    return keep


def minhash_pairs(texts: Sequence[str], params: MinHashParams | None = None) -> Pairs:
    """Near-duplicate pairs within ``texts`` by MinHash LSH, in bounded memory (see the module docstring).

    Args:
        texts: shape ``(n,)`` strings.
        params: the method's settings (defaults: char 4-grams, Jaccard 0.5, 128 permutations, seed 1).

    Returns:
        Shape ``(p, 2)`` ``intp`` pairs ``(i, j)``, ``i < j``, sorted.
    """
    params = params or MinHashParams()
    values, has = signature_matrix(texts, params)
    lsh = _lsh(params)
    pairs = band_pairs(values, has, bands=int(lsh.b), rows=int(lsh.r))
    if params.verify and len(pairs):
        pairs = pairs[_verified(pairs[:, 0], pairs[:, 1], values, values, params.threshold)]
    return pairs if len(pairs) else empty_pairs()


def signature_matrix(texts: Sequence[str], params: MinHashParams,
                     chunk: int = SIGNATURE_CHUNK) -> tuple[Signatures, npt.NDArray[np.bool_]]:
    """MinHash signatures of ``texts`` as one array, computed ``chunk`` texts at a time.

    With ``datasketch``'s default scheme (32-bit affine permutations after SHA-1) the permutations run vectorised
    over a chunk's shingles, and each distinct shingle is hashed once per call (a memo of up to
    :data:`HASH_MEMO_LIMIT` shingles); a probe checks once that this reproduces ``datasketch.MinHash`` exactly, and
    if it does not (another scheme or version), ``datasketch.MinHash.generator`` computes them instead.

    Returns:
        ``(values, has_shingles)``: shape ``(n, num_perm)`` in ``datasketch``'s integer type for its scheme (the
        same values as :func:`signatures`; zeros for a text without shingles) and shape ``(n,)`` flags.
    """
    ds = _datasketch()
    n = len(texts)
    template = ds.MinHash(num_perm=params.num_perm, seed=params.seed)
    values = np.zeros((n, params.num_perm), dtype=template.hashvalues.dtype)
    has = np.zeros(n, dtype=np.bool_)
    vectorised = _vectorised_matches(params.num_perm, params.seed)
    memo: dict[bytes, int] = {}
    for start in range(0, n, chunk):
        sets = [shingles(t, params) for t in texts[start:start + chunk]]
        found = [i for i, s in enumerate(sets) if s]
        rows = [start + i for i in found]
        if vectorised:
            values[rows] = _affine32_minhash([sets[i] for i in found], template.permutations, memo)
        else:
            built = ds.MinHash.generator((sets[i] for i in found), num_perm=params.num_perm, seed=params.seed)
            for row, mh in zip(rows, built, strict=True):
                values[row] = mh.hashvalues
        has[rows] = True
    return values, has


def _fmix32(h: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """MurmurHash3's 32-bit finalizer (as ``datasketch`` applies before its affine permutations)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _affine32_minhash(sets: Sequence[set[bytes]], permutations: Any, memo: dict[bytes, int]) -> Signatures:
    """Signatures of non-empty shingle sets: ``min over shingles of (a * fmix32(sha1_32(s)) + b) mod 2^32``."""
    from datasketch.hashfunc import sha1_hash32

    a = np.asarray(permutations[0], dtype=np.uint32)
    b = np.asarray(permutations[1], dtype=np.uint32)
    out = np.empty((len(sets), len(a)), dtype=np.uint32)
    get = memo.get
    flat: list[int] = []
    counts = np.empty(len(sets), dtype=np.int64)
    for i, grams in enumerate(sets):
        items = list(grams)
        hashed = list(map(get, items))
        if None in hashed:
            for j, h in enumerate(hashed):
                if h is None:
                    hashed[j] = memo[items[j]] = sha1_hash32(items[j])
        flat.extend(hashed)  # type: ignore[arg-type]  # every None was replaced above
        counts[i] = len(items)
    if len(memo) > HASH_MEMO_LIMIT:
        memo.clear()
    mixed = _fmix32(np.array(flat, dtype=np.uint32))
    ends = np.cumsum(counts)
    first = 0
    while first < len(sets):  # groups of texts with at most _PERMUTE_ROWS shingles between them (at least one)
        last = max(first + 1, int(np.searchsorted(ends, ends[first] - counts[first] + _PERMUTE_ROWS, "right")))
        lo = int(ends[first] - counts[first])
        block = mixed[lo:int(ends[last - 1]), None] * a[None, :] + b[None, :]
        out[first:last] = np.minimum.reduceat(block, (ends[first:last] - counts[first:last] - lo), axis=0)
        first = last
    return out


@functools.lru_cache(maxsize=16)
def _vectorised_matches(num_perm: int, seed: int) -> bool:
    """Whether :func:`_affine32_minhash` reproduces ``datasketch.MinHash`` for these settings (checked once)."""
    ds = _datasketch()
    probe = [{b"abcd", b"bcde", b"cdef"}, {b"x"}, {f"{i:05d}".encode() for i in range(300)}]
    try:
        expected = np.stack([m.hashvalues for m in ds.MinHash.bulk(probe, num_perm=num_perm, seed=seed)])
        got = _affine32_minhash(probe, ds.MinHash(num_perm=num_perm, seed=seed).permutations, {})
    except (ImportError, ValueError, TypeError, IndexError, OverflowError):
        return False
    return expected.dtype == np.uint32 and np.array_equal(expected, got)


def _group_pairs(order: npt.NDArray[np.intp], same_as_next: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """All pairs within runs of equal rows of a sorted band, as ``(p, 2)`` positions into the sorted order."""
    starts = np.flatnonzero(np.concatenate(([True], ~same_as_next)))
    sizes = np.diff(np.append(starts, len(order)))
    group = np.repeat(np.arange(len(starts)), sizes)
    remaining = (sizes[group] - (np.arange(len(order)) - starts[group]) - 1).astype(np.int64)  # rows after it
    active = np.flatnonzero(remaining > 0)
    out: list[npt.NDArray[np.int64]] = []
    step = 1
    while active.size:  # pair each row with the row ``step`` places later in its run: O(pairs) in total
        out.append(np.stack([order[active], order[active + step]], axis=1).astype(np.int64))
        step += 1
        active = active[remaining[active] >= step]
    return np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)


def band_pairs(values: Signatures, has: npt.NDArray[np.bool_], *, bands: int,
               rows: int) -> Pairs:
    """Candidate pairs of LSH banding: rows whose signatures agree on all ``rows`` slots of at least one band.

    Band ``i`` covers signature columns ``[i * rows, (i + 1) * rows)``, as in ``datasketch.MinHashLSH``. Each band
    is matched by sorting its slices (``np.lexsort``), so memory is ``O(n * rows)`` per band plus the pairs.

    Args:
        values: shape ``(n, num_perm)`` signatures.
        has: shape ``(n,)``: which rows take part (texts with shingles).
        bands, rows: the banding; ``bands * rows <= num_perm``.

    Returns:
        Shape ``(p, 2)`` ``intp`` pairs ``(i, j)``, ``i < j``, sorted, unique.

    >>> v = np.array([[1, 2, 3, 4], [1, 2, 9, 9], [0, 2, 3, 4], [5, 5, 5, 5]], dtype=np.uint32)
    >>> band_pairs(v, np.ones(4, dtype=bool), bands=2, rows=2).tolist()
    [[0, 1], [0, 2]]
    """
    members = np.flatnonzero(has)
    n = len(values)
    codes: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
    for band in range(bands):
        block = values[members, band * rows:(band + 1) * rows]
        order = np.lexsort(block.T[::-1])
        ordered = block[order]
        same = np.all(ordered[1:] == ordered[:-1], axis=1)
        if not same.any():
            continue
        found = members[_group_pairs(order, same)]
        lo, hi = found.min(axis=1), found.max(axis=1)
        codes = np.union1d(codes, lo * n + hi)  # sorted and unique across bands
    if not codes.size:
        return empty_pairs()
    return np.stack([codes // n, codes % n], axis=1).astype(np.intp)


def lsh_pairs(mhs: Sequence[Any], values: npt.NDArray[np.uint64], params: MinHashParams) -> Pairs:
    """Pairs from precomputed :func:`signatures` (to try several thresholds without hashing again).

    Args:
        mhs: shape ``(n,)`` MinHash objects (``None`` for texts without shingles).
        values: shape ``(n, num_perm)`` their signatures.
        params: the settings; ``shingle``, ``k``, ``num_perm`` and ``seed`` must be those of the signatures.

    Returns:
        Shape ``(p, 2)`` ``intp`` pairs ``(i, j)``, ``i < j``, sorted.
    """
    if values.shape != (len(mhs), params.num_perm):
        raise InputError(f"signatures have shape {values.shape}; expected ({len(mhs)}, {params.num_perm})")
    lsh = _lsh(params)
    with lsh.insertion_session() as session:
        for i, mh in enumerate(mhs):
            if mh is not None:
                session.insert(i, mh, check_duplication=False)
    rows: list[tuple[int, int]] = []
    for i, mh in enumerate(mhs):
        if mh is not None:
            rows.extend((i, int(j)) for j in lsh.query(mh) if int(j) > i)
    pairs = as_pairs(rows)
    if params.verify and len(pairs):
        pairs = pairs[_verified(pairs[:, 0], pairs[:, 1], values, values, params.threshold)]
    return pairs if len(pairs) else empty_pairs()


def minhash_cross(pool: Sequence[str], reference: Sequence[str],
                  params: MinHashParams | None = None) -> npt.NDArray[np.intp]:
    """For each pool text, one reference text it near-copies by MinHash, or ``-1``.

    Args:
        pool: shape ``(n,)`` strings.
        reference: shape ``(m,)`` strings.
        params: the method's settings.

    Returns:
        Shape ``(n,)`` ``intp``: the index of the most similar matching reference text (by estimated Jaccard;
        lowest index on ties), or ``-1``.
    """
    params = params or MinHashParams()
    match = np.full(len(pool), -1, dtype=np.intp)
    if not len(pool) or not len(reference):
        return match
    ref_mhs, ref_values, _ = signatures(reference, params)
    pool_mhs, pool_values, _ = signatures(pool, params)
    lsh = _lsh(params)
    with lsh.insertion_session() as session:
        for j, mh in enumerate(ref_mhs):
            if mh is not None:
                session.insert(j, mh, check_duplication=False)
    for i, mh in enumerate(pool_mhs):
        if mh is None:
            continue
        cands = np.array(sorted(int(j) for j in lsh.query(mh)), dtype=np.intp)
        if not cands.size:
            continue
        est = (ref_values[cands] == pool_values[i]).mean(axis=1)
        best = int(np.argmax(est))
        if not params.verify or est[best] >= params.threshold - 1e-12:
            match[i] = cands[best]
    return match
