"""Running a pass elsewhere and feeding its results back: Parquet staging, the local batches, precomputed lookups.

A remote engine (:mod:`curate.runtime.engine_ray`) computes exactly the batches the local engine would
(:func:`embedding_chunks`, :func:`score_batches`) and hands its results to the local code paths through stand-ins
(:class:`PrecomputedScorer`, :func:`signature_lookup`, :func:`detect_lookup`), so caches, reports and audit events
are those of a local run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import CurateError
from curate.ingest.records import Record

if TYPE_CHECKING:
    import pyarrow as pa

    from curate.filters.dedup_minhash import MinHashParams
    from curate.filters.dedup_workspace import DedupReport
    from curate.filters.pii import Finding
    from curate.filters.pii_workspace import PiiFilterReport
    from curate.runtime.embeddings import EmbeddingCache
    from curate.runtime.engine import Engine
    from curate.scorers.base import Scorer, Scores
    from curate.store.workspace import Workspace

STAGING_ENV = "CURATE_RAY_STAGING"
ProgressFn = Callable[[int, int], None]
Signatures = tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]


class ParquetStaging:
    """The Parquet folders of one pass run elsewhere: ``in`` written here, ``out`` by the workers; removed after.

    Below ``$CURATE_RAY_STAGING`` (a folder or a URI such as ``s3://bucket/prefix``) when set, else below
    ``<workspace>/cache/ray``.
    """

    def __init__(self, ws: Workspace, what: str) -> None:
        from pyarrow import fs

        base = os.environ.get(STAGING_ENV) or str((ws.cache_dir / "ray").resolve())
        self.uri = f"{base.rstrip('/')}/{what}-{uuid.uuid4().hex[:12]}"
        self.fs, self.root = fs.FileSystem.from_uri(self.uri)

    def write(self, table: pa.Table, *, max_rows: int = 20_000) -> None:
        import pyarrow.parquet as pq

        self.fs.create_dir(f"{self.root}/in", recursive=True)
        for part, start in enumerate(range(0, table.num_rows, max_rows)):
            pq.write_table(table.slice(start, max_rows), f"{self.root}/in/part-{part:05d}.parquet", filesystem=self.fs)

    def read(self) -> pa.Table:
        import pyarrow.dataset as pads

        return pads.dataset(f"{self.root}/out", filesystem=self.fs, format="parquet").to_table()

    def remove(self) -> None:
        try:
            self.fs.delete_dir(self.root)
        except OSError:  # pragma: no cover - already gone, or a store without folders
            pass


def curate_cause(exc: BaseException) -> CurateError | None:
    """The curate error a worker raised, from under Ray's wrappers (so the CLI prints its message)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        cause = getattr(current, "cause", None)
        for candidate in (current, cause):
            if isinstance(candidate, CurateError):
                return candidate
        current = current.__cause__ or current.__context__ or (cause if isinstance(cause, BaseException) else None)
    return None


@dataclass(frozen=True)
class PrecomputedScorer:
    """Stands in for a scorer whose scores were computed elsewhere, so :func:`score_records` caches them.

    Its ``key()`` and ``set_dependent`` are the original scorer's, so the cache key, the stored values and the audit
    event are exactly those of a local run.
    """

    name: ClassVar[str] = "precomputed"
    scorer: Scorer
    values: dict[str, float]

    @property
    def set_dependent(self) -> bool:
        """As the original scorer."""
        return bool(getattr(self.scorer, "set_dependent", False))

    def key(self) -> str:
        """The original scorer's key."""
        return self.scorer.key()

    def score(self, records: Sequence[Record]) -> Scores:
        """The precomputed score of each record, shape ``(n,)`` float64."""
        return np.array([self.values[r.id] for r in records], dtype=np.float64)


def score_batches(scorer: Scorer, records: Sequence[Record], cached: dict[str, float], *,
                  batch_size: int | None = None) -> list[list[Record]]:
    """The batches :func:`curate.scorers.cache.score_records` passes to ``scorer.score``: the uncached records, in
    order, cut by :func:`curate.scorers.cache.batch_plan`."""
    from curate.scorers.cache import batch_plan

    missing = [r for r in records if r.id not in cached]
    return [missing[span.start : span.stop] for span in batch_plan(scorer, len(missing), batch_size)]


def embedding_chunks(calls: Sequence[Sequence[str]], cache: EmbeddingCache | None, chunk: int) -> list[list[str]]:
    """The texts :meth:`Embedder.embed_texts` would encode together, for a sequence of ``embed_texts`` calls.

    Each call encodes its texts not yet cached (nor encoded by an earlier call), unique, longest first, ``chunk``
    at a time; a MiniLM vector depends (in its last bits) on the padding of its chunk, so another engine that
    encodes these chunks gets the same bits.
    """
    from curate.runtime.embeddings import text_hash

    seen: set[bytes] = set()
    out: list[list[str]] = []
    for texts in calls:
        keys = [text_hash(t) for t in texts]
        hit: set[int] = set()
        if cache is not None and len(cache):
            for start in range(0, len(keys), 10_000):
                hit.update(start + i for i in cache.get(keys[start : start + 10_000])[0])
        unique: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if i not in hit and key not in seen:
                unique.setdefault(key, i)
        todo = sorted(unique.values(), key=lambda i: len(texts[i]), reverse=True)
        out.extend([texts[i] for i in todo[s : s + chunk]] for s in range(0, len(todo), max(chunk, 1)))
        seen.update(unique)
    return out


@contextmanager
def substituted(module: Any, name: str, replacement: Any) -> Iterator[None]:
    """Replace ``module.name`` for the duration of the block (how a filter reads results computed elsewhere).

    Not thread-safe: meant for one command in one process.
    """
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, original)


def text_values(value: Any) -> Iterator[str]:
    """Every string in a field value (inside lists and dict values too).

    >>> list(text_values({"a": ["x", {"b": "y"}], "c": 1}))
    ['x', 'y']
    """
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from text_values(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from text_values(v)


def signature_lookup(table: dict[str, tuple[Any, bool]], params: MinHashParams,
                      original: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in for :func:`signatures` that returns the precomputed ones (computing only unknown texts)."""
    import datasketch

    template = datasketch.MinHash(num_perm=params.num_perm, seed=params.seed)

    def signatures(texts: Sequence[str], p: MinHashParams) -> tuple[list[Any], Any, list[bool]]:
        if p != params:
            return original(texts, p)  # type: ignore[no-any-return]
        unknown = [t for t in dict.fromkeys(texts) if t not in table]
        if unknown:
            _, values, has = original(unknown, p)
            table.update({t: (values[i], has[i]) for i, t in enumerate(unknown)})
        mhs: list[Any] = []
        out = np.zeros((len(texts), p.num_perm), dtype=np.uint64)
        flags: list[bool] = []
        for i, text in enumerate(texts):
            out[i], flag = table[text]
            flags.append(flag)
            mhs.append(datasketch.MinHash(p.num_perm, p.seed, hashvalues=out[i], permutations=template.permutations,
                                          scheme=template.scheme) if flag else None)
        return mhs, out, flags

    return signatures


def detect_lookup(table: dict[str, list[Finding]], allow: tuple[str, ...],
                   original: Callable[..., list[Finding]]) -> Callable[..., list[Finding]]:
    """A stand-in for :func:`detect` that returns the precomputed findings for the settings they were made with."""
    from curate.filters.pii import DEFAULT_ENTITIES, DEFAULT_THRESHOLD

    def detect(text: str, *, entities: Sequence[str] = DEFAULT_ENTITIES, allow_list: Any = (),
               threshold: float = DEFAULT_THRESHOLD) -> list[Finding]:
        allowed = tuple(allow_list)
        if (isinstance(text, str) and text in table and tuple(entities) == DEFAULT_ENTITIES and allowed == allow
                and threshold == DEFAULT_THRESHOLD):
            return list(table[text])
        return original(text, entities=entities, allow_list=allowed, threshold=threshold)

    return detect


def detect_many_lookup(table: dict[str, list[Finding]], allow: tuple[str, ...],
                       original: Callable[..., Iterator[list[Finding]]]) -> Callable[..., Iterator[list[Finding]]]:
    """A stand-in for :func:`curate.filters.pii_batch.detect_many` that yields the precomputed findings (detecting
    only texts it does not know, or other settings, with ``original``)."""
    from curate.filters.pii import DEFAULT_ENTITIES, DEFAULT_THRESHOLD

    def detect_many(texts: Sequence[str], *, entities: Sequence[str] = DEFAULT_ENTITIES, allow_list: Any = (),
                    threshold: float = DEFAULT_THRESHOLD, **kwargs: Any) -> Iterator[list[Finding]]:
        usable = tuple(entities) == DEFAULT_ENTITIES and tuple(allow_list) == allow and threshold == DEFAULT_THRESHOLD
        unknown = [t for t in texts if not (usable and t in table)]
        rest = original(unknown, entities=entities, allow_list=allow_list, threshold=threshold, **kwargs)
        for text in texts:
            yield list(table[text]) if usable and text in table else next(rest)

    return detect_many


def dedup_on(engine: Engine, ws: Workspace, **kwargs: Any) -> DedupReport:
    """:func:`curate.filters.dedup_workspace.run_dedup` with its heavy pass done by ``engine`` first.

    ``minhash``: the signatures of every pool and test/calibration text, then read back by run_dedup in place of
    :func:`signatures`. ``semantic``: the embeddings, computed as run_dedup computes them (each kind's texts, each
    field apart for preference/candidates records, then the reference texts), into the embedding cache run_dedup
    reads. ``exact`` is cheap hashing: nothing to do first.
    """
    from curate.filters import dedup_minhash
    from curate.filters.dedup_comparisons import dedup_texts, is_pair_kind
    from curate.filters.dedup_workspace import KEEP_POLICIES, run_dedup
    from curate.runtime.embeddings import Embedder, record_text

    started = time.perf_counter()
    method = kwargs.get("method", "minhash")
    if str(kwargs.get("keep", "first")).replace("_", "-") not in KEEP_POLICIES or method not in ("minhash", "semantic"):
        return run_dedup(ws, **kwargs)  # nothing heavy to do first (or the usual error message)
    pool = sorted(ws.store.iter_records(), key=lambda r: (r.source, r.row))
    reference = [r for split in ("test", "calibration") for r in ws.store.iter_records(split=split, status=None)]
    if method == "minhash":
        params = dedup_minhash.MinHashParams()
        texts = list(dict.fromkeys(record_text(r) for r in [*pool, *reference]))
        values, has = engine.minhash(ws, texts, params)
        table = {t: (values[i], bool(has[i])) for i, t in enumerate(texts)}
        with substituted(dedup_minhash, "signatures", signature_lookup(table, params, dedup_minhash.signatures)):
            report = run_dedup(ws, **kwargs)
    else:
        if kwargs.get("embedder") is None:
            by_kind: dict[str, list[Record]] = {}
            for rec in pool:
                by_kind.setdefault(rec.kind, []).append(rec)
            calls = [dedup_texts(recs) if is_pair_kind(kind) else [record_text(r) for r in recs]
                     for kind, recs in by_kind.items()]  # a preference/candidates record: each field apart
            pair_refs = [r for r in reference if is_pair_kind(r.kind)]
            engine.embed_calls(ws, Embedder(cache_dir=ws.cache_dir),
                               [*calls, [record_text(r) for r in reference], dedup_texts(pair_refs)])
        report = run_dedup(ws, **kwargs)
    report.seconds = time.perf_counter() - started
    return report


def pii_on(engine: Engine, ws: Workspace, **kwargs: Any) -> PiiFilterReport:
    """:func:`curate.filters.pii_workspace.run_pii` with every stored text's findings detected by ``engine`` first."""
    from curate.filters import pii as pii_module
    from curate.filters import pii_batch
    from curate.filters import policy as policy_module
    from curate.filters.pii_workspace import ACTIONS, run_pii

    started = time.perf_counter()
    if kwargs.get("action", "redact") not in ACTIONS:
        return run_pii(ws, **kwargs)  # the usual error message, before any work
    allow = tuple(kwargs.get("allow_list", ()))
    texts: dict[str, None] = {}
    for rec in ws.store.iter_records():
        for value in (rec.fields, rec.meta):
            texts.update(dict.fromkeys(text_values(value)))
    table = dict(zip(texts, engine.pii(ws, list(texts), allow_list=allow), strict=True))
    lookup = detect_lookup(table, allow, pii_module.detect)
    many = detect_many_lookup(table, allow, pii_batch.detect_many)
    with (substituted(policy_module, "detect", lookup), substituted(pii_module, "detect", lookup),
          substituted(pii_batch, "detect_many", many)):
        report = run_pii(ws, **kwargs)
    report.seconds = time.perf_counter() - started
    return report
