"""``curate loop`` (the pool-based active-learning loop) and ``curate stream`` (one record at a time)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from curate.cli.options import DbOpt, JsonOpt, WorkspaceOpt, with_config_options
from curate.cli.output import console, err_console, say_word_fit, write_json
from curate.loop.state import LoopConfig
from curate.runtime.config import comma_tuple
from curate.store.workspace import Workspace

EmbedderOpt = Annotated[str, typer.Option(
    help="Sentence embedder: minilm, a folder, a Hub id, or package.module:function (texts -> (n, d) array); with "
         "+words (minilm+words) word TF-IDF features beside it, fitted once on the pool (better on short texts).")]
AnnotatorsOpt = Annotated[str | None, typer.Option(help="Comma-separated accounts whose queues get the tasks.")]
SchemaOpt = Annotated[str | None, typer.Option(help="Label schema of text tasks (curate schema add).")]


def _embedder(spec: str, ws: Workspace, *, memo: bool = False) -> Any:
    """An embedder for ``spec``: a model name/folder, ``package.module:function`` as the encoder, or either with
    ``+words`` (word features fitted on the pool the first time; :mod:`curate.runtime.word_features`)."""
    from curate.runtime.word_features import workspace_embedder

    return workspace_embedder(spec, ws, memo=memo, on_fit=say_word_fit)


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _progress_line(event: str, p: dict[str, Any]) -> str | None:
    if event == "select":
        return f"round {p['loop_round']}: scoring {p['candidates']:,} candidates, selecting {p['k']}"
    if event == "round":
        return f"round {p['loop_round']}: {p['tasks']} task(s) in round #{p['round']} ({p['suggestions']} with a " \
               "model suggestion)"
    if event == "answered":
        return f"round {p['loop_round']}: the oracle answered {p['answered']} task(s)"
    if event == "eval":
        m = p["metrics"]
        return (f"round {p['loop_round']}: {p['labels']} labels -> test accuracy {_fmt(m.get('accuracy'))}, "
                f"calibration accuracy {_fmt(m.get('calibration_accuracy'))} / ECE {_fmt(m.get('calibration_ece'))}"
                f" ({p['overrules']} overrule(s))")
    if event == "stop":
        return f"[bold]stop[/]: {p['reason']} after {p['rounds']} round(s), {p['labels']} labels"
    if event == "waiting":
        return f"round {p['loop_round']} (#{p['round']}): waiting for {p['open']} answer(s) from the app"
    return None


def _table(result: Any) -> Table:
    table = Table("round", "labels", "test accuracy", "macro-F1", "calibration acc", "calibration ECE", "stop",
                  title=f"loop {result.name}: {result.status}", title_justify="left")
    for i, h in enumerate(result.history):
        m = h["metrics"]
        last = i == len(result.history) - 1
        table.add_row(str(h["loop_round"]), str(h["labels"]), _fmt(m.get("accuracy")), _fmt(m.get("macro_f1")),
                      _fmt(m.get("calibration_accuracy")), _fmt(m.get("calibration_ece")),
                      (result.stop_reason or "") if last else "")
    return table


@with_config_options(LoopConfig, before="wait")
def loop_cmd(
    wait: Annotated[bool, typer.Option(help="Wait for the app's answers (poll) instead of exiting.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls with --wait.")] = 5.0,
    max_wait: Annotated[float | None, typer.Option(help="Give up waiting after this many seconds.")] = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
    **settings: Any,
) -> None:
    """Run (or resume) an active-learning loop: update the model, score, select, get answers, evaluate, repeat;
    stop at the budget, the target, or when the gain per label runs out."""
    from curate.loop.pool_loop import run_loop

    config = LoopConfig(**settings)
    name, embedder = config.name, config.embedder
    ws = Workspace.open(workspace, db)
    with console.status(f"loop {name}") as status:
        def show(event: str, payload: dict[str, Any]) -> None:
            line = _progress_line(event, payload)
            if line:
                console.print(line)
                status.update(f"loop {name}: {line}")

        result = run_loop(ws, config, embedder=_embedder(embedder, ws), wait=wait, poll_seconds=poll,
                          max_wait=max_wait, on_event=show)
    console.print(_table(result))
    if result.status == "waiting":
        console.print(f"waiting for {result.waiting_for} answer(s) in the app; run the same command again (or add "
                      "--wait) to continue.")
    write_json(json_out, {"config": config.to_dict(), **result.as_dict()})


def stream_cmd(
    input_: Annotated[str, typer.Option("--input", help="JSONL file of records, or - for stdin.")] = "-",
    out: Annotated[str, typer.Option(help="Where the decisions go, one JSON line each (- = stdout).")] = "-",
    follow: Annotated[bool, typer.Option(help="Keep reading a growing file (Ctrl-C stops and saves).")] = False,
    idle_exit: Annotated[float | None, typer.Option(help="With --follow: stop after this many idle seconds.")]
    = None,
    target_rate: Annotated[float, typer.Option(help="Share of records to label now, in (0, 1].")] = 0.1,
    kind: Annotated[str, typer.Option(help="Record kind of the stream.")] = "text",
    scorer: Annotated[str, typer.Option(help="Scorer (as curate score) or package.module:Class.")] = "novelty",
    drift_window: Annotated[int, typer.Option(help="Stream records the drift test compares (0: no drift "
                                                   "monitor).")] = 200,
    drift_alpha: Annotated[float, typer.Option(help="Level of each drift test.")] = 0.01,
    drift_reference: Annotated[int, typer.Option(help="Size of the pool sample the stream is compared with.")]
    = 300,
    annotators: AnnotatorsOpt = None,
    schema: SchemaOpt = None,
    name: Annotated[str, typer.Option(help="Session name; run again with it to continue the session.")] = "stream",
    embedder: EmbedderOpt = "minilm",
    seed: Annotated[int, typer.Option(help="Seed of the pool sample and the drift tests.")] = 0,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Decide label-now or auto-accept for each incoming record at a target rate; label-now records become tasks
    in the app at once; a drift monitor says when the stream has moved away from the pool."""
    from curate.loop.stream import StreamConfig, run_stream

    config = StreamConfig(name=name, kind=kind, target_rate=target_rate, scorer=scorer,
                          annotators=comma_tuple(annotators), schema=schema, drift_window=drift_window,
                          drift_alpha=drift_alpha, drift_reference=drift_reference, embedder=embedder, seed=seed)
    ws = Workspace.open(workspace, db)
    report_console = err_console if out == "-" else console

    def show(item: dict[str, Any]) -> None:
        if item["type"] == "drift":
            err_console.print(f"[yellow]drift[/] at record {item['at']}: MMD² {item['mmd2']:.4f}, p = "
                              f"{item['p_value']:.4f} < {item['alpha']}: {item['advice']}")

    summary = run_stream(ws, config, None if input_ == "-" else Path(input_), None if out == "-" else Path(out),
                         follow=follow, idle_exit=idle_exit, embedder=_embedder(embedder, ws, memo=True),
                         on_line=show)
    drift = summary.drift or {}
    report_console.print(f"stream {name}: {summary.records:,} records, {summary.labelled:,} to label "
                         f"({summary.rate:.1%}, target {summary.target_rate:.1%}), {summary.accepted:,} auto-accepted, "
                         f"{summary.errors:,} bad line(s); {summary.tasks:,} task(s) in round #{summary.round}; "
                         f"drift: {len(drift.get('events', []))} event(s) in {drift.get('tests', 0)} test(s)")
    for note in summary.notes:
        report_console.print(note, highlight=False)
    write_json(json_out, summary.as_dict())
    if summary.errors and not summary.records:
        err_console.print(f"[red]No line of the input could be read as a {kind} record[/]: see the errors in the "
                          "output (a hint names --kind when the lines are records of another kind).")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``curate loop`` and ``curate stream`` to ``app``."""
    app.command("loop")(loop_cmd)
    app.command("stream")(stream_cmd)
