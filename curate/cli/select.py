"""``curate score``, ``embed``, ``select`` and ``seed``: score and embed the pool (cached) and put a batch in front
of people."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from curate.cli.options import AddressOpt, DbOpt, EngineOpt, JsonOpt, WorkspaceOpt, restrict_pool
from curate.cli.output import console, err_console, say_word_fit, write_json
from curate.cli.progress import bar_progress
from curate.errors import InputError
from curate.ingest.records import check_kind
from curate.store.workspace import Workspace

ScorerOpt = Annotated[str, typer.Option(
    "--scorer", help="novelty, density, perplexity, ifd, egl, least_confidence, margin, entropy, vote_entropy, "
                     "kl_to_mean, disagreement, bald, bt_entropy, reward_variance, reward_variance_lm, "
                     "prompt_coverage, rewrite_need, relevance, shortest, longest, or package.module:ClassName.")]
KindOpt = Annotated[str | None, typer.Option(help="Only records of this kind: example, preference, candidates, text.",
                                             callback=check_kind)]
ModelOpt = Annotated[str, typer.Option(help="Causal LM for perplexity/IFD/EGL: smollm2, a folder or a Hub id.")]
AdapterOpt = Annotated[str | None, typer.Option(help="A LoRA adapter folder on top of --model.")]
ModelVersionOpt = Annotated[str | None, typer.Option(
    "--model-version", help="A model version registered by `curate train`: sets --model and --adapter from the "
                            "workspace registry.")]
EmbedderOpt = Annotated[str, typer.Option(help="Sentence embedder: minilm, a folder or a Hub id; with +words "
                                           "(minilm+words) word TF-IDF features beside it, fitted once on the pool.")]
LimitOpt = Annotated[int | None, typer.Option(
    "--limit", min=1, help="Only the first N candidate records (in the order they were ingested).")]
SampleOpt = Annotated[int | None, typer.Option(
    "--sample", min=1, help="Only a random sample of N candidate records (reproducible with --seed).")]


def _warn_seed_model(name: str, ctx: Any) -> None:
    from curate.runtime.catalog import scorer_class, seed_model_check

    cls = scorer_class(name)
    if cls is None or cls.learns_from != "text":
        return
    report = seed_model_check(ctx)
    if report is not None:
        console.print(f"seed model: {report.n_samples} labeled records, cross-validated accuracy "
                      f"{report.cv_accuracy_mean:.2f} (chance {report.chance_accuracy:.2f})")
        for warning in report.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}")


def _candidates_or_fail(ws: Workspace, kind: str | None) -> list[Any]:
    from curate.errors import InputError
    from curate.rounds.selection import candidates

    pool = candidates(ws, kind=kind)
    if not pool:
        raise InputError("no candidate records" + (f" of kind {kind}" if kind else "") + ": every pool record "
                         "already has a task or a label. Ingest more records, or choose another --kind.")
    return pool


def _from_version(ws: Workspace, version: str | None, scorer: str, model: str, adapter: str | None
                  ) -> tuple[str, str | None]:
    """``(model, adapter)``: as given, or the base and adapter of the registered ``version``."""
    if version is None:
        return model, adapter
    from curate.errors import InputError
    from curate.runtime.catalog import scorer_class
    from curate.train.registry import get_version, resolve_model_version

    if adapter:
        raise InputError("--model-version sets the adapter from the registry: drop --adapter, or --model-version.")
    base, adapter_path = resolve_model_version(ws.store, version)
    method = get_version(ws.store, version).method
    cls = scorer_class(scorer)
    if method == "reward" and cls is not None and cls.needs_model_version:
        raise InputError(f"{version!r} is a reward model (a sequence classifier); the {scorer} scorer needs a causal "
                         "LM: pick an sft or dpo version.")
    return base, adapter_path


def _recorded_version(scorer: str, version: str) -> str | None:
    """The model version a round records: none for scorers that depend only on embeddings."""
    from curate.runtime.catalog import scorer_class

    cls = scorer_class(scorer)
    return None if cls is not None and cls.embeddings_only else version


def _context(ws: Workspace, *, kind: str | None, model: str, adapter: str | None, embedder: str, seed: int) -> Any:
    """The scorers' build context, holding the one embedder of this command (``+words`` fitted on the pool first,
    with a message); ``ctx.make_embedder()`` returns it."""
    from curate.loop.pool_loop import EmbedderContext
    from curate.rounds.selection import labeled_records
    from curate.runtime.word_features import workspace_embedder

    return EmbedderContext(cache_dir=ws.cache_dir, labeled=labeled_records(ws, kind=kind), embedder=embedder,
                           model=model, adapter=adapter, seed=seed,
                           injected=workspace_embedder(embedder, ws, on_fit=say_word_fit))


def score(
    scorer: ScorerOpt,
    kind: KindOpt = None,
    model: ModelOpt = "smollm2",
    adapter: AdapterOpt = None,
    model_version: ModelVersionOpt = None,
    embedder: EmbedderOpt = "minilm",
    seed: Annotated[int, typer.Option(help="Seed for committees and ensembles.")] = 0,
    top: Annotated[int, typer.Option(help="Show the N highest-scoring records.")] = 5,
    limit: LimitOpt = None,
    sample: SampleOpt = None,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    two_stage: Annotated[bool, typer.Option(
        "--two-stage", help="Score a seeded sample exactly, train a cheap proxy on it, and score exactly only the "
                            "proxy's short list (plus a random check slice); the rest stays unscored.")] = False,
    shortlist: Annotated[float, typer.Option(help="--two-stage: share of the pool the exact scorer scores.")] = 0.05,
    proxy_sample: Annotated[int, typer.Option(help="--two-stage: records scored exactly to train the proxy.")] = 2000,
    hours: Annotated[float | None, typer.Option(
        help="--two-stage: finish within this many hours; the short list shrinks to what the exact rate measured "
             "on the sample allows.", min=0.0001)] = None,
    proxy_embeddings: Annotated[bool, typer.Option(
        help="--two-stage: give the proxy the cosine of prompt and answer under --embedder (cached; dropped when "
             "--hours leaves too little time to embed the pool).")] = True,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Score the candidate pool (higher = more worth an expert's time); scores are cached per model version."""
    from curate.runtime.catalog import build_scorer
    from curate.runtime.engine import get_engine
    from curate.scorers.cache import score_records

    runner = get_engine(engine, address=address)
    ws = Workspace.open(workspace, db, must_exist=True)
    model, adapter = _from_version(ws, model_version, scorer, model, adapter)
    pool = restrict_pool(_candidates_or_fail(ws, kind), limit=limit, sample=sample, seed=seed, ws=ws)
    ctx = _context(ws, kind=kind, model=model, adapter=adapter, embedder=embedder, seed=seed)
    _warn_seed_model(scorer, ctx)
    built = build_scorer(scorer, ctx)
    if two_stage:
        if runner.name != "local":
            raise InputError("--two-stage runs on this machine: drop --engine ray (the exact stage is a short list)")
        _score_two_stage(ws, built, pool, shortlist=shortlist, sample=proxy_sample, seed=seed, top=top,
                         budget_seconds=None if hours is None else 3600 * hours,
                         emb=ctx.make_embedder() if proxy_embeddings else None, json_out=json_out)
        return
    with bar_progress() as progress:
        task = progress.add_task(f"score {scorer}", total=len(pool))
        on_progress = lambda done, total: progress.update(task, completed=done, total=total)  # noqa: E731
        if runner.name == "local":
            values, report = score_records(ws.store, built, pool, on_progress=on_progress)
        else:  # the same batches, scores and cache entries, computed by the engine's workers
            values, report = runner.score(ws, scorer, ctx, pool, on_progress=on_progress)
    console.print(f"scored {report.records:,} records with [bold]{report.scorer_key}[/]: {report.computed:,} "
                  f"computed, {report.cached:,} from the cache, {report.nan:,} unscorable, {report.seconds:.2f} s")
    _print_top(pool, values, top, vars(report), json_out)


def _print_top(pool: list[Any], values: np.ndarray, top: int, figures: dict[str, Any], json_out: Any) -> None:
    """The ``top`` highest-scoring records as a table; ``figures`` plus that top list to ``--json``."""
    from curate.runtime.embeddings import record_text

    order = [int(i) for i in np.argsort(-np.nan_to_num(values, nan=-np.inf))[:top]]
    table = Table("score", "kind", "record", "text")
    for i in order:
        table.add_row(f"{values[i]:.4g}", pool[i].kind, pool[i].id[:10], record_text(pool[i])[:70].replace("\n", " "))
    console.print(table)
    write_json(json_out, {**figures, "top": [{"id": pool[i].id, "score": float(values[i])} for i in order]})


def _score_two_stage(ws: Workspace, built: Any, pool: list[Any], *, shortlist: float, sample: int, seed: int,
                     top: int, budget_seconds: float | None, emb: Any, json_out: Any) -> None:
    """``curate score --two-stage``: the proxy's figures, then the top records by exact score."""
    from dataclasses import asdict

    from curate.scorers.proxy import ProxySettings
    from curate.scorers.two_stage import two_stage_scores

    embedder = emb.key if emb is not None else None  # the command's embedder, or None: no cosine feature
    embed = emb.embed_texts if emb is not None else None
    stages = {"sample": "exact scores of the proxy's sample", "embed": f"{embedder} of prompts and answers",
              "short list": "exact scores of the short list"}
    with bar_progress() as progress:
        tasks: dict[str, Any] = {}  # one bar per stage: its own count, unit and rate

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(f"{built.name} two-stage: {stages[stage]}", total=total,
                                                 unit="texts" if stage == "embed" else "records")
            progress.update(tasks[stage], completed=done, total=total)

        values, report = two_stage_scores(ws.store, built, pool, shortlist=shortlist, sample=sample, seed=seed,
                                          settings=ProxySettings(embedder=embedder), embed=embed,
                                          budget_seconds=budget_seconds, on_progress=on_progress)
    if embedder and "cos-" not in report.proxy_features:
        console.print(f"[yellow]the time budget leaves too little to embed the pool with {embedder}: the proxy uses "
                      "text features only[/yellow]")
    if report.budget_limited:
        console.print(f"[yellow]the time budget allows {report.shortlisted:,} short-listed records "
                      f"({report.shortlisted / max(report.records, 1):.2%} of the pool, not {shortlist:.0%}) at "
                      f"{report.exact_seconds_per_record or 0:.3f} s per exact score[/yellow]")
    overlap = report.sample + report.shortlisted + report.checked - report.exact_scored
    also = f"; {overlap:,} short-listed or checked were in the sample" if overlap else ""
    console.print(f"two-stage {report.scorer_key}: {report.exact_scored:,} of {report.records:,} records scored "
                  f"exactly ({report.sample:,} sample, {report.shortlisted:,} short-listed, {report.checked:,} "
                  f"check{also}); proxy {report.proxy_key}: Spearman {report.spearman_heldout:.3f} on held-out "
                  "records, "
                  f"exact top 1% / 5% short-listed {report.recall_top1_heldout:.0%} / "
                  f"{report.recall_top5_heldout:.0%}; {report.records_per_hour:,.0f} records/hour")
    _print_top(pool, values, top, asdict(report), json_out)


def embed(
    embedder: EmbedderOpt = "minilm",
    kind: KindOpt = None,
    limit: LimitOpt = None,
    sample: SampleOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of --sample.")] = 0,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Embed the candidate pool into the workspace's embedding cache (what select, novelty, kcenter and semantic
    dedup read), with progress; an interrupted run keeps what it finished."""
    import time

    from curate.runtime.embeddings import record_text
    from curate.runtime.word_features import workspace_embedder

    ws = Workspace.open(workspace, db, must_exist=True)
    pool = restrict_pool(_candidates_or_fail(ws, kind), limit=limit, sample=sample, seed=seed, ws=ws)
    emb = workspace_embedder(embedder, ws, on_fit=say_word_fit)
    started = time.perf_counter()
    with bar_progress() as progress:
        task = progress.add_task(f"embed with {embedder}", total=None, unit="texts")
        vectors = emb.embed_texts([record_text(r) for r in pool],
                                  on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    seconds = time.perf_counter() - started
    report = {"records": len(pool), "computed": emb.computed_, "cached": len(pool) - emb.computed_,
              "dimensions": int(vectors.shape[1]) if vectors.size else 0, "embedder": emb.key,
              "seconds": round(seconds, 2)}
    console.print(f"embedded {len(pool):,} records with [bold]{emb.key}[/]: {emb.computed_:,} computed, "
                  f"{len(pool) - emb.computed_:,} from the cache, {seconds:.1f} s")
    write_json(json_out, report)


def select_cmd(
    scorer: ScorerOpt,
    k: Annotated[int, typer.Option("-k", help="Batch size: how many tasks to create.")] = 50,
    selector: Annotated[str, typer.Option(help="topk, kcenter, cluster, badge, deita, round_robin, "
                                               "novelty_bonus, or package.module:Class.")]
    = "topk",
    kind: KindOpt = None,
    task_type: Annotated[str | None, typer.Option(help="rank, rewrite or label (default: by record kind).")] = None,
    random_mix: Annotated[float, typer.Option(help="Fraction of the batch drawn at random (tagged).")] = 0.1,
    quota_field: Annotated[str | None, typer.Option(help="Quotas by label, kind or meta.<column>.")] = None,
    min_per_group: Annotated[int, typer.Option(help="Least records per quota group.")] = 1,
    dedup: Annotated[float, typer.Option(help="Cosine similarity above which batch members count as "
                                              "near-duplicates (1 turns it off).")] = 0.95,
    model: ModelOpt = "smollm2",
    adapter: AdapterOpt = None,
    model_version: ModelVersionOpt = None,
    embedder: EmbedderOpt = "minilm",
    seed: Annotated[int, typer.Option(help="Seed of the selection's random generator (and of --sample).")] = 0,
    limit: LimitOpt = None,
    sample: SampleOpt = None,
    score_all: Annotated[bool, typer.Option(
        "--score-all", help="After `curate score --two-stage`: score every candidate exactly first, instead of "
                            "selecting from the records the two-stage run scored.")] = False,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Score, select a batch and create a round of tasks; prints how many came from the strategy, the random
    mix and each quota."""
    from curate.rounds.selection import Strategy, candidates, run_round
    from curate.runtime.catalog import build_scorer, build_selector

    ws = Workspace.open(workspace, db, must_exist=True)
    model, adapter = _from_version(ws, model_version, scorer, model, adapter)
    ctx = _context(ws, kind=kind, model=model, adapter=adapter, embedder=embedder, seed=seed)
    _warn_seed_model(scorer, ctx)
    strategy = Strategy(build_scorer(scorer, ctx), build_selector(selector), random_mix=random_mix,
                        quota_field=quota_field, min_per_group=min_per_group if quota_field else 0,
                        dedup_threshold=None if dedup >= 1 else dedup)
    pool = restrict_pool(candidates(ws, kind=kind), limit=limit, sample=sample, seed=seed, ws=ws)
    with bar_progress() as progress:
        task = progress.add_task(f"score {scorer}", total=len(pool))
        embed_task: list[Any] = []

        def embedding(done: int, total: int) -> None:
            if not embed_task:
                embed_task.append(progress.add_task(f"embed with {embedder} (texts not cached yet)", total=total))
            progress.update(embed_task[0], completed=done)

        report = run_round(ws, strategy, k, pool=pool, rng=np.random.default_rng(seed),
                           embedder=ctx.make_embedder(), task_type=task_type,
                           model_version=_recorded_version(scorer, model_version or model),
                           on_progress=lambda done, total: progress.update(task, completed=done, total=total),
                           on_embed_progress=embedding, score_all=score_all)
    if report.two_stage is not None:
        console.print(f"two-stage scores of {scorer}: selected from the {report.candidates:,} of {report.offered:,} "
                      f"candidates scored exactly (proxy Spearman {report.two_stage['spearman_heldout']:.3f}); "
                      "--score-all scores the rest exactly first")
        if k > report.two_stage["shortlisted"] / 2:
            console.print(f"[yellow]-k {k} is more than half of the {report.two_stage['shortlisted']:,} short-listed "
                          "records: selection from two-stage scores matched exact scores only up to half the short "
                          "list (README, two-stage scoring); widen --shortlist or use --score-all[/yellow]")
    r = report.round
    console.print(f"round {r.number}: {r.tasks} task(s) from {report.candidates:,} candidates "
                  f"({report.scoring.computed:,} scored, {report.scoring.cached:,} cached) in {report.seconds:.1f} s")
    table = Table("origin", "tasks")
    for origin, n in sorted(report.origins.items()):
        table.add_row(origin, str(n))
    console.print(table)
    console.print(f"strategy: {r.strategy_key}")
    _print_first_tasks(ws, r.round_id)
    write_json(json_out, {"round_id": r.round_id, "round": r.number, "tasks": r.tasks, "by_origin": r.by_origin,
                          "by_type": r.by_type, "strategy_key": r.strategy_key, "candidates": report.candidates,
                          "scoring": vars(report.scoring), "seconds": report.seconds})


def _print_first_tasks(ws: Workspace, round_id: int, shown: int = 5) -> None:
    """The round's first tasks in selection order: what an expert will see first, and why (the score)."""
    from sqlalchemy import select

    from curate.runtime.embeddings import record_text
    from curate.store.schema import Task

    with ws.store.read() as conn:
        tasks = conn.execute(select(Task.id, Task.record_id, Task.acquisition_score, Task.random_mix)
                             .where(Task.round_id == round_id).order_by(Task.id).limit(shown)).all()
    table = Table("task", "score", "from", "text", title="first tasks of the round, in selection order",
                  title_justify="left")
    for task_id, record_id, score, random in tasks:
        record = ws.store.get_record(record_id)
        text = " ".join(record_text(record).split()) if record is not None else record_id
        table.add_row(str(task_id), "" if score is None else f"{score:.3g}", "random" if random else "strategy",
                      text[:90] + ("…" if len(text) > 90 else ""))
    if tasks:
        console.print(table)


def seed(
    method: Annotated[str, typer.Option(help="centroids (k-means on embeddings), rules (a rules file of keywords/"
                                             "regexes per class) or stratified (random per group of --by).")]
    = "centroids",
    k: Annotated[int, typer.Option("-k", help="Seed size.")] = 20,
    rules: Annotated[Path | None, typer.Option(help="Rules file (TOML or JSON) for --method rules.")] = None,
    by: Annotated[str, typer.Option(help="Group field for --method stratified: label, kind or meta.<column>.")]
    = "label",
    kind: KindOpt = None,
    task_type: Annotated[str | None, typer.Option(help="rank, rewrite or label (default: by record kind).")] = None,
    embedder: EmbedderOpt = "minilm",
    seed_: Annotated[int, typer.Option("--seed", help="Seed of the random generator.")] = 0,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = None,
) -> None:
    """Cold start: a first round chosen without any model (cluster centroids, rules, or stratified random)."""
    from curate.rounds.seed import seed_round
    from curate.runtime.word_features import workspace_embedder

    ws = Workspace.open(workspace, db, must_exist=True)
    pool = _candidates_or_fail(ws, kind)
    if method == "centroids":  # fit +words features now, saying so; seed_round then loads them
        workspace_embedder(embedder, ws, on_fit=say_word_fit)
    seeded = seed_round(ws, pool, method, k, rng=np.random.default_rng(seed_), embedder=embedder, rules=rules, by=by,
                        task_type=task_type)
    report = seeded.round
    console.print(f"round {report.number}: {report.tasks} cold-start task(s) by {method} from {len(pool):,} "
                  f"candidates")
    if method == "rules":
        console.print("rule matches per class: " + ", ".join(f"{c}: {n}" for c, n in seeded.rule_matches.items()))
    extra = {"rule_matches": seeded.rule_matches} if method == "rules" else {}
    write_json(json_out, {"round": report.number, "round_id": report.round_id, "tasks": report.tasks,
                          "by_origin": report.by_origin, "method": method, **extra})


def register(app: typer.Typer) -> None:
    """Add ``curate score``, ``curate embed``, ``curate select`` and ``curate seed`` to ``app``."""
    app.command()(score)
    app.command()(embed)
    app.command("select")(select_cmd)
    app.command()(seed)
