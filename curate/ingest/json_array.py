"""Reading a JSON array of objects as a stream of rows, recovering after a malformed element."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from curate.errors import InputError
from curate.ingest.mapping import CONTENT_TARGETS
from curate.ingest.raw_rows import (
    BOM,
    CHUNK,
    DEFAULT_MAX_ROW_BYTES,
    EXCERPT_CHARS,
    INVALID_UTF8,
    STREAM_ERRORS,
    UTF8,
    RawRow,
    excerpt,
    has_invalid_text,
    open_binary,
    read_jsonl,
    stream_error,
    undecodable,
)

ONE_OBJECT_LIMIT = 256 * 1024 * 1024  # bytes read to check whether a file starting with '{' is one object
_NEXT_OBJECT = re.compile(r",\s*\{")
RESYNC_TRIES = 1000  # element starts tried after a broken element on one line
RESYNC_RUN = 50  # whole objects in a row after which a start is taken for the array's next element


def _skip_ws(buf: str, pos: int) -> int:
    while pos < len(buf) and buf[pos] in " \t\r\n":
        pos += 1
    return pos


def _resync(buf: str, start: int, decoder: json.JSONDecoder, stop: int | None = None) -> int:
    """Where reading goes on after the broken element at ``start`` of a minified array (before ``stop``), or -1.

    On one line, counting brackets finds no end for ``{"a": [1, 2}, {...}, ...`` (every later element would be
    lost), and a string left open (``{"text": "ab, {...}``) moves the end it finds past whole elements. Here the
    first ``,`` followed by a run of whole objects, elements of the array again, is taken: a run that ends at the
    array's closing ``]`` at the end of the text, at garbage (text that is not a whole element, or no ``,`` after
    one), or that is ``RESYNC_RUN`` long. A run of objects nested in a list inside the broken element ends at that
    list's ``]`` with more text after it, and is passed over.
    """
    matches = _NEXT_OBJECT.finditer(buf, start + 1) if stop is None else _NEXT_OBJECT.finditer(buf, start + 1, stop + 1)
    for tries, match in enumerate(matches):
        if tries >= RESYNC_TRIES:
            break
        at, run = match.end() - 1, 0
        while True:
            try:
                _, end = decoder.raw_decode(buf, at)
            except (json.JSONDecodeError, RecursionError, ValueError):
                if run:  # the run meets an element that is not a whole object: garbage at the array's level
                    return match.start()
                break
            run += 1
            after = _skip_ws(buf, end)
            if run >= RESYNC_RUN or (buf[after : after + 1] == "]" and _skip_ws(buf, after + 1) == len(buf)):
                return match.start()
            if buf[after : after + 1] in ("]", "}"):
                break  # a ']' with text after it, or a '}': the run was nested inside the broken element
            if buf[after : after + 1] != ",":  # garbage after a whole element, at the array's level
                return match.start()
            at = _skip_ws(buf, after + 1)
    return -1


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


def _first_byte(path: Path, encoding: str = UTF8) -> bytes:
    """The first byte of ``path`` that is not whitespace or a byte order mark (b"" if none or unreadable)."""
    head = b""
    try:
        with open_binary(path, encoding) as fh:
            read1 = getattr(fh, "read1", fh.read)  # a buffered read would drop what came before a damaged .gz
            while len(head) < 4096 and not head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n"):
                more = read1(64)
                if not more:
                    break
                head += more
    except STREAM_ERRORS:
        pass
    return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")[:1]


def _one_object(path: Path, encoding: str) -> tuple[dict[str, Any] | None, int]:
    """The object a file starting with ``{`` holds when the whole file is that one object (pretty-printed or on one
    line) and its size in bytes; ``(None, 0)`` for JSON Lines, broken JSON, or a file too big to check."""
    with open_binary(path, encoding) as fh:
        first = b""
        while not first.strip():
            line = fh.readline(ONE_OBJECT_LIMIT)
            if not line:
                return None, 0
            first = line.removeprefix(b"\xef\xbb\xbf")
        try:
            orjson.loads(first)
            text = first
        except orjson.JSONDecodeError:  # not a whole value on the first line: one object spread over lines?
            text = first + fh.read(ONE_OBJECT_LIMIT)
        else:
            for line in iter(lambda: fh.readline(CHUNK), b""):
                if line.strip():
                    return None, 0  # JSON Lines
    if len(text) >= ONE_OBJECT_LIMIT:
        return None, 0
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, 0
    return (value, len(text)) if isinstance(value, dict) and not has_invalid_text(value) else (None, 0)


def _refuse_wrapped(path: Path, value: dict[str, Any]) -> None:
    """Raise :class:`InputError` when the one object of a file wraps the rows in a list under a key."""
    if CONTENT_TARGETS & set(value):
        return
    lists = [(str(k), v) for k, v in value.items() if isinstance(v, list) and v
             and all(isinstance(x, dict) and "role" not in x for x in v[:20])]
    if lists:
        key, rows = max(lists, key=lambda kv: len(kv[1]))
        jq = f".{key}" if key.isidentifier() else f".[{json.dumps(key)}]"
        plural = "s" if len(rows) != 1 else ""
        raise InputError(f"{path} holds one JSON object (keys: {', '.join(map(str, list(value)[:12]))}), not rows: "
                         f"curate reads a JSON array of objects, or JSON Lines. The rows look like the list under "
                         f"{key!r} ({len(rows):,} object{plural}): extract it, e.g. jq '{jq}' {path.name} > rows.json, "
                         "and ingest that file.")


def read_json(path: Path, *, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES, encoding: str = UTF8) -> Iterator[RawRow]:
    """Elements of a JSON array of objects, streamed; a broken element is skipped to the next one.

    A file whose first value is an object is read as JSON Lines (many ``.json`` files are), or as one row when
    the whole file is one object; one whose object holds the rows in a list is refused with how to extract them.
    """
    first = _first_byte(path, encoding)
    if first == b"{":
        try:
            value, size = _one_object(path, encoding)
        except STREAM_ERRORS:
            value, size = None, 0  # read as JSON Lines: the damage is reported at its line
        if value is not None:
            _refuse_wrapped(path, value)
            if size > max_row_bytes:
                yield RawRow(1, error=f"the file's one object is longer than the limit of {max_row_bytes:,} bytes")
            else:
                yield RawRow(1, value)
            return
    if first != b"[":
        yield from read_jsonl(path, max_row_bytes=max_row_bytes, encoding=encoding)
        return
    with open_binary(path, encoding) as fh:
        yield from _JsonArray(fh, max_row_bytes, encoding).rows()


class _JsonArray:
    """A streaming reader of the elements of a JSON array: a window ``buf`` of the text, a cursor ``pos`` on
    (physical) ``line``. Broken elements become error rows; reading goes on at the next element."""

    def __init__(self, fh: IO[bytes], max_row_bytes: int, encoding: str = UTF8) -> None:
        self.read1 = getattr(fh, "read1", fh.read)  # one read at a time: a damaged .gz keeps the text before it
        self.text = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.decoder = json.JSONDecoder()
        self.max, self.encoding = max_row_bytes, encoding
        self.buf, self.pos, self.line = "", 0, 1
        self.elements = 0  # elements met so far: the number of the next one's RawRow
        self.eof = self.started = self.done = False
        self.broken: str | None = None  # why the rest of a compressed stream cannot be read

    def fill(self) -> None:
        """Drop the text before ``pos`` and read the next chunk."""
        parts: list[str] = []
        size = 0
        while size < CHUNK and not self.eof:
            try:
                data = self.read1(CHUNK - size)
            except STREAM_ERRORS as exc:
                data, self.broken = b"", stream_error(exc)
            if not data:
                parts.append(self.text.decode(b"", final=True))
                self.eof = True
                break
            parts.append(self.text.decode(data))
            size += len(data)
        more = "".join(parts)
        if not self.started:
            more, self.started = more.removeprefix(BOM), True
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
                             raw=excerpt(self.buf[self.pos : self.pos + 200]))
                self.advance(self.pos + 1)
            else:
                row = self.element()
                if row is not None:
                    self.elements += 1
                    row.element = self.elements
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
        if isinstance(value, str):  # '"x,{"text": "a"}': a stray quote makes a string of the next element's start
            after = _skip_ws(buf, end)
            if after == len(buf) and not self.eof:
                self.fill()
                return None
            if buf[after : after + 1] not in ("", ",", "]"):
                return self.skip_broken("broken JSON: a string with no ',' after it (a stray quote?)")
        if end - pos > self.max:
            row = RawRow(self.line, error=f"array element is longer than the limit of {self.max:,} bytes",
                         raw=excerpt(buf[pos : pos + EXCERPT_CHARS]))
        elif has_invalid_text(value):
            error = (undecodable(self.encoding, "element") if INVALID_UTF8.search(buf, pos, end) else
                     "an unpaired \\uD800-\\uDFFF escape inside the element (half of a surrogate pair)")
            row = RawRow(self.line, error=error, raw=excerpt(buf[pos:end]))
        else:
            row = RawRow(self.line, value)
        self.advance(end)
        return row

    def skip_broken(self, reason: str) -> RawRow:
        """An error row for the broken element at ``pos``; moves past it (or stops when it has no end)."""
        buf, pos = self.buf, self.pos
        end = _recover_end(buf, pos)
        if end < 0 or buf.find("\n", pos, end) < 0:  # on one line, counting brackets is not to be trusted past a break
            sync = _resync(buf, pos, self.decoder, None if end < 0 else end)
            if sync >= 0:
                end = sync
        if len(buf) - pos > self.max and (end < 0 or end - pos > self.max):
            reason = f"array element is longer than the limit of {self.max:,} bytes"
        if end < 0:
            self.done = True
            reason += ("; the JSON array is not closed with ']' (truncated file?)" if self.eof else
                       "; no element boundary follows it, so the rest of the file cannot be read")
        row = RawRow(self.line, error=reason, raw=excerpt(buf[pos : end if 0 <= end < pos + EXCERPT_CHARS else
                                                              pos + EXCERPT_CHARS]))
        if end >= 0:
            self.advance(end)
        return row


