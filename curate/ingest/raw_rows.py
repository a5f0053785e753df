"""The row every reader yields (a parsed row, or the reason it could not be read) and the JSONL reader."""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

DEFAULT_MAX_ROW_BYTES = 4 * 1024 * 1024
EXCERPT_CHARS = 2000
CHUNK = 1 << 20
INVALID_UTF8 = re.compile("[\udc80-\udcff]")
SURROGATE = re.compile("[\ud800-\udfff]")  # invalid UTF-8 (surrogateescape) or an unpaired \uXXXX escape
STREAM_ERRORS = (OSError, EOFError, zlib.error)  # a corrupt or truncated .gz stream
BOM = "\ufeff"
UTF8 = "utf-8"


@dataclass(slots=True)
class RawRow:
    """One row of a source: ``data`` when it was read, else ``error`` (and ``raw``, an excerpt). ``element``: the
    row's 1-based position in a JSON array, where ``line`` alone does not find it (a minified array is one line)."""

    line: int
    data: Any = None
    error: str | None = None
    raw: str | None = None
    element: int | None = None

    @property
    def where(self) -> str:
        """Where the row is in its file: ``line 4``, or ``element 2 on line 1`` in a JSON array."""
        return places([(self.line, self.element)])


def places(found: Sequence[tuple[int, int | None]]) -> str:
    """``(line, element)`` pairs as a reader finds them again: ``lines 4, 9``; ``elements 2, 57 on line 1`` for the
    elements of a JSON array (its lines too, as many as differ)."""
    lines = list(dict.fromkeys(line for line, _ in found))
    line_text = ("line " if len(lines) == 1 else "lines ") + ", ".join(map(str, lines))
    elements = [element for _, element in found if element is not None]
    if not elements:
        return line_text
    return ("element " if len(elements) == 1 else "elements ") + ", ".join(map(str, elements)) + f" on {line_text}"


def open_binary(path: Path, encoding: str = UTF8) -> IO[bytes]:
    """``path`` opened for binary reading as UTF-8 bytes: through gzip when it ends in ``.gz``, and re-encoded
    from ``encoding`` when that is not UTF-8 (line breaks stay where they are, so line numbers hold)."""
    fh: IO[bytes] = gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")  # type: ignore[assignment]
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return fh
    return io.BufferedReader(_Recoded(fh, encoding), buffer_size=CHUNK)


class _Recoded(io.RawIOBase):
    """The bytes of a binary stream in ``encoding``, as UTF-8. Bytes that are not valid in ``encoding`` pass
    through unchanged, so the readers find them as invalid UTF-8 (and say which encoding failed)."""

    def __init__(self, fh: IO[bytes], encoding: str) -> None:
        super().__init__()
        self.fh, self.out, self.eof = fh, b"", False
        self.decoder = codecs.getincrementaldecoder(encoding)("surrogateescape")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.out and not self.eof:
            data = self.fh.read(CHUNK)
            self.eof = not data
            self.out = self.decoder.decode(data, final=self.eof).encode(UTF8, "surrogateescape")
        n = min(len(buffer), len(self.out))
        buffer[:n] = self.out[:n]
        self.out = self.out[n:]
        return n

    def close(self) -> None:
        self.fh.close()
        super().close()


def undecodable(encoding: str, what: str = "line") -> str:
    """Why a ``what`` (line, row, element) cannot be read in ``encoding``, and what to pass instead."""
    name = codecs.lookup(encoding).name
    if name in ("utf-8", "utf-8-sig"):
        return (f"invalid UTF-8: this {what} is not valid UTF-8 text; if the file is in another encoding (e.g. "
                "Windows-1252), pass --encoding cp1252")
    return (f"invalid {name}: this {what} cannot be read as {name} (--encoding); pass the file's real encoding "
            "with --encoding, e.g. --encoding utf-8")


def excerpt(data: bytes | str) -> str:
    """At most :data:`EXCERPT_CHARS` of a bad row, storable as JSON (invalid bytes escaped)."""
    if isinstance(data, str) and SURROGATE.search(data):  # keep the excerpt storable as JSON
        try:
            data = data.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            data = str(data).encode("utf-8", "backslashreplace")
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + f"... [{len(text)} characters]"


def read_line(fh: IO[bytes], max_bytes: int) -> tuple[bytes, bool]:
    """Read one line of at most ``max_bytes``; an overlong line is skipped to its end and flagged."""
    line = fh.readline(max_bytes + 1)
    if len(line) <= max_bytes or line.endswith(b"\n"):
        return line, False
    head = line[:EXCERPT_CHARS]
    while True:
        rest = fh.readline(CHUNK)
        if not rest or rest.endswith(b"\n"):
            return head, True


def stream_error(exc: BaseException) -> str:
    return f"the compressed stream is corrupt or truncated here ({exc}); the rest of the file cannot be read"


def read_jsonl(path: Path, *, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES, encoding: str = UTF8) -> Iterator[RawRow]:
    """Rows of a JSON Lines file; blank lines are skipped (and a byte order mark at the start of a line)."""
    loads = json_loads()
    with open_binary(path, encoding) as fh:
        lineno = 0
        while True:
            try:
                raw, overlong = read_line(fh, max_row_bytes)
            except STREAM_ERRORS as exc:
                yield RawRow(lineno + 1, error=stream_error(exc))
                return
            if not raw:
                return
            lineno += 1
            if overlong:
                yield RawRow(lineno, error=f"line is longer than the limit of {max_row_bytes:,} bytes",
                             raw=excerpt(raw))
                continue
            raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield RawRow(lineno, error=undecodable(encoding), raw=excerpt(raw))
                continue
            try:
                yield RawRow(lineno, loads(text))
            except ValueError as exc:
                yield RawRow(lineno, error=f"broken JSON: {exc}", raw=excerpt(text))


def json_loads() -> Any:
    try:
        import orjson

        return orjson.loads
    except ImportError:  # pragma: no cover - orjson is a core dependency
        return json.loads


def has_invalid_text(value: Any) -> bool:
    """Whether a decoded JSON value holds invalid UTF-8 or an unpaired surrogate (which cannot be stored)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if SURROGATE.search(item) is not None:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


