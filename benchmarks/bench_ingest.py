"""Ingest benchmark: stream N generated records into a fresh workspace; rows/s and peak memory.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_ingest.py --rows 1000000``.
Writes ``benchmarks/results/ingest.json``. Targets (issue 2): at least 20,000 rows/s and under 2 GB peak.

The ingest runs in a child process (the real ``curate ingest`` command) so its peak resident memory is its own.
Side by side, in the same run, the baseline is the floor of any JSONL ingest: reading the file and parsing every
line with orjson, nothing else; the ratio shows what records, ids, dedup, SQLite and audit cost on top.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

WORDS = ("account card transfer refund payment limit balance statement branch loan interest fraud "
         "password login device travel currency exchange fee charge dispute verify identity address").split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def generate(path: Path, rows: int, *, seed: int = 0, duplicate_rate: float = 0.01) -> None:
    """Write ``rows`` JSONL rows of mixed kinds (examples, chat, preferences, labelled texts), ~1% duplicates."""
    rng = random.Random(seed)
    recent: list[bytes] = []
    with path.open("wb") as fh:
        for i in range(rows):
            if recent and rng.random() < duplicate_rate:
                fh.write(rng.choice(recent))
                continue
            r = i % 4
            if r == 0:
                row = {"prompt": f"Q{i}: " + _sentence(rng, 12), "completion": _sentence(rng, 30)}
            elif r == 1:
                row = {"messages": [{"role": "user", "content": f"#{i} " + _sentence(rng, 10)},
                                    {"role": "assistant", "content": _sentence(rng, 25)}]}
            elif r == 2:
                row = {"prompt": f"P{i}: " + _sentence(rng, 10), "chosen": _sentence(rng, 20),
                       "rejected": _sentence(rng, 20)}
            else:
                row = {"text": f"T{i}: " + _sentence(rng, 15), "label": rng.choice(WORDS)}
            line = orjson.dumps(row) + b"\n"
            fh.write(line)
            if len(recent) < 1000:
                recent.append(line)
            else:
                recent[rng.randrange(1000)] = line


def baseline_parse(path: Path) -> float:
    """Seconds to read and orjson-parse every line: the floor under any JSONL ingest."""
    start = time.perf_counter()
    n = 0
    with path.open("rb") as fh:
        for line in fh:
            orjson.loads(line)
            n += 1
    return time.perf_counter() - start


def run_ingest(path: Path, workspace: Path, report: Path) -> tuple[float, int]:
    """Run ``curate ingest`` in a child process; returns (seconds, peak RSS in bytes)."""
    env = {**os.environ, "CURATE_ACTOR": "bench"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "curate.cli.main", "ingest", str(path), "-w", str(workspace),
                    "--json", str(report)], check=True, env=env, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kib * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ingest.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="curate-bench-") as tmp:
        data = Path(tmp) / "pool.jsonl"
        print(f"generating {args.rows:,} rows ...", flush=True)
        generate(data, args.rows)
        size = data.stat().st_size
        parse_s = baseline_parse(data)
        ingest_s, peak = run_ingest(data, Path(tmp) / "ws", Path(tmp) / "report.json")
        report = json.loads((Path(tmp) / "report.json").read_text())["sources"][0]
    result = {
        "rows": args.rows,
        "file_mb": round(size / 1e6, 1),
        "stored": report["new"],
        "duplicates": report["duplicates"],
        "quarantined": report["quarantined"],
        "ingest_seconds_wall": round(ingest_s, 2),
        "ingest_seconds_in_command": round(report["seconds"], 2),
        "rows_per_second": round(args.rows / ingest_s),
        "peak_rss_mb": round(peak / 1e6),
        "baseline_parse_seconds": round(parse_s, 2),
        "baseline_rows_per_second": round(args.rows / parse_s),
        "ingest_vs_parse_slowdown": round(ingest_s / parse_s, 1),
        "targets": {"rows_per_second": 20_000, "peak_rss_mb": 2000},
    }
    result["meets_targets"] = result["rows_per_second"] >= 20_000 and result["peak_rss_mb"] < 2000
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
