"""Browser latency: an expert's keyboard submit to the next task on screen, in headless Chromium at 1366x768.

Each version of the app (this checkout, and a baseline commit checked out in a temporary git worktree) runs as
its own ``curate app`` child process on its own seeded SQLite workspace (rank tasks with ~2,000-character Markdown
responses, :mod:`tests.e2e.long_tasks`). One Chromium logs in to both and alternates between them task by task,
so both see the same machine load: press ``1`` and ``Ctrl+Enter``, and time until the next task's id is on screen
(``#task-info``). Before each submit the page is left alone for ``--settle-ms`` (500 ms; an expert reads for
seconds): measured back to back, one app's submit ran while the other's previous task was still being laid out and
painted, which added ~50 ms to every other sample of both apps. Reported: p50 / p95 / mean per version, the ratios
current / baseline, and a bootstrap 95% interval of the p50 ratio (tasks resampled in pairs).

Run::

    .venv/bin/python benchmarks/bench_browser.py                      # 30 tasks, baseline = BASELINE_REF
    .venv/bin/python benchmarks/bench_browser.py --baseline-ref none  # this checkout only

Writes ``benchmarks/results/browser.json``. Needs Debian's chromium (/usr/bin/chromium) and playwright.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.e2e.long_tasks import PASSWORD, seed_long  # noqa: E402

BASELINE_REF = "e9d9e9c"  # the app before the 1366x768 layout (issue 19)
VIEWPORT = {"width": 1366, "height": 768}
OUT = ROOT / "benchmarks" / "results" / "browser.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """``ref`` checked out in a temporary git worktree (removed afterwards)."""
    path = Path(tempfile.mkdtemp(prefix="curate-baseline-")) / "src"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), ref], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)


@contextmanager
def serve(source: Path, n_tasks: int) -> Iterator[str]:
    """A seeded workspace served by the app of ``source`` in a child process; yields its URL."""
    from curate.store.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="curate-browser-"))
    ws = Workspace.open(tmp / "ws", f"sqlite:///{tmp / 'curate.db'}")
    seed_long(ws, tmp, n_rank=n_tasks, n_rewrite=1, n_label=1)
    ws.store.dispose()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(source), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "curate", "app", "-w", str(tmp / "ws"), "--db",
                             f"sqlite:///{tmp / 'curate.db'}", "--port", str(port)], cwd=source, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the app of {source} stopped: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def task_on_screen(page: Any) -> int:
    """The task id in ``#task-info`` ("... task 12 ..."), or -1."""
    text = page.locator("#task-info").inner_text()
    import re

    found = re.search(r"task (\d+)", text)
    return int(found.group(1)) if found else -1


def submit_latency(page: Any, settle_ms: int = 0) -> float:
    """Wait ``settle_ms``, press 1 and Ctrl+Enter on the task on screen; seconds until another task is shown."""
    if settle_ms:
        page.wait_for_timeout(settle_ms)
    before = task_on_screen(page)
    start = time.perf_counter()
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("(before) => { const el = document.querySelector('#task-info');"
                           " const m = el && el.innerText.match(/task (\\d+)/);"
                           " return m && Number(m[1]) !== before; }", arg=before, polling="raf")
    return time.perf_counter() - start


def summary(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "mean_ms": round(float(ms.mean()), 1)}


def p50_ratio_interval(current: list[float], baseline: list[float], *, draws: int = 2000,
                       seed: int = 0) -> list[float]:
    """Bootstrap 95% interval of p50(current) / p50(baseline); the i-th samples of both were taken side by side,
    so they are resampled as pairs."""
    cur, base = np.asarray(current), np.asarray(baseline)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(cur), size=(draws, len(cur)))
    ratios = np.median(cur[idx], axis=1) / np.median(base[idx], axis=1)
    return [round(float(x), 3) for x in np.percentile(ratios, [2.5, 97.5])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=30, help="rank tasks measured per version")
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the baseline app, or 'none'")
    parser.add_argument("--settle-ms", type=int, default=500,
                        help="pause before each submit, so the last task's rendering is over (0: back to back)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"bench_browser needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    versions: dict[str, Path] = {"current": ROOT}
    with ExitStack() as stack:
        if args.baseline_ref != "none":
            versions["baseline"] = stack.enter_context(worktree(args.baseline_ref))
        urls = {name: stack.enter_context(serve(src, args.tasks + 1)) for name, src in versions.items()}
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        pages = {}
        for name, url in urls.items():
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(30_000)
            page.goto(url)
            page.fill("input[type=text]", "eve")
            page.fill("input[type=password]", PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_selector("#whoami:has-text('eve')")
            page.wait_for_function("() => /task \\d+/.test(document.querySelector('#task-info')?.innerText || '')")
            submit_latency(page)  # warm-up: the first submit loads code paths once
            pages[name] = page
        times: dict[str, list[float]] = {name: [] for name in pages}
        for i in range(args.tasks - 1):
            for name in (list(pages) if i % 2 == 0 else list(pages)[::-1]):
                times[name].append(submit_latency(pages[name], args.settle_ms))
            print(f"  {i + 1}/{args.tasks - 1} " + " ".join(f"{n} {1000 * t[-1]:.0f} ms" for n, t in times.items()),
                  flush=True)
        browser.close()
    result: dict[str, Any] = {"viewport": VIEWPORT, "task": "rank pair, ~2,000-character Markdown responses",
                              "baseline_ref": args.baseline_ref, "settle_ms": args.settle_ms,
                              "machine": platform.platform(), "cpus": os.cpu_count(),
                              **{name: summary(t) for name, t in times.items()}}
    if "baseline" in result:
        result["ratio_p50"] = round(result["current"]["p50_ms"] / result["baseline"]["p50_ms"], 3)
        result["ratio_p95"] = round(result["current"]["p95_ms"] / result["baseline"]["p95_ms"], 3)
        result["ratio_p50_ci95"] = p50_ratio_interval(times["current"], times["baseline"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
