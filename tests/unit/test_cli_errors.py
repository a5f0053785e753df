"""First-contact errors that say what to do (issue 17): the real CLI in a subprocess, the message, the exit code, and
never a traceback."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from curate.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
CP1252_TEXT = "café – naïve"


def _curate(*args: str | Path, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``curate ARGS`` (or ``python -c CODE ARGS``) as a user would: CURATE_DEBUG unset, from the project root."""
    env = {k: v for k, v in os.environ.items() if k != "CURATE_DEBUG"}
    head = ["-c", code] if code is not None else ["-m", "curate"]
    return subprocess.run([sys.executable, *head, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=180)


def _said(proc: subprocess.CompletedProcess[str]) -> str:
    """Everything printed, with rich's line wrapping undone; asserts no traceback was printed."""
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    return " ".join(out.split())


def _records(ws: Path) -> list[dict]:
    store = Workspace.open(ws, must_exist=True).store
    try:
        return [{"kind": r.kind, **r.fields, "meta": r.meta} for r in store.iter_records()]
    finally:
        store.dispose()


@pytest.fixture
def alpaca(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    rows = [{"instruction": "Say hi", "input": "", "output": "hi"}, {"instruction": "Add", "input": "1+1",
                                                                     "output": "2"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------------------------------ curate app


def test_port_in_use_names_the_port_and_the_option(tmp_path: Path, alpaca: Path) -> None:
    ws = tmp_path / "ws"
    assert _curate("ingest", alpaca, "-w", ws).returncode == 0
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = _curate("app", "-w", ws, "--port", port)
    said = _said(proc)
    assert proc.returncode == 2, said
    assert f"port {port} on 127.0.0.1 is already in use" in said
    assert "pass --port N with a free port" in said
    assert "bug" not in said and "internal error" not in said


def test_gradio_port_error_becomes_an_input_error(tmp_path: Path) -> None:
    """When the port is taken between the check and the launch, gradio's OSError is still turned into advice."""
    pytest.importorskip("gradio")
    from apps.annotate import launch_app
    from curate.errors import InputError
    from curate.store.accounts import add_user

    ws = Workspace.open(tmp_path / "ws")
    add_user(ws.store, "ada", "admin", password="correct-horse-42")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(InputError, match=f"port {port} on 127.0.0.1 is already in use.*--port N"):
            launch_app(ws, port=port, prevent_thread_lock=True, quiet=True)
    ws.store.dispose()


def test_app_host_that_is_not_this_machine(tmp_path: Path) -> None:
    proc = _curate("app", "-w", tmp_path / "ws", "--host", "10.254.254.254", "--port", "7999")
    said = _said(proc)
    assert proc.returncode == 2 and "is not an address of this machine" in said and "127.0.0.1" in said


# ------------------------------------------------------------------------------------------ curate ingest


def test_quarantine_reasons_are_printed_in_full_with_their_lines(tmp_path: Path) -> None:
    (tmp_path / "pairs.csv").write_text("prompt,response_a,response_b,winner\nWhat is 2+2?,4,5,a\nCapital?,Lyon,"
                                        "Paris,b\n")
    proc = _curate("ingest", tmp_path / "pairs.csv", "-w", tmp_path / "ws")
    said = _said(proc)
    assert proc.returncode == 1
    assert ("2 x row has fields ['prompt', 'response_a', 'response_b', 'winner'] but no known shape; expected "
            "prompt+completion, messages, prompt+chosen+rejected, chosen+rejected (implicit prompt), "
            "prompt+completions, instruction+output (Alpaca) or text(+label). Name your columns with --map "
            "target=source; for a pair with the winner in 'winner': --map responses=response_a,response_b --map "
            "preferred=winner (lines 2, 3)") in said
    assert "quarantine:" in said


def test_quarantined_elements_of_a_minified_json_array_are_named_by_element(tmp_path: Path) -> None:
    """``json.dump`` writes an array on one line: "line 1" would not find a row, its element number does; and a
    broken element whose brackets do not balance loses none of the rows after it."""
    rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(6)]
    text = json.dumps(rows).replace('"completion": "a1"}', '"completion": "a1", "x": [1}')
    text = text.replace('{"prompt": "q4", "completion": "a4"}', '{"prompt": "q4"}')
    (tmp_path / "rows.json").write_text(text)
    proc = _curate("ingest", tmp_path / "rows.json", "-w", tmp_path / "ws")
    said = " ".join(_said(proc).split())
    assert proc.returncode == 0  # rows were stored; the quarantined ones are listed
    assert "broken JSON" in said and "(element 2 on line 1)" in said
    assert "Name your columns with --map target=source (element 5 on line 1)" in said
    assert re.search(r"new records\s*│?\s*4\b", said), said
    quarantined = [json.loads(line) for line in next((tmp_path / "ws" / "quarantine").glob("*.jsonl")).open()]
    assert [(q["line"], q["row"], q["element"]) for q in quarantined] == [(1, 2, 2), (1, 5, 5)]


def test_headerless_tsv_hints_at_columns_and_reads_with_them(tmp_path: Path) -> None:
    """A classic headerless TSV (label, text; texts with literal quotes): the first row cannot name the columns,
    the error says so; with --columns every row is stored."""
    lines = ['ham\tGo until jurong point, crazy.. Available only in bugis n great world',
             'spam\tFree entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005',
             'ham\t"Hello" he said, and left',
             'ham\tThe 5" screen is fine']
    (tmp_path / "sms.tsv").write_text("\n".join(lines) + "\n")
    proc = _curate("ingest", tmp_path / "sms.tsv", "-w", tmp_path / "ws")
    assert proc.returncode == 1
    assert ("these column names look like text: if the file has no header line, name its columns with --columns "
            "(e.g. --columns label,text)") in _said(proc)
    proc = _curate("ingest", tmp_path / "sms.tsv", "--columns", "label,text", "-w", tmp_path / "ws2")
    assert proc.returncode == 0, _said(proc)
    store = Workspace.open(tmp_path / "ws2", must_exist=True).store
    try:
        stored = sorted((r.fields["text"], r.label) for r in store.iter_records())
    finally:
        store.dispose()
    assert stored == sorted((line.split("\t")[1], line.split("\t")[0]) for line in lines)


def test_wrong_map_column_lists_the_columns_and_the_closest(tmp_path: Path, alpaca: Path) -> None:
    ws = tmp_path / "ws"
    proc = _curate("ingest", alpaca, "--map", "prompt=instrction", "-w", ws)
    said = _said(proc)
    assert proc.returncode == 2, said
    assert ("column 'instrction' (from --map prompt=instrction) is not in data.jsonl; its columns are: "
            "instruction, input, output. Did you mean 'instruction'?") in said
    assert not ws.exists()  # refused before the workspace was made or any row quarantined


def test_wrong_map_column_in_a_later_source_stops_before_the_first_is_stored(tmp_path: Path, alpaca: Path) -> None:
    (tmp_path / "texts.csv").write_text("sentence,intent\nhello,greet\n")
    (tmp_path / "other.csv").write_text("utterance,intent\nbye,leave\n")
    proc = _curate("ingest", tmp_path / "texts.csv", tmp_path / "other.csv", "--map", "text=sentence",
                   "-w", tmp_path / "ws")
    said = _said(proc)
    assert proc.returncode == 2 and "is not in other.csv; its columns are: utterance, intent" in said
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--kind", "preferance", "--kind must be one of example, preference, candidates, text; got 'preferance'. "
                             "Did you mean 'preference'?"),
    ("--split", "tset", "--split must be one of pool, test, calibration; got 'tset'. Did you mean 'test'?"),
    ("--format", "jsnol", "--format must be one of jsonl, json, csv, tsv, parquet, hf; got 'jsnol'. Did you mean "
                          "'jsonl'?"),
    ("--pii", "redcat", "--pii must be one of redact, drop, flag, preview, off; got 'redcat'. Did you mean 'redact'?"),
    ("--encoding", "utf9", "--encoding 'utf9' is not an encoding Python knows"),
])
def test_ingest_options_are_checked_before_any_row_is_read(tmp_path: Path, alpaca: Path, option: str, value: str,
                                                           message: str) -> None:
    ws = tmp_path / "ws"
    proc = _curate("ingest", alpaca, option, value, "-w", ws)
    said = _said(proc)
    assert proc.returncode == 2, said
    assert message in said
    assert not ws.exists()  # nothing quarantined, no workspace made


@pytest.mark.parametrize("command", ["score", "select", "seed"])
def test_kind_typo_on_score_select_seed(tmp_path: Path, alpaca: Path, command: str) -> None:
    ws = tmp_path / "ws"
    assert _curate("ingest", alpaca, "-w", ws).returncode == 0
    proc = _curate(command, "--kind", "exemple", "-w", ws)
    said = _said(proc)
    assert proc.returncode == 2, said
    assert "--kind must be one of example, preference, candidates, text; got 'exemple'. Did you mean 'example'?" in said


def test_windows_1252_file_hints_at_encoding_and_reads_with_it(tmp_path: Path) -> None:
    path = tmp_path / "cp.jsonl"
    path.write_bytes(f'{{"text": "{CP1252_TEXT}"}}\n{{"text": "plain"}}\n'.encode("cp1252"))
    proc = _curate("ingest", path, "-w", tmp_path / "ws")
    said = _said(proc)
    assert proc.returncode == 0, said  # the plain row is kept
    assert ("1 x invalid UTF-8: this line is not valid UTF-8 text; if the file is in another encoding (e.g. "
            "Windows-1252), pass --encoding cp1252 (line 1)") in said
    strict = _curate("ingest", path, "--strict", "-w", tmp_path / "ws-strict")
    said = _said(strict)
    assert strict.returncode == 2 and f"{path}, line 1: invalid UTF-8" in said and "--encoding cp1252" in said

    proc = _curate("ingest", path, "--encoding", "cp1252", "-w", tmp_path / "ws2")
    assert proc.returncode == 0, _said(proc)
    assert sorted(r["text"] for r in _records(tmp_path / "ws2")) == [CP1252_TEXT, "plain"]


def test_windows_1252_csv_header_and_utf16_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "cp.csv").write_bytes(f"text,label\n{CP1252_TEXT},a\n".encode("cp1252"))
    (tmp_path / "head.csv").write_bytes(f"texté,label\n{CP1252_TEXT},a\n".encode("cp1252"))
    (tmp_path / "u16.csv").write_bytes(f"text,label\n{CP1252_TEXT},a\n".encode("utf-16"))
    proc = _curate("ingest", tmp_path / "head.csv", "-w", tmp_path / "ws")
    said = _said(proc)
    assert proc.returncode == 2 and "head.csv, line 1: invalid UTF-8" in said and "--encoding cp1252" in said
    proc = _curate("ingest", tmp_path / "u16.csv", "-w", tmp_path / "ws")
    said = _said(proc)
    assert proc.returncode == 2 and "starts with a UTF-16 byte order mark" in said and "--encoding utf-16" in said
    for name, encoding in (("cp.csv", "windows-1252"), ("u16.csv", "utf-16")):
        ws = tmp_path / f"ws-{encoding}"
        assert _curate("ingest", tmp_path / name, "--encoding", encoding, "-w", ws).returncode == 0
        assert [r["text"] for r in _records(ws)] == [CP1252_TEXT]
    proc = _curate("ingest", tmp_path / "cp.csv", "--format", "parquet", "--encoding", "cp1252", "-w", tmp_path / "w")
    assert proc.returncode == 2 and "does not apply to parquet sources" in _said(proc)


def test_empty_files_folders_and_a_wrapped_json_object(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "header.csv").write_text("text,label\n")
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": [{"text": "a"}, {"text": "b"}], "version": 2},
                                                      indent=2))
    (tmp_path / "folder").mkdir()
    proc = _curate("ingest", tmp_path / "empty.jsonl", "-w", ws)
    said = _said(proc)
    assert proc.returncode == 1 and "empty.jsonl has no rows: the file is empty." in said
    assert "No rows were read: the source is empty" in said
    proc = _curate("ingest", tmp_path / "header.csv", "-w", ws)
    assert proc.returncode == 1 and "has no rows: the file is empty or has only its header line" in _said(proc)
    proc = _curate("ingest", tmp_path / "wrapped.json", "-w", ws)
    said = _said(proc)
    assert proc.returncode == 2
    assert ("wrapped.json holds one JSON object (keys: data, version), not rows: curate reads a JSON array of "
            "objects, or JSON Lines. The rows look like the list under 'data' (2 objects): extract it, e.g. "
            "jq '.data' wrapped.json > rows.json") in said
    proc = _curate("ingest", tmp_path / "folder", "-w", ws)
    assert proc.returncode == 2 and "is a folder but not a saved Hugging Face dataset" in _said(proc)


def test_one_pretty_printed_object_is_one_row(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps({"prompt": "Hi", "completion": "Hello"}, indent=2))
    proc = _curate("ingest", tmp_path / "one.json", "-w", tmp_path / "ws")
    assert proc.returncode == 0, _said(proc)
    assert _records(tmp_path / "ws")[0]["completion"] == "Hello"


# ------------------------------------------------------------------------- errors that are not curate's bugs


@pytest.mark.parametrize(("raised", "message", "code"), [
    ("PermissionError(13, 'Permission denied', '/data/x.jsonl')", "/data/x.jsonl: permission denied", 2),
    ("FileNotFoundError(2, 'No such file or directory', '/data/x.jsonl')", "/data/x.jsonl: no such file", 2),
    ("IsADirectoryError(21, 'Is a directory', '/data')", "/data: is a folder, but a file is needed", 2),
    ("OSError(28, 'No space left on device')", "the disk is full (No space left on device). Free some space", 1),
    ("RuntimeError('wrapped') from OSError(28, 'No space left on device', '/ws/curate.db')",
     "/ws/curate.db: the disk is full", 1),
])
def test_environment_errors_are_not_called_bugs(raised: str, message: str, code: int) -> None:
    boom = f"import curate.cli.main as m\ndef app():\n    raise {raised}\nm.app = app\nm.main()\n"
    proc = _curate(code=boom)
    said = _said(proc)
    assert proc.returncode == code, said
    assert said.startswith("error: ") and message in said
    assert "bug" not in said


def test_a_real_bug_says_where_to_report_it() -> None:
    boom = "import curate.cli.main as m\ndef app():\n    raise KeyError('oops')\nm.app = app\nm.main()\n"
    proc = _curate(code=boom)
    said = _said(proc)
    assert proc.returncode == 70
    assert "internal error: KeyError: 'oops'" in said and "This is a bug in curate. Please report it at" in said
    assert "CURATE_DEBUG=1" in said


def test_json_output_to_a_folder_is_a_path_error(tmp_path: Path, alpaca: Path) -> None:
    ws = tmp_path / "ws"
    assert _curate("ingest", alpaca, "-w", ws).returncode == 0
    (tmp_path / "out").mkdir()
    proc = _curate("stats", "-w", ws, "--json", tmp_path / "out")
    said = _said(proc)
    assert proc.returncode == 2 and f"{tmp_path / 'out'}: is a folder, but a file is needed" in said
    assert "bug" not in said
