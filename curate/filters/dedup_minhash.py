"""Near-duplicate candidates with MinHash LSH (``datasketch``).

Each text is normalised (:func:`~curate.filters.dedup_common.normalise_for_dedup`, unless ``normalise=False``),
cut into shingles (character ``k``-grams, or ``k``-word windows), and summarised by a MinHash signature of
``num_perm`` permutations seeded with ``seed``. ``datasketch.MinHashLSH`` at the Jaccard ``threshold`` proposes
candidate pairs (texts that share at least one LSH band); with ``verify=True`` (default) a candidate is kept only
if its estimated Jaccard similarity (share of equal signature slots) is ``>= threshold``, which removes most of
the false positives LSH lets through. A text with no shingle (empty after normalisation) is never a near-duplicate
here; the exact method handles those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from curate.errors import InputError, MissingDependencyError
from curate.filters.dedup_common import Pairs, as_pairs, check_threshold, empty_pairs, normalise_for_dedup

ShingleKind = Literal["char", "word"]


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


def _verified(a: npt.NDArray[np.intp], b: npt.NDArray[np.intp], va: npt.NDArray[np.uint64],
              vb: npt.NDArray[np.uint64], threshold: float) -> npt.NDArray[np.bool_]:
    """Whether each candidate ``(a[m], b[m])`` has estimated Jaccard ``>= threshold``, in blocks."""
    keep = np.zeros(len(a), dtype=bool)
    for s in range(0, len(a), 65536):
        est = (va[a[s:s + 65536]] == vb[b[s:s + 65536]]).mean(axis=1)
        keep[s:s + 65536] = est >= threshold - 1e-12
    return keep


def minhash_pairs(texts: Sequence[str], params: MinHashParams | None = None) -> Pairs:
    """Near-duplicate pairs within ``texts`` by MinHash LSH.

    Args:
        texts: shape ``(n,)`` strings.
        params: the method's settings (defaults: char 4-grams, Jaccard 0.5, 128 permutations, seed 1).

    Returns:
        Shape ``(p, 2)`` ``intp`` pairs ``(i, j)``, ``i < j``, sorted.
    """
    params = params or MinHashParams()
    mhs, values, _ = signatures(texts, params)
    return lsh_pairs(mhs, values, params)


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
