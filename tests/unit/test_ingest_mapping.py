"""``--map``: two response columns into a preference pair, a winner column, and mapped columns checked up front."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate.errors import ColumnMappingError, RecordError
from curate.ingest.formats import row_to_record
from curate.ingest.mapping import parse_mapping, pick_pair
from curate.ingest.sources import ingest
from curate.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    {"prompt": "What is 2+2?", "response_a": "4", "response_b": "5", "winner": "a"},
    {"prompt": "Capital of France?", "response_a": "Lyon", "response_b": "Paris", "winner": "b"},
]


def _write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".csv":
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _pairs(ws: Workspace) -> dict[str, tuple[str, str]]:
    return {r.fields["prompt"]: (r.fields["chosen"], r.fields["rejected"])
            for r in ws.store.iter_records() if r.kind == "preference"}


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_chosen_and_rejected_from_two_response_columns(workspace: Workspace, tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"pairs{suffix}", ROWS)
    report = ingest(workspace, path, mapping=parse_mapping(["chosen=response_a", "rejected=response_b"]))
    assert (report.new, report.quarantined) == (2, 0)
    assert _pairs(workspace) == {"What is 2+2?": ("4", "5"), "Capital of France?": ("Lyon", "Paris")}
    assert all(r.meta == {"winner": r.meta["winner"]} for r in workspace.store.iter_records())


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_winner_column_picks_chosen_and_rejected(workspace: Workspace, tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"pairs{suffix}", ROWS)
    report = ingest(workspace, path, mapping=parse_mapping(["responses=response_a,response_b", "preferred=winner"]))
    assert (report.new, report.quarantined) == (2, 0)
    assert _pairs(workspace) == {"What is 2+2?": ("4", "5"), "Capital of France?": ("Paris", "Lyon")}
    assert all(r.meta == {} for r in workspace.store.iter_records())  # the winner is in the pair, not kept twice


@pytest.mark.parametrize(("winner", "chosen"), [
    ("a", "4"), ("B", "5"), ("response_a", "4"), ("response_b", "5"), ("model_b", "5"), (0, "4"), (1, "5"),
    (1.0, "5"), ("0", "4"), ("1", "5"),
])
def test_winner_values(winner: object, chosen: str) -> None:
    mapping = parse_mapping(["responses=response_a,response_b", "preferred=winner"])
    rec = row_to_record({"prompt": "p", "response_a": "4", "response_b": "5", "winner": winner}, mapping=mapping)
    assert rec.kind == "preference" and rec.fields["chosen"] == chosen and rec.fields["rejected"] != chosen


@pytest.mark.parametrize(("winner", "message"), [
    ("tie", "no response won"), ("tie (bothbad)", "no response won"), (None, "'preferred' is empty"),
    (2, "expected a or b, 0 or 1"), ("c", "response column name (response_a, response_b)"), (True, "expected a or b"),
])
def test_a_winner_that_names_no_response_is_a_row_error(winner: object, message: str) -> None:
    mapping = parse_mapping(["responses=response_a,response_b", "preferred=winner"])
    with pytest.raises(RecordError, match=message.replace("(", r"\(").replace(")", r"\)")):
        row_to_record({"prompt": "p", "response_a": "4", "response_b": "5", "winner": winner}, mapping=mapping)


def test_responses_without_a_winner_are_candidates() -> None:
    rec = row_to_record({"prompt": "p", "r1": "x", "r2": "y", "r3": "z"},
                        mapping=parse_mapping(["responses=r1,r2,r3"]))
    assert rec.kind == "candidates" and rec.fields["completions"] == ["x", "y", "z"]


def test_pick_pair_needs_two_responses() -> None:
    with pytest.raises(RecordError, match="this row has 3"):
        pick_pair(["a", "b", "c"], "a", [])


@pytest.mark.parametrize(("items", "message"), [
    (["preferred=winner"], "also name the two response columns"),
    (["text=a,b"], "only completions and responses take several columns"),
    (["respones=a,b"], "Did you mean 'responses'?"),
])
def test_malformed_pair_mappings(items: list[str], message: str) -> None:
    with pytest.raises(ColumnMappingError, match=message):
        parse_mapping(items)


def test_mapped_columns_are_checked_against_the_file(workspace: Workspace, tmp_path: Path) -> None:
    path = _write(tmp_path / "pairs.csv", ROWS)
    with pytest.raises(ColumnMappingError, match="column 'response_c' .* its columns are: prompt, response_a, "
                                                 "response_b, winner. Did you mean 'response_"):
        ingest(workspace, path, mapping=parse_mapping(["responses=response_a,response_c", "preferred=winner"]))
    nested = _write(tmp_path / "nested.jsonl", [{"body": "hi", "meta": {"intent": "greet"}}])
    # the suggestion is the whole path, which works as a --map source (meta.intent, not intent)
    with pytest.raises(ColumnMappingError, match="'meta' holds intent. Did you mean 'meta.intent'"):
        ingest(workspace, nested, mapping=parse_mapping(["text=body", "label=meta.intnet"]))
    assert not list(workspace.quarantine_dir.glob("*.jsonl"))


def test_cli_two_response_columns_into_a_pair(tmp_path: Path) -> None:
    path = _write(tmp_path / "pairs.csv", ROWS)
    env = {k: v for k, v in os.environ.items() if k != "CURATE_DEBUG"}
    ws = tmp_path / "ws"
    proc = subprocess.run([sys.executable, "-m", "curate", "ingest", str(path), "--map", "responses=response_a,"
                           "response_b", "--map", "preferred=winner", "-w", str(ws)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "preference: 2" in proc.stdout
    opened = Workspace.open(ws, must_exist=True)
    assert _pairs(opened) == {"What is 2+2?": ("4", "5"), "Capital of France?": ("Paris", "Lyon")}
    opened.store.dispose()


def test_a_number_in_a_mapped_path_picks_a_list_item(workspace: Workspace, tmp_path: Path) -> None:
    """Self-instruct's seed tasks keep the answer in a list ({"instruction", "instances": [{"input", "output"}]})."""
    rows = [{"instruction": "Add the numbers.", "instances": [{"input": "2 and 3", "output": "5"}], "id": "t1"},
            {"instruction": "Name a colour.", "instances": [{"input": "", "output": "Blue"},
                                                            {"input": "", "output": "Red"}], "id": "t2"},
            {"instruction": "No instances here.", "instances": [], "id": "t3"}]
    path = _write(tmp_path / "seed.jsonl", rows)
    report = ingest(workspace, path, mapping=parse_mapping(["input=instances.0.input", "output=instances.-1.output"]))
    assert (report.new, report.quarantined) == (2, 1)  # the empty list cannot give an answer: quarantined
    records = {r.meta["id"]: r for r in workspace.store.iter_records()}
    assert set(records) == {"t1", "t2"} and "instances" not in records["t1"].meta
    assert records["t1"].fields["completion"] == "5" and "2 and 3" in str(records["t1"].fields["prompt"])
    assert records["t2"].fields["completion"] == "Red"  # -1: the last item
    with pytest.raises(ColumnMappingError, match=r"'instances' is a list \(of up to 2 items\); name an item by its "
                                                 r"position, e.g. instances\.0\.output \(the first\)"):
        ingest(workspace, path, mapping=parse_mapping(["output=instances.output"]))


def test_one_hot_winner_columns_pick_the_pair_and_a_tie_is_quarantined(workspace: Workspace, tmp_path: Path) -> None:
    """lmsys arena-human-preference-55k's layout: winner_model_a / winner_model_b / winner_tie flags."""
    rows = [{"prompt": f"Question {i}?", "response_a": f"Answer A{i}.", "response_b": f"Answer B{i}.",
             "winner_model_a": int(i % 3 == 0), "winner_model_b": int(i % 3 == 1), "winner_tie": int(i % 3 == 2)}
            for i in range(9)]
    path = _write(tmp_path / "arena.csv", rows)
    report = ingest(workspace, path, mapping=parse_mapping(["responses=response_a,response_b",
                                                            "preferred=winner_model_a,winner_model_b"]))
    assert (report.new, report.quarantined) == (6, 3)
    assert any("both 0: no response won (a tie)" in reason for reason in report.reasons)
    chosen = {r.fields["prompt"]: r.fields["chosen"] for r in workspace.store.iter_records()}
    assert chosen == {f"Question {i}?": f"Answer {'A' if i % 3 == 0 else 'B'}{i}." for i in range(9) if i % 3 != 2}
    with pytest.raises(ColumnMappingError, match="preferred takes one column .* or two one-hot columns"):
        parse_mapping(["responses=a,b", "preferred=x,y,z"])


def test_json_encoded_list_cells_of_arena_55k_are_read_as_text(workspace: Workspace, tmp_path: Path) -> None:
    """arena-human-preference-55k's CSV keeps prompt and responses as JSON-encoded lists of turns."""
    import csv

    path = tmp_path / "arena.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "prompt", "response_a", "response_b", "winner_model_a", "winner_model_b", "winner_tie"])
        writer.writerow([1, json.dumps(["How many fins does a cow have?"]), json.dumps(["A cow has no fins."]),
                         json.dumps(["Four."]), 1, 0, 0])
        writer.writerow([2, json.dumps(["Hi", "Name a colour"]), json.dumps(["Hello!", "Blue."]),
                         json.dumps(["Hey.", "[1, 2]"]), 0, 1, 0])
    report = ingest(workspace, path, mapping=parse_mapping(["responses=response_a,response_b",
                                                            "preferred=winner_model_a,winner_model_b"]))
    assert report.new == 2
    pairs = {r.fields["prompt"]: (r.fields["chosen"], r.fields["rejected"]) for r in workspace.store.iter_records()}
    assert pairs == {"How many fins does a cow have?": ("A cow has no fins.", "Four."),
                     "Hi\n\nName a colour": ("Hey.\n\n[1, 2]", "Hello!\n\nBlue.")}
    # a column where only some cells look like a JSON list is left as it is
    mixed = _write(tmp_path / "mixed.csv", [{"q": '["not", "decoded"]', "a": "x"}, {"q": "plain question", "a": "y"}])
    ingest(workspace, mixed, mapping=parse_mapping(["prompt=q", "completion=a"]))
    assert '["not", "decoded"]' in {r.fields.get("prompt") for r in workspace.store.iter_records()}
