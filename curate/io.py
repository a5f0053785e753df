"""Streaming readers for source files, one row at a time, with line numbers and per-row errors.

Each reader yields :class:`RawRow` objects: a parsed row (a dict) or, for a row that cannot be read, the reason
and an excerpt of the raw text, so the caller can quarantine it and go on. No reader loads a whole file.

Formats: JSONL (``.jsonl``/``.ndjson``), JSON (an array of objects, streamed), CSV/TSV, Parquet and a folder
saved with ``datasets.save_to_disk``. A ``.gz`` suffix is read through gzip.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from curate.errors import SourceNotFoundError, UnsupportedFormatError

DEFAULT_MAX_ROW_BYTES = 4 * 1024 * 1024
EXCERPT_CHARS = 2000
_CHUNK = 1 << 20
_INVALID_UTF8 = re.compile("[\udc80-\udcff]")
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


def read_jsonl(path: Path, *, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Iterator[RawRow]:
    """Rows of a JSON Lines file; blank lines are skipped."""
    loads = _json_loads()
    with _open_binary(path) as fh:
        lineno = 0
        while True:
            try:
                raw, overlong = _read_line(fh, max_row_bytes)
            except (OSError, EOFError, zlib.error) as exc:  # a corrupt or truncated .gz stream
                yield RawRow(lineno + 1, error=f"the compressed stream is corrupt or truncated here ({exc}); "
                                               "the rest of the file cannot be read")
                return
            if not raw:
                return
            lineno += 1
            if overlong:
                yield RawRow(lineno, error=f"line is longer than the limit of {max_row_bytes:,} bytes",
                             raw=_excerpt(raw))
                continue
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


def _element_end(buf: str, start: int) -> int:
    """End of a (possibly broken) array element: the first ',' or ']' at its own nesting level, else -1."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(buf)):
        ch = buf[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"' or ch == "\n":
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            if depth == 0:
                return i
            depth -= 1
        elif ch == "," and depth == 0:
            return i
    return -1


def read_json(path: Path, *, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Iterator[RawRow]:
    """Elements of a JSON array of objects, streamed; a broken element is skipped to the next one.

    A file whose first value is an object is read as JSON Lines (many ``.json`` files are).
    """
    with _open_binary(path) as head:
        first = head.read(4096).lstrip()
    if first[:1] != b"[":
        yield from read_jsonl(path, max_row_bytes=max_row_bytes)
        return
    decoder = json.JSONDecoder()
    with _open_binary(path) as raw_fh, io.TextIOWrapper(raw_fh, encoding="utf-8", errors="surrogateescape") as fh:
        buf, pos, line, eof = fh.read(_CHUNK), 0, 1, False
        pos = _skip_ws(buf, pos) + 1  # past '['

        def advance(to: int) -> None:
            nonlocal pos, line
            line += buf.count("\n", pos, to)
            pos = to

        while True:
            advance(_skip_ws(buf, pos))
            while pos >= len(buf) - 1 and not eof:
                more = fh.read(_CHUNK)
                eof = not more
                buf, pos = buf[pos:] + more, 0
                advance(_skip_ws(buf, pos))
            if pos >= len(buf):
                yield RawRow(line, error="the JSON array is not closed with ']' (truncated file?)")
                return
            if buf[pos] == "]":
                return
            if buf[pos] == ",":
                advance(pos + 1)
                continue
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if not eof and len(buf) - pos <= max_row_bytes:
                    more = fh.read(_CHUNK)
                    eof = not more
                    buf, pos = buf[pos:] + more, 0
                    continue
                end = _element_end(buf, pos)
                if len(buf) - pos > max_row_bytes and (end < 0 or end - pos > max_row_bytes):
                    reason = f"array element is longer than the limit of {max_row_bytes:,} bytes"
                else:
                    reason = f"broken JSON: {exc.msg} (line {exc.lineno - 1 + line}, column {exc.colno})"
                yield RawRow(line, error=reason, raw=_excerpt(buf[pos : pos + EXCERPT_CHARS]))
                if end < 0:
                    return
                advance(end)
                continue
            text_len = end - pos
            if text_len > max_row_bytes:
                yield RawRow(line, error=f"array element is longer than the limit of {max_row_bytes:,} bytes",
                             raw=_excerpt(buf[pos : pos + EXCERPT_CHARS]))
            elif _has_invalid_utf8(value):
                yield RawRow(line, error="invalid UTF-8 inside the element", raw=_excerpt(buf[pos:end]))
            else:
                yield RawRow(line, value)
            advance(end)
            if pos > _CHUNK:
                buf, pos = buf[pos:], 0


def _has_invalid_utf8(value: Any) -> bool:
    if isinstance(value, str):
        return _INVALID_UTF8.search(value) is not None
    if isinstance(value, dict):
        return any(_has_invalid_utf8(k) or _has_invalid_utf8(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_invalid_utf8(v) for v in value)
    return False


class _LineFeed:
    """Decoded lines of a binary file for :mod:`csv`, counting physical lines and skipping overlong ones."""

    def __init__(self, fh: IO[bytes], max_bytes: int) -> None:
        self.fh, self.max_bytes, self.line = fh, max_bytes, 0
        self.overlong: list[tuple[int, str]] = []
        self.record_start: int | None = None  # line of the first line handed to csv for the current record

    def __iter__(self) -> Iterator[str]:
        while True:
            raw, overlong = _read_line(self.fh, self.max_bytes)
            if not raw:
                return
            self.line += 1
            if overlong:
                self.overlong.append((self.line, _excerpt(raw)))
                continue
            if self.record_start is None:
                self.record_start = self.line
            yield raw.decode("utf-8", "surrogateescape")


def read_csv(path: Path, *, delimiter: str = ",", max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Iterator[RawRow]:
    """Rows of a CSV (or TSV) file with a header line; empty cells become ``None``."""
    csv.field_size_limit(max_row_bytes)
    with _open_binary(path) as fh:
        feed = _LineFeed(fh, max_row_bytes)
        reader = csv.reader(iter(feed), delimiter=delimiter)
        header: list[str] | None = None
        while True:
            feed.record_start = None
            try:
                cells = next(reader)
            except StopIteration:
                cells = None
            except csv.Error as exc:
                yield RawRow(feed.record_start or feed.line, error=f"unreadable CSV row: {exc}")
                continue
            start = feed.record_start or feed.line
            for bad_line, excerpt in feed.overlong:
                yield RawRow(bad_line, error=f"line is longer than the limit of {max_row_bytes:,} bytes", raw=excerpt)
            feed.overlong.clear()
            if cells is None:
                return
            if header is None:
                header = [h.strip().lstrip("\ufeff") for h in cells]
                continue
            if not any(c.strip() for c in cells):
                continue
            raw = delimiter.join(cells)
            if _INVALID_UTF8.search(raw):
                raw_bytes = raw.encode("utf-8", "surrogateescape")
                yield RawRow(start, error="invalid UTF-8 in the row", raw=_excerpt(raw_bytes))
            elif len(cells) != len(header):
                yield RawRow(start, error=f"row has {len(cells)} cells but the header has {len(header)}",
                             raw=_excerpt(raw))
            else:
                yield RawRow(start, {h: (c if c != "" else None) for h, c in zip(header, cells, strict=False)})


def read_parquet(path: Path, *, batch_size: int = 4096) -> Iterator[RawRow]:
    """Rows of a Parquet file, in record batches; ``line`` is the 1-based row number."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
            for data in batch.to_pylist():
                row += 1
                yield RawRow(row, data)
    except (pa.ArrowException, OSError) as exc:
        if row == 0:
            raise UnsupportedFormatError(f"{path} cannot be read as Parquet: {exc}. Is it a Parquet file?") from exc
        yield RawRow(row + 1, error=f"the Parquet file is corrupt after row {row} ({exc}); the rest cannot be read")


def read_hf_folder(path: Path, *, split: str | None = None, batch_size: int = 1024) -> Iterator[RawRow]:
    """Rows of a dataset saved with ``save_to_disk`` (every split of a ``DatasetDict`` unless ``split``)."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise UnsupportedFormatError(f"{path} cannot be loaded as a saved dataset: {exc}") from exc
    if isinstance(loaded, datasets.DatasetDict):
        if split is not None and split not in loaded:
            raise UnsupportedFormatError(f"{path} has splits {list(loaded)}; there is no split {split!r}.")
        parts = [loaded[split]] if split else list(loaded.values())
    else:
        parts = [loaded]
    row = 0
    for part in parts:
        for batch in part.with_format("arrow").iter(batch_size=batch_size):
            for data in batch.to_pylist():
                row += 1
                yield RawRow(row, data)


def read_rows(
    path: Path, *, fmt: str | None = None, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES, split: str | None = None
) -> Iterator[RawRow]:
    """Rows of any supported source (see :data:`FORMATS`), by ``fmt`` or by :func:`detect_format`."""
    fmt = fmt or detect_format(path)
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file or folder. Check the path and try again.")
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
