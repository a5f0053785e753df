"""Shared stages of the shipped recipes (thin calls into curate's library)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from curate.runtime.recipes import RecipeResult
from curate.store.workspace import Workspace


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int, int], None]]:
    """Progress of a long step on stderr (a bar on a terminal, plain lines with rate and ETA when piped, nothing with
    --quiet); yields ``update(done, total)``."""
    from curate.cli.progress import bar_progress

    with bar_progress() as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, total_now: int) -> None:
            bar.update(task, completed=done, total=total_now)

        yield update


def ingest_files(ws: Workspace, result: RecipeResult, files: list[Path], *, mapping: list[str] | None,
                 pii: str | None, kind: str | None = None, split: str = "pool", pii_options: Any = None) -> None:
    """Ingest ``files`` (with ``--map`` renames and an optional PII action and
    :class:`~curate.filters.pii_workspace.PiiOptions`, such as an allow-list) as one step."""
    from curate.ingest.formats import parse_mapping
    from curate.ingest.sources import ingest

    with result.step("ingest" if split == "pool" else f"ingest {split}") as s:
        rows = new = quarantined = duplicates = dropped = 0
        for path in files:
            report = ingest(ws, path, kind=kind, mapping=parse_mapping(mapping or []), pii=pii, split=split,
                            pii_options=pii_options)
            if report.valid == 0:
                _nothing_valid(path, report)
            rows += report.rows
            new += report.new
            quarantined += report.quarantined
            duplicates += report.duplicates  # with PII redaction, also rows that became identical once redacted
            dropped += int(report.pii.get("records", {}).get("dropped", 0)) if report.pii else 0
        s.update(files=len(files), rows=rows, new_records=new, duplicates_collapsed=duplicates,
                 quarantined=quarantined, pii=pii or "off", **({"dropped_for_pii": dropped} if dropped else {}))


def _nothing_valid(path: Path, report: Any) -> None:
    """Stop the recipe when ``path`` gave no valid row: its later steps would only find an empty pool."""
    from curate.errors import InputError

    if report.rows == 0:
        raise InputError(f"{path}: no rows were read (the file is empty); nothing was added.")
    reason, count = next(iter(report.reasons.items()), ("unknown", report.quarantined))
    lines = ", ".join(str(n) for n in report.reason_lines.get(reason, [])[:5])
    raise InputError(
        f"{path}: none of its {report.rows:,} rows could be read, so the recipe stopped before its next steps. "
        f"{count:,} x {reason}" + (f" (lines {lines}, ...)" if lines else "") + ". Rows quarantined in "
        f"{report.quarantine_path}. Ingest it first with `curate ingest {path} ...` (it takes --map, --columns for "
        "a file without a header line, --encoding and --format), then run the recipe again without the file.")


def dedup(ws: Workspace, result: RecipeResult, method: str = "minhash") -> None:
    """Near-duplicates and test-set leaks out of the pool."""
    from curate.filters.dedup_workspace import run_dedup

    with result.step(f"dedup ({method})") as s:
        report = run_dedup(ws, method=method)
        s.update(records=report.records, duplicates=report.removed, leaks=report.leaks)


def _embeddings_only(scorer: str) -> bool:
    from curate.runtime.catalog import scorer_class

    cls = scorer_class(scorer)
    return cls is not None and cls.embeddings_only


def select_round(ws: Workspace, result: RecipeResult, *, scorer: str, selector: str, k: int, kind: str | None,
                 task_type: str | None, model: str = "smollm2", random_mix: float = 0.1, seed: int = 0,
                 labeled: Any = None) -> int:
    """Score the candidates, select ``k`` and create a round; returns the round number."""
    from curate.rounds.selection import Strategy, candidates, labeled_records, run_round
    from curate.runtime.catalog import BuildContext, build_scorer, build_selector
    from curate.runtime.embeddings import Embedder

    with result.step(f"score + select ({scorer} / {selector})") as s:
        ctx = BuildContext(cache_dir=ws.cache_dir, labeled=labeled if labeled is not None
                           else labeled_records(ws, kind=kind), model=model, seed=seed)
        strategy = Strategy(build_scorer(scorer, ctx), build_selector(selector), random_mix=random_mix)
        pool = candidates(ws, kind=kind)
        with progress(f"score ({scorer})", len(pool)) as update:
            report = run_round(ws, strategy, k, pool=pool, rng=np.random.default_rng(seed),
                               embedder=Embedder(cache_dir=ws.cache_dir), task_type=task_type,
                               model_version=None if _embeddings_only(scorer) else model,
                               on_progress=update)
        s.update(candidates=report.candidates, scored=report.scoring.computed, cached=report.scoring.cached,
                 round=report.round.number, tasks=report.round.tasks, origins=report.origins)
        if report.two_stage is not None:  # `curate score --two-stage` ran: its exactly scored records only
            s.update(two_stage_proxy=report.two_stage["proxy_key"], offered=report.offered)
    return report.round.number


def assign(ws: Workspace, result: RecipeResult, annotators: str | None, round_number: int, *,
           schema: str | None = None, overlap: float = 0.0) -> None:
    """Put the round's tasks in the annotators' queues (skipped when no annotators are named)."""
    from curate.rounds.assignment import assign_round

    names = [a.strip() for a in (annotators or "").split(",") if a.strip()]
    if not names:
        result.next_steps.append(f"assign round {round_number}: curate assign --annotators NAME,... --round "
                                 f"{round_number}")
        return
    with result.step("assign") as s:
        report = assign_round(ws.store, names, round_number=round_number, overlap=overlap, schema=schema)
        s.update(assignments=report["assignments"], overlapping=report["overlapping_tasks"])
