"""The Ray engine: curate's heavy passes as ``ray.data`` pipelines, on a local or a multi-node Ray cluster.

Every pass has the same shape:

1. the driver writes the work to Parquet in a staging folder (``<workspace>/cache/ray/<pass>-<id>/in``, or under
   ``$CURATE_RAY_STAGING``, which may be a shared mount or an ``s3://`` / ``gs://`` URI on a multi-node cluster);
2. ``ray.data.read_parquet(in) -> map_batches(Worker, compute=ActorPoolStrategy(size=N)) -> write_parquet(out)``:
   each actor builds its scorer, embedder, MinHash settings or PII analyzer once, in ``__init__``, from a picklable
   spec (names and parameters, never a live model);
3. the driver reads the results back, aligned by record id (or text index), and stores them exactly as the local
   engine does: scores through :func:`curate.scorers.cache.score_records` (same cache key, values and audit event),
   embeddings into the workspace's embedding cache (the same shards).

A unit whose result depends on its batch-mates (a scoring batch; an embedding chunk) is one Parquet row holding the
batch the local engine would compute (:func:`curate.runtime.offload.score_batches`,
:func:`curate.runtime.offload.embedding_chunks`),
so results are bit-identical to the local engine's. MinHash and PII rows are single texts.

A local cluster is started per command with ``num_cpus = workers + 1``: one logical CPU beyond the actors stays free
for Ray Data's listing, reading and writing tasks, which would otherwise wait for the actors forever.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from curate.errors import InputError, MissingDependencyError, ModelError
from curate.ingest.records import Record
from curate.runtime.catalog import BuildContext
from curate.runtime.embeddings import Embedder, record_text
from curate.runtime.offload import (
    ParquetStaging,
    ProgressFn,
    Signatures,
    curate_cause,
    dedup_on,
    embedding_chunks,
    pii_on,
    score_batches,
)
from curate.runtime.ray_workers import EmbedWorker, MinHashWorker, PiiWorker, ScoreWorker, record_json

if TYPE_CHECKING:
    import pyarrow as pa

    from curate.filters.dedup_minhash import MinHashParams
    from curate.filters.dedup_workspace import DedupReport
    from curate.filters.pii import Finding
    from curate.filters.pii_workspace import PiiFilterReport
    from curate.runtime.embeddings import Vectors
    from curate.scorers.base import Scorer, Scores
    from curate.scorers.cache import ScoreReport
    from curate.store.workspace import Workspace

WORKERS_ENV = "CURATE_RAY_WORKERS"
#: Environment variables passed on to the workers of an existing cluster (a local one inherits the environment).
FORWARD_ENV = ("CURATE_PII_SPACY_MODEL", "HF_HUB_OFFLINE", "HF_HOME", "TOKENIZERS_PARALLELISM")
_MAX_TEMP_DIR = 45  # Ray's socket paths below its temp dir must fit in 107 bytes


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise MissingDependencyError("ray[data]", "scale", "The Ray engine (--engine ray)") from exc
    return ray


def _temp_dir(ws: Workspace) -> Path:
    path = (ws.cache_dir / "ray-tmp").resolve()
    if len(str(path)) > _MAX_TEMP_DIR:  # a deep workspace: Ray's unix sockets would not fit below it
        path = Path(tempfile.gettempdir()) / f"curate-ray-{os.getuid()}"
    return path


@contextmanager
def ray_session(address: str | None, ws: Workspace, *, num_cpus: int | None = None) -> Iterator[Any]:
    """The ``ray`` module, connected: to ``address``, to the cluster this process already joined, or to a new
    local cluster of ``num_cpus`` logical CPUs (temp dir in the workspace, no dashboard, no usage stats).

    Shuts down only what it started.
    """
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address:
            host, _, port = address.removeprefix("ray://").rpartition(":")
            if host and port.isdigit():  # fail in seconds, not after Ray's minutes of retries
                socket.create_connection((host, int(port)), timeout=10).close()
            env = {k: os.environ[k] for k in FORWARD_ENV if k in os.environ}
            ray.init(address=address, runtime_env={"env_vars": env}, **quiet)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, _temp_dir=str(_temp_dir(ws)),
                     ignore_reinit_error=True, **quiet)
    except (OSError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
        raise InputError(f"cannot connect to {where}: {exc}. Start one with `ray start --head` and pass its "
                         "address (or `auto` on its head node), or drop --address to start a local one.") from exc
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.use_datasource_v2 = False  # V2's file-listing operator costs seconds per pass for our few files
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        yield ray
    finally:
        ray.shutdown()


@dataclasses.dataclass
class RayEngine:
    """The engine that runs the passes on Ray (see the module docstring).

    Attributes:
        address: an existing cluster (``auto``, ``HOST:6379``, ``ray://HOST:10001``); ``None`` = a local cluster.
        workers: actors per pass (default ``$CURATE_RAY_WORKERS``, else one per CPU of a local cluster and CPUs - 1
            of an existing one: one CPU stays free for Ray Data's reads and writes).
        cpus_per_worker: CPUs (and torch threads) each actor reserves.
        texts_per_call: texts per actor call of the MinHash and PII passes.
    """

    name = "ray"
    address: str | None = None
    workers: int | None = None
    cpus_per_worker: int = 1
    texts_per_call: dict[str, int] = dataclasses.field(default_factory=lambda: {"minhash": 1000, "pii": 100})

    def _workers(self, ray: Any) -> int:
        wanted = self.workers or int(os.environ.get(WORKERS_ENV) or 0)
        if wanted:
            return wanted
        cpus = float(ray.cluster_resources().get("CPU", 1))
        return max(1, int((cpus - 1) // self.cpus_per_worker))

    def _run(self, ws: Workspace, what: str, table: pa.Table, worker: type, kwargs: dict[str, Any], *,
             rows_per_call: int) -> pa.Table:
        """``table`` through ``worker`` actors in a ``ray.data`` pipeline, Parquet in and out."""
        local = self.workers or int(os.environ.get(WORKERS_ENV) or 0) or os.cpu_count() or 1
        with ray_session(self.address, ws, num_cpus=local * self.cpus_per_worker + 1) as ray:
            units = -(-table.num_rows // rows_per_call)
            size = max(1, min(units, self._workers(ray)))
            stage = ParquetStaging(ws, what)
            try:
                stage.write(table)
                ds = ray.data.read_parquet(f"{stage.uri}/in").repartition(target_num_rows_per_block=rows_per_call)
                ds = ds.map_batches(worker, fn_constructor_kwargs=kwargs, batch_size=rows_per_call,
                                    batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=size),
                                    num_cpus=self.cpus_per_worker)
                ds.write_parquet(f"{stage.uri}/out")
                out: pa.Table = stage.read()
            except Exception as exc:
                cause = curate_cause(exc)
                if cause is not None:
                    raise cause from None
                raise
            finally:
                stage.remove()
        return out

    def score(self, ws: Workspace, scorer: str, ctx: BuildContext, records: Sequence[Record], *,
              batch_size: int | None = None, actor: str | None = None,
              on_progress: ProgressFn | None = None) -> tuple[Scores, ScoreReport]:
        """As :meth:`curate.runtime.engine.LocalEngine.score`. Model scorers run in actors, batch for batch as locally;
        embedding scorers (novelty, density) embed on Ray, then score from the embedding cache here."""
        import pyarrow as pa

        from curate.runtime.catalog import build_scorer
        from curate.runtime.offload import PrecomputedScorer
        from curate.scorers.cache import DEFAULT_BATCH, cache_key, load_cached, score_records

        started = time.perf_counter()
        built = build_scorer(scorer, ctx)
        cached = load_cached(ws.store, cache_key(built, records), [r.id for r in records])
        batches = score_batches(built, records, cached, batch_size=batch_size)
        values: dict[str, float] = {}
        stand_in: Scorer = PrecomputedScorer(built, values)
        if getattr(built, "embeddings_only", False):
            stand_in = built
            embedder = getattr(built, "embedder", None)
            if isinstance(embedder, Embedder):
                labeled = [record_text(r) for r in getattr(built, "labeled", ())]  # novelty's reference
                self.embed_calls(ws, embedder, [c for b in batches for c in ([record_text(r) for r in b], labeled)
                                                if c])
        elif batches:
            spec = {"cache_dir": str(ctx.cache_dir.resolve()), "labeled": [record_json(r) for r in ctx.labeled],
                    "embedder": ctx.embedder, "model": ctx.model, "adapter": ctx.adapter, "k": ctx.k,
                    "seed": ctx.seed}
            table = pa.table({"unit": list(range(len(batches))),
                              "records": [[record_json(r) for r in b] for b in batches]})
            out = self._run(ws, "score", table, ScoreWorker,
                            {"scorer": scorer, "context": spec, "threads": self.cpus_per_worker}, rows_per_call=1)
            keys = set(out.column("key").to_pylist())
            if keys != {built.key()}:
                raise ModelError(f"the Ray workers scored under {sorted(keys)}, this machine under {built.key()!r}: "
                                 "install the same model files (and adapter) at the same paths on every node.")
            values.update(zip(out.column("id").to_pylist(), out.column("value").to_pylist(), strict=True))
        scores, report = score_records(ws.store, stand_in, records, batch_size=batch_size or DEFAULT_BATCH,
                                       actor=actor, on_progress=on_progress)
        report.seconds = time.perf_counter() - started
        return scores, report

    def embed_calls(self, ws: Workspace, embedder: Embedder, calls: Sequence[Sequence[str]]) -> None:
        """Encode on Ray what ``embedder.embed_texts`` would encode over ``calls``, into its cache, chunk by chunk."""
        self._encode(ws, embedder, calls)

    def _encode(self, ws: Workspace, embedder: Embedder, calls: Sequence[Sequence[str]]) -> dict[bytes, Any]:
        import pyarrow as pa

        from curate.runtime.embeddings import text_hash

        cache = embedder.cache
        chunks = embedding_chunks(calls, cache, embedder.call_size)
        computed: dict[bytes, Any] = {}
        if cache is None or not chunks:
            return computed
        table = pa.table({"unit": list(range(len(chunks))), "texts": chunks})
        out = self._run(ws, "embed", table, EmbedWorker, {"embedder": embedder.name, "batch_size": embedder.batch_size,
                                                          "threads": self.cpus_per_worker}, rows_per_call=1)
        columns = (out.column(c).to_pylist() for c in ("unit", "vectors", "dim"))
        found = {u: (blob, dim) for u, blob, dim in zip(*columns, strict=True)}
        for unit, chunk in enumerate(chunks):
            blob, dim = found[unit]
            keys = [text_hash(t) for t in chunk]
            vectors = np.frombuffer(blob, dtype=np.float32).reshape(len(chunk), dim)
            computed.update(zip(keys, vectors, strict=True))
        cache.put(list(computed), np.stack(list(computed.values())))  # one shard, as a local run of a few seconds
        return computed

    def embed(self, ws: Workspace, texts: Sequence[str], *, embedder: str = "minilm", batch_size: int = 64) -> Vectors:
        """As :meth:`curate.runtime.engine.LocalEngine.embed`: the same chunks, vectors and cache shards."""
        from curate.runtime.embeddings import text_hash

        emb = Embedder(embedder, cache_dir=ws.cache_dir, batch_size=batch_size)
        computed = self._encode(ws, emb, [list(texts)])
        keys = [text_hash(t) for t in texts]
        rest = [i for i, k in enumerate(keys) if k not in computed]  # cached before this call: read back
        if not computed:
            return emb.embed_texts(texts)
        vectors: list[Any] = [computed.get(k) for k in keys]
        for i, vector in zip(rest, emb.embed_texts([texts[i] for i in rest]) if rest else [], strict=True):
            vectors[i] = vector
        return np.stack(vectors).astype(np.float32, copy=False)

    def _per_text(self, ws: Workspace, what: str, texts: Sequence[str], worker: type,
                  kwargs: dict[str, Any]) -> pa.Table:
        import pyarrow as pa

        table = pa.table({"i": pa.array(np.arange(len(texts), dtype=np.int64)), "text": pa.array(list(texts))})
        return self._run(ws, what, table, worker, kwargs, rows_per_call=self.texts_per_call[what])

    def minhash(self, ws: Workspace, texts: Sequence[str], params: MinHashParams) -> Signatures:
        """As :meth:`curate.runtime.engine.LocalEngine.minhash`."""
        values = np.zeros((len(texts), params.num_perm), dtype=np.uint64)
        has = np.zeros(len(texts), dtype=np.bool_)
        if texts:
            out = self._per_text(ws, "minhash", texts, MinHashWorker, {"params": dataclasses.asdict(params)})
            rows = out.column("i").to_numpy()
            values[rows] = np.frombuffer(b"".join(out.column("signature").to_pylist()),
                                         dtype=np.uint64).reshape(len(rows), params.num_perm)
            has[rows] = out.column("has").to_numpy(zero_copy_only=False)
        return values, has

    def pii(self, ws: Workspace, texts: Sequence[str], *, entities: Sequence[str] | None = None,
            allow_list: Sequence[str] = (), threshold: float | None = None) -> list[list[Finding]]:
        """As :meth:`curate.runtime.engine.LocalEngine.pii`."""
        from curate.filters.pii import DEFAULT_ENTITIES, DEFAULT_THRESHOLD, Finding

        found: list[list[Finding]] = [[] for _ in texts]
        if texts:
            kwargs = {"entities": list(entities or DEFAULT_ENTITIES), "allow_list": list(allow_list),
                      "threshold": DEFAULT_THRESHOLD if threshold is None else threshold}
            out = self._per_text(ws, "pii", texts, PiiWorker, kwargs)
            for i, blob in zip(out.column("i").to_pylist(), out.column("findings").to_pylist(), strict=True):
                found[i] = [Finding(*f) for f in orjson.loads(blob)]
        return found

    def filter_dedup(self, ws: Workspace, **kwargs: Any) -> DedupReport:
        """:func:`curate.filters.dedup_workspace.run_dedup`, its MinHash signatures or embeddings computed on Ray
        first."""
        return dedup_on(self, ws, **kwargs)

    def filter_pii(self, ws: Workspace, **kwargs: Any) -> PiiFilterReport:
        """:func:`curate.filters.pii_workspace.run_pii`, with every stored text's PII detected on Ray first."""
        return pii_on(self, ws, **kwargs)
