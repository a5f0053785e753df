from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from curate.errors import InputError, SourceNotFoundError
from curate.rounds.coldstart import centroid_seed, check_seed_model, load_rules, match_rules, rule_seed, stratified_seed

RNG = np.random.default_rng

TEXTS = [
    "I want a refund for my order",  # 0 refund
    "How do I reset my password?",  # 1 login
    "Money back please, the item broke",  # 2 refund
    "Cannot log in since yesterday",  # 3 login
    "Refund my login fee",  # 4 refund + login (ambiguous)
    "What are your opening hours?",  # 5 none
    "Chargeback filed with my bank",  # 6 refund (pattern)
    "Refundable tickets?",  # 7 none: 'refund' is a whole-word keyword
]
RULES_TOML = """
[refund]
keywords = ["refund", "money back"]
patterns = ['charge\\s*back']

[login]
keywords = ["password", "log in", "login"]
"""


def test_stratified_seed_gives_every_class_its_minimum_and_the_rest_proportionally() -> None:
    labels = np.array(["a"] * 80 + ["b"] * 18 + ["c"] * 2 + [None] * 10, dtype=object)
    out = stratified_seed(labels, 20, rng=RNG(0), minimum=2)
    picked = labels[out]
    assert len(out) == 20 and len(set(out.tolist())) == 20
    assert (picked == "c").sum() == 2
    assert (picked == "a").sum() == 15 and (picked == "b").sum() == 3  # 2 + 2 + 16 shared 80:16
    assert all(v is not None for v in picked)
    np.testing.assert_array_equal(out, stratified_seed(labels, 20, rng=RNG(0), minimum=2))


def test_stratified_seed_returns_every_labelled_record_when_k_is_large() -> None:
    labels = [1, 2, None, 2, float("nan")]
    assert sorted(stratified_seed(labels, 10, rng=RNG(0)).tolist()) == [0, 1, 3]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_rules_from_toml_and_json_match_the_same_records(tmp_path: Path) -> None:
    toml_rules = load_rules(write(tmp_path, "rules.toml", RULES_TOML))
    json_rules = load_rules(write(tmp_path, "rules.json", json.dumps({
        "refund": {"keywords": ["refund", "money back"], "patterns": ["charge\\s*back"]},
        "login": {"keywords": ["password", "log in", "login"]},
    })))
    for rules in (toml_rules, json_rules):
        matches = match_rules(TEXTS, rules)
        assert matches["refund"].tolist() == [0, 2, 4, 6]
        assert matches["login"].tolist() == [1, 3, 4]


def test_rule_seed_is_balanced_prefers_unambiguous_matches_and_labels_them(tmp_path: Path) -> None:
    path = write(tmp_path, "rules.toml", RULES_TOML)
    seed = rule_seed(TEXTS, path, 4, rng=RNG(0))
    assert seed.candidates == {"login": 3, "refund": 4}
    assert len(seed.indices) == 4 and 4 not in seed.indices.tolist()  # the ambiguous record is not needed
    for i, label in zip(seed.indices, seed.labels, strict=True):
        assert i in match_rules(TEXTS, load_rules(path))[label]
    assert sorted(seed.labels.tolist()) == ["login", "login", "refund", "refund"]


def test_rule_file_errors_name_the_file_and_the_bad_rule(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="missing.toml does not exist"):
        load_rules(tmp_path / "missing.toml")
    bad_toml = write(tmp_path, "broken.toml", "[refund\nkeywords = [")
    with pytest.raises(InputError, match=r"broken\.toml: not valid TOML"):
        load_rules(bad_toml)
    bad_json = write(tmp_path, "broken.json", '{"refund": {"keywords": ["a",]}}')
    with pytest.raises(InputError, match=r"broken\.json: not valid JSON at line 1"):
        load_rules(bad_json)
    bad_regex = write(tmp_path, "regex.toml", "[refund]\npatterns = ['(unclosed']\n")
    with pytest.raises(InputError, match=r"regex\.toml: class 'refund': bad pattern '\(unclosed'"):
        load_rules(bad_regex)
    unknown = write(tmp_path, "unknown.toml", "[refund]\nwords = ['x']\n")
    with pytest.raises(InputError, match=r"unknown\.toml: class 'refund' has unknown key\(s\) \['words'\]"):
        load_rules(unknown)
    empty_rule = write(tmp_path, "empty.json", '{"refund": {"keywords": [""]}}')
    with pytest.raises(InputError, match=r"empty\.json: class 'refund': bad keyword ''"):
        load_rules(empty_rule)
    with pytest.raises(InputError, match="must end in .json or .toml"):
        load_rules(write(tmp_path, "rules.yaml", "refund: []"))


def test_centroid_seed_takes_the_record_nearest_each_centroid() -> None:
    rng = RNG(0)
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    lab = np.repeat(np.arange(3), 30)
    x = centres[lab] + rng.normal(size=(90, 2))
    out = centroid_seed(x, 3, rng=RNG(1))
    assert sorted(lab[out].tolist()) == [0, 1, 2]
    for i in out:
        members = np.flatnonzero(lab == lab[i])
        mean = x[members].mean(0)
        assert i == members[np.argmin(((x[members] - mean) ** 2).sum(1))]


def test_centroid_seed_is_distinct_even_on_duplicates() -> None:
    x = np.zeros((10, 2))
    out = centroid_seed(x, 4, rng=RNG(0))
    assert len(set(out.tolist())) == 4


def test_seed_check_warns_on_pure_noise_labels() -> None:
    rng = RNG(0)
    x = rng.normal(size=(200, 20))
    y = rng.integers(0, 2, 200)
    report = check_seed_model(x, y, rng=RNG(0))
    assert not report.ok
    assert any(w.startswith("too weak") for w in report.warnings)
    assert report.cv_folds == 5 and report.weak_margin == 0.10 and report.max_gap == 0.20
    assert abs(report.cv_accuracy_mean - 0.5) < 0.1


def test_seed_check_warns_on_overfitting() -> None:
    rng = RNG(1)
    x = rng.normal(size=(40, 200))
    y = rng.integers(0, 2, 40)
    report = check_seed_model(x, y, rng=RNG(0), c=100.0)
    assert any(w.startswith("overfit") for w in report.warnings)
    assert report.gap > 0.2 and report.train_accuracy_mean == pytest.approx(1.0)


def test_seed_check_passes_a_learnable_seed() -> None:
    rng = RNG(2)
    y = np.repeat([0, 1, 2], 30)
    x = rng.normal(size=(90, 5)) + np.eye(3, 5)[y] * 4
    report = check_seed_model(x, y, rng=RNG(0))
    assert report.ok and report.warnings == ()
    assert report.cv_accuracy_mean > 0.9
    assert report.to_dict()["ok"] is True


def test_seed_check_lowers_folds_to_the_smallest_class_and_rejects_singletons() -> None:
    rng = RNG(3)
    x = rng.normal(size=(23, 3))
    y = np.array([0] * 20 + [1] * 3)
    assert check_seed_model(x, y, rng=RNG(0)).cv_folds == 3
    with pytest.raises(InputError, match=r"class\(es\) \['1'\] have a single labelled example"):
        check_seed_model(x[:21], y[:21], rng=RNG(0))
    with pytest.raises(InputError, match="at least 2"):
        check_seed_model(x[:20], y[:20], rng=RNG(0))
