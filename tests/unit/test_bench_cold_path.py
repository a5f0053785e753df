"""``benchmarks/bench_classify_cold_path.py`` finds its sets by file and skips, saying so, when none is there."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_classify_cold_path.py"


def _module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_classify_cold_path", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_data_folder_skips_with_a_message_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "cold.json"
    assert _module().main(["--data-dir", str(tmp_path / "absent"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped: no classification set under" in printed and "banking77" in printed
    assert not out.exists()


def test_unseen_sets_are_found_by_their_files(tmp_path: Path):
    module = _module()
    assert module.unseen_sets(tmp_path) == []
    (tmp_path / "sms_spam").mkdir()
    (tmp_path / "sms_spam" / "SMSSpamCollection").write_text("ham\thello\nspam\tWIN now\n")
    found = module.unseen_sets(tmp_path)
    assert [(s.name, columns) for s, columns in found] == [("sms_spam", ["label", "text"])]
    (tmp_path / "trec6").mkdir()
    for name in ("train.csv", "test.csv"):
        (tmp_path / "trec6" / name).write_text("text,label,fine_label\nWho ?,HUM,ind\n")
    names = [s.name for s, _ in module.unseen_sets(tmp_path)]
    assert names == ["trec50", "sms_spam"]
    assert module.unseen_sets(tmp_path)[0][0].mapping == {"label": "fine_label"}
