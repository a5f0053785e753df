"""cold-start: a first round chosen without any model (cluster centroids of the embeddings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np

from curate.runtime.recipes import RecipeResult, recipe
from curate.store.workspace import Workspace
from recipes._stages import assign, ingest_files


@recipe("cold-start")
def cold_start(
    files: Annotated[list[Path] | None, "Files to ingest first (optional)."] = None,
    workspace: Annotated[Path, "Workspace folder."] = Path("curate-workspace"),
    k: Annotated[int, "Seed size: how many tasks."] = 20,
    kind: Annotated[str | None, "Record kind: example, preference, candidates or text."] = None,
    schema: Annotated[str | None, "Label schema for label tasks (curate schema add NAME --classes ...)."] = None,
    annotators: Annotated[str | None, "Comma-separated accounts to assign the tasks to."] = None,
    map_: Annotated[list[str] | None, "Column renames TARGET=SOURCE."] = None,
    seed: Annotated[int, "Random seed."] = 0,
) -> RecipeResult:
    """Label a first, representative batch before any model exists: one record per embedding cluster."""
    from curate.rounds.coldstart import centroid_seed
    from curate.rounds.selection import candidates
    from curate.rounds.tasks import create_round
    from curate.runtime.embeddings import Embedder

    ws = Workspace.open(workspace)
    result = RecipeResult("cold-start", str(ws.root))
    if files:
        ingest_files(ws, result, files, mapping=map_, pii=None, kind=kind)
    with result.step("centroid seed") as s:
        pool = candidates(ws, kind=kind)
        vectors = Embedder(cache_dir=ws.cache_dir).embed_records(pool)
        indices = centroid_seed(vectors, k, rng=np.random.default_rng(seed), metric="cosine")
        report = create_round(ws.store, pool, indices, scores=np.zeros(len(pool)),
                              origins=["cold-start:centroid"] * len(indices), strategy_key="cold-start:centroids")
        s.update(candidates=len(pool), round=report.number, tasks=report.tasks)
    assign(ws, result, annotators, report.number, schema=schema)
    if schema is None and any(pool[int(i)].kind == "text" for i in indices):  # label tasks answer from a schema
        result.next_steps.append(f"label tasks need a label schema: curate schema add NAME --classes A,B,... -w "
                                 f"{ws.root}, then curate assign --round {report.number} --schema NAME --annotators "
                                 "NAME,...")
    result.next_steps.append(f"annotate: curate app -w {ws.root}")
    return result
