"""Export final annotations as the datasets TRL trains on, with provenance, a dataset card and a content hash.

Only final annotations count (:func:`curate.annotate.answers.final_annotations`: the reviewer's decision where a task
was adjudicated, else the agreed current answer). The frozen test split and the random calibration slice are
exported as their own splits from the records as given, and never appear in ``train``: training rows whose
record is an exact or MinHash near-copy of a held-out record are dropped and counted. The same workspace state
gives byte-identical files (rows sorted by record and task; no timestamps in the data), and the SHA-256 of the
data files is recorded in ``export.json``, the dataset card and the audit log. Under a workspace PII policy the
texts annotators wrote (rewrites, reviewer decisions) are checked and by default redacted in the files
(:mod:`curate.export.rewrite_pii`); the stored answers are never changed.

``OUT`` appears complete or not at all: the files are written to a temp folder ``.OUT-NAME.XXXXXXXX`` next to
it, which is renamed to ``OUT`` at the end. A temp folder left by a run that was killed is removed by the
next export to the same ``OUT`` (:func:`remove_stale_temp`).

Layout of ``OUT``::

    --to hf       dataset_dict.json, train/, test/, calibration/   (datasets.load_from_disk(OUT))
    --to jsonl    train.jsonl, test.jsonl, calibration.jsonl
    --to parquet  train.parquet, ...
    always        provenance.jsonl (one line per train row), export.json (manifest), README.md (dataset card)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import func, select

from curate.annotate.answers import final_annotations
from curate.errors import InputError, check_choice
from curate.export.card import dataset_card, pseudonym
from curate.export.rewrite_pii import MODES, screen_answers
from curate.export.rows import COLUMNS, FORMATS, RowOptions, heldout_rows, training_rows
from curate.ingest.records import Record, as_text, is_conversational
from curate.runtime.faults import maybe_crash
from curate.store import audit
from curate.store.schema import LabelSchema, Round, Task
from curate.store.workspace import Workspace

TARGETS = ("hf", "jsonl", "parquet")
HELDOUT_SPLITS = ("test", "calibration")


@dataclass
class ExportReport:
    """What an export wrote: counts per split, what was dropped and why, the content hash and the files."""

    format: str
    to: str
    out: str
    counts: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    label_schema: str | None = None
    content_hash: str = ""
    files: list[str] = field(default_factory=list)
    made_conversational: int = 0  # plain-text rows written as chats, because other rows (any split) are chats
    rewrite_pii: dict[str, Any] = field(default_factory=dict)  # PII in annotator texts (rewrite_pii.Screened.report)


def _pool_records(ws: Workspace, ids: set[str]) -> dict[str, Record]:
    """The pool records among ``ids`` (any status): a held-out record is never a training source."""
    out: dict[str, Record] = {}
    for rec in ws.store.iter_records(split="pool", status=None):
        if rec.id in ids:
            out[rec.id] = rec
    return out


def _schema_of(conn: Any, schema_ids: set[int]) -> dict[int, tuple[str, int, list[str]]]:
    rows = conn.execute(select(LabelSchema).where(LabelSchema.id.in_(schema_ids))).all() if schema_ids else []
    return {int(r.id): (r.name, int(r.version), list(orjson.loads(r.classes))) for r in rows}


def collect(ws: Workspace, fmt: str, options: RowOptions = RowOptions(), schema: str | None = None, *,
            rewrite_pii: str = "redact",
            pii_allow: tuple[str, ...] = ()) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """``(train rows, provenance rows, facts)`` for format ``fmt``; facts hold the schema, rounds and counts, and
    the PII check of annotator texts (``rewrite_pii``: a :class:`curate.export.rewrite_pii.Screened`).

    Raises:
        InputError: the final annotations of a label export span several label-schema versions (migrate them
            with ``curate schema migrate`` or pick one with ``--schema NAME@VERSION``).
    """
    with ws.store.read() as conn:
        finals = final_annotations(conn)
        tasks = {int(t.id): t for t in conn.execute(select(Task).where(Task.id.in_(list(finals))))} if finals else {}
        disputed = int(conn.scalar(select(func.count()).select_from(Task).where(Task.status == "disputed")) or 0)
        schemas = _schema_of(conn, {int(t.label_schema_id) for t in tasks.values() if t.label_schema_id})
        rounds = {int(r.id): (int(r.number), r.strategy_key) for r in conn.execute(select(Round))}
    records = _pool_records(ws, {t.record_id for t in tasks.values()})
    values = {task_id: orjson.loads(ann.value) for task_id, ann in finals.items()}
    screened = screen_answers(ws, fmt, options, {t: (tasks[t].type, v, records[tasks[t].record_id].fields)
                                                 for t, v in values.items() if tasks[t].record_id in records},
                              mode=rewrite_pii, allow_list=pii_allow)
    wanted = _parse_schema(schema)
    rows: list[tuple[tuple[str, int, int], dict[str, Any], dict[str, Any]]] = []
    versions: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    if disputed:  # answered, but the answers disagree: no final answer until a reviewer decides (curate app)
        dropped["disputed_awaiting_review"] = disputed
    for task_id, ann in sorted(finals.items()):
        task = tasks[task_id]
        rec = records.get(task.record_id)
        if rec is None:
            dropped["not_in_pool"] += 1
            continue
        sid = int(task.label_schema_id) if task.label_schema_id else None
        sname = f"{schemas[sid][0]}@{schemas[sid][1]}" if sid in schemas else None
        if task.type == "label" and wanted and sname != wanted and (sname or "").split("@")[0] != wanted:
            dropped["other_schema"] += 1
            continue
        new = training_rows(fmt, task.type, rec.fields, screened.values.get(task_id, values[task_id]), options)
        if not new:
            dropped[f"no_{fmt}_row_from_{task.type}"] += 1
            continue
        if task.type == "label" and sname:
            versions[sname] += len(new)
        number, strategy = rounds.get(int(task.round_id), (0, ""))
        prov = {"task_id": task_id, "record_id": rec.id, "annotation_id": int(ann.id), "kind": ann.kind,
                "annotator": pseudonym(ws, ann.annotator), "round": number, "strategy": strategy,
                "random_mix": bool(task.random_mix), "label_schema": sname}
        rows.extend(((rec.id, task_id, i), row, prov) for i, row in enumerate(new))
    classes_of = {f"{n}@{v}": classes for n, v, classes in schemas.values()}
    same_classes = len({tuple(classes_of.get(v, ())) for v in versions}) == 1
    if fmt == "classification" and len(versions) > 1 and not same_classes:
        names = {v.split("@")[0] for v in versions}
        fix = ("Migrate the old ones with: curate schema migrate NAME --map OLD=NEW, or export one version with "
               "--schema NAME@VERSION" if len(names) == 1 else
               "Export one with --schema NAME (or NAME@VERSION); loops that label the same classes can share one "
               "schema with --schema NAME")
        raise InputError(f"the label annotations span several label-schema versions with different classes "
                         f"({', '.join(sorted(versions))}); an export holds one. {fix}")
    rows.sort(key=lambda r: r[0])
    facts = {"label_schema": "+".join(sorted(versions)) if len(versions) > 1 else
             next(iter(versions)) if versions else wanted,
             "rounds": sorted({p["round"] for _, _, p in rows}),
             "strategies": dict(Counter(p["strategy"] for _, _, p in rows)), "dropped": dict(dropped),
             "label_names": _label_names(schemas, next(iter(versions), None)) if fmt == "classification" else None,
             "rewrite_pii": screened}
    return [r for _, r, _ in rows], [p for _, _, p in rows], facts


def _label_names(schemas: dict[int, tuple[str, int, list[str]]], version: str | None) -> list[str] | None:
    """The classes of the exported label schema version ``NAME@VERSION`` (else of the first schema with classes:
    a round that mixes types also carries schemas without classes, for its rank and rewrite tasks)."""
    found = [classes for name, number, classes in schemas.values() if f"{name}@{number}" == version]
    found = found or [classes for _, _, classes in schemas.values() if classes]
    return found[0] if found else None


def _parse_schema(schema: str | None) -> str | None:
    if not schema:
        return None
    name, _, version = schema.partition("@")
    if version and not version.isdigit():
        raise InputError(f"--schema {schema!r}: expected NAME or NAME@VERSION (a number)")
    return schema


def heldout(ws: Workspace, fmt: str) -> dict[str, tuple[list[dict[str, Any]], list[Record]]]:
    """``{split: (rows, records)}`` for the test split and the calibration slice, from the records as given."""
    out: dict[str, tuple[list[dict[str, Any]], list[Record]]] = {}
    for split in HELDOUT_SPLITS:
        records = sorted(ws.store.iter_records(split=split, status=None), key=lambda r: r.id)
        rows = [row for rec in records for row in heldout_rows(fmt, rec.kind, rec.fields, rec.label)]
        out[split] = (rows, records)
    return out


def _row_text(row: dict[str, Any]) -> str:
    return "\n".join(as_text(v) for k, v in row.items() if k != "label")


def drop_leaks(rows: list[dict[str, Any]], prov: list[dict[str, Any]],
               reference: list[Record]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Rows (and provenance) minus those that copy a held-out record.

    A preference row (``chosen``/``rejected``) leaks when it makes the same comparison as a held-out preference or
    candidates record (prompt and responses as a set, exact or MinHash near-copies field by field; see
    :func:`curate.filters.dedup_comparisons.comparison_cross`): sharing a prompt or one response with a test pair is a
    different comparison and stays in train. Any other row, and a pair row against other held-out kinds, leaks when its
    text is an exact or MinHash near-copy of the held-out record's text.
    """
    if not rows or not reference:
        return rows, prov, 0
    from curate.filters.dedup import cross_set_flags
    from curate.filters.dedup_comparisons import comparison_cross, is_pair_kind
    from curate.runtime.embeddings import record_text

    flags = np.zeros(len(rows), dtype=bool)
    pairs = [i for i, r in enumerate(rows) if "chosen" in r and "rejected" in r]
    pair_refs = [r for r in reference if is_pair_kind(r.kind)]
    other_refs = [r for r in reference if not is_pair_kind(r.kind)]
    if pairs and pair_refs:
        columns = ("prompt", "chosen", "rejected")
        as_records = [Record(f"row-{i}", "preference", {k: rows[i].get(k, "") for k in columns}) for i in pairs]
        flags[pairs] = comparison_cross(as_records, pair_refs, method=("exact", "minhash")) >= 0
    in_pairs = set(pairs)
    for indices, refs in (([i for i in range(len(rows)) if i not in in_pairs], reference), (pairs, other_refs)):
        if indices and refs:
            hits = cross_set_flags([_row_text(rows[i]) for i in indices], [record_text(r) for r in refs]).flagged
            flags[np.asarray(indices)[np.asarray(hits, dtype=bool)]] = True
    keep = [i for i in range(len(rows)) if not flags[i]]
    return [rows[i] for i in keep], [prov[i] for i in keep], int(flags.sum())


#: The role a plain-text value takes when its column is made conversational.
_ROLE_OF = {"prompt": "user", "completion": "assistant", "chosen": "assistant", "rejected": "assistant"}


def uniform_splits(splits: dict[str, list[dict[str, Any]]]) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """One format for every split of an export (Arrow and TRL need one type per column): when some rows are chats
    (TRL's conversational format) and others plain text, the plain rows become one-message chats (``prompt`` a user
    turn, responses assistant turns), keeping the chats' roles and system prompts. Returns the splits and how many
    rows were converted."""
    rows = [r for rs in splits.values() for r in rs]
    columns = [k for k in _ROLE_OF if rows and k in rows[0]]
    if not any(len({is_conversational(r[k]) for r in rows}) > 1 for k in columns):
        return splits, 0
    converted = 0

    def chat(row: dict[str, Any]) -> dict[str, Any]:
        nonlocal converted
        plain = [k for k in columns if not is_conversational(row[k])]
        converted += bool(plain)
        return {**row, **{k: [{"role": _ROLE_OF[k], "content": as_text(row[k])}] for k in plain}}

    return {s: [chat(r) for r in rs] for s, rs in splits.items()}, converted


def _write_split(folder: Path, split: str, rows: list[dict[str, Any]], fmt: str, to: str) -> list[Path]:
    columns = COLUMNS[fmt]
    ordered = [{c: r[c] for c in columns} for r in rows]
    if to == "jsonl":
        path = folder / f"{split}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in ordered))
        return [path]
    import pyarrow as pa

    table = pa.Table.from_pylist(ordered) if ordered else pa.table({c: pa.array([], pa.string()) for c in columns})
    if to == "parquet":
        import pyarrow.parquet as pq

        path = folder / f"{split}.parquet"
        pq.write_table(table, path)
        return [path]
    return []


def _content_hash(folder: Path, skip: set[str]) -> tuple[str, list[str]]:
    digest = hashlib.sha256()
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    files = [f for f in files if f not in skip]
    for name in files:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest(), files


def _temp_name(out: Path) -> re.Pattern[str]:
    """The names :func:`tempfile.mkdtemp` gives the temp folders of ``out`` (prefix ``.NAME.``, 8 random characters)."""
    return re.compile(re.escape(f".{out.name}.") + r"[a-z0-9_]{8}")


def remove_stale_temp(out: Path, *, before: float) -> list[Path]:
    """Remove the temp folders an interrupted export to ``out`` left next to it; returns the ones removed.

    Only folders (not symlinks) in ``out.parent`` whose whole name matches ``.NAME.XXXXXXXX`` (``mkdtemp``'s
    pattern, so ``.NAME.b.XXXXXXXX`` of another export called ``NAME.b`` never matches) and that were last
    modified before ``before`` (a ``time.time()``; an export running now has a newer folder) are removed.
    """
    pattern = _temp_name(out)
    removed: list[Path] = []
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return removed
    for path in entries:
        try:
            if (pattern.fullmatch(path.name) and path.is_dir() and not path.is_symlink()
                    and path.stat().st_mtime < before):
                shutil.rmtree(path)
                removed.append(path)
        except OSError:
            continue  # vanished meanwhile, or not ours to remove: leave it
    return removed


def export(ws: Workspace, fmt: str, out: Path, *, to: str = "hf", options: RowOptions = RowOptions(),
           schema: str | None = None, license: str = "unknown", actor: str | None = None,
           overwrite: bool = False, rewrite_pii: str = "redact", pii_allow: tuple[str, ...] = ()) -> ExportReport:
    """Write the training split of ``fmt`` plus the held-out splits to ``out`` atomically (see the module doc).

    ``rewrite_pii``: ``redact`` or ``keep`` the PII found in annotator texts when a PII policy is in force (counted
    either way in ``report.rewrite_pii``); ``pii_allow``: strings never treated as PII there.

    Raises:
        InputError: unknown format/target/``rewrite_pii``, ``out`` exists (without ``overwrite``), a schema mix, or
            no rows.
    """
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if to not in TARGETS:
        raise InputError(f"--to must be one of {', '.join(TARGETS)}; got {to!r}")
    if options.ties not in ("drop", "keep") or options.pairs not in ("all", "best-worst"):
        raise InputError("--ties must be drop or keep; --pairs all or best-worst")
    check_choice(rewrite_pii, MODES, "--pii-rewrites")
    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists; choose another --out or pass --overwrite")
    started = time.time()
    rows, prov, facts = collect(ws, fmt, options, schema, rewrite_pii=rewrite_pii, pii_allow=pii_allow)
    held = heldout(ws, fmt)
    rows, prov, leaks = drop_leaks(rows, prov, [r for split in HELDOUT_SPLITS for r in held[split][1]])
    if not rows:
        raise InputError(f"no final annotations give {fmt} rows (dropped: {facts['dropped'] or 'none'}); "
                         "annotate first, or pick the format that matches the task type")
    report = ExportReport(fmt, to, str(out), label_schema=facts["label_schema"],
                          dropped={**facts["dropped"], "near_copies_of_heldout": leaks},
                          rewrite_pii=facts["rewrite_pii"].report(p["task_id"] for p in prov))
    splits = {"train": rows, **{s: held[s][0] for s in HELDOUT_SPLITS if held[s][0]}}
    splits, report.made_conversational = uniform_splits(splits)
    report.counts = {s: len(r) for s, r in splits.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp(out, before=started)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if to == "hf":
            import datasets

            datasets.DatasetDict({s: datasets.Dataset.from_list(
                [{c: r[c] for c in COLUMNS[fmt]} for r in rs]) for s, rs in splits.items()}
            ).save_to_disk(str(tmp))
        else:
            for split, split_rows in splits.items():
                _write_split(tmp, split, split_rows, fmt, to)
        maybe_crash("export.write")  # tests only: SIGKILL with the temp folder half written (curate.runtime.faults)
        (tmp / "provenance.jsonl").write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in prov))
        report.content_hash, report.files = _content_hash(tmp, {"export.json", "README.md"})
        manifest = {**vars(report), "out": None, "columns": list(COLUMNS[fmt]), "rounds": facts["rounds"],
                    "strategies": facts["strategies"], "label_names": facts["label_names"], "license": license,
                    "ties": options.ties, "pairs": options.pairs}
        (tmp / "export.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        (tmp / "README.md").write_text(dataset_card(ws, manifest, prov), encoding="utf-8")
        previous = None
        if out.exists():  # --overwrite: set the old export aside first, so a crash never loses both
            previous = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
            os.replace(out, previous / "old")
        maybe_crash("export.replace")  # tests only: SIGKILL just before the rename (curate.runtime.faults)
        os.replace(tmp, out)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    with ws.store.write() as conn:
        audit.append(conn, "export", {"format": fmt, "to": to, "counts": report.counts, "dropped": report.dropped,
                                      "content_hash": report.content_hash, "label_schema": report.label_schema,
                                      "rewrite_pii": {k: v for k, v in report.rewrite_pii.items()
                                                      if k not in ("summary", "policy")}},
                     actor=actor)
    return report
