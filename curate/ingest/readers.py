"""Streaming readers for source files, one row at a time, with line numbers and per-row errors.

Each reader yields :class:`RawRow` objects: a parsed row (a dict) or, for a row that cannot be read, the reason
and an excerpt of the raw text, so the caller can quarantine it and go on. No reader loads a whole file.

Formats: JSONL (``.jsonl``/``.ndjson``), JSON (an array of objects, streamed), CSV/TSV, Parquet and a folder
saved with ``datasets.save_to_disk``. A ``.gz`` suffix is read through gzip.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import re
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from curate.errors import InputError, SourceNotFoundError, UnsupportedFormatError

DEFAULT_MAX_ROW_BYTES = 4 * 1024 * 1024
EXCERPT_CHARS = 2000
_CHUNK = 1 << 20
_INVALID_UTF8 = re.compile("[\udc80-\udcff]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # invalid UTF-8 (surrogateescape) or an unpaired \uXXXX escape
_STREAM_ERRORS = (OSError, EOFError, zlib.error)  # a corrupt or truncated .gz stream
_BOM = "\ufeff"
_LINE_START = re.compile(r"\n([ \t]*)(?=[^ \t\r\n])")
_SUFFIX_FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
}
FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "hf")


@dataclass(slots=True)
class RawRow:
    """One row of a source: ``data`` when it was read, else ``error`` (and ``raw``, an excerpt)."""

    line: int
    data: Any = None
    error: str | None = None
    raw: str | None = None


def detect_format(path: Path) -> str:
    """The reader for ``path``: a name from :data:`FORMATS`, judged from the suffix (or folder contents)."""
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file or folder. Check the path and try again.")
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() or (
            path / "state.json"
        ).exists():
            return "hf"
        raise UnsupportedFormatError(
            f"{path} is a folder but not a saved Hugging Face dataset (no dataset_info.json or dataset_dict.json). "
            "Give a file, or a folder written by datasets.Dataset.save_to_disk."
        )
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _SUFFIX_FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise UnsupportedFormatError(
            f"{path}: cannot tell the format from the suffix {''.join(path.suffixes) or '(none)'}; expected one of "
            f"{', '.join(sorted(_SUFFIX_FORMATS))} (optionally .gz) or a saved dataset folder. "
            "Pass --format to say which it is."
        )
    return fmt


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _excerpt(data: bytes | str) -> str:
    if isinstance(data, str) and _SURROGATE.search(data):  # keep the excerpt storable as JSON
        try:
            data = data.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            data = str(data).encode("utf-8", "backslashreplace")
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + f"... [{len(text)} characters]"


def _read_line(fh: IO[bytes], max_bytes: int) -> tuple[bytes, bool]:
    """Read one line of at most ``max_bytes``; an overlong line is skipped to its end and flagged."""
    line = fh.readline(max_bytes + 1)
    if len(line) <= max_bytes or line.endswith(b"\n"):
        return line, False
    head = line[:EXCERPT_CHARS]
    while True:
        rest = fh.readline(_CHUNK)
        if not rest or rest.endswith(b"\n"):
            return head, True


def _stream_error(exc: BaseException) -> str:
    return f"the compressed stream is corrupt or truncated here ({exc}); the rest of the file cannot be read"


def read_jsonl(path: Path, *, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Iterator[RawRow]:
    """Rows of a JSON Lines file; blank lines are skipped (and a byte order mark at the start of a line)."""
    loads = _json_loads()
    with _open_binary(path) as fh:
        lineno = 0
        while True:
            try:
                raw, overlong = _read_line(fh, max_row_bytes)
            except _STREAM_ERRORS as exc:
                yield RawRow(lineno + 1, error=_stream_error(exc))
                return
            if not raw:
                return
            lineno += 1
            if overlong:
                yield RawRow(lineno, error=f"line is longer than the limit of {max_row_bytes:,} bytes",
                             raw=_excerpt(raw))
                continue
            raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RawRow(lineno, error=f"invalid UTF-8 at byte {exc.start} of the line", raw=_excerpt(raw))
                continue
            try:
                yield RawRow(lineno, loads(text))
            except ValueError as exc:
                yield RawRow(lineno, error=f"broken JSON: {exc}", raw=_excerpt(text))


def _json_loads() -> Any:
    try:
        import orjson

        return orjson.loads
    except ImportError:  # pragma: no cover - orjson is a core dependency
        return json.loads


def _skip_ws(buf: str, pos: int) -> int:
    while pos < len(buf) and buf[pos] in " \t\r\n":
        pos += 1
    return pos


def _recover_end(buf: str, start: int) -> int:
    """Where reading goes on after the broken element at ``start``, or -1 if no boundary is in ``buf``.

    The first ',' or ']' at the element's own nesting level, or, if sooner, the next line indented no deeper
    than the element starts (arrays written one element per line, or pretty-printed), so an unclosed bracket
    does not swallow the valid elements after it. A stray closing bracket is skipped on its own. One pass,
    ending at the boundary: a file of many broken elements is read in linear time.
    """
    window = max(0, start - 4096)
    newline = buf.rfind("\n", window, start)
    column = start - newline - 1 if newline >= 0 else start - window
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(buf)):
        ch = buf[i]
        if ch == "\n":
            in_string = escaped = False
            j = i + 1
            while j < len(buf) and buf[j] in " \t":
                j += 1
            if j < len(buf) and buf[j] not in "\r\n" and j - i - 1 <= column:
                return j
        elif in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            if depth == 0:
                return max(i, start + 1)
            depth -= 1
        elif ch == "," and depth == 0:
            return i
    return -1


def _first_byte(path: Path) -> bytes:
    """The first byte of ``path`` that is not whitespace or a byte order mark (b"" if none or unreadable)."""
    head = b""
    try:
        with _open_binary(path) as fh:
            read1 = getattr(fh, "read1", fh.read)  # a buffered read would drop what came before a damaged .gz
            while len(head) < 4096 and not head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n"):
                more = read1(64)
                if not more:
                    break
                head += more
    except _STREAM_ERRORS:
        pass
    return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")[:1]


def read_json(path: Path, *, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Iterator[RawRow]:
    """Elements of a JSON array of objects, streamed; a broken element is skipped to the next one.

    A file whose first value is an object is read as JSON Lines (many ``.json`` files are).
    """
    if _first_byte(path) != b"[":
        yield from read_jsonl(path, max_row_bytes=max_row_bytes)
        return
    with _open_binary(path) as fh:
        yield from _JsonArray(fh, max_row_bytes).rows()


class _JsonArray:
    """A streaming reader of the elements of a JSON array: a window ``buf`` of the text, a cursor ``pos`` on
    (physical) ``line``. Broken elements become error rows; reading goes on at the next element."""

    def __init__(self, fh: IO[bytes], max_row_bytes: int) -> None:
        self.read1 = getattr(fh, "read1", fh.read)  # one read at a time: a damaged .gz keeps the text before it
        self.text = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.decoder = json.JSONDecoder()
        self.max = max_row_bytes
        self.buf, self.pos, self.line = "", 0, 1
        self.eof = self.started = self.done = False
        self.broken: str | None = None  # why the rest of a compressed stream cannot be read

    def fill(self) -> None:
        """Drop the text before ``pos`` and read the next chunk."""
        parts: list[str] = []
        size = 0
        while size < _CHUNK and not self.eof:
            try:
                data = self.read1(_CHUNK - size)
            except _STREAM_ERRORS as exc:
                data, self.broken = b"", _stream_error(exc)
            if not data:
                parts.append(self.text.decode(b"", final=True))
                self.eof = True
                break
            parts.append(self.text.decode(data))
            size += len(data)
        more = "".join(parts)
        if not self.started:
            more, self.started = more.removeprefix(_BOM), True
        self.buf, self.pos = self.buf[self.pos :] + more, 0

    def advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def next_char(self, offset: int = 0) -> str:
        """The first character after ``pos + offset`` that is not whitespace ("" at the end of the text); moves
        ``pos`` past the whitespace unless ``offset`` (a look-ahead)."""
        while True:
            at = _skip_ws(self.buf, self.pos + offset)
            if at < len(self.buf) - 1 or self.eof:
                if not offset:
                    self.advance(at)
                return self.buf[at] if at < len(self.buf) else ""
            self.fill()

    def rows(self) -> Iterator[RawRow]:
        self.fill()
        self.advance(_skip_ws(self.buf, 0) + 1)  # past '['
        while not self.done:
            ch = self.next_char()
            if not ch:
                yield RawRow(self.line, error=self.broken or "the JSON array is not closed with ']' (truncated file?)")
                return
            if ch == ",":
                self.advance(self.pos + 1)
            elif ch == "]" and not self.next_char(1):
                self.done = True
            elif ch == "]":  # text after a ']' at the array's level: a stray bracket, or trailing text
                yield RawRow(self.line, error="a stray ']' closes the array before the end of the file; it is "
                                              "skipped and the text after it is read as more elements",
                             raw=_excerpt(self.buf[self.pos : self.pos + 200]))
                self.advance(self.pos + 1)
            else:
                row = self.element()
                if row is not None:
                    yield row
        if self.broken:
            yield RawRow(self.line, error=self.broken)

    def element(self) -> RawRow | None:
        """The element at ``pos`` (None if more text had to be read first)."""
        if self.pos > 1 << 16:  # keep the window short: a JSONDecodeError counts lines from its start
            self.buf, self.pos = self.buf[self.pos :], 0
        buf, pos = self.buf, self.pos
        try:
            value, end = self.decoder.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            if not self.eof and len(buf) - pos <= self.max:
                self.fill()
                return None
            at_line = self.line + buf.count("\n", pos, exc.pos)
            return self.skip_broken(f"broken JSON: {exc.msg} (line {at_line}, character {exc.pos - pos + 1} of "
                                    "the element)")
        except RecursionError:
            return self.skip_broken("broken JSON: the element is nested too deeply to read")
        except ValueError as exc:  # e.g. an integer with more digits than Python converts
            return self.skip_broken(f"broken JSON: {exc}")
        if end - pos > self.max:
            row = RawRow(self.line, error=f"array element is longer than the limit of {self.max:,} bytes",
                         raw=_excerpt(buf[pos : pos + EXCERPT_CHARS]))
        elif _has_invalid_text(value):
            row = RawRow(self.line, error="invalid UTF-8 (or an unpaired \\uD800-\\uDFFF escape) inside the "
                                          "element", raw=_excerpt(buf[pos:end]))
        else:
            row = RawRow(self.line, value)
        self.advance(end)
        return row

    def skip_broken(self, reason: str) -> RawRow:
        """An error row for the broken element at ``pos``; moves past it (or stops when it has no end)."""
        buf, pos = self.buf, self.pos
        end = _recover_end(buf, pos)
        if len(buf) - pos > self.max and (end < 0 or end - pos > self.max):
            reason = f"array element is longer than the limit of {self.max:,} bytes"
        if end < 0:
            self.done = True
            reason += ("; the JSON array is not closed with ']' (truncated file?)" if self.eof else
                       "; no element boundary follows it, so the rest of the file cannot be read")
        row = RawRow(self.line, error=reason, raw=_excerpt(buf[pos : pos + EXCERPT_CHARS]))
        if end >= 0:
            self.advance(end)
        return row


def _has_invalid_text(value: Any) -> bool:
    """Whether a decoded JSON value holds invalid UTF-8 or an unpaired surrogate (which cannot be stored)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item) is not None:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class _LineFeed:
    """Decoded lines of a binary file for :mod:`csv`, counting physical lines and skipping overlong ones.

    ``record`` collects the ``(line number, text)`` of each line handed out for the current record; lines put
    back in ``pending`` are handed out again before the file is read further.
    """

    def __init__(self, fh: IO[bytes], max_bytes: int) -> None:
        self.fh, self.max_bytes, self.line = fh, max_bytes, 0
        self.overlong: list[tuple[int, str]] = []
        self.record: list[tuple[int, str]] = []
        self.pending: deque[tuple[int, str]] = deque()
        self.broken: str | None = None  # why the rest of a compressed stream cannot be read

    def __iter__(self) -> Iterator[str]:
        while True:
            if self.pending:
                item = self.pending.popleft()
            else:
                try:
                    raw, overlong = _read_line(self.fh, self.max_bytes)
                except _STREAM_ERRORS as exc:
                    self.broken = _stream_error(exc)
                    return
                if not raw:
                    return
                self.line += 1
                if overlong:
                    self.overlong.append((self.line, _excerpt(raw)))
                    continue
                item = (self.line, raw.decode("utf-8", "surrogateescape"))
            self.record.append(item)
            yield item[1]


def _csv_header(path: Path, cells: list[str] | None, error: str | None, line: int) -> list[str] | None:
    """The column names of a header row (None for a blank line before it); raises :class:`InputError` when
    they cannot name the columns."""
    if error is not None:
        raise InputError(f"{path}, line {line}: the header row cannot be read ({error}). The first line must "
                         "name the columns; fix its quotes and try again.")
    if not cells or not any(c.strip() for c in cells):
        return None
    if any(_INVALID_UTF8.search(c) for c in cells):
        raise InputError(f"{path}, line {line}: the header row is not valid UTF-8. Save the file as UTF-8 and "
                         "try again.")
    header = [h.strip().lstrip(_BOM) for h in cells]
    seen: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        if name in seen:
            raise InputError(f"{path}, line {line}: the header names the column {name[:80]!r} twice (columns "
                             f"{seen[name]} and {i}); column names must be unique. Rename one of them.")
        seen[name] = i
    return header


def _csv_record(reader: Iterator[list[str]], feed: _LineFeed,
                delimiter: str) -> tuple[list[str] | None, str | None, list[tuple[int, str]]]:
    """The next record's cells (None at the end or on an error), the error, and the lines it was read from."""
    feed.record = []
    cells: list[str] | None = None
    error: str | None = None
    try:
        cells = next(reader)
    except StopIteration:
        pass
    except csv.Error as exc:
        error = f"unreadable CSV row: {exc}"
    lines = feed.record
    if error is not None and len(lines) == 1 and lines[0][1].count('"') % 2 == 0:
        try:  # one line with loose quoting (text after a closing quote): read it leniently, as most tools do
            cells, error = next(csv.reader([lines[0][1]], delimiter=delimiter)), None
        except (csv.Error, StopIteration) as exc:
            error = f"unreadable CSV row: {exc}"
    return cells, error, lines


def _csv_row(header: list[str], cells: list[str] | None, error: str | None, lines: list[tuple[int, str]],
             delimiter: str) -> tuple[RawRow, bool]:
    """The row (or its error) and whether its lines after the first must be read again."""
    start = lines[0][0]
    raw = delimiter.join(cells) if cells is not None else "".join(text for _, text in lines)
    if cells is not None and _INVALID_UTF8.search(raw):
        return RawRow(start, error="invalid UTF-8 in the row", raw=_excerpt(raw)), False
    if cells is not None and len(cells) == len(header):
        return RawRow(start, {h: (c if c != "" else None) for h, c in zip(header, cells, strict=False)}), False
    if error is None:
        error = f"row has {len(cells or [])} cells but the header has {len(header)}"
    if len(lines) == 1:
        return RawRow(start, error=error, raw=_excerpt(raw)), False
    # Probably a quote opened on the first line and never closed: quarantine that line alone and read the
    # lines it swallowed again.
    return RawRow(start, error=f"{error}; the row runs over lines {start}-{lines[-1][0]}, so a quote on line "
                               f"{start} is probably not closed: line {start} is quarantined and the lines after "
                               "it are read again", raw=_excerpt(lines[0][1])), True


def read_csv(path: Path, *, delimiter: str = ",", max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Iterator[RawRow]:
    """Rows of a CSV (or TSV) file with a header line; empty cells become ``None``.

    A row whose quote is never closed would swallow the lines after it: when a row spanning several lines
    cannot be read (or has the wrong number of cells), only its first line is quarantined and the lines
    after it are read again, so the valid rows there are kept.
    """
    csv.field_size_limit(max_row_bytes)
    with _open_binary(path) as fh:
        feed = _LineFeed(fh, max_row_bytes)
        reader = csv.reader(iter(feed), delimiter=delimiter, strict=True)
        header: list[str] | None = None
        while True:
            cells, error, lines = _csv_record(reader, feed, delimiter)
            for bad_line, excerpt in feed.overlong:
                yield RawRow(bad_line, error=f"line is longer than the limit of {max_row_bytes:,} bytes", raw=excerpt)
            feed.overlong.clear()
            if cells is None and error is None:
                if feed.broken:
                    yield RawRow(feed.line + 1, error=feed.broken)
                return
            if not lines:  # pragma: no cover - csv reports an error only after reading a line
                continue
            if header is None:
                header = _csv_header(path, cells, error, lines[0][0])
                continue
            if cells is not None and not any(c.strip() for c in cells):
                continue
            row, again = _csv_row(header, cells, error, lines, delimiter)
            yield row
            if again:
                feed.pending.extendleft(reversed(lines[1:]))
                reader = csv.reader(iter(feed), delimiter=delimiter, strict=True)


def read_parquet(path: Path, *, batch_size: int = 4096) -> Iterator[RawRow]:
    """Rows of a Parquet file, in record batches; ``line`` is the 1-based row number."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
            try:
                rows = batch.to_pylist()
            except (pa.ArrowException, ValueError):  # e.g. damaged text that is not UTF-8: find the rows
                for i in range(batch.num_rows):
                    row += 1
                    try:
                        yield RawRow(row, batch.slice(i, 1).to_pylist()[0])
                    except (pa.ArrowException, ValueError) as exc:
                        yield RawRow(row, error=f"row {row} of the Parquet file cannot be read ({exc})")
                continue
            for data in rows:
                row += 1
                yield RawRow(row, data)
    except (pa.ArrowException, OSError, ValueError) as exc:
        if row == 0:
            raise UnsupportedFormatError(f"{path} cannot be read as Parquet: {exc}. Is it a Parquet file?") from exc
        yield RawRow(row + 1, error=f"the Parquet file is corrupt after row {row} ({exc}); the rest cannot be read")


def read_hf_folder(path: Path, *, split: str | None = None, batch_size: int = 1024) -> Iterator[RawRow]:
    """Rows of a dataset saved with ``save_to_disk`` (every split of a ``DatasetDict`` unless ``split``)."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # a damaged folder fails inside datasets/pyarrow in many ways (seen: TypeError,
        # AttributeError, SystemError, UnicodeDecodeError besides the usual OSError / ValueError)
        raise UnsupportedFormatError(
            f"{path} cannot be loaded as a saved dataset ({type(exc).__name__}: {str(exc)[:300]}). Is it a complete "
            "folder written by datasets.Dataset.save_to_disk?") from exc
    if isinstance(loaded, datasets.DatasetDict):
        if split is not None and split not in loaded:
            raise UnsupportedFormatError(f"{path} has splits {list(loaded)}; there is no split {split!r}.")
        parts = [loaded[split]] if split else list(loaded.values())
    else:
        parts = [loaded]
    row = 0
    try:
        for part in parts:
            for batch in part.with_format("arrow").iter(batch_size=batch_size):
                for data in batch.to_pylist():
                    row += 1
                    yield RawRow(row, data)
    except Exception as exc:  # damaged Arrow data, found while reading (same variety as above)
        yield RawRow(row + 1, error=f"the saved dataset is corrupt after row {row} ({type(exc).__name__}: "
                                    f"{str(exc)[:300]}); the rest cannot be read")


def read_rows(
    path: Path, *, fmt: str | None = None, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES, split: str | None = None
) -> Iterator[RawRow]:
    """Rows of any supported source (see :data:`FORMATS`), by ``fmt`` or by :func:`detect_format`."""
    fmt = fmt or detect_format(path)
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file or folder. Check the path and try again.")
    if isinstance(max_row_bytes, bool) or not isinstance(max_row_bytes, int) or max_row_bytes < 1:
        raise InputError(f"--max-row-bytes must be a positive number of bytes; got {max_row_bytes!r:.40}.")
    if fmt != "hf" and path.is_dir():
        raise UnsupportedFormatError(f"{path} is a folder, not a {fmt} file. Give the file itself, or "
                                     "--format hf for a folder written by datasets.Dataset.save_to_disk.")
    if fmt == "jsonl":
        return read_jsonl(path, max_row_bytes=max_row_bytes)
    if fmt == "json":
        return read_json(path, max_row_bytes=max_row_bytes)
    if fmt in ("csv", "tsv"):
        return read_csv(path, delimiter="\t" if fmt == "tsv" else ",", max_row_bytes=max_row_bytes)
    if fmt == "parquet":
        return read_parquet(path)
    if fmt == "hf":
        return read_hf_folder(path, split=split)
    raise UnsupportedFormatError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}.")
