"""Reading what ``curate export`` wrote, for training: splits, manifest, data hash, the columns each method needs.

* **Exports** (:func:`load_export`): a ``datasets.DatasetDict`` folder (``save_to_disk``), a single saved
  ``Dataset`` folder, or a folder (or file) of ``train.jsonl`` / ``train.parquet`` (+ ``test``, ``calibration``).
  Columns are TRL's and are passed to TRL as they are: sft ``prompt``, ``completion``; dpo and reward
  ``prompt``, ``chosen``, ``rejected`` (strings, or conversational lists of ``{role, content}``).
* **Data hash** (:func:`export_hash`): the ``content_hash`` of ``export.json`` when present, else SHA-256 of the
  data files; 64 hex characters either way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from curate.errors import InputError

#: Export formats (``export.json`` ``format``) each method accepts, and the columns it needs.
ACCEPTED_FORMATS: dict[str, tuple[str, ...]] = {"sft": ("sft",), "dpo": ("dpo", "reward"), "reward": ("reward", "dpo")}
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {"sft": ("prompt", "completion"), "dpo": ("chosen", "rejected"),
                                                "reward": ("chosen", "rejected")}
_DATA_SUFFIXES = (".jsonl", ".parquet", ".json")
_NOT_DATA = frozenset({"export.json", "state.json", "dataset_info.json", "dataset_dict.json", "provenance.jsonl"})


def _locate(path: Path) -> tuple[str, dict[str, Path]]:
    """The layout of an export (``file``, ``dict``, ``dataset`` or ``files``) and where each split lives."""
    if not path.exists():
        raise InputError(f"the export {path} does not exist. Write one with `curate export --format sft|dpo|reward "
                         "--to hf --out DIR`, then pass that folder as --data.")
    if path.is_file():
        if path.suffix not in _DATA_SUFFIXES:
            raise InputError(f"{path} is not an export: expected a folder, or a .jsonl, .json or .parquet file.")
        return "file", {"train": path}
    if (path / "dataset_dict.json").exists():
        try:
            splits = orjson.loads((path / "dataset_dict.json").read_bytes())["splits"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path / 'dataset_dict.json'} is not a DatasetDict index ({exc}); re-export.") from exc
        return "dict", {str(s): path / str(s) for s in splits}
    if (path / "state.json").exists() and (path / "dataset_info.json").exists():
        return "dataset", {"train": path}
    found: dict[str, Path] = {}
    for file in sorted(path.iterdir()):
        if file.is_file() and file.suffix in _DATA_SUFFIXES and file.name not in _NOT_DATA:
            found.setdefault(file.stem, file)
    if not found:
        names = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
        raise InputError(f"{path} holds no export: expected a saved DatasetDict (dataset_dict.json), a saved Dataset "
                         f"(state.json), or train.jsonl / train.parquet; found {names}. Pass the folder that "
                         "`curate export --out` wrote.")
    return "files", found


def export_splits(path: Path) -> list[str]:
    """Names of the splits an export holds (``train`` first when present)."""
    splits = list(_locate(Path(path).expanduser())[1])
    return sorted(splits, key=lambda s: (s != "train", s))


def read_manifest(path: Path) -> dict[str, Any] | None:
    """``export.json`` of an export folder (format, label_schema, counts, content_hash), or ``None``."""
    manifest = Path(path).expanduser() / "export.json"
    if not manifest.is_file():
        return None
    try:
        data = orjson.loads(manifest.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{manifest} is not valid JSON ({exc}); re-export, or delete it to hash the data.") from exc
    return data if isinstance(data, dict) else None


def _read_rows(file: Path) -> list[dict[str, Any]]:
    text = file.read_bytes()
    if file.suffix == ".json" and text.lstrip()[:1] == b"[":
        rows = orjson.loads(text)
        if not isinstance(rows, list):
            raise InputError(f"{file} must hold a JSON array of objects.")
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{file}, line {number}: not valid JSON ({exc}). Re-export the data.") from exc
    return rows


def _load_file(file: Path) -> Any:
    from datasets import Dataset

    try:
        if file.suffix == ".parquet":
            import pyarrow.parquet as pq

            return Dataset.from_dict(pq.read_table(file).to_pydict())
        return Dataset.from_list(_read_rows(file))
    except InputError:
        raise
    except Exception as exc:  # pyarrow type clashes, unreadable files
        raise InputError(f"cannot read {file} as a dataset: {exc}. Each column must hold one type in every row "
                         "(all strings, or all message lists).") from exc


def load_export(path: Path | str, split: str = "train") -> Any:
    """One split of an export as a ``datasets.Dataset`` with the export's columns (no conversion).

    Raises :class:`InputError` when the path is missing, holds no export, lacks ``split``, or the train split is
    empty.
    """
    path = Path(path).expanduser()
    layout, splits = _locate(path)
    if split not in splits:
        raise InputError(f"the export {path} has no {split!r} split; it has {', '.join(sorted(splits))}.")
    if layout in ("dict", "dataset"):
        from datasets import load_from_disk

        try:
            loaded = load_from_disk(str(path), keep_in_memory=True)  # TRL's map() then writes no cache files here
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load the saved dataset {path}: {exc}. Re-export it.") from exc
        ds = loaded[split] if layout == "dict" else loaded
    else:
        ds = _load_file(splits[split])
    if split == "train" and len(ds) == 0:
        raise InputError(f"the train split of {path} has no rows: there is nothing to train on. Label or ingest "
                         "records, export again, and check the export's counts.")
    return ds


def export_hash(path: Path | str) -> str:
    """SHA-256 (64 hex) of an export: ``export.json``'s ``content_hash``, else of its data files' names and bytes.

    ``datasets`` cache files (``cache-*.arrow``) are not data and are left out."""
    path = Path(path).expanduser()
    manifest = read_manifest(path) if path.is_dir() else None
    if manifest and isinstance(manifest.get("content_hash"), str):
        return str(manifest["content_hash"]).removeprefix("sha256:")[:64]
    _locate(path)
    if path.is_file():
        files, root = [path], path.parent
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (*_DATA_SUFFIXES, ".arrow")
                       and p.name not in _NOT_DATA and not p.name.startswith("cache-"))
        root = path
    h = hashlib.sha256()
    for file in files:
        h.update(f"{file.relative_to(root).as_posix()}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def _guess_format(columns: list[str]) -> str | None:
    cols = set(columns)
    if {"chosen", "rejected"} <= cols:
        return "dpo or reward"
    if {"prompt", "completion", "label"} <= cols:
        return "kto"
    if {"prompt", "completion"} <= cols or "messages" in cols:
        return "sft"
    if {"text", "label"} <= cols:
        return "classification"
    return None


def check_export(ds: Any, method: str, path: Path, manifest: dict[str, Any] | None) -> None:
    """Raise :class:`InputError` unless ``ds`` (an export split) has the columns ``method`` trains on."""
    accepted = ACCEPTED_FORMATS[method]
    fmt = (manifest or {}).get("format")
    columns = list(ds.column_names)
    needed = REQUIRED_COLUMNS[method]
    missing = [c for c in needed if c not in columns]
    if method == "sft" and "messages" in columns:
        missing = []
    guess = fmt or _guess_format(columns)
    if (fmt and fmt not in accepted) or missing or guess in ("kto", "classification"):
        found = f"a {fmt!r} export" if fmt else f"the columns {', '.join(columns)}"
        hint = f" It fits `curate train {guess.split()[0]}`." if guess in ("sft", "dpo or reward", "dpo", "reward") \
            else ""
        article = "an" if method == "sft" else "a"
        raise InputError(f"`curate train {method}` needs {article} {' or '.join(accepted)} export (columns "
                         f"{', '.join(needed)}); {path} is {found}.{hint} Export with `curate export --format "
                         f"{accepted[0]} --out DIR`.")
