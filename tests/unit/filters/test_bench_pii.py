"""curate bench pii on a small Presidio-research file the test writes: figures are computed, errors are clear."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from curate.bench.pii import evaluate, load_presidio
from curate.cli.main import app


def _write(path, records):
    path.write_text(json.dumps(records))
    return path


def test_evaluate_counts_overlap_matches_per_type():
    data = [("Ann lives in Paris", [("PERSON", 0, 3), ("LOCATION", 13, 18)])]
    result = evaluate(data, lambda text: [("PERSON", 0, 3), ("PERSON", 13, 18)], ["PERSON", "LOCATION"])
    assert result["per_type"]["PERSON"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "gold": 1, "predicted": 2}
    assert result["per_type"]["LOCATION"]["recall"] == 0.0
    assert result["micro"]["precision"] == 0.5 and result["micro"]["recall"] == 0.5


def test_bench_pii_command_on_a_small_file(tmp_path):
    text = "Contact John Smith at john.smith@example.com or 4111 1111 1111 1111."
    records = [{"full_text": text, "spans": [
        {"entity_type": "PERSON", "start_position": 8, "end_position": 18},
        {"entity_type": "EMAIL_ADDRESS", "start_position": 22, "end_position": 44},
        {"entity_type": "CREDIT_CARD", "start_position": 48, "end_position": 67},
    ]}]
    path = _write(tmp_path / "gold.json", records)
    result = CliRunner().invoke(app, ["bench", "pii", "--data", str(path), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "r.json").read_text())
    assert figures["records"] == 1
    assert figures["curate"]["per_type"]["EMAIL_ADDRESS"]["recall"] == 1.0
    assert figures["curate"]["per_type"]["CREDIT_CARD"]["recall"] == 1.0
    assert "baseline_presidio_stock" in figures


def test_bad_files_are_named(tmp_path):
    import pytest

    from curate.errors import InputError

    with pytest.raises(InputError, match="record 0 has no 'full_text'"):
        load_presidio(_write(tmp_path / "bad.json", [{"text": "x"}]))
    with pytest.raises(InputError, match="expected a JSON list"):
        load_presidio(_write(tmp_path / "obj.json", {"a": 1}))
