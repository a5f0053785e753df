"""preference-rank: generate candidate answers with the current model, pick the pairs worth ranking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from curate.runtime.recipes import RecipeResult, recipe
from curate.store.workspace import Workspace
from recipes._stages import assign, ingest_files, select_round

#: With ranked pairs: prompt coverage (greedy farthest-first over the prompts, ranked ones covered), 10% at random:
#: the preference suite's default with SmolLM2 reward features (benchmarks/results/selection_preference_smollm2.json,
#: 10 seeds), where every reward-uncertainty acquisition lost to random on AlpacaEval; over 5 AlpacaEval pool/test
#: splits it needs 2.5x fewer labels than random (per-seed CI [1.60, 3.36]), on UltraFeedback's 10 (one pair per
#: prompt) it ties random (0.95). Before any: density (top-k),
#: which lost to random on no set at 50 labels (benchmarks/results/preference_cold_start.json); density then prompt
#: coverage gained over random throughout on both judge sets.
SCORER, SELECTOR, COLD_SCORER = "prompt_coverage", "topk", "density"


@recipe("preference-rank")
def preference_rank(
    files: Annotated[list[Path], "Prompt files: a prompt column (or --map prompt=COLUMN); other columns are kept."],
    workspace: Annotated[Path, "Workspace folder."] = Path("curate-workspace"),
    k: Annotated[int, "How many rank tasks to create."] = 20,
    n: Annotated[int, "Candidates generated per prompt (2 gives A/B pairs)."] = 2,
    max_new_tokens: Annotated[int, "Longest generated answer, in tokens."] = 128,
    temperature: Annotated[float, "Sampling temperature of the candidates."] = 0.8,
    model: Annotated[str, "The current model: smollm2, a local folder, or a registered --model-version."]
    = "smollm2",
    model_version: Annotated[str | None, "A registered model version (base + adapter) to generate with."] = None,
    map_: Annotated[list[str] | None, "Column renames TARGET=SOURCE, e.g. prompt=question."] = None,
    annotators: Annotated[str | None, "Comma-separated accounts to assign the tasks to."] = None,
    seed: Annotated[int, "Random seed (sampling and selection)."] = 0,
) -> RecipeResult:
    """Generate candidates with the current model, pick prompts that cover new ground, and queue pairs to rank."""
    from curate.ingest.formats import parse_mapping
    from curate.ingest.readers import read_rows
    from curate.rounds.generate import GenerationOptions, generate_candidates
    from curate.rounds.selection import labeled_records
    from curate.runtime.models import load_lm

    ws = Workspace.open(workspace)
    result = RecipeResult("preference-rank", str(ws.root))
    adapter = None
    if model_version:
        from curate.train.registry import resolve_model_version

        model, adapter = resolve_model_version(ws.store, model_version)
    with result.step(f"generate ({n} per prompt)") as s:
        mapping = parse_mapping(map_ or [])
        source = mapping.get("prompt", "prompt")
        prompts = []
        for path in files:
            for raw in read_rows(path):
                value = raw.data.get(source) if isinstance(raw.data, dict) else None
                if isinstance(value, str) and value.strip():
                    prompts.append(value.strip())
        lm, tokenizer = load_lm(model, adapter=adapter)
        options = GenerationOptions(n=n, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        answers = generate_candidates(lm, tokenizer, prompts, options, cache_file=ws.cache_dir / "generations.jsonl",
                                      model_key=f"{model}+{adapter}" if adapter else model)
        out = ws.root / "data" / "generated_candidates.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps({"prompt": p, "completions": a, "generator": model_version or model}) + "\n"
                               for p, a in zip(prompts, answers, strict=True) if len(set(a)) > 1), encoding="utf-8")
        s.update(prompts=len(prompts), generated=sum(len(a) for a in answers))
    ingest_files(ws, result, [out], mapping=None, pii="redact", kind="candidates")
    has_pairs = any(r.kind == "preference" for r in labeled_records(ws))
    number = select_round(ws, result, scorer=SCORER if has_pairs else COLD_SCORER,
                          selector=SELECTOR, k=k, kind="candidates", task_type="rank",
                          seed=seed)
    assign(ws, result, annotators, number)
    result.next_steps.append(f"rank in the app: curate app -w {ws.root}; then curate export --format dpo")
    return result
