"""``curate bench pii|dedup|label-efficiency``: curate's methods against the simple baselines, on your own data."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from curate.cli.options import ColumnsOpt, EncodingOpt, JsonOpt, NullStreamsOpt
from curate.cli.output import (
    console,
    print_label_efficiency,
    print_lora_budget,
    print_pii,
    print_pii_speed,
    print_rewrite_budget,
    write_json,
)
from curate.cli.progress import bar_progress
from curate.store.workspace import Workspace

bench_app = typer.Typer(help="Benchmarks on your own data.", no_args_is_help=True)


@bench_app.command("pii")
def bench_pii_cmd(
    data: Annotated[list[Path] | None, typer.Option(
        help="Gold PII spans: JSON/JSONL in the Presidio-research, spaCy, doccano or ai4privacy layout, the Hub's "
             "token rows (tokens + ner_tags), or CoNLL IOB/IO tags (.conll, .iob, .bio, .txt; person, location). "
             "Repeatable: each set is scored for curate and stock Presidio.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Format of every --data file: presidio (gold-span records in "
                                                      "any layout: JSON, JSONL, CSV/TSV, Parquet), conll, or auto "
                                                      "(by the suffix, else the content).")] = "auto",
    tag_names: Annotated[str | None, typer.Option(
        help="Names of integer ner_tags of token rows, in order, comma-separated (e.g. O,B-PER,I-PER,B-ORG,I-ORG,"
             "B-LOC,I-LOC,B-MISC,I-MISC for conll2003).")] = None,
    fp_data: Annotated[list[Path] | None, typer.Option(
        help="Text with little or no real PII (JSONL, JSON, CSV/TSV, Parquet; .gz ok): placeholders per 1,000 words "
             "and share of records changed, curate vs stock. Repeatable.")] = None,
    fp_field: Annotated[str, typer.Option(help="Field of --fp-data holding the text (a dotted path as "
                                               "--map reads it, e.g. messages.0.content; FIELD:prompt = the HH-RLHF "
                                               "prompt of a transcript).")] = "prompt",
    verdicts: Annotated[Path | None, typer.Option(help="JSON of hand-checked verdicts per sampled finding.")] = None,
    speed_data: Annotated[list[Path] | None, typer.Option(
        help="Long texts (JSONL, JSON, CSV/TSV, Parquet; .gz ok): characters per second of curate (batched, as ingest "
             "runs it, and per text) and stock Presidio (per text and batched) in one run. Repeatable.")] = None,
    speed_fields: Annotated[str, typer.Option(help="Fields of --speed-data holding the texts, comma-separated.")]
    = "prompt,chosen,rejected",
    speed_limit: Annotated[int, typer.Option(help="Texts per --speed-data set.")] = 300,
    limit: Annotated[int | None, typer.Option(min=1, help="Use only the first N records of every set (N >= 1; "
                                                         "leave out for all).")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Precision, recall and F1 per entity type of curate's PII detection vs stock Presidio, side by side, on every
    gold set; false positives of both on text without PII; and their speed on long texts."""
    from curate.bench.pii import run, run_suite
    from curate.errors import InputError

    if not data and not fp_data and not speed_data:
        raise InputError("curate bench pii needs --data FILE (gold spans), --fp-data FILE (text without PII) or "
                         "--speed-data FILE (long texts).")
    if fmt not in ("auto", "conll", "presidio"):
        raise InputError(f"--format must be presidio, conll or auto; got {fmt!r}")
    names = _names(tag_names, "--tag-names") if tag_names is not None else None
    speed: dict[str, Any] = {}
    if speed_data:
        speed = {"speed": _bench_pii_speed(speed_data, _names(speed_fields, "--speed-fields"), speed_limit)}
        if not data and not fp_data:
            write_json(json_out, speed)
            return
    if data and len(data) == 1 and not fp_data:
        with console.status("PII benchmark"):
            results = run(data[0], fmt=fmt, limit=limit, tag_names=names)
        print_pii(results)
        write_json(json_out, {**results, **speed})
        return
    with console.status("PII benchmark") as status:
        report = run_suite([(p.stem, p) for p in data or []], [(p.name, p, fp_field) for p in fp_data or []],
                           limit=limit, verdicts=verdicts, fmt=fmt, tag_names=names,
                           say=lambda s: status.update(f"PII benchmark: {s}"))
    for name, results in report["gold"].items():
        console.print(f"[bold]{name}[/]", highlight=False)
        print_pii(results)
    table = Table("text set", "curate per 1,000 words", "stock per 1,000 words", "curate / stock records changed")
    for name, r in report["false_positives"].items():
        c, b = r["curate"], r["baseline_presidio_stock"]
        table.add_row(name, str(c["per_1000_words"]), str(b["per_1000_words"]),
                      f"{c['records_changed']:.3f} / {b['records_changed']:.3f}")
    if report["false_positives"]:
        console.print(table)
    write_json(json_out, {**report, **speed})


def _bench_pii_speed(paths: list[Path], fields: list[str], limit: int) -> dict[str, Any]:
    from curate.bench.pii_speed import run_speed

    with console.status("PII speed") as status:
        report = run_speed([(p.name, p, fields) for p in paths], limit=limit, say=status.update)
    print_pii_speed(report)
    return report


@bench_app.command("rewrite-budget")
def bench_rewrite_budget_cmd(
    data: Annotated[Path, typer.Argument(help="Prompt-completion file: JSONL, JSON, CSV/TSV, Parquet (.gz ok).")],
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="TARGET=SOURCE, e.g. --map prompt=question --map completion=answer (repeatable).")] = None,
    columns: ColumnsOpt = None,
    encoding: EncodingOpt = "utf-8",
    strategies: Annotated[str, typer.Option(
        help="Comma list: random, diversity, and scorers such as perplexity, ifd, longest, shortest, relevance, "
             "rewrite_need; rank-averages such as relevance+perplexity.")]
    = "random,shortest,longest,relevance,diversity,perplexity,ifd",
    pool: Annotated[int, typer.Option(help="Rows sampled from the file (seeded).")] = 800,
    damage_share: Annotated[float, typer.Option(help="Share of the rows damaged.")] = 0.3,
    damage_kinds: Annotated[str, typer.Option(
        help="Comma list of damage kinds, one drawn per damaged row: swapped (another prompt's answer), truncated, "
             "generic (a short non-answer), draft (a weak model's answer: --draft-lm writes it, ~3 s per draft "
             "on a CPU, cached).")] = "swapped,truncated,generic",
    draft_lm: Annotated[str | None, typer.Option(
        help="Causal LM folder that writes the draft damage (default: the packaged SmolLM2).")] = None,
    draft_tokens: Annotated[int, typer.Option(help="Longest draft, in tokens.")] = 128,
    draft_temperature: Annotated[float, typer.Option(
        help="0: greedy drafts; above 0: sampled (top-p 0.95, seeded), as drafted data usually is.")] = 0.0,
    budgets: Annotated[str, typer.Option(help="Rewrite budgets as shares of the pool, comma-separated.")]
    = "0.05,0.1,0.2,0.3",
    seeds: Annotated[int, typer.Option(help="Damaged copies of the pool (seeds 0..N-1).")] = 3,
    lora: Annotated[bool, typer.Option(
        "--lora", help="Also train a fresh SmolLM2 LoRA adapter per strategy and budget on the pool with the "
                       "strategy's rewrites applied (and on the rewritten rows alone), and compare the held-out loss "
                       "on clean rows with random's curve: the budget ratio at equal loss. Slow (minutes per adapter "
                       "on a CPU); finished adapters are kept, a rerun trains only the rest.")] = False,
    heldout: Annotated[Path | None, typer.Option(
        help="Clean prompt-completion file for the --lora held-out loss (--map applies); default: 100 rows of "
             "DATA outside the pool.")] = None,
    lora_epochs: Annotated[float, typer.Option(help="Epochs of each --lora adapter.")] = 2.0,
    base: Annotated[str | None, typer.Option(help="Base model of the --lora adapters: a packaged name or a local "
                                                  "folder (default smollm2).")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Which rows deserve an expert's rewrite: damage a share of a prompt-completion pool (another prompt's answer,
    a truncated answer, a generic non-answer, optionally a weak model's draft), rank the rows by each strategy, and
    report the damaged rows each finds within the budget, with the budget ratio against random (with --lora, also
    at equal held-out loss)."""
    from curate.bench.rewrite_budget import DAMAGES, DRAFT, load_pairs, run_rewrite_budget
    from curate.errors import InputError
    from curate.ingest.mapping import parse_mapping
    from curate.runtime.embeddings import Embedder

    names = _names(strategies, "--strategies")
    kinds = _names(damage_kinds, "--damage-kinds")
    if lora and tuple(kinds) != DAMAGES:
        raise InputError(f"--lora adapters train on the default damage ({','.join(DAMAGES)}); --damage-kinds "
                         f"{damage_kinds!r} applies to the recall figures only: run it without --lora.")
    try:
        shares = [float(b) for b in budgets.split(",") if b.strip()]
    except ValueError as exc:
        raise InputError(f"--budgets takes shares such as 0.05,0.1; got {budgets!r}") from exc
    from curate.runtime.catalog import BuildContext, build_scorer

    mapping = parse_mapping(map_)
    split_off = lora and heldout is None  # the held-out rows come from DATA, outside the pool
    names_of_columns = None if columns is None else columns.split(",")
    rows = load_pairs(data, mapping, limit=pool + 100 if split_off else pool, columns=names_of_columns,
                      encoding=encoding)
    if rows.skipped:
        console.print(f"[yellow]{data}:[/] {rows.summary()}", highlight=False)
    held: list[tuple[str, str]] = []
    if split_off:
        import numpy as np

        order = np.random.default_rng(1).permutation(len(rows))
        if len(rows) - pool < 8:
            raise InputError(f"--lora holds out rows of {data} outside the pool, but it has {len(rows):,} "
                             f"prompt-completion rows for a pool of {pool:,}: lower --pool, or pass --heldout FILE.")
        rows, held = rows.subset(sorted(order[:pool])), [rows[i] for i in sorted(order[pool:])]
    if lora and heldout is not None:
        from curate.ingest.readers import tabular_columns

        held = load_pairs(heldout, mapping, limit=200, columns=tabular_columns(heldout, names_of_columns),
                          encoding=encoding)
    embedder = Embedder("minilm")
    context = BuildContext(cache_dir=Path(".bench-cache"))

    with bar_progress() as progress:
        draft = None
        if DRAFT in kinds:
            from curate.bench.rewrite_drafts import lm_drafts

            drafting = progress.add_task("weak-model drafts", total=None, unit="drafts")
            draft = lm_drafts(Path(".bench-cache"), lm=draft_lm, max_new_tokens=draft_tokens,
                              temperature=draft_temperature,
                              on_progress=lambda done, total: progress.update(drafting, completed=done, total=total))
        task = progress.add_task("rewrite budget", total=seeds * len(names), unit="runs")
        report = run_rewrite_budget(rows, names, share=damage_share, budgets=shares, seeds=range(seeds),
                                    build=lambda name: build_scorer(name, context), embed=embedder.embed_texts,
                                    say=lambda _: progress.advance(task), kinds=kinds, draft=draft)
    print_rewrite_budget(report)
    report["data"] = {"source": str(data), "rows_read": rows.read, "skipped": rows.skipped,
                      "skipped_lines": rows.skipped_lines, "skipped_where": rows.skipped_where}
    if lora:
        report["lora"] = _lora_budget(rows, held, names, damage_share, shares, seeds, lora_epochs, base,
                                      lambda name: build_scorer(name, context), embedder.embed_texts,
                                      {"data": str(data), "map": map_, "heldout": str(heldout), "base": base})
    write_json(json_out, report)


def _lora_budget(rows: list[tuple[str, str]], held: list[tuple[str, str]], names: list[str], share: float,
                 budgets: list[float], seeds: int, epochs: float, base: str | None, build: Any, embed: Any,
                 settings: dict[str, Any]) -> dict[str, Any]:
    """The --lora half of ``curate bench rewrite-budget``: adapters with progress, and a table of their losses."""
    from curate.bench.rewrite_budget_lora import run_saved_lora_budget
    from curate.train import TrainOptions

    with bar_progress() as progress:
        runs = progress.add_task("LoRA adapters", total=None, unit="adapters")
        steps = progress.add_task("training steps", total=None, unit="steps")

        def on_plan(total: int, kept: int) -> None:
            console.print(f"--lora: {total} adapters to train ({kept} kept from an earlier run), held-out loss on "
                          f"{len(held):,} clean rows")
            progress.update(runs, completed=kept, total=total)

        report = run_saved_lora_budget(
            rows, held, names, folder=Path(".bench-cache") / "rewrite-budget-lora", share=share, budgets=budgets,
            seeds=range(seeds), options=TrainOptions(epochs=epochs, batch_size=8, max_length=256, learning_rate=5e-4),
            base=base, build=build, embed=embed, settings=settings, on_plan=on_plan,
            on_run=lambda *_: progress.advance(runs),
            on_step=lambda s, n: progress.update(steps, completed=s, total=n))
    print_lora_budget(report)
    return report


def _names(value: str, option: str, count: int | None = None) -> list[str]:
    from curate.errors import InputError

    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names or (count is not None and len(names) != count):
        want = f"{count} comma-separated names" if count else "comma-separated names"
        raise InputError(f"{option} needs {want}; got {value!r}.")
    return names


@bench_app.command("dedup")
def bench_dedup_cmd(
    exact: Annotated[Path | None, typer.Option(help="Text file, one row per line (e.g. SMS Spam: label<TAB>text): "
                                                    "exact duplicates found vs a raw-text count.")] = None,
    exact_column: Annotated[int, typer.Option(help="Tab-separated column of --exact holding the text (0-based; "
                                                   "-1 = last).")] = -1,
    exact_field: Annotated[str | None, typer.Option(help="Field of --exact holding the text when it holds records "
                                                         "(JSONL, JSON, CSV with a header, Parquet).")] = None,
    minhash: Annotated[Path | None, typer.Option(help="Records (JSONL, JSON array, CSV/TSV, Parquet): MinHash "
                                                      "recall / precision on synthetic near-copies of them.")] = None,
    minhash_fields: Annotated[str, typer.Option(help="Fields of --minhash joined (by newlines) into one text.")]
    = "instruction,input,output",
    semantic: Annotated[Path | None, typer.Option(help="Sentence pairs with a 0-5 similarity score (e.g. STS; JSONL, "
                                                       "CSV/TSV, ...): MiniLM ROC AUC and a recommended cosine "
                                                       "threshold.")] = None,
    semantic_fields: Annotated[str, typer.Option(help="Fields of --semantic: first sentence, second, score.")]
    = "sentence1,sentence2,score",
    seed: Annotated[int, typer.Option(help="Seed of the near-copy sampling.")] = 20240601,
    n_originals: Annotated[int, typer.Option(help="Originals in the MinHash evaluation split (tuning split: half "
                                                  "as many).")] = 1000,
    n_unrelated: Annotated[int, typer.Option(help="Unrelated rows in the MinHash evaluation split.")] = 2000,
    semantic_limit: Annotated[int | None, typer.Option(help="Use only the first N usable pairs of --semantic.")]
    = None,
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", help="Keep MiniLM embeddings in this "
                                                   "workspace's cache (default: not cached).")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Exact, MinHash and semantic dedup measured on your data (give any of --exact, --minhash, --semantic)."""
    from curate.bench.dedup import run, summary_rows

    cache_dir = Workspace.open(workspace).cache_dir if workspace is not None else None
    with console.status("dedup benchmark") as status:
        results = run(exact=exact, minhash=minhash, semantic=semantic, exact_column=exact_column,
                      exact_field=exact_field, minhash_fields=_names(minhash_fields, "--minhash-fields"),
                      semantic_fields=_names(semantic_fields, "--semantic-fields", 3), seed=seed,
                      n_originals=n_originals, n_unrelated=n_unrelated, semantic_limit=semantic_limit,
                      cache_dir=cache_dir, missing="error", say=lambda line: status.update(f"dedup benchmark {line}"))
    table = Table("method", "result", "settings", "docs/s")
    for row in summary_rows(results):
        table.add_row(*row)
    console.print(table)
    write_json(json_out, results)


@bench_app.command("label-efficiency")
def label_efficiency_cmd(
    task: Annotated[str, typer.Option(help="classify (text + label) or preference (chosen + rejected, optional "
                                           "prompt).")],
    data: Annotated[Path, typer.Option(help="Labelled pool file: CSV, TSV, JSONL, JSON, Parquet (.gz ok).")],
    columns: ColumnsOpt = None,
    encoding: EncodingOpt = "utf-8",
    test: Annotated[Path | None, typer.Option(help="A separate, frozen test file (default: a seeded split of "
                                                   "--data).")] = None,
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="Rename a column: TARGET=SOURCE (repeatable), e.g. --map label=category.")] = None,
    test_map: Annotated[list[str] | None, typer.Option(
        "--test-map", help="The --test file's own renames, when its columns differ from --data's (repeatable; "
        "default: the --map renames).")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds per strategy (default: classify 3, preference 5).")] = None,
    strategies: Annotated[str | None, typer.Option(
        help="Comma list, must include random. classify: random, margin, entropy, least_confidence, "
             "cluster-margin, cluster-entropy, badge, prefilter-cluster-margin, prefilter-centroid-margin, "
             "rr-cluster-margin (default: random, prefilter-centroid-margin (label-teach's), margin, cluster-margin); "
             "preference with --learner laplace: random, variance, variance-novelty, novelty, entropy, bald, "
             "prefilter-cluster-entropy, bald-coverage, bald-per-prompt, epig (default: random, novelty "
             "(preference-rank's prompt coverage), "
             "variance-novelty, entropy); with --learner ensemble: random, disagreement, bald, entropy (default: "
             "all four).")] = None,
    start_per_class: Annotated[int | None, typer.Option(
        "--start-per-class", "--start", help="Seed set: labels per class (classify, default 2) or random "
                                             "pairs (preference, default 50).")] = None,
    batch: Annotated[int | None, typer.Option(help="Labels per round (default: classify 100, preference 50).")] = None,
    budget: Annotated[int | None, typer.Option(help="Last budget (default: classify 1500, preference 1000).")] = None,
    random_mix: Annotated[float | None, typer.Option(help="Share of every strategy batch drawn at random (default: "
                                                          "the recipes': classify 0, preference 0.1).")] = None,
    oracle_noise: Annotated[float, typer.Option(help="Fraction of simulated answers flipped (classify: another "
                                                     "class; preference: swapped); run at 0 and at this level.")]
    = 0.0,
    features: Annotated[str | None, typer.Option(
        help="minilm, minilm+words (classify: the loop's --embedder minilm+words), smollm2 (preference: LM hidden "
             "states), tfidf (preference: word TF-IDF + SVD, no model) or hashing (no model; dry runs). Default: "
             "classify minilm+words (label-teach's), preference tfidf (preference-rank's was chosen on smollm2: "
             "0.2 s a response).")] = None,
    learner: Annotated[str | None, typer.Option(
        help="preference: laplace (one Bradley-Terry model with a Laplace posterior; the default, as in "
             "preference-rank) or ensemble (8 bootstrapped Bradley-Terry heads).")] = None,
    prior_precision: Annotated[float, typer.Option(help="preference, laplace: prior precision of the "
                                                        "weights.")] = 1.0,
    novelty_beta: Annotated[float, typer.Option(help="variance-novelty: weight of the prompt-novelty bonus (the "
                                                     "preference suite chose 1).")] = 1.0,
    clusters_per_pick: Annotated[float, typer.Option(help="Cluster strategies: k-means clusters per label "
                                                          "picked.")] = 2.0,
    candidates_per_pick: Annotated[float | None, typer.Option(
        help="Prefilter and round-robin strategies: most uncertain records considered per label picked (default: "
             "classify 10, label-teach's; preference 5).")] = None,
    c_reg: Annotated[float, typer.Option("--C", help="classify: inverse L2 strength of the logistic "
                                                     "regression.")] = 10.0,
    l2: Annotated[float, typer.Option(help="preference: L2 penalty of the Bradley-Terry heads.")] = 1e-2,
    test_size: Annotated[float | None, typer.Option(help="Without --test: held-out fraction (< 1) or count "
                                                         "(default: classify 0.2, preference 500 pairs or a quarter "
                                                         "of a file under 2,000, split by prompt).")] = None,
    calibration_size: Annotated[float | None, typer.Option(help="Calibration slice from the pool: fraction of the "
                                                                "test size (< 1) or count (default 0.1).")] = None,
    split_seed: Annotated[int, typer.Option(help="Seed of the pool/test split (without --test; rerun with "
                                                 "others to see how much the test split alone moves the figures) and "
                                                 "of the calibration slice.")] = 0,
    null_streams: NullStreamsOpt = 0,
    pool_limit: Annotated[int | None, typer.Option(help="Keep a seeded random subset of this many pool records "
                                                         "(for slow features such as smollm2).")] = None,
    cache_dir: Annotated[Path, typer.Option(help="Where embeddings / LM features are cached.")] = Path(".bench-cache"),
    out_dir: Annotated[Path, typer.Option(help="Folder for label_efficiency_<task>[_<features>].json and .png.")]
    = Path("benchmarks/results"),
    json_out: JsonOpt = None,
) -> None:
    """Learning curves of curate's strategies vs random sampling, with simulated (optionally noisy) annotators."""
    from curate.bench.label_efficiency import BenchConfig, rich_progress, run_benchmark
    from curate.bench.label_efficiency_plot import plot_report
    from curate.bench.product_defaults import product_defaults
    from curate.errors import InputError
    from curate.ingest.formats import parse_mapping

    mapping = parse_mapping(map_)
    learner, chosen, random_mix, features, per_pick = product_defaults(
        task, learner, tuple(_names(strategies, "--strategies")) if strategies else None, random_mix, features,
        candidates_per_pick)
    cfg = BenchConfig(task=task, seeds=seeds, strategies=chosen, start=start_per_class, batch=batch, budget=budget,
                      random_mix=random_mix, oracle_noise=oracle_noise, features=features, C=c_reg, l2=l2,
                      clusters_per_pick=clusters_per_pick, candidates_per_pick=per_pick, test_size=test_size,
                      calibration_size=calibration_size, pool_limit=pool_limit, split_seed=split_seed, learner=learner,
                      prior_precision=prior_precision, novelty_beta=novelty_beta, null_streams=null_streams)
    cfg.resolved()  # options checked before any data is read; the run fills in the task's defaults itself
    if test_map and test is None:
        raise InputError("--test-map renames the columns of a --test file; give --test FILE, or drop --test-map.")
    with rich_progress(transient=True) as progress:
        report = run_benchmark(cfg, data, test_path=test, mapping=mapping, cache_dir=cache_dir, progress=progress,
                               test_mapping=parse_mapping(test_map) if test_map else None,
                               columns=None if columns is None else columns.split(","), encoding=encoding)
    if sys.argv and "label-efficiency" in sys.argv:
        report["command"] = "curate " + shlex.join(sys.argv[sys.argv.index("bench"):] if "bench" in sys.argv
                                                   else sys.argv[1:])
    cfg = cfg.resolved()
    stem = out_dir / (f"label_efficiency_{cfg.task}" + ("" if cfg.features == "minilm" else f"_{cfg.features}")
                      + ("" if cfg.learner == "ensemble" else f"_{cfg.learner}"))
    report["plot"] = str(plot_report(report, stem.with_suffix(".png")))
    write_json(stem.with_suffix(".json"), report)
    print_label_efficiency(report)
    console.print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.png')}", highlight=False)
    write_json(json_out, report)


def register(app: typer.Typer) -> None:
    """Add ``curate bench`` to ``app``."""
    app.add_typer(bench_app, name="bench")
