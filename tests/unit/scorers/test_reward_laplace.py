"""Laplace Bradley-Terry reward model, TF-IDF-SVD features and the reward_variance scorer."""

from __future__ import annotations

import numpy as np
import pytest

from curate.errors import InputError
from curate.ingest.records import Record, record_id
from curate.runtime.catalog import scorer_names
from curate.runtime.tfidf_svd import TfidfSvdFeaturizer
from curate.scorers.base import BuildContext
from curate.scorers.reward_laplace import LaplaceBradleyTerry, RewardVarianceScorer, diff_scale

D = 6
W_STAR = np.random.default_rng(3).normal(size=D)


def _pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, D)), rng.normal(size=(n, D))
    a_wins = (a - b) @ W_STAR > 0
    return np.where(a_wins[:, None], a, b), np.where(a_wins[:, None], b, a)


def _record(prompt: str, chosen: str, rejected: str) -> Record:
    fields = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    return Record(id=record_id("preference", fields), kind="preference", fields=fields)


def test_laplace_learns_held_out_preferences_and_its_variance_shrinks():
    chosen, rejected = _pairs(300, 0)
    model = LaplaceBradleyTerry().fit(chosen, rejected)
    a, b = np.random.default_rng(9).normal(size=(500, D)), np.random.default_rng(10).normal(size=(500, D))
    truth = (a - b) @ W_STAR > 0
    assert np.mean((model.margin(a, b) > 0) == truth) > 0.9
    p = model.prob(a, b)
    assert p.shape == (500,) and np.all((p >= 0) & (p <= 1))
    few = LaplaceBradleyTerry().fit(chosen[:20], rejected[:20])
    assert np.all(few.variance(a, b) > model.variance(a, b))  # more labels, less epistemic variance
    assert model.covariance_ is not None and model.covariance_.shape == (D, D)
    assert model.version_ != few.version_


def test_laplace_cold_start_and_bad_input():
    chosen, rejected = _pairs(5, 1)
    model = LaplaceBradleyTerry(min_pairs=8).fit(chosen, rejected)
    assert not model.is_trained and model.version_ == "cold-start"
    with pytest.raises(InputError, match="not trained"):
        model.variance(chosen, rejected)
    with pytest.raises(InputError, match="prior precision"):
        LaplaceBradleyTerry(l2=0.0)
    with pytest.raises(InputError, match="same shape|one shape"):
        LaplaceBradleyTerry().fit(chosen, rejected[:, :2])


def test_tfidf_svd_is_deterministic_and_fits_on_pair_differences():
    texts = [f"answer {i} with words {i % 5} and more {i % 3}" for i in range(40)]
    others = [f"reply {i} short {i % 4}" for i in range(40)]
    f1 = TfidfSvdFeaturizer(dim=8).fit(texts, paired_with=others)
    f2 = TfidfSvdFeaturizer(dim=8).fit(texts, paired_with=others)
    x = f1(texts[:5])
    assert x.shape == (5, 8) and np.array_equal(x, f2(texts[:5]))
    assert TfidfSvdFeaturizer(dim=100).fit(texts[:6])(texts[:2]).shape == (2, 5)  # at most texts - 1 columns
    with pytest.raises(InputError, match="fit"):
        TfidfSvdFeaturizer()(texts)
    with pytest.raises(InputError, match="partner"):
        TfidfSvdFeaturizer().fit(texts, paired_with=others[:3])
    assert diff_scale(np.ones((3, 2)), np.ones((3, 2))) == 1.0


def test_reward_variance_scorer_cold_start_then_trained(tmp_path):
    assert "reward_variance" in scorer_names()
    pool = [_record(f"q{i}", f"polite helpful answer number {i}", f"rude short reply {i} go away")
            for i in range(30)]
    pool.append(_record("same", "identical text", "identical text"))
    cold = RewardVarianceScorer.build(BuildContext(cache_dir=tmp_path))
    scores = cold.score(pool)
    assert scores.shape == (31,) and scores[-1] == pytest.approx(0.0) and np.all(scores[:-1] > 0)
    assert cold.model_version().startswith("cold-start")
    labelled = [_record(f"l{i}", f"polite helpful answer {i} thanks", f"rude reply {i} whatever") for i in range(20)]
    warm = RewardVarianceScorer.build(BuildContext(cache_dir=tmp_path, labeled=labelled))
    trained = warm.score(pool)
    assert trained.shape == (31,) and np.all(trained >= 0)
    assert warm.model_version().startswith("laplace-bt[20:")
    assert warm.key() != cold.key()  # the labelled pairs' digest is part of the key


def test_reward_variance_scores_a_candidates_record_by_its_most_uncertain_pair(tmp_path):
    fields = {"prompt": "p", "completions": ["same words here", "same words here", "entirely different text"]}
    rec = Record(id=record_id("candidates", fields), kind="candidates", fields=fields)
    pref = _record("p", "same words here", "entirely different text")
    scorer = RewardVarianceScorer.build(BuildContext(cache_dir=tmp_path))
    s = scorer.score([rec, pref, _record("p2", "another pair of words", "more other words")])
    assert s[0] == pytest.approx(s[1])  # the candidates' best pair is the preference record's pair


def test_reward_variance_lm_reads_a_causal_lms_features_through_the_workspace_cache(tmp_path, caplog):
    import logging

    from curate.runtime.catalog import build_scorer
    from tests.tiny_lm import build_tiny_lm

    lm = str(build_tiny_lm(tmp_path / "lm"))
    pool = [_record(f"q{i}", f"the cat sat on the mat {i}", f"the dog ran to the door {i}") for i in range(12)]
    pool.append(_record("same", "identical text", "identical text"))
    cold = build_scorer("reward_variance_lm", BuildContext(cache_dir=tmp_path / "cache", model=lm))
    with caplog.at_level(logging.INFO, logger="curate"):
        scores = cold.score(pool)
    # one scoring call for the whole set: the features' progress is logged (the CLI shows the curate logger)
    assert "reward_variance: LM features of responses: 25 / 25" in caplog.text  # 26 responses, 2 identical
    assert scores.shape == (13,) and scores[-1] == pytest.approx(0.0) and np.all(scores[:-1] > 0)
    assert cold.model_version() == "cold-start[lm]"
    assert list((tmp_path / "cache" / "embeddings").iterdir())  # the features are cached in the workspace cache
    labelled = [_record(f"l{i}", f"the cat sat on the mat {i} {i}", f"the dog ran {i}") for i in range(10)]
    warm = build_scorer("reward_variance_lm", BuildContext(cache_dir=tmp_path / "cache", model=lm, labeled=labelled))
    trained = warm.score(pool)
    assert trained.shape == (13,) and np.all(trained >= 0) and trained[-1] == pytest.approx(0.0)
    assert warm.model_version().startswith("laplace-bt-lm[10:") and warm.key() != cold.key()
    tfidf = build_scorer("reward_variance", BuildContext(cache_dir=tmp_path / "cache", labeled=labelled))
    assert not np.allclose(tfidf.score(pool), trained)  # other features, other variances
    with pytest.raises(InputError, match="features must be tfidf or lm"):
        RewardVarianceScorer(features="bert")
