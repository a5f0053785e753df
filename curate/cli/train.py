"""``curate train sft|dpo|reward``: train a LoRA adapter on an export and register it as a model version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from curate.cli.options import DbOpt, JsonOpt, WorkspaceOpt, with_config_options
from curate.cli.output import console, write_json
from curate.cli.progress import bar_progress
from curate.store.workspace import Workspace
from curate.train.options import TrainOptions


@with_config_options(TrainOptions)
def train_cmd(
    method: Annotated[str, typer.Argument(help="sft (prompt/completion), dpo or reward (prompt/chosen/rejected).")],
    data: Annotated[Path, typer.Option("--data", help="Export folder or file written by `curate export` (with --eval, "
                                                      "its test split gives eval_loss).")],
    base: Annotated[str | None, typer.Option(help="Base model: smollm2 (default, the packaged SmolLM2), a local "
                                                  "folder or a Hub id.")] = None,
    out: Annotated[Path | None, typer.Option(help="Adapter folder, new or empty (default: WORKSPACE/adapters/"
                                                  "VERSION).")] = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
    **settings: Any,
) -> None:
    """Train a LoRA adapter (SFT, DPO or reward model) on an export, warm-starting from the previous round's
    adapter, and register it as a model version that `curate score --model-version` can use."""
    from curate.train import train
    from curate.train.options import check_method

    check_method(method)
    options = TrainOptions(**settings)
    ws = Workspace.open(workspace, db, must_exist=True)
    _quiet_datasets()
    with bar_progress() as progress:
        task = progress.add_task(f"train {method}", total=None, unit="steps")

        def show(step: int, total: int) -> None:
            progress.update(task, completed=step, total=total or None)

        result = train(ws, method, data, base=base, out=out, options=options, on_progress=show)
    m = result.metrics
    table = Table(title=f"model version {result.version}", show_header=False, title_justify="left")
    table.add_row("method / base", f"{result.method} on {result.base}")
    table.add_row("warm start", result.parent or "none (fresh adapter)")
    table.add_row("adapter", f"{result.adapter_path}  (sha256 {result.adapter_hash[:16]})")
    table.add_row("data", f"{data}  (sha256 {result.data_hash[:16]}, {m['train_rows']:,} train rows)")
    losses = f"train {m['train_loss']:.4f}"
    if "eval_loss" in m:
        before = f"{m['eval_loss_before']:.4f} -> " if "eval_loss_before" in m else ""
        losses += f", eval {before}{m['eval_loss']:.4f} ({m['eval_rows']:,} rows)"
    table.add_row("loss", losses)
    table.add_row("steps / time", f"{m['steps']:,} steps in {m['seconds']:.1f} s")
    if result.merged_path:
        table.add_row("merged model", str(result.merged_path))
    console.print(table)
    if result.method == "reward":  # curate's LM scorers take a causal LM; a reward model scores pairs itself
        console.print(f"a reward model: load {result.base} as AutoModelForSequenceClassification with the adapter in "
                      f"{result.adapter_path} (peft) to score pairs; curate's perplexity/IFD scorers take an sft or "
                      "dpo version", highlight=False)
    else:
        console.print(f"score the next round with it: curate score --scorer perplexity --model-version "
                      f"{result.version}")
    write_json(json_out, result.as_dict())


def _quiet_datasets() -> None:
    try:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    except ImportError:  # pragma: no cover - datasets comes with the train extra
        pass


def register(app: typer.Typer) -> None:
    """Add ``curate train`` to ``app``."""
    app.command("train")(train_cmd)
