"""Helpers of the kill -9 tests: run curate in a subprocess (optionally armed with ``CURATE_FAULT``), kill it
when the database shows a given state, and check the workspace afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from curate.runtime.faults import ENV as FAULT_ENV
from curate.store.audit import verify
from curate.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180  # seconds a child may take before the test gives up on it (the machine may be busy)

# A child that submits one answer and prints "ack <annotation id>" once submit() returned (what the app shows).
SUBMIT_CHILD = """
import json, sys
from curate.annotate.answers import submit
from curate.store.workspace import Workspace
ws = Workspace.open(sys.argv[1], sys.argv[2])
done = submit(ws.store, sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5]))
print("ack", done.annotation_id, flush=True)
"""


def child_env(fault: str | None = None, **extra: str) -> dict[str, str]:
    """The test's environment for a child: ``CURATE_FAULT`` set to ``fault`` (or removed), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    env.setdefault("CURATE_ACTOR", "tester")
    env.setdefault("OMP_NUM_THREADS", "1")
    if fault:
        env[FAULT_ENV] = fault
    env.update(extra)
    return env


def cli_argv(ws: Workspace, *args: str) -> list[str]:
    """``python -m curate ARGS -w WS --db URL``."""
    return [sys.executable, "-m", "curate", *args, "-w", str(ws.root), "--db", ws.db_url]


def run_cli(ws: Workspace, *args: str, fault: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m curate ARGS`` on ``ws`` in the repository root (so ``tests.*`` scorers import)."""
    return subprocess.run(cli_argv(ws, *args), cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
                          env=child_env(fault, **env))


def run_python(code: str, *args: str, fault: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -c CODE ARGS`` in the repository root."""
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT, env=child_env(fault, **env))


def assert_killed(proc: subprocess.CompletedProcess[str] | subprocess.Popen[str]) -> None:
    """The child died of SIGKILL (the fault fired), not of an error or a normal exit."""
    assert proc.returncode == -signal.SIGKILL, (
        f"expected the child to die of SIGKILL, got exit code {proc.returncode}; stderr:\n"
        f"{proc.stderr if isinstance(proc, subprocess.CompletedProcess) else ''}")


def kill_when(argv: Sequence[str], ready: Callable[[], bool], *, env: dict[str, str],
              poll: float = 0.02) -> tuple[subprocess.Popen[str], float]:
    """Start ``argv``, poll ``ready()`` from outside and SIGKILL the child the moment it holds.

    Returns the killed child and the seconds until the kill. Fails if the child ends by itself first.
    """
    started = time.perf_counter()
    child = subprocess.Popen(list(argv), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        while not ready():
            if child.poll() is not None:
                _, err = child.communicate()
                raise AssertionError(f"the child ended (exit {child.returncode}) before it could be killed:\n{err}")
            if time.perf_counter() - started > TIMEOUT:
                raise AssertionError("the child never reached the state to kill it in")
            time.sleep(poll)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child, time.perf_counter() - started


def count(ws: Workspace, column: Any, *where: Any) -> int:
    """``SELECT count(column) ... WHERE ...`` in a fresh read transaction."""
    with ws.store.read() as conn:
        return int(conn.scalar(select(func.count(column)).where(*where)) or 0)


def json_file(path: Path) -> dict[str, Any]:
    """A ``--json`` report a child wrote."""
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def assert_consistent(ws: Workspace) -> None:
    """After a crash and restart: the audit chain verifies and, on SQLite, the file passes the integrity and
    foreign-key checks."""
    report = verify(ws.store)
    assert report.ok, report.finding
    if ws.store.dialect == "sqlite":
        with ws.store.read() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []


def assert_cli_verify(ws: Workspace) -> None:
    """``curate audit verify`` (a new process) says the chain is intact."""
    done = run_cli(ws, "audit", "verify")
    assert done.returncode == 0 and "intact" in done.stdout, done.stdout + done.stderr
