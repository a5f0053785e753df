"""The workspace database: engine set-up, transactions, and the queries other modules share.

SQLite (the embedded default) runs in WAL mode so readers never wait for a writer, and write transactions
start with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing half-way. A ``postgresql://`` URL
(driver: psycopg) selects PostgreSQL for a team.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, func, insert, select
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from curate.errors import StoreError
from curate.ingest.records import Record
from curate.store.schema import SCHEMA_VERSION, Base, Meta, RecordRow, Source

_ID_QUERY_CHUNK = 5000
_RECORD_COLUMNS = ("id", "kind", "data", "label", "meta", "source_id", "source_line", "source_row", "split", "status")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # transactions are begun explicitly in _sqlite_on_begin
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("curate_write") else "BEGIN")


def _normalise_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Store:
    """Access to one workspace database.

    Args:
        url: a SQLAlchemy URL: ``sqlite:///path/curate.db`` or ``postgresql://user@host/db``.
    """

    def __init__(self, url: str) -> None:
        self.url = _normalise_url(url)
        try:
            if self.url.startswith("sqlite"):
                # A file database keeps a few connections open (opening one costs ~0.4 ms and the pragmas, four
                # times per annotation); ":memory:" keeps none, as each connection would be another database.
                memory = self.url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in self.url
                self.engine: Engine = (create_engine(self.url, poolclass=NullPool) if memory else
                                       create_engine(self.url, pool_size=5, max_overflow=20, pool_timeout=60))
                event.listen(self.engine, "connect", _sqlite_on_connect)
                event.listen(self.engine, "begin", _sqlite_on_begin)
            else:
                self.engine = create_engine(self.url, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise StoreError(
                f"cannot use the database URL {self.safe_url!r}: {exc}. Expected sqlite:///PATH or "
                "postgresql://USER@HOST/DB (PostgreSQL needs the psycopg package)."
            ) from exc
        self._create()

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for messages."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except ArgumentError:
            return self.url

    def _create(self) -> None:
        try:
            Base.metadata.create_all(self.engine)
            with self.write() as conn:
                found = conn.scalar(select(Meta.value).where(Meta.key == "schema_version"))
                if found is None:
                    conn.execute(insert(Meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
                elif int(found) == 1 and SCHEMA_VERSION == 2:
                    self._migrate_1_to_2(conn)
                elif int(found) != SCHEMA_VERSION:
                    raise StoreError(
                        f"the database {self.safe_url} has schema version {found}, this curate expects "
                        f"{SCHEMA_VERSION}. Use the curate version that created it, or a new workspace."
                    )
        except OperationalError as exc:
            raise StoreError(
                f"cannot open the database {self.safe_url}: {exc.orig}. Check that the path is writable "
                "(or the server is running and the URL is right)."
            ) from exc

    def _migrate_1_to_2(self, conn: Connection) -> None:
        """Version 2 adds provenance and kind columns to ``annotations`` (new tables come from create_all)."""
        from sqlalchemy import inspect, update

        from curate.store.schema import ANNOTATION_V2_COLUMNS

        have = {c["name"] for c in inspect(conn).get_columns("annotations")}
        for name, ddl in ANNOTATION_V2_COLUMNS.items():
            if name not in have:
                conn.exec_driver_sql(f"ALTER TABLE annotations ADD COLUMN {name} {ddl}")
        conn.execute(update(Meta).where(Meta.key == "schema_version").values(value="2"))

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        try:
            with self.engine.connect().execution_options(curate_write=True) as conn, conn.begin():
                if self.dialect == "postgresql":
                    conn.exec_driver_sql("SET LOCAL lock_timeout = '60s'")
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database error on {self.safe_url}: {exc.orig}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # --- records -------------------------------------------------------------------------------------------

    def _marker(self, conn: Connection) -> str:
        return "?" if conn.dialect.paramstyle == "qmark" else "%s"

    def existing_ids(self, conn: Connection, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are already stored (one indexed query per chunk of ids)."""
        found: set[str] = set()
        mark = self._marker(conn)
        for start in range(0, len(ids), _ID_QUERY_CHUNK):
            chunk = tuple(ids[start : start + _ID_QUERY_CHUNK])
            sql = f"SELECT id FROM records WHERE id IN ({', '.join([mark] * len(chunk))})"
            found.update(row[0] for row in conn.exec_driver_sql(sql, chunk))
        return found

    def insert_records(self, conn: Connection, records: Sequence[Record], source_id: int, *,
                       split: str = "pool") -> list[Record]:
        """Insert the records not stored yet (first occurrence wins); returns the ones inserted."""
        unique: dict[str, Record] = {}
        for rec in records:
            unique.setdefault(rec.id, rec)
        known = self.existing_ids(conn, list(unique))
        new = [rec for rid, rec in unique.items() if rid not in known]
        if new:
            # Plain DBAPI executemany: SQLAlchemy's per-row parameter processing would double the cost of a
            # million-row ingest. ON CONFLICT guards against a concurrent ingest of the same records.
            mark = self._marker(conn)
            columns, marks = ", ".join(_RECORD_COLUMNS), ", ".join([mark] * len(_RECORD_COLUMNS))
            sql = f"INSERT INTO records ({columns}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"
            conn.exec_driver_sql(sql, [
                (rec.id, rec.kind, _dumps(rec.fields), None if rec.label is None else _dumps(rec.label),
                 _dumps(rec.meta) if rec.meta else None, source_id, rec.line, rec.row, split, "active")
                for rec in new
            ])
        return new

    def count_records(self) -> int:
        """Number of stored records."""
        with self.read() as conn:
            return int(conn.scalar(select(func.count()).select_from(RecordRow)) or 0)

    def get_record(self, record_id: str) -> Record | None:
        """One record by id, or ``None``."""
        with self.read() as conn:
            row = conn.execute(_RECORD_SELECT.where(RecordRow.id == record_id)).mappings().first()
        return None if row is None else row_to_record(row)

    def iter_records(self, *, kind: str | None = None, split: str | None = "pool", status: str | None = "active",
                     batch_size: int = 2000) -> Iterator[Record]:
        """Stored records in id order, streamed in batches (keyset pagination, constant memory).

        By default only active records of the pool split; ``split=None`` / ``status=None`` lift the filters.
        """
        last = ""
        while True:
            stmt = _RECORD_SELECT.where(RecordRow.id > last)
            if kind:
                stmt = stmt.where(RecordRow.kind == kind)
            if split:
                stmt = stmt.where(RecordRow.split == split)
            if status:
                stmt = stmt.where(RecordRow.status == status)
            with self.read() as conn:
                rows = conn.execute(stmt.order_by(RecordRow.id).limit(batch_size)).mappings().all()
            if not rows:
                return
            for row in rows:
                yield row_to_record(row)
            last = rows[-1]["id"]

    def stats(self) -> dict[str, Any]:
        """Counts of records by kind, source, status, split and label (most frequent first; records with a
        label in their source, e.g. a class), and of sources and audit events."""
        from curate.store.schema import AuditEvent

        with self.read() as conn:
            def grouped(column: Any) -> dict[str, int]:
                rows = conn.execute(select(column, func.count()).group_by(column).order_by(column)).all()
                return {str(key): int(n) for key, n in rows}

            by_source = conn.execute(
                select(Source.path, func.count(RecordRow.id))
                .join(RecordRow, RecordRow.source_id == Source.id, isouter=True)
                .group_by(Source.path)
                .order_by(Source.path)
            ).all()
            labels = conn.execute(select(RecordRow.label, func.count()).where(RecordRow.label.is_not(None))
                                  .group_by(RecordRow.label).order_by(func.count().desc(), RecordRow.label)).all()
            quarantined = int(conn.scalar(select(func.coalesce(func.sum(Source.n_quarantined), 0))) or 0)
            duplicates = int(conn.scalar(select(func.coalesce(func.sum(Source.n_duplicates), 0))) or 0)
            return {
                "records": int(conn.scalar(select(func.count()).select_from(RecordRow)) or 0),
                "by_kind": grouped(RecordRow.kind),
                "by_status": grouped(RecordRow.status),
                "by_split": grouped(RecordRow.split),
                "by_source": {path: int(n) for path, n in by_source},
                "by_label": _label_counts(labels),
                "sources": int(conn.scalar(select(func.count()).select_from(Source)) or 0),
                "duplicates_collapsed": duplicates,
                "quarantined": quarantined,
                "audit_events": int(conn.scalar(select(func.count()).select_from(AuditEvent)) or 0),
            }

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


_RECORD_SELECT = select(*RecordRow.__table__.columns, Source.path.label("source_path")).join(
    Source, RecordRow.source_id == Source.id
)


def row_to_record(row: Any) -> Record:
    """A :class:`Record` from a stored row (a mapping of ``records`` columns plus ``source_path``)."""
    return Record(
        id=row["id"],
        kind=row["kind"],
        fields=orjson.loads(row["data"]),
        label=None if row["label"] is None else orjson.loads(row["label"]),
        meta=orjson.loads(row["meta"]) if row["meta"] else {},
        source=row["source_path"],
        line=row["source_line"],
        row=row["source_row"],
    )


__all__ = ["Store", "StoreError", "SQLAlchemyError", "row_to_record"]


def _label_counts(rows: Any) -> dict[str, int]:
    """Records per label as text: a label stored as ``0`` (JSON) and as ``"0"`` (CSV) count together."""
    out: dict[str, int] = {}
    for label, n in rows:
        name = str(orjson.loads(label or "null"))
        out[name] = out.get(name, 0) + int(n)
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
