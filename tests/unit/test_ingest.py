"""Ingest end to end on a real SQLite workspace: formats, duplicates, quarantine, strict mode, audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.errors import InputError
from curate.ingest.sources import ingest
from curate.store.audit import verify

FIXTURE_KINDS = {
    "sft.jsonl": {"example": 3},
    "chat.jsonl": {"example": 2},
    "preference.jsonl": {"preference": 2},
    "preference_implicit.jsonl": {"preference": 3},
    "candidates.jsonl": {"candidates": 1},
    "kto.jsonl": {"example": 2},
    "alpaca.json": {"example": 3},
    "texts.csv": {"text": 4},
}


@pytest.mark.parametrize(("name", "kinds"), FIXTURE_KINDS.items())
def test_each_shipped_format_ingests(workspace, fixtures, name, kinds):
    report = ingest(workspace, fixtures / name)
    assert report.quarantined == 0, report.reasons
    assert report.by_kind == kinds
    stored = list(workspace.store.iter_records())
    assert len(stored) == sum(kinds.values())
    assert all(rec.source == str(fixtures / name) and rec.line >= 1 for rec in stored)


def test_parquet_and_hf_folder_ingest(workspace, tmp_path):
    import datasets

    ds = datasets.Dataset.from_list([{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(5)])
    ds.to_parquet(str(tmp_path / "p.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    assert ingest(workspace, tmp_path / "p.parquet").new == 5
    again = ingest(workspace, tmp_path / "saved")
    assert (again.rows, again.new, again.duplicates) == (5, 0, 5)


def test_a_saved_dataset_dict_with_a_test_split_is_refused_whole_then_read_split_by_split(workspace, tmp_path):
    import datasets
    import pytest

    from curate.errors import UnsupportedFormatError

    rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(6)]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:4]),
                          "test": datasets.Dataset.from_list(rows[4:])}).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(UnsupportedFormatError, match="held-out rows \\(test\\) would land where they can be selected"):
        ingest(workspace, tmp_path / "saved")
    assert workspace.store.stats()["by_split"] == {}  # nothing stored
    assert ingest(workspace, tmp_path / "saved" / "test", split="test").new == 2
    assert ingest(workspace, tmp_path / "saved", hf_split="train").new == 4
    assert workspace.store.stats()["by_split"] == {"pool": 4, "test": 2}


def _mixed_file(path: Path) -> dict[int, str]:
    """A JSONL file with valid rows around one row of each bad kind; returns {bad line: reason fragment}."""
    lines = [
        b'{"text": "valid one", "label": "a"}',
        b'{"text": "broken json", ',
        b'{"label": "a"}',
        b'{"text": 42}',
        b'{"text": "   "}',
        b'{"text": "bad byte \xff here"}',
        b'{"text": "' + b"m" * (5 * 1024 * 1024) + b'"}',
        b'{"text": "valid two", "label": "b"}',
        b'{"text": "valid one", "label": "a"}',
        b'{"prompt": "valid three", "completion": "yes"}',
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return {2: "broken JSON", 3: "no known shape", 4: "must be a string", 5: "is empty", 6: "invalid UTF-8",
            7: "longer than the limit"}


def test_bad_rows_are_quarantined_with_line_and_reason_and_every_valid_row_is_kept(workspace, tmp_path):
    expected = _mixed_file(tmp_path / "mixed.jsonl")
    report = ingest(workspace, tmp_path / "mixed.jsonl")
    assert (report.rows, report.valid, report.new, report.duplicates) == (10, 4, 3, 1)
    assert report.quarantined == len(expected)
    texts = sorted(r.fields.get("text") or r.fields["prompt"] for r in workspace.store.iter_records())
    assert texts == ["valid one", "valid three", "valid two"]
    entries = [json.loads(line) for line in Path(report.quarantine_path).read_text().splitlines()]
    assert {e["line"] for e in entries} == set(expected)
    for entry in entries:
        assert expected[entry["line"]] in entry["reason"]
        assert entry["source"].endswith("mixed.jsonl")
    assert Path(report.quarantine_path).parent == workspace.quarantine_dir


def test_strict_stores_nothing_and_names_the_line(workspace, tmp_path):
    _mixed_file(tmp_path / "mixed.jsonl")
    with pytest.raises(InputError, match=r"mixed.jsonl, line 2: broken JSON.*--strict"):
        ingest(workspace, tmp_path / "mixed.jsonl", strict=True)
    assert workspace.store.count_records() == 0
    assert verify(workspace.store).n_events == 0


def test_reingest_is_idempotent_and_first_occurrence_keeps_provenance(workspace, fixtures):
    first = ingest(workspace, fixtures / "sft.jsonl")
    second = ingest(workspace, fixtures / "sft.jsonl")
    assert first.new == 3 and second.new == 0 and second.duplicates == 3
    assert sorted(r.line for r in workspace.store.iter_records()) == [1, 2, 3]


def test_ingest_writes_one_audit_event_without_record_text(workspace, fixtures):
    ingest(workspace, fixtures / "sft.jsonl", actor="alice")
    report = verify(workspace.store)
    assert report.ok and report.n_events == 1
    from sqlalchemy import select

    from curate.store.schema import AuditEvent

    with workspace.store.read() as conn:
        ev = conn.execute(select(AuditEvent)).one()
    assert (ev.action, ev.actor) == ("ingest", "alice")
    payload = json.loads(ev.payload)
    assert payload["new"] == 3 and len(payload["new_ids_digest"]) == 32
    assert "reset my password" not in ev.payload


def test_split_marks_frozen_test_records(workspace, fixtures):
    ingest(workspace, fixtures / "texts.csv", split="test")
    assert workspace.store.stats()["by_split"] == {"test": 4}
    assert list(workspace.store.iter_records(split="pool")) == []


def test_column_mapping_through_ingest(workspace, tmp_path):
    (tmp_path / "intents.csv").write_text("utterance,intent\nlost my card,card_lost\nwhere is my money,transfer\n")
    report = ingest(workspace, tmp_path / "intents.csv", mapping={"text": "utterance", "label": "intent"})
    assert report.by_kind == {"text": 2}
    labels = sorted(r.label for r in workspace.store.iter_records())
    assert labels == ["card_lost", "transfer"]


def test_nothing_valid_still_reports(workspace, tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"nope": 1}\n{"nope": 2}\n')
    report = ingest(workspace, tmp_path / "bad.jsonl")
    assert (report.valid, report.quarantined) == (0, 2)
