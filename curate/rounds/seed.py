"""Cold-start rounds: a first batch of tasks chosen without any model (cluster centroids, rules, or stratified)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import InputError
from curate.ingest.records import Record
from curate.rounds.coldstart import centroid_seed, rule_seed, stratified_seed
from curate.rounds.selection import group_of
from curate.rounds.tasks import RoundReport, create_round
from curate.runtime.embeddings import record_text
from curate.runtime.word_features import workspace_embedder
from curate.store.workspace import Workspace

SEED_METHODS = ("centroids", "rules", "stratified")


@dataclass(frozen=True)
class SeedRound:
    """A cold-start round: the stored round and, for ``rules``, how many pool records each class's rules matched."""

    round: RoundReport
    method: str
    rule_matches: dict[str, int] = field(default_factory=dict)


def seed_round(ws: Workspace, pool: list[Record], method: str, k: int, *, rng: np.random.Generator,
               embedder: str = "minilm", rules: Path | None = None, by: str = "label",
               task_type: str | None = None) -> SeedRound:
    """Choose ``k`` records of ``pool`` by ``method`` (one of :data:`SEED_METHODS`) and store them as a round.

    ``centroids``: the records nearest the k-means centroids of their embeddings (cosine); ``rules``: records that
    a rules file's keywords and patterns match, spread over the classes; ``stratified``: random per group of ``by``
    (``label``, ``kind`` or ``meta.<column>``). Each task's origin says how it was chosen (``cold-start:...``).
    """
    matches: dict[str, int] = {}
    if method == "centroids":
        vectors = workspace_embedder(embedder, ws).embed_records(pool)
        indices: Any = centroid_seed(vectors, k, rng=rng, metric="cosine")
        origins = ["cold-start:centroid"] * len(indices)
    elif method == "rules":
        if rules is None:
            raise InputError("--method rules needs --rules FILE (TOML or JSON: keywords and patterns per class).")
        picked = rule_seed([record_text(r) for r in pool], rules, k, rng=rng)
        indices, origins = picked.indices, [f"cold-start:rule:{lab}" for lab in picked.labels]
        matches = dict(picked.candidates)
    elif method == "stratified":
        groups = [group_of(r, by) for r in pool]
        if all(g == "(none)" for g in groups):
            from curate.rounds.selection import no_group_values

            no_group_values(by, pool)  # one group would be a plain random sample, not what was asked
        indices = stratified_seed(groups, k, rng=rng)
        origins = [f"cold-start:{groups[int(i)]}" for i in indices]
    else:
        raise InputError(f"--method must be {', '.join(SEED_METHODS[:-1])} or {SEED_METHODS[-1]}; got {method!r}.")
    report = create_round(ws.store, pool, indices, scores=np.full(len(pool), np.nan), origins=origins,
                          strategy_key=f"cold-start:{method}", task_type=task_type,
                          params={"k": k, "method": method, **({"rules": str(rules)} if rules else {})})
    return SeedRound(report, method, matches)
