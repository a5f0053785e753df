"""The feature-choice check: fixed options, the product's cross-validated choice and a one-SE rule on subsets."""

from __future__ import annotations

import numpy as np

from curate.bench.feature_choice_check import choice_report, one_se_choice


def _data(n: int, words_help: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    base = rng.normal(size=(n, 4)) + 0.6 * np.eye(3, 4)[y]  # a weak signal in the base columns
    words = rng.normal(size=(n, 3)) + (3.0 * np.eye(3)[y] if words_help else 0.0)
    return np.hstack([base, words]), y


def test_words_that_carry_the_class_are_read_and_noise_words_are_not():
    X, y = _data(900, True, 0)
    Xt, yt = _data(600, True, 1)
    seen: list[tuple[int, int]] = []
    report = choice_report(X, y, Xt, yt, base=4, C=10.0, sizes=(60, 300, 5000), draws=3,
                           on_draw=lambda *a: seen.append(a))
    assert report["sizes"] == [60, 300]  # 5000 > the pool: left out
    assert seen == [(i, 6) for i in range(1, 7)]
    assert all(w > b + 0.1 for w, b in zip(report["words"], report["base"], strict=True))
    assert report["cv_reads_words"] == [1.0, 1.0] and report["cv"] == report["words"]
    assert report["one_se_reads_words"][-1] == 1.0

    X, y = _data(900, False, 2)
    Xt, yt = _data(600, False, 3)
    noise = choice_report(X, y, Xt, yt, base=4, C=10.0, sizes=(300,), draws=4)
    assert noise["one_se_reads_words"][0] <= noise["cv_reads_words"][0]  # the one-SE rule asks for more evidence
    assert abs(noise["cv"][0] - noise["base"][0]) < 0.05


def test_one_se_choice_with_too_few_labels_keeps_the_base_columns():
    X, y = _data(5, True, 4)
    assert one_se_choice(X, y, 4, C=10.0, rng=np.random.default_rng(0)) == (False, 0.0)
    X, y = _data(300, True, 5)
    words, gain = one_se_choice(X, y, 4, C=10.0, rng=np.random.default_rng(0))
    assert words and gain > 0.1
