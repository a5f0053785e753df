"""Ctrl-C and SIGTERM on long passes, through the real CLI in a subprocess: finished work is kept, the command
says what it kept and how to resume, exits 130 without a traceback, and the rerun computes only the rest."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from curate.ingest.sources import ingest
from curate.store.schema import ScoreRow
from curate.store.workspace import Workspace
from tests.reliability.fault_helpers import ROOT, TIMEOUT, child_env, cli_argv, json_file
from tests.reliability.fault_scorer import DELAY_ENV, LOG_ENV, SMALL_BATCH_SPEC, SmallBatchLength, logged_ids

pytestmark = pytest.mark.timeout(600)


def interrupt_when(argv: Sequence[str], ready: Callable[[], bool], *, env: dict[str, str],
                   sig: int = signal.SIGINT) -> tuple[int, str]:
    """Start ``argv``, send ``sig`` the moment ``ready()`` holds; ``(exit code, stderr)`` once it has stopped."""
    started = time.perf_counter()
    # a test run started with SIGINT ignored (`nohup make test &`) passes that on, and the child would never see it
    child = subprocess.Popen(list(argv), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        while not ready():
            if child.poll() is not None:
                raise AssertionError(f"the child ended (exit {child.returncode}) first:\n{child.communicate()[1]}")
            assert time.perf_counter() - started < TIMEOUT, "the child never reached the state to interrupt it in"
            time.sleep(0.02)
        child.send_signal(sig)
        out, err = child.communicate(timeout=TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "Traceback" not in out + err, err
    return child.returncode, err


def texts_file(tmp_path: Path, n: int, *, words: int = 3) -> Path:
    path = tmp_path / f"texts-{n}.jsonl"
    path.write_text("".join(json.dumps({"text": f"message {i}: " + "word " * (i % 23 + words)}) + "\n"
                            for i in range(n)), encoding="utf-8")
    return path


def stored_scores(ws: Workspace, key: str) -> set[str]:
    with ws.store.read() as conn:
        return set(conn.scalars(select(ScoreRow.record_id).where(ScoreRow.scorer_key == key)))


def kept_count(stderr: str, what: str) -> int:
    match = re.search(r"kept ([\d,]+) " + re.escape(what), stderr.replace("\n", " "))
    assert match, stderr
    return int(match.group(1).replace(",", ""))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_an_interrupted_scoring_run_keeps_its_batches_and_the_rerun_computes_only_the_rest(workspace, tmp_path, sig):
    ingest(workspace, texts_file(tmp_path, 64))
    ids = [r.id for r in workspace.store.iter_records()]
    key = SmallBatchLength().key()
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    code, err = interrupt_when(cli_argv(workspace, "score", "--scorer", SMALL_BATCH_SPEC),
                               lambda: len(logged_ids(first)) >= 24,  # the third call has started
                               env=child_env(**{LOG_ENV: str(first), DELAY_ENV: "0.4"}), sig=sig)
    assert code == 130
    kept = stored_scores(workspace, key)
    assert 16 <= len(kept) < len(ids) and len(kept) % 8 == 0  # whole batches only
    assert kept_count(err, "scores") == len(kept)
    assert "Run the same command again" in err and "curate score --scorer " + SMALL_BATCH_SPEC in err

    done = subprocess.run(cli_argv(workspace, "score", "--scorer", SMALL_BATCH_SPEC, "--json",
                                   str(tmp_path / "s.json")), cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT, env=child_env(**{LOG_ENV: str(second)}))
    assert done.returncode == 0, done.stderr
    report = json_file(tmp_path / "s.json")
    assert (report["cached"], report["computed"]) == (len(kept), len(ids) - len(kept))
    assert set(logged_ids(second)) == set(ids) - kept  # nothing finished was scored again
    assert stored_scores(workspace, key) == set(ids)


def test_piped_scoring_prints_progress_lines_before_the_end(workspace, tmp_path):
    ingest(workspace, texts_file(tmp_path, 300))
    done = subprocess.run(cli_argv(workspace, "score", "--scorer", SMALL_BATCH_SPEC), cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT,
                          env=child_env(**{DELAY_ENV: "0.03", "CURATE_PROGRESS_SECONDS": "0.3"}))
    assert done.returncode == 0, done.stderr
    counts = [int(m.group(1)) for m in re.finditer(r"score \S+: (\d+)/300 \(", done.stderr)]
    assert counts and counts[-1] == 300
    assert any(0 < c < 300 for c in counts), done.stderr  # it moved during the run, not only at the end
    assert re.search(r"records/s", done.stderr) and "ETA" in done.stderr
    quiet = subprocess.run([*cli_argv(workspace, "score", "--scorer", SMALL_BATCH_SPEC)][:3] + ["--quiet"]
                           + cli_argv(workspace, "score", "--scorer", SMALL_BATCH_SPEC)[3:], cwd=ROOT,
                           capture_output=True, text=True, timeout=TIMEOUT, env=child_env())
    assert quiet.returncode == 0 and "/300 (" not in quiet.stderr


def _shards(ws: Workspace) -> int:
    return len(list((ws.cache_dir / "embeddings").rglob("ids-*.npy")))


def test_an_interrupted_embedding_run_keeps_its_shards_and_the_rerun_embeds_only_the_rest(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")  # the embedding cache is files: one database is enough
    ingest(workspace, texts_file(tmp_path, 1500, words=12))
    env = child_env(CURATE_CHECKPOINT_SECONDS="0.2")
    code, err = interrupt_when(cli_argv(workspace, "embed"), lambda: _shards(workspace) >= 1, env=env)
    assert code == 130
    kept = kept_count(err, "embeddings")
    assert 0 < kept < 1500
    done = subprocess.run(cli_argv(workspace, "embed", "--json", str(tmp_path / "e.json")), cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert done.returncode == 0, done.stderr
    report = json_file(tmp_path / "e.json")
    assert report["records"] == 1500 and report["computed"] == 1500 - kept and report["dimensions"] == 384


def _cached_findings(ws: Workspace) -> int:
    path = ws.cache_dir / "pii" / "findings.sqlite"
    if not path.exists():
        return 0
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM findings").fetchone()[0])
    except sqlite3.OperationalError:  # created but no table yet
        return 0


def test_an_interrupted_pii_ingest_keeps_its_findings_and_the_rerun_detects_only_the_rest(tmp_path):
    pytest.importorskip("presidio_analyzer", reason="PII detection needs the pii extra")
    workspace = Workspace.open(tmp_path / "ws")  # the findings cache is a file of its own: one database is enough
    path = tmp_path / "pairs.jsonl"
    sentence = ("Dear {name}, your order {i} ships from our Leeds depot on Monday; reply to {mail} or call the "
                "desk if the parcel is late. ")
    with path.open("w", encoding="utf-8") as fh:
        for i in range(120):
            name, mail = f"Alice Marsh{i}", f"alice{i}@example.com"
            fh.write(json.dumps({"prompt": f"Write to customer {i}.", "chosen": sentence.format(name=name, i=i,
                                 mail=mail) * 12, "rejected": f"No reply for order {i}. " * 40}) + "\n")
    texts = 3 * 120
    env = child_env(CURATE_CHECKPOINT_SECONDS="0.2")
    argv = [*cli_argv(workspace, "ingest", str(path), "--pii", "redact")]
    code, err = interrupt_when(argv, lambda: _cached_findings(workspace) >= 1, env=env)
    assert code == 130
    kept = kept_count(err, "texts checked for PII")
    assert 0 < kept < texts and _cached_findings(workspace) == kept
    assert list(workspace.store.iter_records()) == []  # the ingest itself is one transaction: rolled back

    done = subprocess.run([*argv, "--json", str(tmp_path / "i.json")], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT, env=env)
    assert done.returncode == 0, done.stderr
    detection = json_file(tmp_path / "i.json")["sources"][0]["pii"]["detection"]
    assert detection["texts_from_cache"] == kept and detection["texts_detected"] == texts - kept
    assert detection["chars_per_second"] > 0 and "characters/s" in done.stdout
    stored = list(workspace.store.iter_records())
    assert len(stored) == 120 and all("@example.com" not in r.fields["chosen"] for r in stored)  # redacted
