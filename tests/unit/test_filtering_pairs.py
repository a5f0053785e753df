"""filter dedup on preference/candidates data in a real workspace: same comparison only, dry run, report, undo."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from curate.cli.main import app
from curate.errors import InputError
from curate.filters.dedup_runs import dedup_runs, undo_dedup
from curate.filters.dedup_workspace import run_dedup
from curate.ingest.sources import ingest
from curate.rounds.selection import candidates
from curate.store.audit import verify
from curate.store.schema import AuditEvent, RecordCluster, RecordRow, StatusChange
from tests.conftest import SHARED_DATA
from tests.unit.filters.test_dedup_comparisons import ANSWERS, PROMPT, REFERENCE, typo

SECOND_PROMPT = "Give one reason to prefer a heat pump over a gas boiler for a small, well insulated house."
OPTIONS = ["It is about three times as efficient.", "No combustion indoors, so no carbon monoxide risk.",
           "It can also cool the house in summer.", "Lower running costs where electricity is cheap."]


def _rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _pool(tmp_path: Path) -> tuple[list[dict], list[dict]]:
    """``(originals, copies)``: 10 pairs sharing the prompt and the reference, 2 candidate lists, and copies."""
    originals = [{"prompt": PROMPT, "chosen": REFERENCE, "rejected": a} if i % 2 else
                 {"prompt": PROMPT, "chosen": a, "rejected": REFERENCE} for i, a in enumerate(ANSWERS)]
    originals += [{"prompt": SECOND_PROMPT, "completions": OPTIONS[:3]},
                  {"prompt": SECOND_PROMPT, "completions": OPTIONS[1:]}]  # shares two of three completions
    copies = [
        {"prompt": PROMPT.upper() + "!", "chosen": ANSWERS[0].lower(), "rejected": REFERENCE.replace(",", "")},
        {"prompt": PROMPT, "chosen": ANSWERS[1], "rejected": REFERENCE},  # swapped
        {"prompt": PROMPT.replace("sky", "skies"), "chosen": ANSWERS[2], "rejected": typo(REFERENCE)},  # near
        {"prompt": PROMPT, "chosen": typo(REFERENCE), "rejected": ANSWERS[3]},  # near and swapped
        {"prompt": SECOND_PROMPT, "completions": [OPTIONS[2], OPTIONS[0], OPTIONS[1]]},  # reordered
        {"prompt": SECOND_PROMPT + " ", "completions": [OPTIONS[3].upper(), OPTIONS[1], OPTIONS[2]]},
    ]
    _rows(tmp_path / "pairs.jsonl", originals + copies)
    return originals, copies


def _status(ws) -> dict[str, str]:
    with ws.store.read() as conn:
        return dict(conn.execute(select(RecordRow.id, RecordRow.status)).tuples().all())


def _count(ws, table) -> int:
    with ws.store.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def test_only_copies_of_whole_comparisons_are_removed_and_undo_restores_them(workspace, tmp_path):
    originals, copies = _pool(tmp_path)
    ingest(workspace, tmp_path / "pairs.jsonl")
    before, events = _status(workspace), _count(workspace, AuditEvent)
    assert len(before) == len(originals) + len(copies)

    dry = run_dedup(workspace, method="minhash", dry_run=True)  # changes nothing, shows the clusters
    assert (dry.removed, dry.duplicate_clusters, dry.dry_run) == (len(copies), len(copies), True)
    assert _status(workspace) == before and _count(workspace, AuditEvent) == events
    assert _count(workspace, StatusChange) == 0 and _count(workspace, RecordCluster) == 0
    listed = json.loads(Path(dry.report_path).read_text())
    assert listed["dry_run"] and len(listed["clusters"]) == len(copies)
    assert all(len(c["removed"]) == 1 and c["kept"]["preview"] for c in listed["clusters"])

    report = run_dedup(workspace, method="minhash")
    assert (report.records, report.removed, report.leaks) == (len(originals) + len(copies), len(copies), 0)
    left = [r.fields for r in candidates(workspace)]
    assert sorted(map(json.dumps, left)) == sorted(map(json.dumps, originals))  # the 10 pairs + 2 lists survive
    removed = {c["removed"][0]["id"] for c in json.loads(Path(report.report_path).read_text())["clusters"]}
    assert {rid for rid, s in _status(workspace).items() if s == "duplicate"} == removed
    assert Path(report.report_path).parent == workspace.reports_dir and report.run in report.report_path
    assert json.loads(Path(report.report_path).read_text())["seconds"] > 0  # the file has the run's time too

    undone = undo_dedup(workspace)
    assert (undone.run, undone.restored, undone.skipped) == (report.run, len(copies), 0)
    assert _status(workspace) == before and len(candidates(workspace)) == len(before)
    with workspace.store.read() as conn:
        last = conn.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert last.action == "filter.dedup.undo" and json.loads(last.payload)["run"] == report.run
    assert verify(workspace.store).ok
    with pytest.raises(InputError, match="nothing to undo"):
        undo_dedup(workspace)


def test_undo_steps_back_through_runs_newest_first(workspace, tmp_path):
    _, copies = _pool(tmp_path)
    ingest(workspace, tmp_path / "pairs.jsonl")
    before = _status(workspace)
    first = run_dedup(workspace, method="exact")  # normalised-equal, swapped and reordered copies
    second = run_dedup(workspace, method="minhash")  # then the near-copies
    assert first.removed + second.removed == len(copies) and first.removed and second.removed
    assert [r.run for r in dedup_runs(workspace)] == [second.run, first.run]
    after_first = {rid: s for rid, s in _status(workspace).items()}
    assert undo_dedup(workspace).run == second.run  # the latest run by default
    restored = _status(workspace)
    assert sum(s == "duplicate" for s in restored.values()) == first.removed
    assert undo_dedup(workspace).run == first.run and _status(workspace) == before
    assert sum(s == "duplicate" for s in after_first.values()) == len(copies)
    with pytest.raises(InputError, match="undone already"):
        undo_dedup(workspace, first.run)


def test_undo_leaves_a_record_whose_status_changed_since(workspace, tmp_path):
    _pool(tmp_path)
    ingest(workspace, tmp_path / "pairs.jsonl")
    report = run_dedup(workspace, method="exact")
    changed = json.loads(Path(report.report_path).read_text())["clusters"][0]["removed"][0]["id"]
    with workspace.store.write() as conn:
        conn.execute(RecordRow.__table__.update().where(RecordRow.id == changed).values(status="pii"))
    undone = undo_dedup(workspace, report.run)
    assert (undone.restored, undone.skipped, undone.skipped_ids) == (report.removed - 1, 1, [changed])
    assert _status(workspace)[changed] == "pii"


def test_a_pool_pair_is_a_leak_only_when_it_copies_a_test_comparison(workspace, tmp_path):
    _rows(tmp_path / "test.jsonl", [{"prompt": PROMPT, "chosen": REFERENCE, "rejected": ANSWERS[0]}])
    _rows(tmp_path / "pool.jsonl", [
        {"prompt": PROMPT, "chosen": ANSWERS[0], "rejected": REFERENCE},  # the test pair, swapped: a leak
        *({"prompt": PROMPT, "chosen": REFERENCE, "rejected": a} for a in ANSWERS[1:]),  # same prompt and reference
    ])
    ingest(workspace, tmp_path / "test.jsonl", split="test")
    ingest(workspace, tmp_path / "pool.jsonl")
    report = run_dedup(workspace)
    assert (report.removed, report.leaks, report.reference) == (0, 1, 1)
    assert len(candidates(workspace)) == len(ANSWERS) - 1
    leak = json.loads(Path(report.report_path).read_text())["clusters"]
    assert [c["status"] for c in leak] == ["leak"]
    assert undo_dedup(workspace).restored == 1 and len(candidates(workspace)) == len(ANSWERS)


def test_filter_dedup_command_dry_run_and_undo(tmp_path):
    ws = str(tmp_path / "ws")
    _pool(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(tmp_path / "pairs.jsonl"), "-w", ws]).exit_code == 0
    dry = runner.invoke(app, ["filter", "dedup", "-w", ws, "--dry-run", "--json", str(tmp_path / "d.json")])
    assert dry.exit_code == 0, dry.output
    flat = " ".join(dry.output.split())
    assert "dry run: nothing changed" in flat and "-dry-run.json" in flat
    assert dry.output.count("duplicates:") == 6 and "+ " in dry.output and "- " in dry.output
    figures = json.loads((tmp_path / "d.json").read_text())
    assert figures["removed"] == 6 and figures["dry_run"] and "clusters" not in figures
    real = runner.invoke(app, ["filter", "dedup", "-w", ws])
    assert real.exit_code == 0 and "6 duplicate(s) marked" in real.output and "--undo" in " ".join(real.output.split())
    undo = runner.invoke(app, ["filter", "dedup", "-w", ws, "--undo"])
    assert undo.exit_code == 0 and "6 record(s) got their status back" in " ".join(undo.output.split())
    again = runner.invoke(app, ["filter", "dedup", "-w", ws, "--undo"])
    assert isinstance(again.exception, InputError) and "nothing to undo" in str(again.exception)
    alone = runner.invoke(app, ["filter", "dedup", "-w", ws, "--run", "x"])
    assert isinstance(alone.exception, InputError) and "use it with --undo" in str(alone.exception)
    unknown = runner.invoke(app, ["filter", "dedup", "-w", ws, "--undo", "--run", "dedup-nope"])
    assert isinstance(unknown.exception, InputError) and "no dedup run of that id" in str(unknown.exception)

ALPACAEVAL = SHARED_DATA / "preference_pairs" / "alpacaeval_gpt4_balanced.jsonl.gz"


@pytest.mark.skipif(not ALPACAEVAL.exists(), reason=f"real preference pairs not found at {ALPACAEVAL} "
                                                    "(../shared/data is optional)")
def test_real_preference_pairs_sharing_prompt_and_reference_survive(tmp_path):
    """AlpacaEval pairs: one prompt, the text_davinci_003 reference, many models. The pairs of the first 20 prompts
    (313 rows, 306 records) hold no repeated comparison; whole-text MinHash called 221 of them duplicates."""
    from curate.store.workspace import Workspace

    rows = [json.loads(line) for line in gzip.open(ALPACAEVAL, "rt", encoding="utf-8")]
    prompts = set(sorted({r["prompt"] for r in rows})[:20])
    _rows(tmp_path / "ae.jsonl", [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows
                                  if r["prompt"] in prompts])
    ws = Workspace.open(tmp_path / "ws")
    assert ingest(ws, tmp_path / "ae.jsonl").new == 306
    report = run_dedup(ws, method="minhash")
    assert (report.records, report.removed) == (306, 0)


class CharGrams:
    """A stand-in embedder: hashed character 3-gram counts (near-copies ~1.0 cosine, other answers far lower)."""

    def embed_texts(self, texts):
        import zlib

        import numpy as np

        from curate.filters.dedup_pairs import normalise_for_dedup

        out = np.zeros((len(texts), 512), dtype=np.float32)
        for i, text in enumerate(texts):
            norm = normalise_for_dedup(text)
            for j in range(max(1, len(norm) - 2)):
                out[i, zlib.crc32(norm[j:j + 3].encode()) % 512] += 1.0
        return out


def test_semantic_method_compares_field_by_field_too(workspace, tmp_path):
    originals, copies = _pool(tmp_path)
    ingest(workspace, tmp_path / "pairs.jsonl")
    report = run_dedup(workspace, method="semantic", embedder=CharGrams(), pair_threshold=0.95)
    assert (report.removed, report.duplicate_clusters) == (len(copies), len(copies))
    assert len(candidates(workspace)) == len(originals)


def test_pair_threshold_is_checked(workspace):
    with pytest.raises(InputError, match="--pair-threshold must lie in"):
        run_dedup(workspace, pair_threshold=1.5)
