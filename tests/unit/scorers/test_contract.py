"""One contract suite for every scorer: shape (n,), float64, deterministic, empty input, key(), NaN rules.

Model-backed scorers run on the tiny local Llama; embedding-based ones on a deterministic bag-of-characters
featurizer, so the suite is fast and needs no network.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.ingest.formats import row_to_record
from curate.ingest.records import Record
from curate.runtime.embeddings import Embedder
from curate.scorers.base import Scorer
from curate.scorers.classifier import ClassifierUncertaintyScorer, CommitteeScorer
from curate.scorers.classifier_models import fit_classifier, fit_committee
from curate.scorers.egl import ExpectedGradientLengthScorer
from curate.scorers.embedding import DensityScorer, NoveltyScorer
from curate.scorers.perplexity import IFDScorer, PerplexityScorer
from curate.scorers.reward import BradleyTerryEnsemble, RewardUncertaintyScorer, preference_features
from tests.unit.test_embeddings import fake_encode

EMBEDDER = Embedder("fake", encode=fake_encode)

EXAMPLES = [row_to_record({"prompt": f"Question {i}: what is {i} plus {i}?", "completion": f"It is {2 * i}."})
            for i in range(5)]
EMPTY_COMPLETION = row_to_record({"prompt": "Write the answer.", "completion": ""})
TEXTS = [row_to_record({"text": t}) for t in
         ["refund my money", "card was charged twice", "app crashes", "cannot log in", "refund and crash"]]
LABELED_TEXTS = [("refund please", "billing"), ("charged twice", "billing"), ("money back", "billing"),
                 ("app crash", "bug"), ("error on start", "bug"), ("it freezes", "bug")]
PAIRS = [row_to_record({"prompt": f"q{i}", "chosen": f"good helpful answer {i}", "rejected": f"bad {i}"})
         for i in range(12)]
CANDIDATES = [row_to_record({"prompt": "Name a colour.", "completions": ["red", "blue", "a colour", "x"]})]


def _classifier(method: str) -> Scorer:
    X = EMBEDDER([t for t, _ in LABELED_TEXTS])
    y = [label for _, label in LABELED_TEXTS]
    if method in ("vote_entropy", "kl_to_mean"):
        return CommitteeScorer(featurize=EMBEDDER, committee=fit_committee(X, y, rng=np.random.default_rng(0)),
                               method=method)
    return ClassifierUncertaintyScorer(featurize=EMBEDDER, model=fit_classifier(X, y, rng=np.random.default_rng(0)),
                                       method=method)


def _reward(method: str, trained: bool = True) -> Scorer:
    ensemble = BradleyTerryEnsemble(n_heads=4)
    if trained:
        chosen, rejected = preference_features(EMBEDDER, PAIRS)
        ensemble.fit(chosen, rejected, rng=np.random.default_rng(0))
    return RewardUncertaintyScorer(featurize=EMBEDDER, ensemble=ensemble, method=method)


# name -> (factory taking the tiny LM, the records it scores, indices that must be NaN)
CASES: dict[str, tuple[Callable[[tuple], Scorer], list[Record], set[int]]] = {
    "novelty": (lambda lm: NoveltyScorer(embedder=EMBEDDER, labeled=(TEXTS[0],)), TEXTS, set()),
    "density": (lambda lm: DensityScorer(embedder=EMBEDDER, k=2), TEXTS, set()),
    "perplexity": (lambda lm: PerplexityScorer(lm=lm), [*EXAMPLES, EMPTY_COMPLETION], {5}),
    "ifd": (lambda lm: IFDScorer(lm=lm), [*EXAMPLES, EMPTY_COMPLETION], {5}),
    "egl": (lambda lm: ExpectedGradientLengthScorer(lm=lm, samples=2, max_new_tokens=3), EXAMPLES[:3], set()),
    **{m: (lambda lm, m=m: _classifier(m), TEXTS, set())
       for m in ("least_confidence", "margin", "entropy", "vote_entropy", "kl_to_mean")},
    **{f"reward_{m}": (lambda lm, m=m: _reward(m), [*PAIRS[:4], *CANDIDATES], set())
       for m in ("disagreement", "bald", "entropy")},
    "reward_cold_start": (lambda lm: _reward("disagreement", trained=False), [*PAIRS[:4], *CANDIDATES], set()),
}


@pytest.fixture(params=sorted(CASES))
def case(request, tiny_lm):
    factory, records, nan_at = CASES[request.param]
    return factory(tiny_lm[:2]), records, nan_at


def test_shape_dtype_and_nan_rule(case):
    scorer, records, nan_at = case
    scores = scorer.score(records)
    assert isinstance(scores, np.ndarray) and scores.shape == (len(records),) and scores.dtype == np.float64
    assert {i for i in range(len(records)) if np.isnan(scores[i])} == nan_at
    assert np.isfinite(np.delete(scores, list(nan_at))).all()


def test_deterministic_and_order_equivariant(case):
    scorer, records, _ = case
    first, second = scorer.score(records), scorer.score(records)
    np.testing.assert_array_equal(np.isnan(first), np.isnan(second))
    np.testing.assert_allclose(np.nan_to_num(first), np.nan_to_num(second), rtol=1e-5, atol=1e-7)
    if scorer.name in ("density", "egl"):
        return  # density depends on the scored set as a whole; EGL samples per call position
    order = list(reversed(range(len(records))))
    reordered = scorer.score([records[i] for i in order])
    np.testing.assert_allclose(np.nan_to_num(reordered), np.nan_to_num(first[order]), rtol=1e-4, atol=1e-6)


def test_empty_input_gives_an_empty_array(case):
    scorer, _, _ = case
    out = scorer.score([])
    assert out.shape == (0,) and out.dtype == np.float64


def test_key_names_the_scorer_and_is_stable(case):
    scorer, _, _ = case
    assert isinstance(scorer, Scorer)
    assert scorer.key().startswith(scorer.name) and scorer.key() == scorer.key()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(alphabet="abcdefgh xyz", min_size=1, max_size=30).filter(str.strip), min_size=1,
                      max_size=12))
def test_embedding_and_classifier_scorers_on_arbitrary_texts(texts):
    records = [row_to_record({"text": t}) for t in texts]
    for scorer in (NoveltyScorer(embedder=EMBEDDER, labeled=(TEXTS[0],)), DensityScorer(embedder=EMBEDDER),
                   _classifier("margin"), _classifier("kl_to_mean")):
        scores = scorer.score(records)
        assert scores.shape == (len(records),) and np.isfinite(scores).all()
