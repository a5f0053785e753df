"""What every command prints to: the consoles, JSON reports, progress bars, the acting user's name, PII previews
and warnings, and the label-efficiency report's table."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from curate.filters.pii_preview import PiiPreview
    from curate.filters.pii_workspace import PiiOptions
    from curate.filters.policy import RecordPlan

console = Console()
err_console = Console(stderr=True)


def write_json(path: Path | None, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically; ``-`` prints it to stdout; None does nothing."""
    if path is None:
        return
    if str(path) == "-":
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str).decode()
                         + "\n")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str))
    os.replace(tmp, path)


def actor() -> str:
    """Who runs the command, for the audit log: ``curate --actor`` / ``$CURATE_ACTOR``, else the OS user name."""
    from curate.store.audit import default_actor

    return default_actor()


_CONTEXT = 40
SHOWN_TEXTS = 6


def note_pii_reversibility(options: PiiOptions, action: str, workspace_key: str | None) -> None:
    """Say once, before any work, whether what this command redacts can be undone."""
    if action == "flag":
        return
    if options.key is None and workspace_key is not None:
        err_console.print(f"[bold yellow]warning:[/] this workspace keeps the originals of earlier redactions "
                          f"(key {workspace_key}), but no key was given: what this command redacts cannot be undone. "
                          "Pass --key-file.", highlight=False)
    elif options.key is None:
        err_console.print("[yellow]note:[/] no PII key given, so redaction cannot be undone (nothing is kept). To "
                          "keep the originals encrypted: curate pii init-key PATH, then --key-file PATH.",
                          highlight=False)


def warn_pii_share(summary: dict[str, Any], limit: float, *, preview: bool = False) -> None:
    """Warn loudly when redaction changed more than ``limit`` of the records (likely false positives)."""
    from curate.filters.pii_preview import share_advice

    share = float(summary.get("changed_share", 0.0))
    if share <= limit:
        return
    top = ", ".join(f"{t} {n:,}" for t, n in sorted(summary.get("records_by_type", {}).items(),
                                                     key=lambda kv: -kv[1])[:4])
    dropping = summary.get("action") == "drop" and not summary.get("records", {}).get("redacted")
    what = ("would drop" if preview else "dropped") if dropping else ("would change" if preview else "changed")
    err_console.print(
        f"[bold red]WARNING: PII {'dropping' if dropping else 'redaction'} {what} {share:.0%} of the records[/] "
        f"(more than {limit:.0%}; records per type: {top}). {share_advice(summary, preview=preview)}",
        highlight=False)


def _clip(text: str, *, head: bool, tail: bool) -> str:
    text = text.replace("\n", " ⏎ ")
    if head and tail and len(text) > 2 * _CONTEXT + 5:
        return text[:_CONTEXT] + " … " + text[-_CONTEXT:]
    if tail and not head and len(text) > _CONTEXT:
        return "… " + text[-_CONTEXT:]
    if head and not tail and len(text) > _CONTEXT:
        return text[:_CONTEXT] + " …"
    return text


def highlight(plan: RecordPlan) -> list[tuple[str, str]]:
    """``(path, rich markup)`` of each text with findings: each value struck out in red and followed by its
    placeholder in green (flagged: underlined yellow; dropped: red with the type); long stretches cut."""
    from curate.filters.pii import record_placeholders

    # numbered as the stored record is: a name part ("Siobhan") shows the placeholder of its full name
    placeholders = record_placeholders([t.text for t in plan.texts], [t.findings for t in plan.texts],
                                       allow_list=plan.policy.allow_list)
    out = []
    for t in plan.texts:
        if not t.findings:
            continue
        parts, pos = [], 0
        for f in t.findings:
            action = plan.policy.action(f.entity_type)
            value = escape(t.text[f.start : f.end].replace("\n", " ⏎ "))
            parts.append(escape(_clip(t.text[pos : f.start], head=pos > 0, tail=True)))
            if action == "redact":
                mark = escape(placeholders.get(f.entity_type, t.text[f.start : f.end]))
                parts.append(f"[red strike]{value}[/][bold green]{mark}[/]")
            elif action == "flag":
                parts.append(f"[yellow underline]{value}[/][dim]({f.entity_type})[/]")
            else:
                parts.append(f"[bold red]{value}[/][dim](drop: {f.entity_type})[/]")
            pos = f.end
        parts.append(escape(_clip(t.text[pos:], head=True, tail=False)))
        out.append((t.path, "".join(parts)))
    return out


def print_pii_preview(preview: PiiPreview, *, title: str) -> None:
    """The sample records with their redactions highlighted, then the counts per type; says nothing changed."""
    for plan in preview.samples:
        where = f" [dim]({escape(plan.record.source)} line {plan.record.line})[/]" if plan.record.line else ""
        console.print(f"[bold cyan]record {plan.record.id[:8]}[/]{where}", highlight=False)
        shown = highlight(plan)
        for path, markup in shown[:SHOWN_TEXTS]:
            console.print(f"  [bold]{escape(path)}[/]: {markup}", highlight=False)
        if len(shown) > SHOWN_TEXTS:
            console.print(f"  ... and {len(shown) - SHOWN_TEXTS} more text(s)")
    summary = preview.summary
    table = Table("entity type", "records", "findings", title=title, title_justify="left")
    for entity, n in sorted(summary["records_by_type"].items(), key=lambda kv: -kv[1]):
        table.add_row(entity, f"{n:,}", f"{summary['by_type'].get(entity, 0):,}")
    console.print(table)
    scope = f"the first {preview.scanned:,} records" if preview.more else f"{preview.scanned:,} records"
    console.print(f"[bold]preview[/]: nothing changed. {summary['changed']:,} of {scope} "
                  f"({summary['changed_share']:.1%}) would be changed; {preview.seconds:.1f} s", highlight=False)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(stats: dict[str, Any]) -> str:
    if stats.get("mean") is None:
        return "n/a"
    ci = stats.get("ci95")
    return f"{stats['mean']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def chance_hint(verdict: dict[str, Any]) -> str | None:
    """What to run when a verdict's per-seed interval lies above 1 but nothing says how far chance goes on these
    curves (no ``--null-streams``); None otherwise. On near-flat curves random against random clears that interval
    test often (4 of 20 streams on UltraFeedback)."""
    if not verdict["ci_above_1"] or "null_streams" in verdict:
        return None
    return ("the per-seed interval lies above 1, but on flat curves random against random can too: rerun with "
            "--null-streams 19 to read the ratio against chance on this data (19 more random runs per seed; "
            "p < 0.05 needs 19 or more)")


def _within_chance(verdict: dict[str, Any]) -> str:
    """Why a verdict with null streams is not beyond chance: against random's own stream, or against the mean of
    all random streams."""
    if verdict["best_ratio"] is None or verdict["best_ratio"] <= verdict["null_range"][1]:
        return f"within chance: random reads up to {verdict['null_range'][1]:.2f} against random"
    mean = verdict.get("ratio_against_mean_random")
    read = "never reaches its final accuracy" if mean is None else f"reads {mean:.2f}"
    return (f"within chance against the mean of all random streams: it {read}, where one random stream reads "
            f"up to {verdict['mean_random_null_range'][1]:.2f} against the others")


def print_label_efficiency(report: dict[str, Any]) -> None:
    """The table of a ``curate bench label-efficiency`` report: ratio per noise level, final accuracy, ECE, and
    the verdict against the target."""
    for file in (report["data"].get("pool_file"), report["data"].get("test_file")):
        if file and file.get("skipped"):
            reasons = file["skip_reasons"]
            lines = ", ".join(str(e["line"]) for e in file.get("skipped_examples", [])[:5])
            console.print(f"[yellow]skipped[/] {file['skipped']:,} of {file['rows'] + file['skipped']:,} rows of "
                          f"{file['source']} (lines {lines}{', ...' if file['skipped'] > 5 else ''}): "
                          + "; ".join(f"{n:,} x {r}" for r, n in list(reasons.items())[:4]), highlight=False)
    for warning in report.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    runs = report["runs"]
    table = Table("strategy", *[f"ratio @ {k.replace('_', ' ')}" for k in runs],
                  "final accuracy (mean [95% CI])", "ECE (calibration slice)", title=report["metric"])
    first = next(iter(runs.values()))
    for name in first["curves"]:
        ratios = []
        for run in runs.values():
            r = run["ratios"].get(name)
            if r is None:
                ratios.append("baseline")
            else:
                ci = r["per_seed_ci"].get("ci95")
                text = ("~" if r["extrapolated"] else "") + _fmt(r["ratio"], 2)
                ratios.append(text + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
        ece = first["final"][name].get("ece_calibration", {})
        table.add_row(name, *ratios, _ci(first["final_accuracy"][name]), _ci(ece) if ece else "n/a")
    console.print(table)
    verdict = report["verdict"]
    for key, v in verdict.items():
        if isinstance(v, dict) and "best_ratio" in v:
            met = "[green]met[/]" if v["target_met"] else "[red]not met[/]"
            why = [] if v["target_met_point_estimate"] else ["ratio below target"]
            why += [] if v["ci_above_1"] else ["per-seed 95% CI not above 1"]
            why += ["random's curve is flat (ratio not meaningful)"] if v["random_curve_flat"] else []
            why += [] if v.get("beyond_chance", True) else [_within_chance(v)]
            console.print(f"{key.replace('_', ' ')}: best {v['best_strategy']} ratio {_fmt(v['best_ratio'], 2)} "
                          f"(target >= {verdict['target_ratio']}): {met}" + (f" ({'; '.join(why)})" if why else ""))
            hint = chance_hint(v)
            if hint:
                console.print(f"  {hint}", highlight=False)
            null = runs[key].get("null")
            if null is not None:
                from curate.bench.label_efficiency_null import mean_random_line, null_spread

                console.print(f"  random against random, {null['streams']} other streams: ratios {null_spread(null)}"
                              f", per-seed 95% CI above 1 in {null['per_seed_ci_above_1']}; p against them: "
                              + ", ".join(f"{name} {p:.2f}" for name, p in null["p_value"].items()), highlight=False)
                if v["best_strategy"] in null.get("mean_random", {}).get("ratios", {}):
                    console.print(f"  {mean_random_line(null, v['best_strategy'])}", highlight=False)
    for note in verdict.get("why_not", []):
        console.print(f"  - {note}", highlight=False)
    console.print(f"whole pool labelled: {first['full_pool_accuracy']:.3f}; features {report['features']['name']} "
                  f"({report['features']['seconds']} s); total {report['seconds']} s", highlight=False)


def say_word_fit(spec: str, n_texts: int) -> None:
    """Tell the user that the word features of ``--embedder <base>+words`` are being fitted (once per workspace)."""
    err_console.print(f"fitting the word features of --embedder {spec} on {n_texts:,} pool texts (once per "
                      "workspace; kept in its cache)")


def print_pii(results: dict[str, Any]) -> None:
    """``curate bench pii``'s report of one gold set: P / R / F1 per entity type, curate vs stock, and the micro."""
    from curate.bench.pii import table_rows

    table = Table("type", "curate P / R / F1", "stock Presidio P / R / F1", "gold", "in micro")
    rows = table_rows(results)
    for entity, cur, base, gold, counted in rows:
        table.add_row(entity, cur, base, str(gold), "yes" if counted else "no")
    console.print(table)
    if not_scored := [r[0] for r in rows if not r[-1]]:
        console.print(f"not scored, not in the micro average (no gold span, or a type curate does not report by "
                      f"default): {', '.join(not_scored)}", highlight=False)
    for name in ("curate", "baseline_presidio_stock"):
        m = results[name]["micro"]
        console.print(f"micro {name}: P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f}, "
                      f"{results[name]['records_per_s']} records/s")


def print_rewrite_budget(report: dict[str, Any]) -> None:
    """``curate bench rewrite-budget``'s table: damaged-row recall per strategy and budget, and that recall over
    the budget's share of the pool (what random picks find on average, so the random row itself reads about 1x)."""
    table = Table("strategy", *(f"k={k}: recall (x chance)" for k in report["budgets"]),
                  title=f"damaged rows found ({report['rows']:,} rows, {report['damage_share']:.0%} damaged, "
                        f"{len(report['seeds'])} seed(s))", title_justify="left",
                  caption="x chance: recall / (k / rows), what random picks find on average", caption_justify="left")
    for name, cells in report["summary"].items():
        table.add_row(name, *(f"{c['recall']:.2f} ({c['ratio_vs_random']:.2f}x)" for c in cells))
    console.print(table)


def print_pii_speed(report: dict[str, Any]) -> None:
    """The table of ``curate bench pii --speed-data``: characters per second of each way, per text set."""
    table = Table("text set", "texts", "characters", "curate batched", "curate per text", "stock per text",
                  "stock batched", "curate / stock", title="PII detection speed (characters per second)",
                  title_justify="left")
    for name, r in report.items():
        table.add_row(name, f"{r['texts']:,}", f"{r['characters']:,}",
                      *(f"{r[w]['chars_per_second']:,.0f}" for w in ("curate_batched", "curate_per_text",
                                                                      "stock_per_text", "stock_batched")),
                      f"{r['curate_vs_stock']:.2f}x")
    console.print(table)


def print_lora_budget(report: dict[str, Any]) -> None:
    """``curate bench rewrite-budget --lora``'s table: held-out loss per strategy and budget (random's; x random)."""
    every, before = next(iter(report["random_curve"].values()))[-1][1], report["base_model_loss"] or float("nan")
    table = Table("strategy", *(f"k={k}: loss (random's; x random)" for k in report["budgets"]),
                  title=f"held-out loss after LoRA on the rewritten pool (base model {before:.3f}; every row "
                        f"rewritten {every:.3f})", title_justify="left")
    for name, cells in report["summary"].items():
        table.add_row(name, *(f"{c['loss']:.3f} ({c['random_loss']:.3f}; {c['ratio_vs_random']:.2f}x)"
                              for c in cells))
    console.print(table)
