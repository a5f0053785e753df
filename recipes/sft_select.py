"""sft-select: ingest, scrub PII, drop near-duplicates, score what most needs a rewrite, rewrite tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from curate.runtime.recipes import RecipeResult, recipe
from curate.store.workspace import Workspace
from recipes._stages import assign, dedup, ingest_files, select_round


@recipe("sft-select")
def sft_select(
    files: Annotated[list[Path], "Prompt-completion files (JSONL, JSON, CSV, Parquet, HF folders)."],
    workspace: Annotated[Path, "Workspace folder."] = Path("curate-workspace"),
    k: Annotated[int, "How many rewrite tasks to create."] = 50,
    map_: Annotated[list[str] | None, "Column renames TARGET=SOURCE, e.g. prompt=instruction."] = None,
    pii: Annotated[str, "PII action at ingest: redact, drop, flag or off."] = "redact",
    scorer: Annotated[str, "Scorer: rewrite_need (short, off-topic and hard answers first: the best on the rewrite-"
                           "budget benchmark), relevance (no language model), ifd, perplexity, novelty."]
    = "rewrite_need",
    selector: Annotated[str, "Selector: topk (the benchmark's), cluster (the best of each cluster) or kcenter."]
    = "topk",
    model: Annotated[str, "Causal LM for IFD/perplexity: smollm2 or a local folder."] = "smollm2",
    annotators: Annotated[str | None, "Comma-separated accounts to assign the tasks to."] = None,
    seed: Annotated[int, "Random seed."] = 0,
) -> RecipeResult:
    """Pick the prompt-completion pairs most worth an expert's rewrite: short, off-topic or hard for the model."""
    ws = Workspace.open(workspace)
    result = RecipeResult("sft-select", str(ws.root))
    ingest_files(ws, result, files, mapping=map_, pii=None if pii == "off" else pii, kind="example")
    dedup(ws, result)
    number = select_round(ws, result, scorer=scorer, selector=selector, k=k, kind="example", task_type="rewrite",
                          model=model, seed=seed)
    assign(ws, result, annotators, number)
    result.next_steps.append(f"annotate: curate app -w {ws.root}")
    return result
