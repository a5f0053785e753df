"""Bradley-Terry ensemble uncertainty on synthetic pairs whose true reward is w* . phi."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

from curate.errors import InputError
from curate.ingest.records import Record, record_id
from curate.scorers.reward import (
    BradleyTerryEnsemble,
    RewardUncertaintyScorer,
    pair_uncertainty,
    preference_features,
)

D = 8
W_STAR = np.random.default_rng(42).normal(size=D)
W_STAR /= np.linalg.norm(W_STAR)


class LookupFeaturizer:
    """Deterministic featurizer: a fixed vector per text (what a cached embedder returns)."""

    name = "lookup"

    def __init__(self) -> None:
        self.table: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def hashed_bow(texts: Sequence[str], d: int = 64) -> np.ndarray:
    """Hashed bag of words: each word adds a fixed pseudo-random vector (stable across runs)."""
    out = np.zeros((len(texts), d), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.split():
            seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            out[i] += np.random.default_rng(seed).normal(size=d)
    return out


def preference(prompt, chosen, rejected) -> Record:
    fields = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    return Record(id=record_id("preference", fields), kind="preference", fields=fields)


def candidates(prompt, completions) -> Record:
    fields = {"prompt": prompt, "completions": completions}
    return Record(id=record_id("candidates", fields), kind="candidates", fields=fields)


def labelled_pairs(rng: np.random.Generator, n: int, sharpness: float = 4.0):
    """Pairs labelled by a Bradley-Terry annotator with true reward w* . phi: returns (chosen, rejected)."""
    a, b = rng.normal(size=(n, D)), rng.normal(size=(n, D))
    a_wins = rng.random(n) < 1 / (1 + np.exp(-sharpness * (a - b) @ W_STAR))
    return np.where(a_wins[:, None], a, b), np.where(a_wins[:, None], b, a)


@pytest.fixture(scope="module")
def ensemble() -> BradleyTerryEnsemble:
    chosen, rejected = labelled_pairs(np.random.default_rng(0), 200)
    return BradleyTerryEnsemble(n_heads=8).fit(chosen, rejected, rng=np.random.default_rng(1))


@pytest.fixture(scope="module")
def held_out():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(600, D)), rng.normal(size=(600, D))
    return a, b, (a - b) @ W_STAR


def test_ensemble_predicts_held_out_preferences(ensemble, held_out):
    a, b, gap = held_out
    p = ensemble.prob(a, b)
    assert p.shape == (8, 600) and p.dtype == np.float64
    assert ((p >= 0) & (p <= 1)).all()
    accuracy = np.mean((p.mean(axis=0) > 0.5) == (gap > 0))
    assert accuracy > 0.85
    np.testing.assert_allclose(ensemble.prob(b, a), 1 - p, atol=1e-12)  # P(B > A) = 1 - P(A > B)
    assert ensemble.reward(a).shape == (8, 600)


@pytest.mark.parametrize("method", ["disagreement", "bald", "entropy"])
def test_uncertainty_is_higher_for_small_true_reward_gaps(ensemble, held_out, method):
    a, b, gap = held_out
    scores = pair_uncertainty(a, b, ensemble=ensemble, method=method)
    assert scores.shape == (600,) and scores.dtype == np.float64
    small, large = np.abs(gap) < 0.25, np.abs(gap) > 2.0
    assert small.sum() > 30 and large.sum() > 30
    assert scores[small].mean() > 3 * scores[large].mean()
    assert np.corrcoef(scores, -np.abs(gap))[0, 1] > 0.5


def _pair_records(a: np.ndarray, b: np.ndarray) -> tuple[list[Record], LookupFeaturizer]:
    featurize = LookupFeaturizer()
    records = []
    for i in range(len(a)):
        records.append(preference(f"prompt {i}", f"answer A{i}", f"answer B{i}"))
        featurize.table[f"prompt {i}\n\nanswer A{i}"] = a[i]
        featurize.table[f"prompt {i}\n\nanswer B{i}"] = b[i]
    return records, featurize


def test_scorer_on_preference_records_matches_the_pair_function(ensemble, held_out):
    a, b, _ = held_out
    records, featurize = _pair_records(a[:50], b[:50])
    scorer = RewardUncertaintyScorer(featurize, ensemble, method="bald")
    scores = scorer.score(records)
    assert scores.shape == (50,) and scores.dtype == np.float64 and not scorer.cold_start
    np.testing.assert_allclose(scores, pair_uncertainty(a[:50], b[:50], ensemble=ensemble, method="bald"), atol=1e-6)
    np.testing.assert_array_equal(scorer.most_uncertain_pair(records), np.tile([0, 1], (50, 1)))
    assert scorer.key() == f"reward_uncertainty(method=bald)@{ensemble.version_}"
    assert scorer.score([]).shape == (0,)


def test_cold_start_scores_by_response_distance():
    a = np.zeros((3, D))
    b = np.zeros((3, D))
    b[0, 0], b[1, :2], b[2, 0] = 1.0, [3.0, 4.0], 1e-3  # distances 1, 5 and 0.001
    records, featurize = _pair_records(a, b)
    for ensemble in (None, BradleyTerryEnsemble()):
        scorer = RewardUncertaintyScorer(featurize, ensemble)
        assert scorer.cold_start
        assert scorer.key() == "reward_uncertainty()@cold-start[lookup]"
        np.testing.assert_allclose(scorer.score(records), [1.0, 5.0, 1e-3], rtol=1e-6)
        assert list(np.argsort(-scorer.score(records))) == [1, 0, 2]  # dissimilar first, near-identical last


def test_too_few_pairs_stay_cold_and_enough_pairs_train():
    chosen, rejected = labelled_pairs(np.random.default_rng(3), 20)
    few = BradleyTerryEnsemble(min_pairs=8).fit(chosen[:7], rejected[:7], rng=np.random.default_rng(0))
    assert not few.is_trained and few.n_pairs_ == 7 and few.version_ == "cold-start"
    with pytest.raises(InputError, match="not trained"):
        few.prob(chosen, rejected)
    enough = BradleyTerryEnsemble(min_pairs=8).fit(chosen[:8], rejected[:8], rng=np.random.default_rng(0))
    assert enough.is_trained and enough.weights_.shape == (8, D) and enough.version_ != "cold-start"
    scorer = RewardUncertaintyScorer(LookupFeaturizer(), enough)
    assert not scorer.cold_start and scorer.key().endswith(f"@{enough.version_}")


@pytest.mark.parametrize("method", ["disagreement", "bald", "entropy"])
def test_most_uncertain_candidate_pair_has_the_smallest_true_gap(ensemble, method):
    rng = np.random.default_rng(5)
    rewards = np.array([0.0, 3.0, 3.2, -3.0])  # the closest pair is (1, 2)
    noise = rng.normal(scale=0.3, size=(4, D))
    noise -= np.outer(noise @ W_STAR, W_STAR)  # orthogonal to w*, so the true rewards are exactly `rewards`
    phi = np.outer(rewards, W_STAR) + noise
    featurize = LookupFeaturizer()
    completions = [f"completion {k}" for k in range(4)]
    for k, c in enumerate(completions):
        featurize.table[f"Which is best?\n\n{c}"] = phi[k]
    record = candidates("Which is best?", completions)
    scorer = RewardUncertaintyScorer(featurize, ensemble, method=method)
    result = scorer.pair_scores([record])
    assert result.pairs.dtype == np.intp and result.pairs.shape == (1, 2)
    assert tuple(result.pairs[0]) == (1, 2)
    every_pair = [pair_uncertainty(phi[[i]], phi[[j]], ensemble=ensemble, method=method)[0]
                  for i in range(4) for j in range(i + 1, 4)]
    assert result.scores[0] == pytest.approx(max(every_pair), rel=1e-5)
    np.testing.assert_array_equal(scorer.score([record]), result.scores)


def test_fit_is_deterministic_under_a_fixed_rng():
    chosen, rejected = labelled_pairs(np.random.default_rng(0), 60)
    e1 = BradleyTerryEnsemble(n_heads=4).fit(chosen, rejected, rng=np.random.default_rng(7))
    e2 = BradleyTerryEnsemble(n_heads=4).fit(chosen, rejected, rng=np.random.default_rng(7))
    e3 = BradleyTerryEnsemble(n_heads=4).fit(chosen, rejected, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(e1.weights_, e2.weights_)
    assert e1.version_ == e2.version_ != e3.version_
    assert np.ptp(e1.weights_, axis=0).max() > 1e-3  # the bootstrap makes the heads differ


def test_featurizer_sees_prompt_blank_line_response_and_mixed_kinds_score_together():
    seen: list[str] = []

    def recording(texts):
        seen.extend(texts)
        return hashed_bow(texts)

    chat_prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]
    records = [
        preference("Say hi", "hello there", "go away"),
        candidates(chat_prompt, ["red", "blue", [{"role": "assistant", "content": "green"}]]),
        preference("", "just this", "or that"),
    ]
    scorer = RewardUncertaintyScorer(recording)  # cold start: needs no labels
    result = scorer.pair_scores(records)
    assert seen == ["Say hi\n\nhello there", "Say hi\n\ngo away", "Be brief.\n\nName a colour.\n\nred",
                    "Be brief.\n\nName a colour.\n\nblue", "Be brief.\n\nName a colour.\n\ngreen",
                    "just this", "or that"]
    assert result.scores.shape == (3,) and np.isfinite(result.scores).all() and (result.scores > 0).all()
    assert result.pairs[0].tolist() == [0, 1] and result.pairs[2].tolist() == [0, 1]
    again = RewardUncertaintyScorer(recording).score(records)
    np.testing.assert_array_equal(again, result.scores)


def test_preference_features_feed_fit():
    a, b = np.eye(D)[:3], -np.eye(D)[:3]
    records, featurize = _pair_records(a, b)
    phi_chosen, phi_rejected = preference_features(featurize, records)
    np.testing.assert_allclose(phi_chosen, a)
    np.testing.assert_allclose(phi_rejected, b)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: BradleyTerryEnsemble(n_heads=1), "n_heads"),
        (lambda e: BradleyTerryEnsemble(l2=-1.0), "l2"),
        (lambda e: e.fit(np.zeros((10, D)), np.zeros((9, D)), rng=np.random.default_rng(0)), "same shape"),
        (lambda e: e.prob(np.zeros((2, D + 1)), np.zeros((2, D + 1))), f"trained on {D} features"),
        (lambda e: RewardUncertaintyScorer(hashed_bow, e, method="margin"), "method"),
        (lambda e: RewardUncertaintyScorer(hashed_bow, e).score(
            [Record(id="t", kind="text", fields={"text": "x"})]), "'preference' and 'candidates'"),
        (lambda e: RewardUncertaintyScorer(hashed_bow).score([candidates("p", ["only one"])]), "at least 2"),
        (lambda e: preference_features(hashed_bow, [candidates("p", ["a", "b"])]), "'preference' records"),
    ],
)
def test_invalid_input_raises_input_error(ensemble, call, message):
    with pytest.raises(InputError, match=message):
        call(ensemble)
