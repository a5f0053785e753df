"""Reading CSV and TSV rows with their physical line numbers, quarantining rows that cannot be read."""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from curate.errors import InputError
from curate.ingest.raw_rows import (
    BOM,
    DEFAULT_MAX_ROW_BYTES,
    INVALID_UTF8,
    STREAM_ERRORS,
    UTF8,
    RawRow,
    excerpt,
    open_binary,
    read_line,
    stream_error,
    undecodable,
)


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
                    raw, overlong = read_line(self.fh, self.max_bytes)
                except STREAM_ERRORS as exc:
                    self.broken = stream_error(exc)
                    return
                if not raw:
                    return
                self.line += 1
                if overlong:
                    self.overlong.append((self.line, excerpt(raw)))
                    continue
                item = (self.line, raw.decode("utf-8", "surrogateescape"))
            self.record.append(item)
            yield item[1]


def _csv_header(path: Path, cells: list[str] | None, error: str | None, line: int,
                encoding: str = UTF8) -> list[str] | None:
    """The column names of a header row (None for a blank line before it); raises :class:`InputError` when
    they cannot name the columns."""
    if error is not None:
        raise InputError(f"{path}, line {line}: the header row cannot be read ({error}). The first line must "
                         "name the columns; fix its quotes and try again.")
    if not cells or not any(c.strip() for c in cells):
        return None
    if any(INVALID_UTF8.search(c) for c in cells):
        raise InputError(f"{path}, line {line}: {undecodable(encoding, 'header row')}.")
    header = [h.strip().lstrip(BOM) for h in cells]
    seen: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        if name in seen:
            raise InputError(f"{path}, line {line}: the header names the column {name[:80]!r} twice (columns "
                             f"{seen[name]} and {i}); column names must be unique. Rename one of them.")
        seen[name] = i
    return header


def check_columns_option(columns: Sequence[str]) -> list[str]:
    """The names of ``--columns`` (a headerless CSV/TSV file), stripped; raises :class:`InputError` when one is
    empty or named twice."""
    names = [str(c).strip() for c in columns]
    if not names or any(not n for n in names):
        raise InputError(f"--columns needs one non-empty name per column, comma-separated (e.g. --columns "
                         f"label,text); got {','.join(columns)!r:.80}.")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"--columns names {', '.join(twice)} twice; column names must be unique.")
    return names


def _tsv_cells(line: str, header: list[str]) -> list[str] | None:
    """The cells of one TSV line split on tabs alone, when that gives one cell per column: TSV files rarely quote
    their fields, so a line with a literal quote (``5" screen``) is a valid row, not a broken one."""
    cells = line.rstrip("\r\n").split("\t")
    return cells if len(cells) == len(header) else None


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
    # one line with loose quoting (text after a closing quote): read it leniently, as most tools do; a TSV line is
    # split on tabs instead (:func:`_csv_row`), since TSV quotes are characters
    if error is not None and len(lines) == 1 and delimiter != "\t" and lines[0][1].count('"') % 2 == 0:
        try:
            cells, error = next(csv.reader([lines[0][1]], delimiter=delimiter)), None
        except (csv.Error, StopIteration) as exc:
            error = f"unreadable CSV row: {exc}"
    return cells, error, lines


def _csv_row(header: list[str], cells: list[str] | None, error: str | None, lines: list[tuple[int, str]],
             delimiter: str, encoding: str = UTF8) -> tuple[RawRow, bool]:
    """The row (or its error) and whether its lines after the first must be read again."""
    start = lines[0][0]
    if delimiter == "\t" and (error is not None or cells is None or len(cells) != len(header)):
        plain = _tsv_cells(lines[0][1], header)
        if plain is not None and not INVALID_UTF8.search("\t".join(plain)):
            return RawRow(start, {h: (c if c != "" else None) for h, c in zip(header, plain, strict=True)}), \
                len(lines) > 1
    raw = delimiter.join(cells) if cells is not None else "".join(text for _, text in lines)
    if cells is not None and INVALID_UTF8.search(raw):
        return RawRow(start, error=undecodable(encoding, "row"), raw=excerpt(raw)), False
    if cells is not None and len(cells) == len(header):
        return RawRow(start, {h: (c if c != "" else None) for h, c in zip(header, cells, strict=False)}), False
    if error is None:
        error = f"row has {len(cells or [])} cells but the header has {len(header)}"
    if len(lines) == 1:
        return RawRow(start, error=error, raw=excerpt(raw)), False
    # Probably a quote opened on the first line and never closed: quarantine that line alone and read the
    # lines it swallowed again.
    return RawRow(start, error=f"{error}; the row runs over lines {start}-{lines[-1][0]}, so a quote on line "
                               f"{start} is probably not closed: line {start} is quarantined and the lines after "
                               "it are read again", raw=excerpt(lines[0][1])), True


_OTHER_DELIMITERS = (";", "\t", "|")


def sniff_delimiter(path: Path, encoding: str = UTF8, max_bytes: int = DEFAULT_MAX_ROW_BYTES) -> str:
    """The delimiter of a ``.csv`` file: a comma, unless its first non-blank line has none outside quotes and has
    semicolons (spreadsheets set to a locale with a decimal comma save those), tabs or bars instead."""
    try:
        with open_binary(path, encoding) as fh:
            line = ""
            while not line.strip():
                raw, overlong = read_line(fh, max_bytes)
                if not raw or overlong:
                    return ","
                line = raw.decode("utf-8", "replace")
    except STREAM_ERRORS:
        return ","  # a damaged .gz: the reader reports it, with the rows before the damage
    unquoted = re.sub(r'"[^"]*"', "", line)
    if "," in unquoted:
        return ","
    counts = {d: unquoted.count(d) for d in _OTHER_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(path: Path, *, delimiter: str = ",", max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
             encoding: str = UTF8, columns: Sequence[str] | None = None) -> Iterator[RawRow]:
    """Rows of a CSV (or TSV) file with a header line, or without one when ``columns`` names the columns (then
    the first line is a row); empty cells become ``None``.

    A row whose quote is never closed would swallow the lines after it: when a row spanning several lines
    cannot be read (or has the wrong number of cells), only its first line is quarantined and the lines
    after it are read again, so the valid rows there are kept. In a TSV file such a line is first split on
    tabs alone: with one cell per column it is a row whose text holds a literal quote.
    """
    csv.field_size_limit(max_row_bytes)
    header: list[str] | None = None if columns is None else check_columns_option(columns)
    with open_binary(path, encoding) as fh:
        feed = _LineFeed(fh, max_row_bytes)
        reader = csv.reader(iter(feed), delimiter=delimiter, strict=True)
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
                header = _csv_header(path, cells, error, lines[0][0], encoding)
                continue
            if cells is not None and not any(c.strip() for c in cells):
                continue
            row, again = _csv_row(header, cells, error, lines, delimiter, encoding)
            yield row
            if again:
                feed.pending.extendleft(reversed(lines[1:]))
                reader = csv.reader(iter(feed), delimiter=delimiter, strict=True)


