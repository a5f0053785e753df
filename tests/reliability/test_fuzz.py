"""Property-based fuzzing of every loader and of the annotation app's endpoints (issue 9, "Bad input").

The contract under test (the design's "Contracts"): bad input never crashes with a traceback. A reader or
an endpoint answers malformed input with a :class:`~curate.errors.CurateError` whose message names the file,
line or field and says what was expected; a row that cannot be read is quarantined with its line number;
every valid row is kept. Nothing hangs (a per-example CPU-time deadline, and pytest-timeout per test).

Every fuzz test runs in two profiles: ``ci`` (in ``make test``, about a tenth of the examples) and ``full``
(marked ``slow``; over 10,000 generated inputs in total). Examples are derandomized, so a run is reproducible.
The number of inputs actually generated per target is counted and printed at the end of the module; a
complete full run also writes it to ``benchmarks/results/fuzz.json``::

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/reliability/test_fuzz.py -k full -m slow   # full
    .venv/bin/python -m pytest -q -p no:cacheprovider tests/reliability/test_fuzz.py -m "not slow"     # ci
"""

from __future__ import annotations

import gc
import gzip
import json
import shutil
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from curate.annotate.values import PAIR_CHOICES
from curate.errors import ColumnMappingError, CurateError, InputError, RecordError, UnsupportedFormatError
from curate.ingest.formats import TARGET_FIELDS, parse_mapping, row_to_record
from curate.ingest.readers import EXCERPT_CHARS, RawRow, read_rows
from curate.ingest.records import normalise_value, record_id
from curate.ingest.sources import ingest
from curate.store import audit
from curate.store.workspace import Workspace
from tests.reliability.fuzz_strategies import (
    CLASSES,
    CSV_TEXT,
    JSONISH,
    OPENS_QUOTE,
    PLAIN_CELL,
    RAW_ID,
    RAW_SECONDS,
    RAW_VALUE,
    TEXT,
    Bad,
    ValidRow,
    answer_values,
    bad_csv_lines,
    bad_json_values,
    csv_line,
    json_line,
    mutated,
    valid_rows,
)

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "fuzz.json"
MAX_ROW_BYTES = 4096  # small, so overlong lines are cheap to generate

# Generated inputs per target. The full profile totals over 10,000; ci runs in make test.
EXAMPLES: dict[str, dict[str, int]] = {
    "full": {
        "jsonl_reader": 1500, "jsonl_ingest": 400, "json_reader": 1200, "json_ingest": 300, "json_minified_ingest": 300,
        "csv_reader": 1200, "csv_ingest": 300, "parquet_types": 200, "parquet_corrupt": 500, "gzip": 600,
        "hf_folder": 100, "mapping_parse": 1000, "mapping_rows": 1000, "service": 2000, "endpoints": 1000,
        "http": 300,
    },
    "ci": {
        "jsonl_reader": 150, "jsonl_ingest": 40, "json_reader": 120, "json_ingest": 30, "json_minified_ingest": 30,
        "csv_reader": 120, "csv_ingest": 30, "parquet_types": 20, "parquet_corrupt": 50, "gzip": 60,
        "hf_folder": 10, "mapping_parse": 100, "mapping_rows": 100, "service": 200, "endpoints": 100,
        "http": 30,
    },
}
PROFILES = tuple(EXAMPLES)
COUNTS: dict[str, Counter[str]] = {p: Counter() for p in PROFILES}
SECONDS: dict[str, Counter[str]] = {p: Counter() for p in PROFILES}

# derandomize: the same examples every run (reproducible in CI, no example database needed). The wall-clock
# deadline is generous because this machine's two cores are shared: a stall of several seconds happens without
# any fault (seen: 11.6 s, then 16 ms on the re-run). Hangs are caught by the CPU-time deadline in fuzz()
# (per example) and by pytest-timeout (per test).
settings.register_profile("fuzz-ci", derandomize=True, database=None, deadline=timedelta(seconds=60),
                          print_blob=False)
settings.register_profile("fuzz-full", parent=settings.get_profile("fuzz-ci"))

PROFILE = pytest.mark.parametrize("profile", [
    pytest.param("ci", marks=pytest.mark.timeout(900)),
    pytest.param("full", marks=[pytest.mark.slow, pytest.mark.timeout(3600)]),
])


def cpu_seconds(check: Callable[[Any], None], case: Any) -> float:
    """CPU seconds ``check(case)`` takes in this thread, with the garbage collector paused (a full collection of
    the whole test process's heap would otherwise be billed to whichever example it interrupts)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        cpu = time.thread_time()
        check(case)
        return time.thread_time() - cpu
    finally:
        if enabled:
            gc.enable()


def fuzz(profile: str, target: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], None], *,
         deadline: float = 2.0, repeatable: bool = True) -> None:
    """Run ``check`` on the profile's number of examples of ``strategy``, counting them under ``target``.

    ``deadline``: CPU seconds one example may take: an endless loop or a quadratic path fails it however busy
    the machine is. A ``repeatable`` check (no side effects that change its outcome) that overruns is timed once
    more before it fails, so a one-off spike is not taken for a hang."""

    @settings(settings.get_profile(f"fuzz-{profile}"), max_examples=EXAMPLES[profile][target])
    @given(strategy)
    def run(case: Any) -> None:
        COUNTS[profile][target] += 1
        spent = cpu_seconds(check, case)
        if spent > deadline and repeatable:
            spent = cpu_seconds(check, case)
        assert spent <= deadline, f"one input took {spent:.1f} s of CPU (limit {deadline} s): a hang?"

    started = time.perf_counter()
    run()
    SECONDS[profile][target] += time.perf_counter() - started


@pytest.fixture(scope="module", autouse=True)
def fuzz_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the generated inputs per target (and write benchmarks/results/fuzz.json after a complete run)."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    for profile in PROFILES:
        counts = COUNTS[profile]
        if not counts:
            continue
        total, seconds = sum(counts.values()), sum(SECONDS[profile].values())
        line = (f"fuzz ({profile} profile): {total:,} generated inputs in {seconds:.0f} s; "
                + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():  # shown in the test output, even under -q
                reporter.write_line("")
                reporter.write_line(line)
        else:  # pragma: no cover
            print(line)
        if profile == "full" and set(counts) == set(EXAMPLES[profile]):  # the figure the README cites
            _write_results(profile, counts, SECONDS[profile])


def _write_results(profile: str, counts: Counter[str], seconds: Counter[str]) -> None:
    try:
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    except ValueError:
        results = {}
    results[profile] = {
        "generated_inputs": sum(counts.values()),
        "seconds": round(sum(seconds.values()), 1),
        "targets": {t: {"inputs": counts[t], "seconds": round(seconds[t], 1)} for t in sorted(counts)},
        "command": "python -m pytest -q -p no:cacheprovider tests/reliability/test_fuzz.py"
                   + (" -m slow -k full" if profile == "full" else ' -m "not slow"'),
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------------------ checks


def assert_clear(message: str, *, names: tuple[str, ...] = ()) -> None:
    """A message a person can act on: not empty, not a dump, no traceback, naming what it is about."""
    assert 15 <= len(message) <= 3000, message[:300]
    assert "Traceback" not in message
    if names:
        assert any(n in message for n in names), (names, message[:300])


def read_all(path: Path, **kwargs: Any) -> list[RawRow] | CurateError:
    """Every row of ``path``; or the CurateError the reader raised (checked for a clear message)."""
    try:
        return list(read_rows(path, **kwargs))
    except CurateError as exc:
        assert_clear(str(exc), names=(path.name,))
        return exc


def check_rows(rows: list[RawRow] | CurateError, *, lines: int | None) -> list[Any]:
    """Error rows have a line and a clear reason; data rows become a storable record or a clear RecordError.

    Returns the records made."""
    records = []
    if isinstance(rows, CurateError):
        return records
    for row in rows:
        assert 1 <= row.line <= (lines + 1 if lines is not None else row.line), (row.line, lines)
        if row.error is not None:
            assert_clear(row.error)
            if row.raw is not None:
                assert len(row.raw) <= EXCERPT_CHARS + 40
                orjson.dumps(row.raw)  # the quarantine file can hold it
            continue
        try:
            rec = row_to_record(row.data, source="fuzz", line=row.line)
        except RecordError as exc:
            assert_clear(str(exc))
            continue
        orjson.dumps([rec.fields, rec.meta, rec.label])  # the store can hold it
        records.append(rec)
    return records


def new_workspace(tmp: Path) -> Workspace:
    tmp.mkdir(parents=True, exist_ok=True)
    return Workspace.open(tmp / "ws", f"sqlite:///{tmp / 'curate.db'}")


def stored(ws: Workspace, ids: list[str]) -> set[str]:
    with ws.store.read() as conn:
        return ws.store.existing_ids(conn, ids)


def quarantined(report: Any) -> list[dict[str, Any]]:
    if report.quarantine_path is None:
        return []
    # JSON Lines: split on \n only (str.splitlines would also split on U+0085 and U+2028 inside strings).
    return [json.loads(line) for line in Path(report.quarantine_path).read_bytes().split(b"\n") if line]


@dataclass
class Mix:
    """A source file of valid rows interleaved with garbage: what must be stored and what quarantined."""

    content: bytes
    valid: dict[int, ValidRow] = field(default_factory=dict)  # line -> row
    bad: dict[int, Bad] = field(default_factory=dict)  # line -> damage
    lines: int = 0


def check_ingest(ws: Workspace, path: Path, mix: Mix, *, one_error_per_line: bool = True) -> None:
    """Ingest ``path``: every valid row's record is stored, every bad line quarantined with its line number."""
    report = ingest(ws, path, max_row_bytes=MAX_ROW_BYTES)
    entries = quarantined(report)
    bad_lines = {e["line"] for e in entries}
    assert bad_lines == set(mix.bad), ({k: v.kind for k, v in mix.bad.items()}, bad_lines)
    assert not bad_lines & set(mix.valid)
    for entry in entries:
        assert_clear(entry["reason"])
        assert entry["source"] == str(path)
    if one_error_per_line:
        assert report.quarantined == len(mix.bad), [(e["line"], e["reason"][:80]) for e in entries]
    assert report.valid == len(mix.valid), (report.valid, len(mix.valid), report.reasons)
    ids = [row.id for row in mix.valid.values()]
    missing = set(ids) - stored(ws, ids)
    assert not missing, [(line, row.row) for line, row in mix.valid.items() if row.id in missing]


# ------------------------------------------------------------------------------------------------- JSONL

BLANK = st.sampled_from([b"", b"   ", b"\t", b" \t ", b"\xef\xbb\xbf"])


@st.composite
def jsonl_mixes(draw: st.DrawFn) -> Mix:
    """Valid JSON lines interleaved with bad ones and blank lines; CRLF or LF; BOMs; a last line without \\n."""
    items = draw(st.lists(st.one_of(valid_rows(), bad_json_values(MAX_ROW_BYTES), BLANK), min_size=1, max_size=10))
    mix, chunks = Mix(b""), []
    for line, item in enumerate(items, 1):
        ending = draw(st.sampled_from([b"\n", b"\r\n"]))
        if isinstance(item, ValidRow):
            data = (b"\xef\xbb\xbf" if draw(st.integers(0, 9)) == 0 else b"") + json_line(
                item.row, ascii_only=draw(st.booleans()))
            assert len(data) < MAX_ROW_BYTES
            mix.valid[line] = item
        elif isinstance(item, Bad):
            data = item.data
            mix.bad[line] = item
        else:
            data = item
        chunks.append(data + ending)
    if draw(st.booleans()):
        chunks[-1] = chunks[-1].rstrip(b"\r\n")
    mix.content, mix.lines = b"".join(chunks), len(items)
    return mix


def jsonl_inputs() -> st.SearchStrategy[bytes]:
    return st.one_of(jsonl_mixes().map(lambda m: m.content),
                     jsonl_mixes().flatmap(lambda m: mutated(m.content)))


@PROFILE
def test_jsonl_reader(profile: str, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.jsonl"

    def check(data: bytes) -> None:
        path.write_bytes(data)
        check_rows(read_all(path, max_row_bytes=MAX_ROW_BYTES), lines=data.count(b"\n") + 1)

    fuzz(profile, "jsonl_reader", jsonl_inputs(), check)


@PROFILE
def test_jsonl_ingest_keeps_every_valid_row(profile: str, tmp_path: Path) -> None:
    ws, path = new_workspace(tmp_path), tmp_path / "mixed.jsonl"

    def check(mix: Mix) -> None:
        path.write_bytes(mix.content)
        check_ingest(ws, path, mix)

    fuzz(profile, "jsonl_ingest", jsonl_mixes(), check, deadline=5)
    assert audit.verify(ws.store).ok


# ------------------------------------------------------------------------------------------------ JSON arrays


@st.composite
def json_mixes(draw: st.DrawFn) -> Mix:
    """A JSON array, one element per line: valid objects interleaved with garbage elements."""
    items = draw(st.lists(st.one_of(valid_rows(), bad_json_values(MAX_ROW_BYTES)), min_size=1, max_size=8))
    indent = draw(st.sampled_from([b"", b"  ", b"\t"]))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    mix = Mix(b"")
    chunks = [(b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + b"[" + ending]
    for line, item in enumerate(items, 2):
        if isinstance(item, ValidRow):
            data = json_line(item.row, ascii_only=draw(st.booleans()))
            mix.valid[line] = item
        else:
            data = item.data
            mix.bad[line] = item
        chunks.append(indent + data + (b"," if line <= len(items) else b"") + ending)
    chunks.append(b"]" + (ending if draw(st.booleans()) else b""))
    mix.content, mix.lines = b"".join(chunks), len(items) + 2
    return mix


@PROFILE
def test_json_array_reader(profile: str, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.json"

    def check(data: bytes) -> None:
        path.write_bytes(data)
        check_rows(read_all(path, max_row_bytes=MAX_ROW_BYTES), lines=data.count(b"\n") + 1)

    inputs = st.one_of(json_mixes().map(lambda m: m.content), json_mixes().flatmap(lambda m: mutated(m.content)))
    fuzz(profile, "json_reader", inputs, check)


@PROFILE
def test_json_array_ingest_keeps_every_valid_element(profile: str, tmp_path: Path) -> None:
    ws, path = new_workspace(tmp_path), tmp_path / "mixed.json"

    def check(mix: Mix) -> None:
        path.write_bytes(mix.content)
        # Text after a broken element on its line may be reported as well: one line, sometimes two errors.
        check_ingest(ws, path, mix, one_error_per_line=False)

    fuzz(profile, "json_ingest", json_mixes(), check, deadline=5)
    assert audit.verify(ws.store).ok


@st.composite
def one_line_json_mixes(draw: st.DrawFn) -> Mix:
    """A minified JSON array (``json.dump``'s default): every element on one line, valid objects among garbage.
    ``valid`` and ``bad`` are keyed by element number, since every line is 1."""
    items = draw(st.lists(st.one_of(valid_rows(), bad_json_values(MAX_ROW_BYTES)), min_size=1, max_size=8))
    mix, chunks = Mix(b""), []
    for element, item in enumerate(items, 1):
        if isinstance(item, ValidRow):
            chunks.append(json_line(item.row, ascii_only=draw(st.booleans())))
            mix.valid[element] = item
        else:
            chunks.append(item.data)
            mix.bad[element] = item
    mix.content, mix.lines = b"[" + draw(st.sampled_from([b",", b", "])).join(chunks) + b"]", 1
    return mix


@PROFILE
def test_minified_json_array_ingest_keeps_every_valid_element(profile: str, tmp_path: Path) -> None:
    """On one line the line structure cannot bound a broken element: whatever the damage, every valid element
    after it is still stored, and every quarantined row names its element."""
    ws, path = new_workspace(tmp_path), tmp_path / "minified.json"

    def check(mix: Mix) -> None:
        path.write_bytes(mix.content)
        report = ingest(ws, path, max_row_bytes=MAX_ROW_BYTES)
        entries = quarantined(report)
        assert report.valid == len(mix.valid), ({k: v.kind for k, v in mix.bad.items()}, report.reasons)
        assert (report.quarantined > 0) == bool(mix.bad) and all(e["line"] == 1 for e in entries)
        assert all("element" in e for e in entries if not e["reason"].startswith("a stray ']'"))
        ids = [row.id for row in mix.valid.values()]
        assert not set(ids) - stored(ws, ids)

    fuzz(profile, "json_minified_ingest", one_line_json_mixes(), check, deadline=5)
    assert audit.verify(ws.store).ok


# ----------------------------------------------------------------------------------------------- CSV / TSV


@st.composite
def csv_mixes(draw: st.DrawFn, delimiter: str) -> Mix:
    """A CSV (or TSV) file with a text,label header: valid rows (cells may hold quotes, delimiters, line
    breaks) interleaved with ragged rows, unbalanced quotes, wrong delimiters, invalid UTF-8, overlong lines."""
    valid = st.builds(lambda t, lab: ValidRow({"text": t, "label": lab}, "text", {"text": t}), CSV_TEXT,
                      st.one_of(PLAIN_CELL, st.sampled_from(["billing", "bug"])))
    kinds = [valid, bad_csv_lines(delimiter, 2, MAX_ROW_BYTES), st.sampled_from([b"", b" "])]
    if delimiter == "\t":  # unquoted TSV: a text that starts with a quote it closes mid-cell ('"Hi" she said')
        nonblank = PLAIN_CELL.filter(lambda c: c.strip())
        quoted = st.builds(lambda a, b, lab: f'"{a}" {b}\t{lab}'.encode(), nonblank, nonblank, nonblank)
        kinds.append(quoted)
    items = draw(st.lists(st.one_of(*kinds), min_size=1, max_size=10))
    # Two lines that each leave a quote open are one well-formed quoted cell together: keep one per file.
    opened = [i for i, item in enumerate(items) if isinstance(item, Bad) and item.kind in OPENS_QUOTE]
    for i in opened[1:]:
        items[i] = Bad("ragged", f"x{delimiter * 3}y".encode())
    mix = Mix(b"")
    head = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\r\n", b"\n \n"]))
    chunks = [head + f"text{delimiter}label".encode() + b"\r\n"]
    line = head.count(b"\n") + 2
    for item in items:
        if isinstance(item, ValidRow):
            data = csv_line([item.row["text"], item.row["label"]], delimiter)
            if draw(st.booleans()):
                data = data[:-2] + b"\n"
            mix.valid[line] = item
        elif isinstance(item, Bad):
            data = item.data + draw(st.sampled_from([b"\n", b"\r\n"]))
            mix.bad[line] = item
        elif b"\t" in item:  # a literal-quote TSV row
            text, label = item.decode().split("\t")
            mix.valid[line] = ValidRow({"text": text, "label": label}, "text", {"text": text})
            data = item + b"\n"
        else:
            data = item + b"\n"
        chunks.append(data)
        line += data.count(b"\n")
    if draw(st.booleans()):
        chunks[-1] = chunks[-1].rstrip(b"\r\n")
    mix.content, mix.lines = b"".join(chunks), line
    return mix


HEADER_PROBLEMS = st.sampled_from([
    b"text,text\na,b\n", b'"text,label\na,b\nc,d\n', b"te\xffxt,label\na,b\n", b"\n\n\ntext,label\na,b\n",
    b",label\na,b\n", b",\na,b\n", b"text,label\n", b"", b"\n\n", b"text;label\na;b\n", b"text\tlabel\na,b\n",
    b'text,"label\nx,"y\n', b"\xef\xbb\xbftext,label\r\na,b\r\n", b"text,label,text\n1,2,3\n",
    b"a" * (MAX_ROW_BYTES + 10) + b"\ntext,label\nx,y\n", b"prompt,completion\n\"unclosed,x\nq,a\n",
])


@PROFILE
def test_csv_and_tsv_reader(profile: str, tmp_path: Path) -> None:
    def check(case: tuple[str, bytes]) -> None:
        suffix, data = case
        path = tmp_path / f"fuzz.{suffix}"
        path.write_bytes(data)
        check_rows(read_all(path, max_row_bytes=MAX_ROW_BYTES), lines=data.count(b"\n") + 1)

    def inputs(suffix: str, delimiter: str) -> st.SearchStrategy[tuple[str, bytes]]:
        return st.tuples(st.just(suffix), st.one_of(
            csv_mixes(delimiter).map(lambda m: m.content), csv_mixes(delimiter).flatmap(lambda m: mutated(m.content)),
            HEADER_PROBLEMS, HEADER_PROBLEMS.flatmap(mutated)))

    fuzz(profile, "csv_reader", st.one_of(inputs("csv", ","), inputs("tsv", "\t")), check)


@PROFILE
def test_csv_and_tsv_ingest_keep_every_valid_row(profile: str, tmp_path: Path) -> None:
    ws = new_workspace(tmp_path)

    def check(case: tuple[str, Mix]) -> None:
        suffix, mix = case
        path = tmp_path / f"mixed.{suffix}"
        path.write_bytes(mix.content)
        check_ingest(ws, path, mix)

    cases = st.one_of(st.tuples(st.just("csv"), csv_mixes(",")), st.tuples(st.just("tsv"), csv_mixes("\t")))
    fuzz(profile, "csv_ingest", cases, check, deadline=5)
    assert audit.verify(ws.store).ok


def test_csv_header_problems_name_the_file_and_line(tmp_path: Path) -> None:
    cases = {b"text,text\na,b\n": "column 'text' twice", b'"text,label\na,b\n': "header row cannot be read",
             b"te\xffxt,label\na,b\n": "not valid UTF-8"}
    for data, fragment in cases.items():
        path = tmp_path / "h.csv"
        path.write_bytes(data)
        with pytest.raises(InputError, match=fragment) as err:
            list(read_rows(path))
        assert str(err.value).startswith(f"{path}, line 1:")
    (tmp_path / "blank.csv").write_bytes(b"\n\ntext,label\nhello,a\n")
    assert [(r.line, r.data) for r in read_rows(tmp_path / "blank.csv")] == [(4, {"text": "hello", "label": "a"})]


# ------------------------------------------------------------------------------------------------ Parquet

def _pa_types() -> dict[str, tuple[Any, st.SearchStrategy[Any]]]:
    import pyarrow as pa

    return {
        "string": (pa.string(), st.one_of(TEXT, st.just(""), st.just("  \t"))),
        "large_string": (pa.large_string(), TEXT),
        "dictionary": (pa.dictionary(pa.int32(), pa.string()), st.sampled_from(["billing", "bug", " "])),
        "binary": (pa.binary(), st.binary(max_size=8)),
        "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
        "uint64": (pa.uint64(), st.integers(0, 2**64 - 1)),
        "float64": (pa.float64(), st.floats()),
        "bool": (pa.bool_(), st.booleans()),
        "list": (pa.list_(pa.string()), st.lists(TEXT, max_size=3)),
        "struct": (pa.struct([("a", pa.string()), ("b", pa.int64())]),
                   st.fixed_dictionaries({"a": TEXT, "b": st.integers(-5, 5)})),
        "decimal": (pa.decimal128(38, 2), st.decimals(min_value=-(10**30), max_value=10**30, places=2,
                                                      allow_nan=False, allow_infinity=False)),
        "timestamp": (pa.timestamp("us"), st.datetimes()),
        "date": (pa.date32(), st.dates()),
        "duration": (pa.duration("s"), st.timedeltas(min_value=timedelta(days=-999), max_value=timedelta(days=999))),
        "null": (pa.null(), st.none()),
        "map": (pa.map_(pa.string(), pa.int64()), st.lists(st.tuples(TEXT, st.integers(-9, 9)), max_size=2)),
    }


@st.composite
def parquet_tables(draw: st.DrawFn) -> tuple[Any, list[dict[str, Any]]]:
    """A table with text, label and extra columns of any Arrow type (nullable); the rows as Python values."""
    import pyarrow as pa

    types = _pa_types()
    n = draw(st.integers(1, 6))
    columns: dict[str, Any] = {}
    names = ["text", "label"] + [f"x{i}" for i in range(draw(st.integers(0, 2)))]
    for name in names:
        if name == "label" and draw(st.booleans()):
            continue
        type_name = draw(st.sampled_from(sorted(types)))
        if name == "text" and draw(st.booleans()):
            type_name = "string"
        pa_type, values = types[type_name]
        column = [draw(st.one_of(st.none(), values)) if draw(st.integers(0, 4)) else None for _ in range(n)]
        if type_name != "null":
            column = [draw(values) if v is None and draw(st.booleans()) else v for v in column]
        columns[name] = pa.array(column, type=pa_type)
    table = pa.table(columns)
    return table, table.to_pylist()


def expected_text_id(row: dict[str, Any]) -> str | None:
    """The id the row's record must have, or None if the row must be quarantined (text rows only)."""
    text, label = row.get("text"), row.get("label")
    if not isinstance(text, str) or not text.strip():
        return None
    if isinstance(label, float):
        if not label.is_integer():
            return None
        label = int(label)
    if not (label is None or isinstance(label, str | bool)
            or isinstance(label, int) and -(2**63) <= label <= 2**64 - 1):
        return None
    return record_id("text", normalise_value({"text": text}))


@PROFILE
def test_parquet_with_every_column_type(profile: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    ws, path = new_workspace(tmp_path), tmp_path / "types.parquet"

    def check(case: tuple[Any, list[dict[str, Any]]]) -> None:
        table, rows = case
        pq.write_table(table, path)
        report = ingest(ws, path)
        expected = {i: expected_text_id(row) for i, row in enumerate(rows, 1)}
        bad = {i for i, rid in expected.items() if rid is None}
        entries = quarantined(report)
        assert {e["line"] for e in entries} == bad, (rows, [e["reason"] for e in entries])
        for entry in entries:
            assert_clear(entry["reason"], names=("field", "row", "column"))
        ids = [rid for rid in expected.values() if rid is not None]
        assert stored(ws, ids) == set(ids)
        assert (report.rows, report.valid) == (len(rows), len(rows) - len(bad))

    fuzz(profile, "parquet_types", parquet_tables(), check, deadline=5)
    assert audit.verify(ws.store).ok


@PROFILE
def test_corrupt_and_truncated_parquet(profile: str, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = tmp_path / "base.parquet"
    pq.write_table(pa.table({"text": [f"row {i} " + "z" * i for i in range(40)],
                             "label": [["billing", "bug", None][i % 3] for i in range(40)]}), base,
                   row_group_size=10)
    template = base.read_bytes()
    path = tmp_path / "corrupt.parquet"

    def check(data: bytes) -> None:
        path.write_bytes(data)
        check_rows(read_all(path), lines=41)

    fuzz(profile, "parquet_corrupt", mutated(template, max_ops=3), check)


# ---------------------------------------------------------------------------------------------------- gzip


@dataclass
class GzipCase:
    """A JSONL, CSV or JSON file, compressed and then damaged."""

    suffix: str
    plain: bytes
    blob: bytes
    damaged: bytes
    texts: list[str]
    ends: list[int]  # where each row's text ends in ``plain`` (it can be read once that much is recoverable)
    damage: str


@st.composite
def gzip_cases(draw: st.DrawFn) -> GzipCase:
    suffix = draw(st.sampled_from(["jsonl", "csv", "json"]))
    texts = draw(st.lists(PLAIN_CELL.filter(lambda c: c.strip()), min_size=1, max_size=60))
    head, sep, tail = {"jsonl": (b"", b"\n", b"\n"), "csv": (b"text\n", b"\n", b"\n"),
                       "json": (b"[\n", b",\n", b"\n]\n")}[suffix]
    parts = [t.encode() if suffix == "csv" else json.dumps({"text": t}).encode() for t in texts]
    ends, at = [], len(head)
    for part in parts:
        at += len(part)
        ends.append(at + (0 if suffix == "json" else 1))  # a line is whole with its \n; an element with its }
        at += len(sep)
    plain = head + sep.join(parts) + tail
    blob = gzip.compress(plain, mtime=0)
    damage = draw(st.sampled_from(["truncate", "mutate", "append", "header"]))
    if damage == "truncate":
        damaged = blob[: draw(st.integers(0, len(blob) - 1))]
    elif damage == "append":
        damaged = blob + draw(st.binary(min_size=1, max_size=30))
    elif damage == "header":
        damaged = draw(mutated(blob[:10], max_ops=2)) + blob[10:]
    else:
        damaged = draw(mutated(blob, max_ops=2))
    return GzipCase(suffix, plain, blob, damaged, texts, ends, damage)


def recoverable(blob: bytes) -> bytes:
    """The text a gzip reader can get out of ``blob`` (every member, up to the damage)."""
    out = b""
    while blob:
        member = zlib.decompressobj(wbits=31)
        try:
            out += member.decompress(blob)
        except zlib.error:
            break
        if not member.eof:
            break
        blob = member.unused_data
    return out


@PROFILE
def test_corrupt_and_truncated_gzip(profile: str, tmp_path: Path) -> None:
    def check(case: GzipCase) -> None:
        path = tmp_path / f"fuzz.{case.suffix}.gz"
        path.write_bytes(case.damaged)
        rows = read_all(path)
        # Damaged deflate data can decode to any text, so the line count is only known after a truncation.
        check_rows(rows, lines=case.plain.count(b"\n") + 1 if case.damage == "truncate" else None)
        if case.damage != "truncate" or isinstance(rows, CurateError):
            return
        # Truncated: every row wholly inside the recoverable text is read, in order, and the damage is reported.
        got = [r.data["text"] for r in rows if r.error is None and isinstance(r.data, dict) and "text" in r.data]
        whole = sum(1 for end in case.ends if end <= len(recoverable(case.damaged)))
        assert got == case.texts[: len(got)] and len(got) >= whole, (got, whole)
        if case.damaged:
            assert any(r.error and "corrupt or truncated" in r.error for r in rows)

    fuzz(profile, "gzip", gzip_cases(), check)


# ------------------------------------------------------------------------------------------- saved folders


@PROFILE
def test_corrupt_saved_dataset_folder(profile: str, tmp_path: Path) -> None:
    import datasets

    template = tmp_path / "template"
    datasets.Dataset.from_list([{"text": f"row {i}", "label": "bug"} for i in range(30)]).save_to_disk(str(template))
    files = {p.name: p.read_bytes() for p in template.iterdir()}
    damage = st.sampled_from(sorted(files)).flatmap(
        lambda name: st.tuples(st.just(name), st.one_of(st.none(), mutated(files[name], max_ops=2))))
    folder = tmp_path / "copy"

    def check(case: tuple[str, bytes | None]) -> None:
        name, data = case
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(template, folder)
        if data is None:  # the file is missing, but the folder still looks like a saved dataset
            (folder / name).unlink()
            (folder / "state.json").touch()
        else:
            (folder / name).write_bytes(data)
        check_rows(read_all(folder), lines=31)

    fuzz(profile, "hf_folder", damage, check, deadline=10)


# ------------------------------------------------------------------------------------------ column mapping

TARGET = st.one_of(st.sampled_from(sorted(TARGET_FIELDS)), st.text(max_size=8))
SOURCE_PATH = st.lists(st.sampled_from(["a", "b", "text", "meta", "0", "", " "]), min_size=1, max_size=3).map(".".join)
MAP_ITEM = st.one_of(st.builds(lambda t, s, sep: f"{t}{sep}{s}", TARGET, SOURCE_PATH,
                               st.sampled_from(["=", " = ", "==", ":", ""])), st.text(max_size=20))


@PROFILE
def test_map_strings(profile: str) -> None:
    def check(items: list[str]) -> None:
        try:
            mapping = parse_mapping(items)
        except CurateError as exc:
            assert_clear(str(exc), names=("--map",))
            return
        assert set(mapping) <= TARGET_FIELDS and all(mapping.values())

    fuzz(profile, "mapping_parse", st.lists(MAP_ITEM, max_size=4), check)


ROW = st.dictionaries(st.sampled_from(["a", "b", "text", "meta", "prompt", "label", "x"]),
                      st.one_of(JSONISH, TEXT, st.dictionaries(st.sampled_from(["a", "b", "text", "0"]),
                                                               st.one_of(JSONISH, TEXT), max_size=3)), max_size=5)


@PROFILE
def test_mapped_rows(profile: str) -> None:
    def check(case: tuple[Any, dict[str, str]]) -> None:
        row, mapping = case
        try:
            rec = row_to_record(row, mapping=mapping, source="fuzz", line=1)
        except RecordError as exc:
            assert_clear(str(exc))
            return
        orjson.dumps([rec.fields, rec.meta, rec.label])

    mappings = st.dictionaries(st.sampled_from(sorted(TARGET_FIELDS)), SOURCE_PATH.filter(lambda s: s.strip()),
                               max_size=3)
    fuzz(profile, "mapping_rows", st.tuples(st.one_of(ROW, JSONISH), mappings), check)


def test_mapped_column_missing_from_the_file_is_refused_and_from_some_rows_quarantined(workspace: Workspace,
                                                                                       tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("utterance,intent\nhi,a\nbye,b\n")
    with pytest.raises(ColumnMappingError, match="its columns are: utterance, intent"):
        ingest(workspace, tmp_path / "m.csv", mapping=parse_mapping(["text=sentence", "label=intent"]))
    assert not list(workspace.quarantine_dir.glob("*.jsonl"))  # refused before any row was quarantined
    (tmp_path / "m.jsonl").write_text('{"sentence": "hi", "intent": "a"}\n{"utterance": "bye", "intent": "b"}\n'
                                      '{"utterance": "so long", "intent": "b"}\n')
    report = ingest(workspace, tmp_path / "m.jsonl", mapping=parse_mapping(["text=sentence", "label=intent"]))
    assert report.quarantined == 2 and report.first_bad_lines == [2, 3]
    assert list(report.reasons) == ["the mapped column 'sentence' is missing from this row"]


# ------------------------------------------------------------------------------------------- the app


@dataclass
class Ledger:
    """What the fuzzed calls were allowed to change: successful submissions, undos and decisions."""

    answers: int = 0
    retracts: int = 0
    decisions: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def seeded_workspace(tmp: Path) -> tuple[Workspace, Any]:
    from tests.annotation_setup import seed

    ws = new_workspace(tmp)
    return ws, seed(ws, tmp)


def check_consistent(ws: Workspace, ledger: Ledger) -> None:
    """After the fuzzing: only accepted answers were stored, each in its normal form; drafts are objects."""
    from curate.store.schema import Annotation, Draft

    with ws.store.read() as conn:
        rows = conn.execute(select(Annotation)).all()
        drafts = conn.scalars(select(Draft.value)).all()
    kinds = Counter(r.kind for r in rows)
    assert (kinds["answer"], kinds["retract"], kinds["adjudication"]) == (
        ledger.answers, ledger.retracts, ledger.decisions), (kinds, ledger)
    for row in rows:
        if row.value is not None:
            value = orjson.loads(row.value)
            assert isinstance(value, dict) and set(value) <= {"choice", "preferred", "note", "order", "completion",
                                                              "accepted_as_is", "label"}, value
    assert all(isinstance(orjson.loads(d), dict) for d in drafts)
    report = audit.verify(ws.store)
    assert report.ok, report


USERS = st.sampled_from(["ann", "bob", "rita", "ada", None, "", "nobody", "ANN", "ann\x00", "x" * 300])


@st.composite
def service_calls(draw: st.DrawFn, seeded: Any) -> tuple[str, str | None, Any, Any, Any]:
    if draw(st.integers(0, 4)) == 0:  # a well-formed answer (or undo), so accepted calls are mixed in
        user, task_id, value = draw(st.sampled_from([
            ("ann", st.sampled_from(seeded.rank), st.fixed_dictionaries({"choice": st.sampled_from(PAIR_CHOICES)})),
            ("bob", st.sampled_from(seeded.rank), st.fixed_dictionaries({"choice": st.sampled_from(PAIR_CHOICES)})),
            ("ann", st.sampled_from(seeded.rewrite), st.fixed_dictionaries({"completion": TEXT})),
            ("ann", st.sampled_from(seeded.label), st.fixed_dictionaries({"label": st.sampled_from(CLASSES)})),
            ("bob", st.sampled_from(seeded.candidates), st.fixed_dictionaries({"order": st.permutations([0, 1, 2])})),
            ("rita", st.sampled_from(seeded.rank), st.fixed_dictionaries({"choice": st.sampled_from(PAIR_CHOICES)})),
        ]).flatmap(lambda c: st.tuples(st.just(c[0]), c[1], c[2])))
        action = draw(st.sampled_from(["submit", "submit", "submit", "undo", "adjudicate"]))
        return action, user, task_id, value, draw(st.one_of(st.none(), st.floats(0, 100)))
    ids = seeded.rank + seeded.rewrite + seeded.label + seeded.candidates
    task_id = draw(st.one_of(st.sampled_from(ids), st.integers(-3, 40), st.integers(2**62, 2**70),
                             st.just(10**5000), RAW_ID))
    action = draw(st.sampled_from(["get_task", "save_draft", "submit", "submit", "skip", "undo", "adjudicate",
                                   "disputes"]))
    return action, draw(USERS), task_id, draw(answer_values()), draw(RAW_SECONDS)


def call_service(store: Any, ledger: Ledger, case: tuple[str, str | None, Any, Any, Any]) -> None:
    from curate.annotate import answers as A

    action, user, task_id, value, seconds = case
    try:
        if action == "get_task":
            A.get_task(store, user, task_id)
        elif action == "save_draft":
            A.save_draft(store, user, task_id, value)
        elif action == "submit":
            A.submit(store, user, task_id, value, seconds=seconds)
            ledger.answers += 1
        elif action == "skip":
            A.skip(store, user, task_id)
        elif action == "undo":
            A.undo_last(store, user)
            ledger.retracts += 1
        elif action == "adjudicate":
            A.adjudicate(store, user, task_id, value, seconds=seconds)
            ledger.decisions += 1
        else:
            A.disputes(store, user)
    except CurateError as exc:
        ledger.errors[type(exc).__name__] += 1
        assert_clear(str(exc), names=("task", "seconds", "log in", "role", "submission", "draft", "answer"))


@PROFILE
def test_annotation_service_inputs(profile: str, tmp_path: Path) -> None:
    ws, seeded = seeded_workspace(tmp_path)
    ledger = Ledger()
    fuzz(profile, "service", service_calls(seeded), lambda case: call_service(ws.store, ledger, case), deadline=5,
         repeatable=False)
    assert ledger.errors and ledger.answers, ledger  # both sides were exercised
    check_consistent(ws, ledger)


ENDPOINTS = ("next_task", "get_task", "save_draft", "submit", "skip", "undo", "disputes", "adjudicate", "dashboard",
             "hide_suggestions")


@st.composite
def endpoint_calls(draw: st.DrawFn, seeded: Any) -> tuple[str, str, tuple[Any, ...]]:
    """An endpoint, a logged-in name and the raw arguments an API caller sends (JSON strings and ids)."""
    name = draw(st.sampled_from(ENDPOINTS))
    user = draw(st.sampled_from(["ann", "bob", "rita", "ada"]))
    task_id = draw(st.one_of(st.sampled_from(seeded.rank + seeded.rewrite + seeded.label + seeded.candidates),
                             RAW_ID))
    args: tuple[Any, ...] = ()
    if name in ("get_task", "skip"):
        args = (task_id,)
    elif name == "save_draft":
        args = (task_id, draw(RAW_VALUE))
    elif name in ("submit", "adjudicate"):
        args = (task_id, draw(RAW_VALUE), draw(RAW_SECONDS))
    elif name == "hide_suggestions":
        args = (draw(st.one_of(st.none(), RAW_ID)), draw(st.one_of(st.booleans(), RAW_SECONDS)))
    return name, user, args


def endpoint_functions(ws: Workspace) -> dict[str, Callable[..., Any]]:
    """The app's named API functions, as registered (called in-process, without HTTP)."""
    from apps.annotate import build_app

    demo = build_app(ws)
    fns = {fn.api_name: fn.fn for fn in demo.fns.values() if fn.api_name in ENDPOINTS}
    assert set(fns) == set(ENDPOINTS)
    return fns


def call_endpoint(fns: dict[str, Callable[..., Any]], ledger: Ledger, case: tuple[str, str, tuple[Any, ...]]) -> str:
    """Call one endpoint; returns "" on success, else the error message (checked: a gr.Error, clear)."""
    import gradio as gr

    name, user, args = case
    try:
        fns[name](*args, request=SimpleNamespace(username=user))
    except gr.Error as exc:
        message = str(exc.message)
        ledger.errors[name] += 1
        assert_clear(message)
        return message
    ledger.answers += name == "submit"
    ledger.retracts += name == "undo"
    ledger.decisions += name == "adjudicate"
    return ""


@PROFILE
def test_app_endpoints_in_process(profile: str, tmp_path: Path) -> None:
    pytest.importorskip("gradio", reason="the annotation app needs the [app] extra (gradio)")
    ws, seeded = seeded_workspace(tmp_path)
    fns, ledger = endpoint_functions(ws), Ledger()
    fuzz(profile, "endpoints", endpoint_calls(seeded), lambda case: call_endpoint(fns, ledger, case), deadline=5,
         repeatable=False)
    assert ledger.errors, ledger
    check_consistent(ws, ledger)


def _http_safe(value: Any) -> bool:
    """Whether gradio_client can send ``value`` at all (JSON without NaN and unpaired surrogates)."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode()
    except (ValueError, UnicodeEncodeError):
        return False
    return True


@PROFILE
def test_app_api_over_http(profile: str, tmp_path: Path) -> None:
    pytest.importorskip("gradio_client", reason="the app tests need gradio_client")
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from apps.annotate import launch_app
    from tests.annotation_setup import PASSWORD
    from tests.app.conftest import free_port

    ws, seeded = seeded_workspace(tmp_path)
    fns, ledger = endpoint_functions(ws), Ledger()
    demo, url = launch_app(ws, port=free_port(), prevent_thread_lock=True, quiet=True)
    clients = {name: Client(url, auth=(name, PASSWORD), verbose=False, download_files=False, analytics_enabled=False)
               for name in ("ann", "bob", "rita", "ada")}

    def check(case: tuple[str, str, tuple[Any, ...]]) -> None:
        name, user, args = case
        try:
            clients[user].predict(*args, api_name=f"/{name}")
        except AppError as exc:
            # The HTTP layer answers with the very message the endpoint raises for the same input.
            ledger.errors[name] += 1
            expected = call_endpoint(fns, Ledger(), case)
            assert str(exc) == expected, (str(exc)[:300], expected[:300])
            return
        ledger.answers += name == "submit"
        ledger.retracts += name == "undo"
        ledger.decisions += name == "adjudicate"

    try:
        fuzz(profile, "http", endpoint_calls(seeded).filter(lambda case: _http_safe(case[2])), check, deadline=10,
             repeatable=False)
    finally:
        demo.close()
        for client in clients.values():
            client.close()
    assert ledger.errors, ledger
    check_consistent(ws, ledger)


# ------------------------------------------------------------------------------ regressions (bugs fuzzing found)


def test_regression_json_array_stray_closing_brace_no_longer_hangs(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'[{"text": "a"}, }, {"text": "b"}]')
    rows = list(read_rows(path))
    assert [r.data for r in rows if r.error is None] == [{"text": "a"}, {"text": "b"}]
    assert len([r for r in rows if r.error]) == 1


def test_regression_json_array_deep_nesting_and_long_integers_are_row_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b"[" + b"[" * 5000 + b"]" * 5000 + b',\n{"text": "b"},\n' + b"7" * 5000 + b',\n{"text": "c"}]')
    rows = list(read_rows(path))
    assert [r.data for r in rows if r.error is None] == [{"text": "b"}, {"text": "c"}]
    assert [r.line for r in rows if r.error] == [1, 3]


def test_regression_bom_before_json_array_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b'\xef\xbb\xbf[{"text": "a"}, {"text": "b"}]')
    (tmp_path / "a.jsonl").write_bytes(b'\xef\xbb\xbf{"text": "a"}\n\xef\xbb\xbf\n{"text": "b"}\n')
    for name in ("a.json", "a.jsonl"):
        assert [r.data for r in read_rows(tmp_path / name)] == [{"text": "a"}, {"text": "b"}]


def test_regression_unclosed_element_does_not_swallow_the_next_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'[\n  {"text": "a"},\n  [[[,\n  nul,\n  {"text": "b"}\n]\n')
    rows = list(read_rows(path))
    assert [(r.line, r.data) for r in rows if r.error is None] == [(2, {"text": "a"}), (5, {"text": "b"})]
    assert [r.line for r in rows if r.error] == [3, 4]


def test_regression_unpaired_surrogate_escape_and_huge_integers_in_json_arrays(workspace: Workspace,
                                                                              tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'[{"text": "\\ud800"}, {"text": "ok", "n": ' + b"9" * 40 + b'}, {"text": "x", "label": '
                     + b"9" * 30 + b"}]")
    report = ingest(workspace, path)
    assert (report.valid, report.quarantined) == (1, 2)
    (rec,) = workspace.store.iter_records()
    assert rec.meta == {"n": "9" * 40}


def test_regression_corrupt_gzip_is_a_row_error_for_every_format(tmp_path: Path) -> None:
    blob = gzip.compress(b"text\n" + b"".join(f"row {i}\n".encode() for i in range(3000)))
    for suffix in ("csv", "tsv", "json", "jsonl"):
        path = tmp_path / f"cut.{suffix}.gz"
        path.write_bytes(blob[: len(blob) // 2])
        rows = list(read_rows(path))
        assert "corrupt or truncated" in rows[-1].error


def test_regression_csv_unbalanced_quote_keeps_the_rows_after_it(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b'text,label\n"oops,a\nvalid,b\n"two\nlines",c\nx,"open\n')
    rows = list(read_rows(path))
    assert [(r.line, r.data) for r in rows if r.error is None] == [
        (3, {"text": "valid", "label": "b"}), (4, {"text": "two\nlines", "label": "c"})]
    assert [r.line for r in rows if r.error] == [2, 6]


def test_regression_parquet_values_json_cannot_hold_are_kept_as_text(workspace: Workspace, tmp_path: Path) -> None:
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["a"], "blob": [b"\xfe\xff"], "d": [decimal.Decimal("1.50")],
                             "t": pa.array([timedelta(seconds=3)])}), tmp_path / "a.parquet")
    assert ingest(workspace, tmp_path / "a.parquet").new == 1
    (rec,) = workspace.store.iter_records()
    assert rec.meta == {"blob": "\\xfe\\xff", "d": "1.50", "t": "0:00:03"}


def test_regression_messages_of_the_wrong_type_are_a_record_error() -> None:
    for value in (5, True, 1.5, "abc"):
        with pytest.raises(RecordError, match="must be a list of messages"):
            row_to_record({"messages": value})
    with pytest.raises(RecordError, match="nested too deeply|cannot be stored"):
        row_to_record({"messages": [{"role": "user", "content": orjson.loads("[" * 900 + "]" * 900)}]})


def test_regression_max_row_bytes_must_be_positive(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "a"}\n')
    for bad in (0, -1):
        with pytest.raises(InputError, match="--max-row-bytes must be a positive number"):
            read_rows(tmp_path / "a.jsonl", max_row_bytes=bad)


def test_regression_service_rejects_odd_ids_values_and_seconds(tmp_path: Path) -> None:
    from curate.annotate import answers as A

    ws, s = seeded_workspace(tmp_path)
    store = ws.store
    refusals: list[tuple[Callable[[], Any], str]] = [
        (lambda: A.get_task(store, "ann", 2**70), "no task"),
        (lambda: A.skip(store, "ann", 10**5000), "out of range"),
        (lambda: A.save_draft(store, "ann", s.rewrite[0], {"x": 2**70}), "cannot be stored"),
        (lambda: A.save_draft(store, "ann", s.rewrite[0], [1]), "must be an object"),
        (lambda: A.submit(store, "ann", s.rewrite[0], {"completion": "a\ud800"}), "cannot be stored"),
        (lambda: A.submit(store, "ann", s.rank[0], {"choice": "A", "note": "\udfff"}), "cannot be stored"),
        (lambda: A.submit(store, "bob", s.candidates[0], {"order": [0, None, 1]}), "order must list"),
        (lambda: A.submit(store, "ann", s.label[0], {"label": "bug"}, seconds="12"), "seconds must be a number"),
        (lambda: A.submit(store, "ann", s.rewrite[1], {"completion": "x", "accepted_as_is": "false"}),
         "accepted_as_is must be true or false"),
        (lambda: A.submit(store, "ann", s.label[0], {"label": "x" * 10**6}), "label must be one of"),
    ]
    for call, fragment in refusals:
        with pytest.raises(InputError, match=fragment) as err:
            call()
        assert len(str(err.value)) < 400
    check_consistent(ws, Ledger())


def test_regression_endpoint_ids_must_be_whole_numbers(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    import gradio as gr

    ws, s = seeded_workspace(tmp_path)
    fns = endpoint_functions(ws)
    ann = SimpleNamespace(username="ann")
    for bad in ("abc", 1.5, None, [1], True, float("nan"), float("inf"), 2**80):
        with pytest.raises(gr.Error, match="task_id"):
            fns["get_task"](bad, request=ann)
    assert fns["get_task"]("  1 ", request=ann)["task_id"] == 1 == fns["get_task"](1.0, request=ann)["task_id"]
    with pytest.raises(gr.Error, match="JSON object"):
        fns["submit"](s.rank[0], "[" * 5000 + "]" * 5000, None, request=ann)
    with pytest.raises(gr.Error, match="hide must be true or false"):
        fns["hide_suggestions"](None, "false", request=SimpleNamespace(username="ada"))
    with pytest.raises(gr.Error, match="round is out of range"):
        fns["hide_suggestions"](2**70, True, request=SimpleNamespace(username="ada"))


def test_regression_many_broken_json_elements_are_read_in_linear_time(tmp_path: Path) -> None:
    # Each broken element used to be scanned to the end of the 1 MB window: 20,000 took 84 s of CPU.
    for name, data in {"lines": b"[\n" + b"[[[,\n" * 20_000 + b'{"text": "x"}\n]',
                       "strings": b"[\n" + b'"abc,\n' * 20_000 + b'{"text": "x"}\n]',
                       "compact": b"[" + b"nul," * 50_000 + b'{"text": "x"}]'}.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(data)
        cpu = time.process_time()
        rows = list(read_rows(path))
        assert time.process_time() - cpu < 15, name
        assert [r.data for r in rows if r.error is None] == [{"text": "x"}]


def test_regression_tiny_truncated_gzip_json_keeps_the_element_before_the_damage(tmp_path: Path) -> None:
    blob = gzip.compress(b'[\n{"text": "a"}\n]\n', mtime=0)
    path = tmp_path / "t.json.gz"
    path.write_bytes(blob[:-12])  # the deflate data up to '}' survives, the rest is cut
    rows = list(read_rows(path))
    assert rows[0].data == {"text": "a"} and "corrupt or truncated" in rows[-1].error


def test_regression_parquet_text_that_is_not_utf8_is_a_row_error(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    offsets = pa.py_buffer((0).to_bytes(4, "little") + (1).to_bytes(4, "little") + (3).to_bytes(4, "little"))
    bad = pa.Array.from_buffers(pa.string(), 2, [None, offsets, pa.py_buffer(b"a\xff\xfe")])
    pq.write_table(pa.table({"text": bad}), tmp_path / "bad.parquet")
    rows = list(read_rows(tmp_path / "bad.parquet"))
    assert rows[0].data == {"text": "a"}
    assert rows[1].line == 2 and "row 2 of the Parquet file cannot be read" in rows[1].error


@pytest.mark.parametrize(("name", "content"), [("state.json", b'"x"'), ("state.json", b"[]"),
                                               ("dataset_info.json", b"[1]"), ("dataset_info.json", b"\xff")])
def test_regression_damaged_saved_dataset_folder_is_a_clear_error(tmp_path: Path, name: str, content: bytes) -> None:
    import datasets

    folder = tmp_path / "saved"
    datasets.Dataset.from_list([{"text": "a"}]).save_to_disk(str(folder))
    (folder / name).write_bytes(content)
    with pytest.raises(UnsupportedFormatError, match="cannot be loaded as a saved dataset"):
        list(read_rows(folder))
