"""label-teach: the classifier loop for a label schema, from a cold start to a model worth trusting."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from curate.runtime.recipes import RecipeResult, recipe
from curate.store.workspace import Workspace
from recipes._stages import ingest_files

#: The classifier loop's strategy after the first batch, chosen leave-one-data-set-out (see the docstring).
TEXT_SELECTOR = "prefilter_centroid"
TEXT_RANDOM_MIX = 0.0
#: MiniLM beside word features; each fit reads the word columns only where 3-fold cross-validation on the labels so
#: far says they help (:mod:`curate.scorers.feature_choice`). Measured in the selection suite (README).
DEFAULT_EMBEDDER = "minilm+words"


@recipe("label-teach")
def label_teach(
    files: Annotated[list[Path] | None, "Text files to ingest first (a text column, or --map text=COLUMN)."] = None,
    workspace: Annotated[Path, "Workspace folder."] = Path("curate-workspace"),
    classes: Annotated[str | None, "Comma-separated classes of a new label schema (else --schema must exist)."]
    = None,
    schema: Annotated[str, "Label schema name."] = "labels",
    guidelines: Annotated[str, "Guidelines shown with every task."] = "",
    name: Annotated[str, "Loop name (resume by running again with the same settings)."] = "label-teach",
    rounds: Annotated[int, "Most rounds."] = 10,
    budget: Annotated[int, "Most labels."] = 200,
    batch: Annotated[int, "Labels per round."] = 20,
    scorer: Annotated[str, "Uncertainty: margin, entropy, least_confidence, vote_entropy..."] = "margin",
    target: Annotated[str | None, "Stop at METRIC=VALUE on the test split, e.g. accuracy=0.9."] = None,
    annotators: Annotated[str | None, "Comma-separated accounts (the app); leave out with --oracle."] = None,
    oracle: Annotated[str | None, "Simulate with this gold column instead of people."] = None,
    map_: Annotated[list[str] | None, "Column renames TARGET=SOURCE, e.g. text=message; other columns are kept "
                    "as metadata (a gold column for --oracle)."] = None,
    embedder: Annotated[str, "Sentence embedder: minilm+words (word TF-IDF features beside MiniLM, fitted once on "
                        "the pool; the classifier reads them where they help on your labels), or minilm."]
    = DEFAULT_EMBEDDER,
    seed: Annotated[int, "Random seed."] = 0,
) -> RecipeResult:
    """Teach a classifier: a diverse first batch, then typical texts of the most uncertain regions, round after round.

    After the first batch each round takes the lowest-margin texts (10 per label asked for), clusters them (k-means
    weighted by uncertainty) and asks for the text nearest each cluster's centre, with no random share (selector
    ``prefilter_centroid``, Zhdanov's DBAL, random mix 0): the strategy chosen leave-one-data-set-out on banking77,
    TREC-6 and AG News (``benchmarks/bench_selection_classify.py``). Texts are embedded with MiniLM beside word
    features fitted on the pool; the classifier reads the word columns where they help on the labels so far.
    """
    from curate.loop.pool_loop import LoopConfig, run_loop
    from curate.rounds.assignment import ensure_label_schema

    ws = Workspace.open(workspace)
    result = RecipeResult("label-teach", str(ws.root))
    if files:
        ingest_files(ws, result, files, mapping=map_, pii=None, kind="text")
    if classes:
        with result.step("label schema") as s:
            _, version, created = ensure_label_schema(
                ws.store, schema, [c.strip() for c in classes.split(",") if c.strip()], guidelines)
            s.update(schema=schema, version=version, **({} if created else {"unchanged": "(same classes)"}))
    with result.step("loop") as s:
        people = tuple(a.strip() for a in (annotators or "").split(",") if a.strip())
        config = LoopConfig(name=name, kind="text", rounds=rounds, budget=budget, batch=batch, scorer=scorer,
                            selector=TEXT_SELECTOR, random_mix=TEXT_RANDOM_MIX, target=target, oracle=oracle,
                            annotators=people, schema=schema, embedder=embedder, seed=seed)
        def fitted(event: str, payload: dict[str, object]) -> None:
            if event == "words":  # the first run with --embedder <base>+words fits them on the pool
                s.update(word_features_fitted_on=payload["texts"])

        outcome = run_loop(ws, config, on_event=fitted)
        last = outcome.history[-1] if outcome.history else {}
        s.update(status=outcome.status, stop_reason=outcome.stop_reason or "", rounds=len(outcome.rounds),
                 waiting_for=outcome.waiting_for, **{k: v for k, v in last.items() if isinstance(v, int | float)})
        metrics = last.get("metrics") or {}
        if metrics.get("accuracy") is not None:
            s.update(accuracy=round(float(metrics["accuracy"]), 4), n_test=int(metrics["n_test"]))
    if metrics.get("n_test") == 0:
        result.next_steps.append("no test split, so accuracy is not measured: ingest labelled rows kept out of "
                                 "selection with `curate ingest FILE --split test` (the class in a label column, or "
                                 "in the --oracle column), then run this recipe again with a new --name (a loop that "
                                 "has stopped does not run again)")
    if outcome.status == "waiting":
        result.next_steps.append(f"annotate the {outcome.waiting_for} open task(s) in the app (curate app -w "
                                 f"{ws.root}), then run this recipe again to continue")
    return result
