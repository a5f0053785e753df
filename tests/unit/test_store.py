from __future__ import annotations

import pytest
from sqlalchemy import text

from curate.errors import StoreError
from curate.ingest.sources import ingest
from curate.store.database import Store
from curate.store.workspace import Workspace


def test_sqlite_runs_in_wal_mode_with_foreign_keys(workspace):
    if workspace.store.dialect != "sqlite":
        pytest.skip("SQLite pragmas")
    with workspace.store.read() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_sqlite_file_connections_are_reused_across_threads(tmp_path):
    """Opening a connection (and its pragmas) cost ~0.4 ms four times per annotation; a file database keeps
    its connections, each still in WAL mode, and threads (the app's handlers) share the pool."""
    import threading

    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    with store.read() as conn:
        first = conn.connection.dbapi_connection
    seen: list[object] = []

    def read_in_thread() -> None:
        with store.read() as conn:
            seen.append(conn.connection.dbapi_connection)
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"

    worker = threading.Thread(target=read_in_thread)
    worker.start()
    worker.join()
    assert seen == [first]  # the same connection, checked out again from another thread
    with store.write() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with Store(f"sqlite:///{tmp_path / 'c.db'}").read() as conn:  # committed: another process-like store sees it
        assert conn.execute(text("SELECT x FROM t")).scalar() == 1
    store.dispose()


def test_schema_has_every_table(workspace):
    from sqlalchemy import inspect

    names = set(inspect(workspace.store.engine).get_table_names())
    assert {"records", "sources", "label_schemas", "rounds", "tasks", "annotations", "model_versions",
            "audit_events", "curate_meta"} <= names


def test_iter_records_pages_through_everything_in_id_order(workspace, tmp_path):
    (tmp_path / "t.jsonl").write_text("".join(f'{{"text": "row {i}"}}\n' for i in range(57)))
    ingest(workspace, tmp_path / "t.jsonl")
    got = list(workspace.store.iter_records(batch_size=10))
    assert len(got) == 57 and [r.id for r in got] == sorted(r.id for r in got)
    assert workspace.store.get_record(got[0].id) == got[0]
    assert workspace.store.get_record("0" * 32) is None


def test_stats_counts_by_kind_source_status_split(workspace, fixtures):
    ingest(workspace, fixtures / "sft.jsonl")
    ingest(workspace, fixtures / "texts.csv", split="test")
    figures = workspace.store.stats()
    assert figures["records"] == 7
    assert figures["by_kind"] == {"example": 3, "text": 4}
    assert figures["by_split"] == {"pool": 3, "test": 4}
    assert figures["by_status"] == {"active": 7}
    assert figures["by_source"] == {str(fixtures / "sft.jsonl"): 3, str(fixtures / "texts.csv"): 4}
    assert figures["audit_events"] == 2


def test_unusable_database_urls_raise_store_errors(tmp_path):
    with pytest.raises(StoreError, match="cannot use the database URL"):
        Store("nosuchdialect://x")
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(f"sqlite:///{tmp_path}/missing/dir/x.db")


def test_workspace_defaults_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_WORKSPACE", str(tmp_path / "envws"))
    ws = Workspace.open()
    assert ws.root == tmp_path / "envws" and ws.db_url.endswith("envws/curate.db")
    assert ws.quarantine_dir.is_dir() and ws.cache_dir.is_dir()
