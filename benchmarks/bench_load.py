"""Load benchmark: simulated annotators submit at once against one running annotation app; every answer must be
stored exactly once, by the right person, on the right task, and the audit log must verify.

Each simulated annotator is a ``gradio_client.Client`` logged in with its own account, in its own thread, looping
``/next_task`` -> ``/submit`` through the app's named API (the same endpoints and login as a browser). The data:
``annotators x per_annotator`` distinct short texts, one label round with no overlap (each task in one queue).
Measured: throughput (answers per second, from the moment all are logged in to the last answer) and the latency
of each ``/submit`` call as the client sees it (p50 / p95 / p99).

Run::

    .venv/bin/python benchmarks/bench_load.py                        # SQLite, 20 annotators x 50 answers
    .venv/bin/python benchmarks/bench_load.py --pg-url postgresql://curate:curate@127.0.0.1:5432/postgres
    # (or set CURATE_TEST_PG_URL): also on PostgreSQL, in a new database dropped afterwards

By default the app runs in a child process (``curate app``), as it would for real, so the clients' Python does
not share a GIL with the server; ``--in-process`` launches it in this process instead (as the tests do).
Writes ``benchmarks/results/load.json`` and prints a summary. The fast and full variants of this run are
``tests/reliability/test_load.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from sqlalchemy import select  # noqa: E402

from curate.ingest.sources import ingest  # noqa: E402
from curate.rounds.assignment import add_label_schema, assign_round  # noqa: E402
from curate.rounds.tasks import create_round  # noqa: E402
from curate.store import audit  # noqa: E402
from curate.store.accounts import add_user  # noqa: E402
from curate.store.database import Store  # noqa: E402
from curate.store.schema import Annotation, Assignment, Task  # noqa: E402
from curate.store.workspace import Workspace  # noqa: E402

PASSWORD = "load-test-password-42"
CLASSES = ("billing", "bug", "praise")
SCHEMA = "load-topic"
WORDS = "invoice refund login crash screen payment card export dashboard update password account".split()


def annotator_names(n: int) -> list[str]:
    """``annotator00`` ... for ``n`` simulated people."""
    return [f"annotator{i:02d}" for i in range(n)]


def expected_label(task_id: int) -> str:
    """The label a simulated annotator gives a task (a function of the id, so stored values can be checked)."""
    return CLASSES[task_id % len(CLASSES)]


def build_workspace(ws: Workspace, folder: Path, *, annotators: int, per_annotator: int) -> dict[str, set[int]]:
    """Accounts, ``annotators * per_annotator`` distinct texts and one label round split without overlap.

    Returns:
        ``{annotator: {task ids in their queue}}``.
    """
    n = annotators * per_annotator
    source = folder / "load_texts.jsonl"
    with source.open("wb") as fh:
        for i in range(n):
            words = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(6))
            fh.write(orjson.dumps({"text": f"Message {i}: {words}."}) + b"\n")
    ingest(ws, source, actor="bench")
    names = annotator_names(annotators)
    for name in names:
        add_user(ws.store, name, "annotator", PASSWORD, actor="bench")
    add_label_schema(ws.store, SCHEMA, list(CLASSES), "Pick the main topic of the message.", actor="bench")
    records = sorted(ws.store.iter_records(kind="text"), key=lambda r: r.line)
    report = create_round(ws.store, records, list(range(len(records))), scores=np.linspace(1, 0, len(records)),
                          strategy_key="load", model_version="none", task_type="label", actor="bench")
    assign_round(ws.store, names, round_number=report.number, overlap=0.0, schema=SCHEMA, actor="bench")
    return queues(ws.store, report.round_id)


def queues(store: Store, round_id: int) -> dict[str, set[int]]:
    """``{annotator: {task ids}}`` of one round's assignments."""
    out: dict[str, set[int]] = {}
    with store.read() as conn:
        for name, task_id in conn.execute(select(Assignment.annotator, Assignment.task_id)
                                          .join(Task, Task.id == Assignment.task_id)
                                          .where(Task.round_id == round_id)):
            out.setdefault(str(name), set()).add(int(task_id))
    return out


@dataclass
class AnnotatorRun:
    """What one simulated annotator did: (task id, acknowledged annotation id) pairs, latencies, errors."""

    name: str
    submitted: list[tuple[int, int]] = field(default_factory=list)
    submit_seconds: list[float] = field(default_factory=list)
    next_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    queue_left: Any = None
    finished_at: float = 0.0


@dataclass
class LoadRun:
    """All annotators of one run and its wall time (from all logged in to the last answer)."""

    runs: list[AnnotatorRun]
    seconds: float
    login_seconds: float

    @property
    def errors(self) -> list[str]:
        return [f"{r.name}: {e}" for r in self.runs for e in r.errors]

    def figures(self) -> dict[str, Any]:
        """Throughput and latency percentiles (milliseconds)."""
        submits = np.array([s for r in self.runs for s in r.submit_seconds]) * 1000
        nexts = np.array([s for r in self.runs for s in r.next_seconds]) * 1000
        answers = sum(len(r.submitted) for r in self.runs)

        def pct(values: np.ndarray) -> dict[str, float | None]:
            if not len(values):
                return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            return {"p50": round(float(p50), 1), "p95": round(float(p95), 1), "p99": round(float(p99), 1),
                    "max": round(float(values.max()), 1), "mean": round(float(values.mean()), 1)}

        return {"annotators": len(self.runs), "annotations": answers, "seconds": round(self.seconds, 2),
                "throughput_per_s": round(answers / self.seconds, 1) if self.seconds else None,
                "submit_latency_ms": pct(submits), "next_task_latency_ms": pct(nexts),
                "login_seconds": round(self.login_seconds, 2), "errors": self.errors[:20]}


def _annotate(url: str, run: AnnotatorRun, n: int, ready: threading.Barrier, start: threading.Event) -> None:
    from gradio_client import Client

    client = None
    try:
        client = Client(url, auth=(run.name, PASSWORD), verbose=False, download_files=False,
                        analytics_enabled=False, httpx_kwargs={"timeout": 300})
    except Exception as exc:  # noqa: BLE001 - a failed login is a result of the run
        run.errors.append(f"login: {type(exc).__name__}: {exc}")
    try:
        ready.wait()
        start.wait()
        if client is None:
            return
        for _ in range(n):
            t0 = time.perf_counter()
            view = client.predict(api_name="/next_task")
            run.next_seconds.append(time.perf_counter() - t0)
            if view is None:
                run.errors.append(f"queue empty after {len(run.submitted)} answers")
                return
            task_id = int(view["task_id"])
            value = json.dumps({"label": expected_label(task_id)})
            t0 = time.perf_counter()
            done = client.predict(task_id, value, None, api_name="/submit")
            run.submit_seconds.append(time.perf_counter() - t0)
            run.submitted.append((task_id, int(done["annotation_id"])))
        run.finished_at = time.perf_counter()
        run.queue_left = client.predict(api_name="/next_task")
    except Exception as exc:  # noqa: BLE001 - any failure is a result of the run
        run.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if client is not None:
            client.close()


def run_load(url: str, names: list[str], per_annotator: int) -> LoadRun:
    """Log every annotator in (each in its own thread), then let all of them answer ``per_annotator`` tasks."""
    runs = [AnnotatorRun(name) for name in names]
    start = threading.Event()
    ready = threading.Barrier(len(names) + 1)
    threads = [threading.Thread(target=_annotate, args=(url, run, per_annotator, ready, start), daemon=True)
               for run in runs]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    ready.wait()
    logged_in = time.perf_counter()
    start.set()
    for thread in threads:
        thread.join()
    finished = max([r.finished_at for r in runs if r.finished_at] or [time.perf_counter()])
    return LoadRun(runs, finished - logged_in, logged_in - t0)


def check_stored(store: Store, expected: dict[str, set[int]], run: LoadRun | None = None) -> list[str]:
    """Every way the stored annotations differ from "each assigned task answered exactly once by its annotator,
    with the label it was given" (and, with ``run``, from what the app acknowledged). Empty: all good."""
    with store.read() as conn:
        rows = conn.execute(select(Annotation.id, Annotation.task_id, Annotation.annotator, Annotation.kind,
                                   Annotation.value)).all()
    owner = {task: name for name, tasks in expected.items() for task in tasks}
    total = sum(len(tasks) for tasks in expected.values())
    problems: list[str] = []
    counts = Counter((int(r.task_id), str(r.annotator)) for r in rows)
    problems += [f"task {t} by {a}: stored {n} times" for (t, a), n in sorted(counts.items()) if n != 1]
    for r in rows:
        task = int(r.task_id)
        if owner.get(task) != r.annotator:
            problems.append(f"annotation #{r.id} by {r.annotator} on task {task}, which is {owner.get(task)}'s")
        if r.kind != "answer" or orjson.loads(r.value or "null") != {"label": expected_label(task)}:
            problems.append(f"annotation #{r.id} on task {task}: {r.kind} {r.value!r}, expected the label "
                            f"{expected_label(task)!r}")
    missing = sorted(set(owner) - {int(r.task_id) for r in rows})
    problems += [f"task {t} of {owner[t]}: not stored" for t in missing[:20]]
    if len(rows) != total:
        problems.append(f"{len(rows)} annotations stored, {total} expected")
    if run is not None:
        stored = {int(r.id): (int(r.task_id), str(r.annotator)) for r in rows}
        for one in run.runs:
            for task, ann_id in one.submitted:
                if stored.get(ann_id) != (task, one.name):
                    problems.append(f"{one.name} was told task {task} is stored as #{ann_id}, but the database has "
                                    f"{stored.get(ann_id)}")
            if one.queue_left is not None:
                problems.append(f"{one.name}'s queue still has task {one.queue_left.get('task_id')}")
    return problems


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(ws: Workspace, *, in_process: bool) -> Iterator[str]:
    """The app on a free loopback port (in this process, or as ``curate app`` in a child process); its URL."""
    port = free_port()
    if in_process:
        from apps.annotate import launch_app

        demo, url = launch_app(ws, port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield url
        finally:
            demo.close()
        return
    import httpx

    ws.store.dispose()
    env = {**os.environ, "CURATE_ACTOR": "bench", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "curate", "app", "-w", str(ws.root), "--db", ws.store.url,
                             "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"curate app exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}"
                                   if proc.stderr else f"curate app exited with {proc.returncode}")
            try:
                if httpx.get(url + "config", timeout=2).status_code in (200, 401):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("curate app did not start within 120 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def database(kind: str, folder: Path, pg_url: str | None) -> Iterator[str]:
    """A fresh SQLite file, or a new PostgreSQL database (dropped afterwards) on the server of ``pg_url``."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'curate.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    assert pg_url is not None
    admin_url = make_url(pg_url).set(drivername="postgresql+psycopg")
    name = f"curate_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_one(kind: str, *, annotators: int, per_annotator: int, pg_url: str | None, in_process: bool
              ) -> dict[str, Any]:
    """Build, serve, load and check one database; returns its figures."""
    with tempfile.TemporaryDirectory(prefix="curate-load-") as tmp, database(kind, Path(tmp), pg_url) as url:
        ws = Workspace.open(Path(tmp) / "ws", url)
        expected = build_workspace(ws, Path(tmp), annotators=annotators, per_annotator=per_annotator)
        with serve(ws, in_process=in_process) as app_url:
            run = run_load(app_url, annotator_names(annotators), per_annotator)
        problems = check_stored(ws.store, expected, run)
        report = audit.verify(ws.store)
        ws.store.dispose()
    return {**run.figures(), "database": kind, "exactly_once": not problems, "problems": problems[:20],
            "audit_ok": report.ok, "audit_events": report.n_events,
            "annotation_problems": [p.as_dict() for p in report.annotation_problems[:20]]}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on SQLite (and PostgreSQL when a server URL is given); returns the exit code."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--per-annotator", type=int, default=50)
    parser.add_argument("--pg-url", default=os.environ.get("CURATE_TEST_PG_URL"),
                        help="PostgreSQL server URL whose user may CREATE DATABASE [env CURATE_TEST_PG_URL]")
    parser.add_argument("--in-process", action="store_true", help="run the app in this process")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/load.json")
    args = parser.parse_args(argv)
    kinds = ["sqlite"] + (["postgresql"] if args.pg_url else [])
    runs = {}
    for kind in kinds:
        print(f"{kind}: {args.annotators} annotators x {args.per_annotator} answers ...", flush=True)
        load_before = os.getloadavg()[0]
        runs[kind] = bench_one(kind, annotators=args.annotators, per_annotator=args.per_annotator,
                               pg_url=args.pg_url, in_process=args.in_process)
        # the machine's 1-minute load average around the run: other jobs share its cores
        runs[kind]["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    result = {"benchmark": "load", "annotators": args.annotators, "per_annotator": args.per_annotator,
              "server": "in-process" if args.in_process else "child process (curate app)",
              "client": "gradio_client, one thread per annotator, /next_task then /submit",
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    ok = True
    for kind, fig in runs.items():
        lat = fig["submit_latency_ms"]
        print(f"{kind:>10}: {fig['annotations']} answers in {fig['seconds']} s = {fig['throughput_per_s']} /s; "
              f"submit p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms; exactly once: "
              f"{fig['exactly_once']}; audit verifies: {fig['audit_ok']}; errors: {len(fig['errors'])}")
        ok = ok and fig["exactly_once"] and fig["audit_ok"] and not fig["errors"]
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
