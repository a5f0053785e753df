"""Plain progress lines (piped output): quiet for quick work, moving lines with rate and ETA for long work."""

from __future__ import annotations

import time

from curate.cli.progress import LineProgress, bar_progress


def test_quick_work_prints_nothing_and_long_work_prints_moving_lines(capsys):
    with LineProgress(every=0.2) as progress:
        task = progress.add_task("quick", total=10)
        progress.update(task, completed=10)
    assert capsys.readouterr().err == ""

    with LineProgress(every=0.1) as progress:
        task = progress.add_task("score ifd", total=40)
        for done in range(0, 41, 8):
            progress.update(task, completed=done)
            time.sleep(0.12)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("score ifd: ")]
    counts = [int(line.split(": ")[1].split("/")[0]) for line in lines]
    assert len(lines) >= 3 and counts == sorted(counts) and counts[-1] == 40 and any(0 < c < 40 for c in counts)
    assert any("records/s" in line and "ETA" in line for line in lines) and "(100%)" in lines[-1]


def test_a_task_without_a_total_ticks_while_nothing_moves(capsys):
    with LineProgress(every=0.1) as progress:
        progress.add_task("dedup (minhash)", total=None)
        time.sleep(0.45)  # one long step, no updates: the ticker still says it is alive
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and all(line.startswith("dedup (minhash): 0 records") for line in lines)


def test_quiet_silences_and_a_pipe_gets_lines(monkeypatch, capsys):
    monkeypatch.setenv("CURATE_QUIET", "1")
    with bar_progress() as progress:
        assert isinstance(progress, LineProgress) and progress.silent
        task = progress.add_task("embed", total=3)
        time.sleep(0.01)
        progress.update(task, completed=3)
    monkeypatch.delenv("CURATE_QUIET")
    assert isinstance(bar_progress(), LineProgress)  # under pytest stderr is not a terminal
    assert capsys.readouterr().err == ""


def test_a_finished_stage_is_printed_once_while_the_next_one_ticks(capsys):
    with LineProgress(every=0.1) as progress:
        first = progress.add_task("sample", total=4)
        time.sleep(0.12)
        progress.update(first, completed=4)  # due: printed at 4/4
        progress.add_task("embed", total=None)
        time.sleep(0.5)  # the next stage's long step: only it keeps ticking
    lines = capsys.readouterr().err.splitlines()
    assert sum(line.startswith("sample: 4/4") for line in lines) == 1
    assert sum(line.startswith("embed: 0") for line in lines) >= 3
