"""Streaming readers for source files, one row at a time, with line numbers and per-row errors.

Each reader yields :class:`RawRow` objects: a parsed row (a dict) or, for a row that cannot be read, the reason
and an excerpt of the raw text, so the caller can quarantine it and go on. No reader loads a whole file.

Formats: JSONL (``.jsonl``/``.ndjson``), JSON (an array of objects, streamed), CSV/TSV, Parquet and a folder
saved with ``datasets.save_to_disk``. A ``.gz`` suffix is read through gzip.
"""


from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from curate.errors import InputError, SourceNotFoundError, UnsupportedFormatError, did_you_mean
from curate.ingest.csv_rows import read_csv, sniff_delimiter
from curate.ingest.json_array import read_json
from curate.ingest.raw_rows import (
    DEFAULT_MAX_ROW_BYTES,
    EXCERPT_CHARS,
    STREAM_ERRORS,
    UTF8,
    RawRow,
    open_binary,
    read_jsonl,
)

_SUFFIX_FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
}
FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "hf")


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
    if suffixes and suffixes[-1] in (".xlsx", ".xls", ".xlsm", ".ods", ".numbers"):
        raise UnsupportedFormatError(f"{path} is a spreadsheet; curate reads CSV: save it as CSV UTF-8 (File > Save "
                                     "As) and ingest the .csv file.")
    fmt = _SUFFIX_FORMATS.get(suffixes[-1] if suffixes else "") or _format_from_content(path)
    if fmt is None:
        raise UnsupportedFormatError(
            f"{path}: cannot tell the format from the suffix {''.join(path.suffixes) or '(none)'} or the content; "
            f"expected one of {', '.join(sorted(_SUFFIX_FORMATS))} (optionally .gz) or a saved dataset folder. "
            "Pass --format to say which it is."
        )
    return fmt


def _format_from_content(path: Path, peek: int = 65_536) -> str | None:
    """The format of a file whose suffix says nothing (``SMSSpamCollection``, ``export.txt``), from its first
    bytes: Parquet's magic number, a JSON array or objects, else a text line with tabs (TSV) or commas or
    semicolons (CSV); ``None`` when none fits."""
    try:
        with open_binary(path) as fh:
            head = fh.read(peek)
    except STREAM_ERRORS:
        return None
    if head.startswith(b"PAR1"):
        return "parquet"
    if b"\x00" in head:
        return None  # binary (or UTF-16, which the readers' own check explains)
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        return "json"
    first = text.split("\n", 1)[0]
    if text.startswith("{"):
        try:
            json.loads(first)
        except ValueError:
            return "json"  # one object over several lines
        return "jsonl"
    if "\t" in first:
        return "tsv"
    return "csv" if ("," in first or ";" in first) else None


def check_encoding(encoding: str, fmt: str | None = None) -> str:
    """The codec name of ``encoding`` (``cp1252``, ``utf-8-sig``, ``latin-1``, ...); raises :class:`InputError`
    for an unknown name, or for another encoding than UTF-8 with a binary format (Parquet and saved datasets
    store text as UTF-8)."""
    try:
        name = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        common = ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16", "shift_jis", "gbk"]
        raise InputError(f"--encoding {encoding!r} is not an encoding Python knows; use e.g. "
                         f"{', '.join(common)}.{did_you_mean(str(encoding), common)}") from None
    if fmt in ("parquet", "hf") and name not in ("utf-8", "utf-8-sig"):
        raise InputError(f"--encoding {encoding} does not apply to {fmt} sources: they store text as UTF-8. "
                         "Leave --encoding out.")
    return name


def _check_utf16(path: Path) -> None:
    """Raise :class:`InputError` when ``path`` starts with a UTF-16 or UTF-32 byte order mark (read as UTF-8)."""
    try:
        with open_binary(path) as fh:
            head = fh.read(4)
    except STREAM_ERRORS:
        return  # the reader reports a damaged stream at its place
    for bom, name in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                      (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if head.startswith(bom):
            raise InputError(f"{path} starts with a {name.upper()} byte order mark: its text is {name.upper()}, "
                             f"not UTF-8. Pass --encoding {name}.")


def class_names(features: Any) -> dict[str, list[str]]:
    """The ``ClassLabel`` columns of Hugging Face ``features`` (their JSON form) and their class names.

    >>> class_names({"label": {"_type": "ClassLabel", "names": ["neg", "pos"]}, "text": {"_type": "Value"}})
    {'label': ['neg', 'pos']}
    """
    if not isinstance(features, dict):
        return {}
    return {str(k): [str(n) for n in v["names"]] for k, v in features.items()
            if isinstance(v, dict) and v.get("_type") == "ClassLabel" and isinstance(v.get("names"), list)}


def _with_class_names(data: Any, names: dict[str, list[str]]) -> Any:
    """``data`` with each class number of a ``ClassLabel`` column as its name (what annotators should see)."""
    if not names or not isinstance(data, dict):
        return data
    for column, labels in names.items():
        value = data.get(column)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(labels):
            data[column] = labels[value]
    return data


def _parquet_class_names(parquet: Any) -> dict[str, list[str]]:
    """ClassLabel names a Parquet file written by Hugging Face ``datasets`` keeps in its schema metadata."""
    meta = (parquet.schema_arrow.metadata or {}).get(b"huggingface")
    try:
        return class_names(json.loads(meta)["info"]["features"]) if meta else {}
    except (ValueError, KeyError, TypeError):
        return {}


def read_parquet(path: Path, *, batch_size: int = 4096) -> Iterator[RawRow]:
    """Rows of a Parquet file, in record batches; ``line`` is the 1-based row number. Class numbers of a
    Hugging Face ``ClassLabel`` column become their names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 0
    try:
        parquet = pq.ParquetFile(path)
        names = _parquet_class_names(parquet)
        for batch in parquet.iter_batches(batch_size=batch_size):
            try:
                rows = batch.to_pylist()
            except (pa.ArrowException, ValueError):  # e.g. damaged text that is not UTF-8: find the rows
                for i in range(batch.num_rows):
                    row += 1
                    try:
                        yield RawRow(row, _with_class_names(batch.slice(i, 1).to_pylist()[0], names))
                    except (pa.ArrowException, ValueError) as exc:
                        yield RawRow(row, error=f"row {row} of the Parquet file cannot be read ({exc})")
                continue
            for data in rows:
                row += 1
                yield RawRow(row, _with_class_names(data, names))
    except (pa.ArrowException, OSError, ValueError) as exc:
        if row == 0:
            raise UnsupportedFormatError(f"{path} cannot be read as Parquet: {exc}. Is it a Parquet file?") from exc
        yield RawRow(row + 1, error=f"the Parquet file is corrupt after row {row} ({exc}); the rest cannot be read")


#: Words that mark a saved split as held out (``test``, ``validation``, TRL's ``test_prefs``, ...).
HELD_OUT_SPLIT_WORDS = frozenset({"test", "validation", "valid", "val", "dev", "eval", "evaluation", "heldout",
                                  "holdout", "calibration"})


def _held_out(split: str) -> bool:
    return bool(set(re.split(r"[^a-z]+", split.lower())) & HELD_OUT_SPLIT_WORDS)


def read_hf_folder(path: Path, *, split: str | None = None, batch_size: int = 1024) -> Iterator[RawRow]:
    """Rows of a dataset saved with ``save_to_disk``: a ``Dataset``, the ``split`` of a ``DatasetDict``, or every split
    of a ``DatasetDict`` that has no held-out split (``test``, ``validation``, ``test_prefs``...): read together,
    those would put held-out rows where they can be selected and trained on, so that is refused."""
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
        held_out = [name for name in loaded if _held_out(name)]
        if split is None and len(loaded) > 1 and held_out:
            sizes = {name: int(part.num_rows) for name, part in loaded.items()}
            splits = ", ".join(f"{name} ({n:,} row{'s' * (n != 1)})" for name, n in sizes.items())
            first = next(name for name in loaded if name not in held_out) if len(held_out) < len(loaded) else ""
            raise UnsupportedFormatError(
                f"{path} holds the splits {splits}; read together, the held-out rows ({', '.join(held_out)}) would "
                "land where they can be selected and trained on. Read one split at a time, by its folder: e.g. "
                f"`curate ingest {path / (first or held_out[0])}`"
                + (f" and `curate ingest {path / held_out[0]} --split test` (or ingest's --hf-split NAME); a "
                   f"benchmark takes --data {path / first} --test {path / held_out[0]}." if first else "."))
        parts = [loaded[split]] if split else list(loaded.values())
    else:
        parts = [loaded]
    row = 0
    try:
        for part in parts:
            names = class_names(part.features.to_dict())
            for batch in part.with_format("arrow").iter(batch_size=batch_size):
                for data in batch.to_pylist():
                    row += 1
                    yield RawRow(row, _with_class_names(data, names))
    except Exception as exc:  # damaged Arrow data, found while reading (same variety as above)
        yield RawRow(row + 1, error=f"the saved dataset is corrupt after row {row} ({type(exc).__name__}: "
                                    f"{str(exc)[:300]}); the rest cannot be read")


def read_rows(
    path: Path, *, fmt: str | None = None, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES, split: str | None = None,
    encoding: str = UTF8, columns: Sequence[str] | None = None,
) -> Iterator[RawRow]:
    """Rows of any supported source (see :data:`FORMATS`), by ``fmt`` or by :func:`detect_format`; text files
    are read in ``encoding`` (see :func:`check_encoding`); ``columns`` names the columns of a CSV/TSV file
    without a header line."""
    fmt = fmt or detect_format(path)
    encoding = check_encoding(encoding, fmt)
    if columns is not None and fmt not in ("csv", "tsv"):
        raise InputError(f"--columns names the columns of a CSV or TSV file without a header line; {path.name} is "
                         f"read as {fmt}. Leave --columns out, or use --map to rename its fields.")
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file or folder. Check the path and try again.")
    if isinstance(max_row_bytes, bool) or not isinstance(max_row_bytes, int) or max_row_bytes < 1:
        raise InputError(f"--max-row-bytes must be a positive number of bytes; got {max_row_bytes!r:.40}.")
    if fmt != "hf" and path.is_dir():
        raise UnsupportedFormatError(f"{path} is a folder, not a {fmt} file. Give the file itself, or "
                                     "--format hf for a folder written by datasets.Dataset.save_to_disk.")
    if fmt in ("jsonl", "json", "csv", "tsv") and encoding in ("utf-8", "utf-8-sig"):
        _check_utf16(path)
    if fmt == "jsonl":
        return read_jsonl(path, max_row_bytes=max_row_bytes, encoding=encoding)
    if fmt == "json":
        return read_json(path, max_row_bytes=max_row_bytes, encoding=encoding)
    if fmt in ("csv", "tsv"):
        delimiter = "\t" if fmt == "tsv" else sniff_delimiter(path, encoding, max_row_bytes)
        return read_csv(path, delimiter=delimiter, max_row_bytes=max_row_bytes, encoding=encoding, columns=columns)
    if fmt == "parquet":
        return read_parquet(path)
    if fmt == "hf":
        return read_hf_folder(path, split=split)
    raise UnsupportedFormatError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}.")


def read_every_row(path: Path, what: str) -> list[tuple[int, object]]:
    """``(line, row)`` of every row of ``path`` (any format :func:`read_rows` reads), for a benchmark: a figure on
    part of a file would be wrong, so the first row that cannot be read is an :class:`InputError` naming its line
    (ingest quarantines it instead); ``what`` names the data in that message."""
    rows: list[tuple[int, object]] = []
    for raw in read_rows(path):
        if raw.error is not None:
            raise InputError(f"{path}, {raw.where}: {raw.error}. The {what} must be JSON lines, a JSON array, "
                             "CSV/TSV with a header line or Parquet.")
        rows.append((raw.line, raw.data))
    return rows


__all__ = ["DEFAULT_MAX_ROW_BYTES", "EXCERPT_CHARS", "FORMATS", "RawRow", "check_encoding", "detect_format",
           "read_csv", "read_every_row", "read_hf_folder", "read_json", "read_jsonl", "read_parquet", "read_rows",
           "tabular_columns"]


def tabular_columns(path: Path, columns: Sequence[str] | None, encoding: str = UTF8) -> Sequence[str] | None:
    """``columns`` (``--columns``) when ``path`` is a headerless CSV/TSV file, else None: a command reading a second
    file (a test or held-out file) names the columns of that one too when it is headerless text. A file whose first
    line is those very names (in any order and case) has a header, so it is read by it."""
    fmt = detect_format(path) if columns is not None else None
    if columns is None or fmt not in ("csv", "tsv"):
        return None
    delimiter = "\t" if fmt == "tsv" else sniff_delimiter(path, encoding)
    try:
        first = next(read_csv(path, delimiter=delimiter, encoding=encoding, columns=columns), None)
    except (InputError, OSError, UnicodeDecodeError):
        return columns  # the reader reports it
    cells = [str(v or "") for v in first.data.values()] if first is not None and isinstance(first.data, dict) else []
    if sorted(c.strip().lower() for c in cells) == sorted(c.strip().lower() for c in columns):
        return None
    return columns
