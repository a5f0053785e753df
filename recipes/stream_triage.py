"""stream-triage: decide for each incoming record whether an expert should see it, at a set rate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from curate.runtime.recipes import RecipeResult, recipe
from curate.store.workspace import Workspace


@recipe("stream-triage")
def stream_triage(
    source: Annotated[Path, "JSONL file of incoming records (one per line)."],
    workspace: Annotated[Path, "Workspace folder (its pool is the drift reference)."] = Path("curate-workspace"),
    out: Annotated[Path | None, "Decisions JSONL (default: WORKSPACE/reports/stream-decisions.jsonl)."] = None,
    target_rate: Annotated[float, "Share of records sent to an expert."] = 0.1,
    kind: Annotated[str, "Record kind: text, example or preference."] = "text",
    scorer: Annotated[str, "Scorer: novelty, margin, density, ..."] = "novelty",
    annotators: Annotated[str | None, "Comma-separated accounts that get the label-now records."] = None,
    schema: Annotated[str | None, "Label schema of the tasks."] = None,
    drift_window: Annotated[int, "Stream records the drift test compares with the pool (0 turns it off)."] = 200,
    name: Annotated[str, "Session name (a rerun continues it)."] = "stream-triage",
) -> RecipeResult:
    """Label-now or auto-accept each record as it arrives, within budget, and watch for drift."""
    from curate.loop.stream import StreamConfig, run_stream

    ws = Workspace.open(workspace)
    result = RecipeResult("stream-triage", str(ws.root))
    decisions = out or ws.reports_dir / "stream-decisions.jsonl"
    with result.step("stream") as s:
        config = StreamConfig(name=name, kind=kind, target_rate=target_rate, scorer=scorer, schema=schema,
                              annotators=tuple(a.strip() for a in (annotators or "").split(",") if a.strip()),
                              drift_window=drift_window)
        summary = run_stream(ws, config, source, decisions)
        s.update(records=summary.records, labelled=summary.labelled, accepted=summary.accepted,
                 rate=round(summary.rate, 4), tasks=summary.tasks,
                 drift=bool(summary.drift and summary.drift.get("drifted")))
    result.next_steps.append(f"decisions: {decisions}")
    return result
