"""Every shipped recipe end to end through the CLI on small data, and the demo (`make demo ARGS=--no-app`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from curate.annotate import answers as A
from curate.cli.main import app
from curate.store.accounts import add_user
from curate.store.audit import verify
from curate.store.schema import Annotation, Assignment, AuditEvent, LabelSchema, ModelVersion, RecordRow, Round, Task
from curate.store.workspace import Workspace
from tests.tiny_lm import build_tiny_lm

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-42"


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, ["run", *args])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def _task_ids(ws: Workspace) -> list[int]:
    with ws.store.read() as conn:
        return [int(t) for t in conn.scalars(select(Task.id).order_by(Task.id))]


def _count(ws: Workspace, stmt) -> int:
    with ws.store.read() as conn:
        return int(conn.scalar(stmt) or 0)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> str:
    return str(build_tiny_lm(tmp_path_factory.mktemp("recipes") / "lm"))


def _examples(path: Path) -> Path:
    topics = ["reset a password", "export invoices as PDF", "change the billing address", "add a team member",
              "cancel a subscription", "download usage reports", "enable two-factor login", "merge two accounts",
              "set up single sign-on", "change the invoice currency"]
    steps = ["Open Settings", "Go to Billing", "Use the admin console", "Ask your workspace owner", "Click Profile",
             "Open the Reports tab", "Visit Security", "Contact support", "Open Integrations", "Go to Plans"]
    rows = [{"question": f"How do I {topic}?", "answer": f"{step} and look for '{topic}'."}
            for topic, step in zip(topics, steps, strict=True)]
    rows[3]["answer"] += " Questions? Call Maria Kovalenko at +1 415 555 0137."
    rows.append(dict(rows[0]))  # an exact duplicate
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_recipes_are_listed():
    result = CliRunner().invoke(app, ["recipes"])
    assert result.exit_code == 0
    for name in ("sft-select", "preference-rank", "label-teach", "pii-scrub", "cold-start", "stream-triage", "demo"):
        assert name in result.output


def test_sft_select_scrubs_dedups_scores_and_queues_rewrites(tmp_path, tiny_lm):
    ws_dir = tmp_path / "ws"
    Workspace.open(ws_dir)
    add_user(Workspace.open(ws_dir).store, "ann", "annotator", PASSWORD)
    _run("sft-select", str(_examples(tmp_path / "ex.jsonl")), "--workspace", str(ws_dir), "--k", "4",
         "--map", "prompt=question", "--map", "completion=answer", "--model", tiny_lm, "--annotators", "ann")
    ws = Workspace.open(ws_dir)
    texts = " ".join(r.fields["completion"] for r in ws.store.iter_records())
    assert "Maria Kovalenko" not in texts and "<PERSON_1>" in texts
    assert _count(ws, select(func.count()).select_from(Task).where(Task.type == "rewrite")) == 4
    assert _count(ws, select(func.count()).select_from(Assignment).where(Assignment.annotator == "ann")) == 4
    views = [A.get_task(ws.store, "ann", t) for t in _task_ids(ws)]
    assert all(v.type == "rewrite" and "Maria" not in v.completion for v in views)
    report = json.loads((ws_dir / "reports" / "recipe-sft-select.json").read_text())
    assert [s["name"] for s in report["steps"]][:2] == ["ingest", "dedup (minhash)"]
    ingested = report["steps"][0]["summary"]
    assert ingested["rows"] == ingested["new_records"] + ingested["duplicates_collapsed"] + ingested["quarantined"]
    assert ingested["duplicates_collapsed"] == 1  # the exact copy, counted in the recipe's summary too
    assert verify(ws.store).ok


def test_pii_scrub_and_cold_start(tmp_path):
    ws_dir = tmp_path / "ws"
    _run("pii-scrub", str(_examples(tmp_path / "ex.jsonl")), "--workspace", str(ws_dir),
         "--map", "prompt=question", "--map", "completion=answer", "--action", "redact", "--allow", "Maria Kovalenko")
    ws = Workspace.open(ws_dir)
    texts = json.dumps([r.fields for r in ws.store.iter_records()])
    assert "555 0137" not in texts and "Call Maria Kovalenko at <PHONE_NUMBER_1>" in texts  # allowed at ingest too
    with ws.store.read() as conn:
        events = {a: json.loads(p) for a, p in conn.execute(select(AuditEvent.action, AuditEvent.payload))}
    assert events["ingest"]["pii"]["allow_list"]["size"] == events["filter.pii"]["allow_list"]["size"] == 1
    _run("cold-start", "--workspace", str(ws_dir), "--k", "3", "--kind", "example")
    assert _count(ws, select(func.count()).select_from(Task)) == 3
    # label tasks without a schema: the next steps say how to give them one
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps({"text": f"ticket {i} about billing"}) + "\n"
                                                  for i in range(8)))
    said = " ".join(_run("cold-start", str(tmp_path / "texts.jsonl"), "--workspace", str(ws_dir), "--k", "3",
                         "--kind", "text").split())
    assert "label tasks need a label schema: curate schema add NAME --classes" in said


def test_preference_rank_generates_candidates_and_queues_pairs(tmp_path, tiny_lm):
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("question\nHow do I reset my password?\nCan I change the email on my account?\n"
                       "What is the capital of France?\n")
    ws_dir = tmp_path / "ws"
    add_user(Workspace.open(ws_dir).store, "ann", "annotator", PASSWORD)
    _run("preference-rank", str(prompts), "--workspace", str(ws_dir), "--map", "prompt=question", "--k", "2",
         "--model", tiny_lm, "--max-new-tokens", "8", "--temperature", "1.5", "--annotators", "ann")
    ws = Workspace.open(ws_dir)
    assert _count(ws, select(func.count()).select_from(RecordRow).where(RecordRow.kind == "candidates")) >= 2
    view = A.get_task(ws.store, "ann")
    assert view is not None and view.type == "rank" and len(view.responses) == 2
    with ws.store.read() as conn:
        (first,) = conn.scalars(select(Round.strategy_key)).all()
    assert "density" in first  # no ranked pairs yet: the cold-start branch

    while (view := A.get_task(ws.store, "ann")) is not None:  # ann ranks the first round
        A.submit(ws.store, "ann", view.task_id, {"choice": "A"})
    _run("preference-rank", str(prompts), "--workspace", str(ws_dir), "--map", "prompt=question", "--k", "2",
         "--model", tiny_lm, "--max-new-tokens", "8", "--temperature", "1.5", "--annotators", "ann")
    with ws.store.read() as conn:
        keys = conn.scalars(select(Round.strategy_key).order_by(Round.number)).all()
    # the ranked-pairs branch: prompt coverage, with the two ranked prompts covered
    assert len(keys) == 2 and "prompt_coverage" in keys[1] and "covered[2:" in keys[1], keys


def test_label_teach_runs_the_loop_with_an_oracle(tmp_path):
    rows = ["text,topic"] + [f"refund for invoice {i} please,billing" for i in range(12)] + \
           [f"the app crashes on screen {i},bug" for i in range(12)]
    (tmp_path / "texts.csv").write_text("\n".join(rows) + "\n")
    ws_dir = tmp_path / "ws"
    args = ("--workspace", str(ws_dir), "--classes", "billing,bug", "--schema", "topic", "--oracle", "topic",
            "--rounds", "2", "--batch", "4", "--budget", "8")
    said = " ".join(_run("label-teach", str(tmp_path / "texts.csv"), *args).split())
    assert "no test split, so accuracy is not measured" in said
    again = " ".join(_run("label-teach", *args).split())  # run again to resume: the same schema, not a new version
    assert "schema topic, version 1, unchanged (same classes)" in again
    ws = Workspace.open(ws_dir)
    with ws.store.read() as conn:
        assert conn.execute(select(func.max(LabelSchema.version)).where(LabelSchema.name == "topic")).scalar() == 1
    assert _count(ws, select(func.count()).select_from(Round)) == 2
    assert _count(ws, select(func.count()).select_from(Annotation).where(Annotation.annotator == "oracle")) == 8
    with ws.store.read() as conn:
        keys = conn.scalars(select(Round.strategy_key).order_by(Round.number)).all()
    # after the diverse first batch: margin (the scorer's default method), the most central of clusters of the most
    # uncertain, no random share
    assert keys[1].startswith("classifier_uncertainty()") and "base=prefilter_centroid()" in keys[1]
    assert "random_mix" not in keys[1]
    # the advice, followed: a held-out file whose class is in a label column (not the --oracle column), a new --name
    held = ["text,label"] + [f"please refund invoice {i},billing" for i in range(50, 55)] + \
           [f"crash when I open screen {i},bug" for i in range(50, 55)]
    (tmp_path / "held.csv").write_text("\n".join(held) + "\n")
    assert CliRunner().invoke(app, ["ingest", str(tmp_path / "held.csv"), "--split", "test", "-w",
                                    str(ws_dir)]).exit_code == 0
    measured = " ".join(_run("label-teach", *args, "--name", "with-test").split())
    report = json.loads((ws_dir / "reports" / "recipe-label-teach.json").read_text())
    loop = next(step for step in report["steps"] if step["name"] == "loop")["summary"]
    assert loop["n_test"] == 10 and 0.0 <= loop["accuracy"] <= 1.0
    assert "no test split" not in measured


def test_a_recipe_stops_at_a_file_it_cannot_read_and_says_how_to_ingest_it(tmp_path):
    # a headerless label<TAB>text file (SMS Spam Collection's layout): its first line is taken as the header
    src = tmp_path / "SMSSpamCollection"
    src.write_text("".join(f"{'spam' if i % 3 else 'ham'}\tmessage number {i} about a prize\n" for i in range(20)))
    ws_dir = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", "label-teach", str(src), "--workspace", str(ws_dir), "--classes",
                                      "ham,spam", "--oracle", "label", "--rounds", "1", "--batch", "4"])
    assert result.exit_code != 0
    message = " ".join(str(result.exception).split())
    assert f"{src}: none of its 19 rows could be read" in message
    assert "--columns" in message and f"curate ingest {src}" in message
    assert not (ws_dir / "reports" / "recipe-label-teach.json").exists()  # stopped before the loop
    quarantined = list((ws_dir / "quarantine").glob("*.jsonl"))
    assert len(quarantined) == 1 and len(quarantined[0].read_text().splitlines()) == 19
    # the advice works: ingest with --columns, then the recipe without the file
    ingest = CliRunner().invoke(app, ["ingest", str(src), "--columns", "label,text", "-w", str(ws_dir)])
    assert ingest.exit_code == 0, ingest.output
    assert _count(Workspace.open(ws_dir), select(func.count()).select_from(RecordRow)) == 20


def test_stream_triage_labels_at_the_target_rate(tmp_path):
    ws_dir = tmp_path / "ws"
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps({"text": f"pool message {i} about billing"}) + "\n"
                                                 for i in range(30)))
    Workspace.open(ws_dir)
    CliRunner().invoke(app, ["ingest", str(tmp_path / "pool.jsonl"), "-w", str(ws_dir)])
    add_user(Workspace.open(ws_dir).store, "ann", "annotator", PASSWORD)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": f"incoming {i} " + "word " * (i % 7)}) + "\n"
                                               for i in range(200)))
    _run("stream-triage", str(tmp_path / "in.jsonl"), "--workspace", str(ws_dir), "--target-rate", "0.2",
         "--scorer", "density", "--annotators", "ann", "--drift-window", "0")
    lines = [json.loads(x) for x in (ws_dir / "reports" / "stream-decisions.jsonl").read_text().splitlines()]
    decisions = [x for x in lines if "decision" in x]
    labelled = sum(1 for x in decisions if x["decision"] == "label")
    assert len(decisions) == 200 and abs(labelled / 200 - 0.2) <= 0.2 * 0.2
    assert A.get_task(Workspace.open(ws_dir).store, "ann") is not None


@pytest.mark.models
def test_demo_without_the_app(tmp_path, smollm2_cache):
    """`make demo ARGS=--no-app`, reduced: scrub, dedup, IFD, rank and rewrite, simulated answers, export, train."""
    from curate.runtime.models import CONVERTED_NAME, lm_path

    lm_path(None, smollm2_cache)  # convert once per test session; the demo workspace reuses it
    ws_dir = tmp_path / "demo"
    (ws_dir / "cache" / "models").mkdir(parents=True)
    (ws_dir / "cache" / "models" / CONVERTED_NAME).symlink_to(smollm2_cache / "models" / CONVERTED_NAME)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "curate", "run", "demo", "--workspace", str(ws_dir), "--no-app",
                           "--small", "--password", PASSWORD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ws = Workspace.open(ws_dir)
    steps = [s["name"] for s in json.loads((ws_dir / "reports" / "recipe-demo.json").read_text())["steps"]]
    assert "simulate annotations" in steps and "train sft LoRA (2 steps)" in steps
    assert _count(ws, select(func.count()).select_from(Task).where(Task.status == "open")) == 0
    assert _count(ws, select(func.count()).select_from(ModelVersion).where(ModelVersion.adapter_hash.is_not(None))) == 1
    exports = sorted(p.name.split("-")[0] for p in (ws_dir / "exports").iterdir())
    assert exports == ["dpo", "sft"]
    stored = " ".join(json.dumps(r.fields) for r in ws.store.iter_records(split=None, status=None))
    assert "<PERSON_" in stored or "<EMAIL_ADDRESS_" in stored  # the fixtures' planted PII was redacted
    assert verify(ws.store).ok
