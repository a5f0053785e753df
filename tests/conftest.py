"""Shared fixtures: a fresh workspace, the checked-in fixtures, and the optional ../shared data."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CURATE_ACTOR", "tester")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "data" / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # Messages are checked as text: rich breaks a token longer than the line (a deep temporary path, as pytest-xdist's
    # per-worker folders make) mid-word, which no whitespace join undoes. Every CLI run and subprocess gets a wide
    # terminal; pytest's own output keeps the width it measured (frozen first).
    writer = config.get_terminal_writer() if config.pluginmanager.has_plugin("terminalreporter") else None
    if writer is not None:
        writer.fullwidth = writer.fullwidth
    os.environ["COLUMNS"] = "1000"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


PG_URL = os.environ.get("CURATE_TEST_PG_URL")  # a server URL whose user may CREATE DATABASE; set by .ci/run


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'curate.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL variant: set CURATE_TEST_PG_URL (.ci/run starts a local server and sets it)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(PG_URL).set(drivername="postgresql+psycopg")
    name = f"curate_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def admin_execute(admin: Any, sql: str, params: dict[str, Any] | None = None, attempts: int = 10) -> None:
    """Run one administrative statement (CREATE ... TEMPLATE, DROP ... FORCE), retrying for up to ``attempts`` s.

    An autovacuum worker (a superuser's session) may hold a database for a moment; a non-superuser can neither
    end it nor copy or drop the database meanwhile, so wait and try again.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    for attempt in range(attempts):
        try:
            with admin.connect() as conn:
                conn.execute(text(sql), params or {})
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(1.0)


@pytest.fixture
def workspace(tmp_path: Path, db_url: str):
    """A new, empty workspace in a temporary folder, on SQLite and on PostgreSQL."""
    from curate.store.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws", db_url)
    yield ws
    if "store" in ws.__dict__:
        ws.store.dispose()


def drop_append_only_guards(store) -> None:
    """Remove the append-only triggers, as an attacker with direct database access would."""
    with store.write() as conn:
        for table in ("audit_events", "annotations"):
            if store.dialect == "sqlite":
                conn.exec_driver_sql(f"DROP TRIGGER {table}_no_update")
                conn.exec_driver_sql(f"DROP TRIGGER {table}_no_delete")
            else:
                conn.exec_driver_sql(f"DROP TRIGGER {table}_append_only ON {table}")


@pytest.fixture
def fixtures() -> Path:
    """The checked-in tiny files, one per source format (data/fixtures)."""
    return FIXTURES


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared benchmark data is not next to this checkout")
    return path


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The per-user model cache of this test session (``$CURATE_CACHE``, also for CLI subprocesses): the packaged
    SmolLM2 is converted at most once per session, never into the user's own cache unless it is configured."""
    configured = os.environ.get("CURATE_CACHE")
    path = Path(configured) if configured else tmp_path_factory.mktemp("model-cache")
    os.environ["CURATE_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def smollm2_cache(model_cache: Path) -> Path:
    """The model cache holding the converted SmolLM2 (converted once per session, ~25 s)."""
    return model_cache
