"""Where the heavy passes run: in this process (``local``) or on a Ray cluster (``ray``).

The Ray engine is :mod:`curate.runtime.engine_ray`.

An :class:`Engine` runs four passes over the pool, and the two ``filter`` commands built on them:

* ``score``: any scorer :func:`curate.runtime.catalog.build_scorer` builds, through the score cache
  (:func:`curate.scorers.cache.score_records`);
* ``embed``: sentence embeddings into the workspace's embedding cache (:class:`curate.runtime.embeddings.Embedder`);
* ``minhash``: MinHash signatures for near-duplicate detection (:func:`curate.filters.dedup_minhash.signatures`);
* ``pii``: PII and secret findings per text (:func:`curate.filters.pii.detect`).

Both engines return the same values for the same records. Where a result depends on which records are computed
together (a perplexity batch shares its prompt prefix and padding; a MiniLM chunk its padding), the Ray engine
computes exactly the batches the local engine would (:mod:`curate.runtime.offload`), so values
are bit-identical at equal torch thread counts (Ray actors: 1 thread each). Another thread count splits matrix
products differently: SmolLM2 perplexities then differ in their last bits (relative difference below 1e-7).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from curate.errors import InputError
from curate.ingest.records import Record
from curate.runtime.offload import ProgressFn, Signatures

if TYPE_CHECKING:
    from curate.filters.dedup_minhash import MinHashParams
    from curate.filters.dedup_workspace import DedupReport
    from curate.filters.pii import Finding
    from curate.filters.pii_workspace import PiiFilterReport
    from curate.runtime.catalog import BuildContext
    from curate.runtime.embeddings import Embedder, Vectors
    from curate.scorers.base import Scores
    from curate.scorers.cache import ScoreReport
    from curate.store.workspace import Workspace

ENGINES = ("local", "ray")


class Engine(Protocol):
    """Runs curate's heavy passes; every engine returns what :class:`LocalEngine` returns."""

    name: str

    def score(self, ws: Workspace, scorer: str, ctx: BuildContext, records: Sequence[Record], *,
              batch_size: int | None = None, actor: str | None = None,
              on_progress: ProgressFn | None = None) -> tuple[Scores, ScoreReport]:
        """Scores of ``records`` under the scorer called ``scorer``, cached as :func:`score_records` caches them
        (``batch_size`` records per ``scorer.score`` call; default :func:`curate.scorers.cache.batch_plan`'s)."""
        ...

    def embed(self, ws: Workspace, texts: Sequence[str], *, embedder: str = "minilm",
              batch_size: int = 64) -> Vectors:
        """Unit-norm embeddings ``(n, d)`` float32 of ``texts``, through the workspace's embedding cache."""
        ...

    def embed_calls(self, ws: Workspace, embedder: Embedder, calls: Sequence[Sequence[str]]) -> None:
        """Fill ``embedder``'s cache as the calls ``embedder.embed_texts(texts) for texts in calls`` would."""
        ...

    def minhash(self, ws: Workspace, texts: Sequence[str], params: MinHashParams) -> Signatures:
        """``(hashvalues (n, num_perm) uint64, has_shingles (n,) bool)`` as :func:`signatures` returns them."""
        ...

    def pii(self, ws: Workspace, texts: Sequence[str], *, entities: Sequence[str] | None = None,
            allow_list: Sequence[str] = (), threshold: float | None = None) -> list[list[Finding]]:
        """:func:`curate.filters.pii.detect` of each text (default entities and threshold when ``None``)."""
        ...

    def filter_dedup(self, ws: Workspace, **kwargs: Any) -> DedupReport:
        """:func:`curate.filters.dedup_workspace.run_dedup` with its heavy pass on this engine."""
        ...

    def filter_pii(self, ws: Workspace, **kwargs: Any) -> PiiFilterReport:
        """:func:`curate.filters.pii_workspace.run_pii` with its detection pass on this engine."""
        ...


class LocalEngine:
    """Everything in this process: the library functions, called directly."""

    name = "local"

    def score(self, ws: Workspace, scorer: str, ctx: BuildContext, records: Sequence[Record], *,
              batch_size: int | None = None, actor: str | None = None,
              on_progress: ProgressFn | None = None) -> tuple[Scores, ScoreReport]:
        from curate.runtime.catalog import build_scorer
        from curate.scorers.cache import score_records

        return score_records(ws.store, build_scorer(scorer, ctx), records, batch_size=batch_size, actor=actor,
                             on_progress=on_progress)

    def embed(self, ws: Workspace, texts: Sequence[str], *, embedder: str = "minilm",
              batch_size: int = 64) -> Vectors:
        from curate.runtime.embeddings import Embedder

        return Embedder(embedder, cache_dir=ws.cache_dir, batch_size=batch_size).embed_texts(texts)

    def embed_calls(self, ws: Workspace, embedder: Embedder, calls: Sequence[Sequence[str]]) -> None:
        for texts in calls:
            embedder.embed_texts(texts)

    def minhash(self, ws: Workspace, texts: Sequence[str], params: MinHashParams) -> Signatures:
        from curate.filters.dedup_minhash import signatures

        _, values, has = signatures(texts, params)
        return values, np.array(has, dtype=np.bool_)

    def pii(self, ws: Workspace, texts: Sequence[str], *, entities: Sequence[str] | None = None,
            allow_list: Sequence[str] = (), threshold: float | None = None) -> list[list[Finding]]:
        from curate.filters.pii import DEFAULT_ENTITIES, DEFAULT_THRESHOLD, detect

        return [detect(t, entities=entities or DEFAULT_ENTITIES, allow_list=allow_list,
                       threshold=DEFAULT_THRESHOLD if threshold is None else threshold) for t in texts]

    def filter_dedup(self, ws: Workspace, **kwargs: Any) -> DedupReport:
        from curate.filters.dedup_workspace import run_dedup

        return run_dedup(ws, **kwargs)

    def filter_pii(self, ws: Workspace, **kwargs: Any) -> PiiFilterReport:
        from curate.filters.pii_workspace import run_pii

        return run_pii(ws, **kwargs)


def get_engine(name: str = "local", *, address: str | None = None, workers: int | None = None) -> Engine:
    """The engine called ``name`` (``local`` or ``ray``).

    Args:
        address: with ``ray``, the address of an existing cluster (``auto``, ``HOST:6379`` or ``ray://HOST:10001``);
            ``None`` starts a local cluster for each command.
        workers: with ``ray``, actors per pass (default: one per CPU of a local cluster, CPUs - 1 of an existing one).
    """
    if name not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}; got {name!r}.")
    if name == "local":
        if address is not None:
            raise InputError("--address names a Ray cluster: it goes with --engine ray.")
        return LocalEngine()
    from curate.runtime.engine_ray import RayEngine

    return RayEngine(address=address, workers=workers)
