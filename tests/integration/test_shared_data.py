"""Ingest of the real shared data (skipped with a message when ../shared/data is absent)."""

from __future__ import annotations

import gzip
import itertools

import pytest

from curate.ingest.sources import ingest
from tests.conftest import shared_file

pytestmark = pytest.mark.shared_data


def test_hh_rlhf_prompts_are_split_off_at_the_last_human_turn(workspace, tmp_path):
    source = shared_file("hh_rlhf_harmless_test", "test.jsonl.gz")
    head = tmp_path / "hh_head.jsonl"
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        rows = list(itertools.islice(fh, 8))
    head.write_text("".join(rows), encoding="utf-8")
    report = ingest(workspace, head)
    assert report.new == 8 and report.quarantined == 0
    import json

    originals = [json.loads(r) for r in rows]
    for rec in workspace.store.iter_records():
        prompt, chosen, rejected = rec.fields["prompt"], rec.fields["chosen"], rec.fields["rejected"]
        assert prompt[-1]["role"] == "user" and prompt[0]["role"] == "user"
        assert [m["role"] for m in chosen] == ["assistant"] == [m["role"] for m in rejected]
        original = originals[rec.line - 1]
        # The split is exact: the last assistant turn of each transcript is the response.
        assert original["chosen"].rstrip().endswith(chosen[0]["content"].rstrip())
        assert original["rejected"].rstrip().endswith(rejected[0]["content"].rstrip())
        assert prompt[-1]["content"].strip() in original["chosen"]


def test_whole_hh_rlhf_file_keeps_every_consistent_pair(workspace):
    report = ingest(workspace, shared_file("hh_rlhf_harmless_test", "test.jsonl.gz"))
    # 2,312 pairs; the shared README counts 4 inconsistent ones, and one more has two assistant turns in a row.
    assert report.rows == 2312 and report.new == 2307 and report.quarantined == 5
    assert set(report.first_bad_lines) == {1255, 1689, 1951, 1953, 2037}


def test_alpaca_5000_yields_5000_prompt_completion_records(workspace):
    report = ingest(workspace, shared_file("alpaca_5000", "alpaca_5000.json"))
    assert (report.rows, report.new, report.quarantined) == (5000, 5000, 0)
    assert report.by_kind == {"example": 5000}
    rec = next(workspace.store.iter_records())
    assert set(rec.fields) == {"prompt", "completion"}


def test_dedup_benchmark_exact_part_finds_every_sms_spam_duplicate():
    from curate.bench.dedup import bench_exact

    result = bench_exact(shared_file("sms_spam", "SMSSpamCollection"))  # label<TAB>text: the last column
    assert result["rows"] == 5574 and result["expected_exact_duplicates"] == 403
    assert result["found_exact_duplicates"] == 403 and result["all_found"]
