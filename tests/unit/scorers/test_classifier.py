"""Classifier uncertainty on a synthetic two-blob problem, warm start, committees and BADGE embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from curate.errors import InputError
from curate.ingest.records import Record, record_id
from curate.scorers.classifier import ClassifierUncertaintyScorer, CommitteeScorer
from curate.scorers.classifier_models import badge_embeddings, fit_classifier, fit_committee, stratified_bootstrap

CLASSES = ("neg", "pos", "neutral")  # "neutral" never appears in training: its column must be zero-filled
D = 4


class LookupFeaturizer:
    """Deterministic featurizer: a fixed vector per text, as an embedder cache would return."""

    name = "lookup"

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.calls = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def text_record(text: str) -> Record:
    return Record(id=record_id("text", {"text": text}), kind="text", fields={"text": text})


def blobs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[str]]:
    """Two Gaussian blobs at x0 = -3 (neg) and x0 = +3 (pos); the boundary is x0 = 0."""
    centre = np.zeros(D)
    centre[0] = 3.0
    X = np.concatenate([rng.normal(size=(n, D)) - centre, rng.normal(size=(n, D)) + centre])
    return X, ["neg"] * n + ["pos"] * n


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X, y = blobs(rng, 40)
    boundary = rng.normal(scale=0.3, size=(6, D))
    boundary[:, 0] = rng.uniform(-0.2, 0.2, size=6)
    deep = rng.normal(scale=0.3, size=(6, D))
    deep[:, 0] = np.array([-7.0, -6.0, -8.0, 7.0, 6.0, 8.0])
    pool = np.concatenate([boundary, deep])
    table = {f"item {i}": v for i, v in enumerate(pool)}
    records = [text_record(f"item {i}") for i in range(len(pool))]
    return X, y, records, LookupFeaturizer(table)


@pytest.fixture(scope="module")
def model(data):
    X, y, _, _ = data  # unit-variance features, unlike unit-norm embeddings: the weaker pull suits them
    return fit_classifier(X, y, classes=CLASSES, rng=np.random.default_rng(1), C=1.0)


@pytest.mark.parametrize("method", ["least_confidence", "margin", "entropy"])
def test_boundary_points_score_higher_than_deep_points(data, model, method):
    _, _, records, featurize = data
    scorer = ClassifierUncertaintyScorer(featurize, model, method=method)
    scores = scorer.score(records)
    assert scores.dtype == np.float64 and scores.shape == (12,)
    assert scores[:6].min() > scores[6:].max()
    assert scores[6:].max() < 0.05 and scores[:6].min() > 0.3


def test_unseen_schema_class_gets_a_zero_column(data, model):
    _, _, records, featurize = data
    probs = ClassifierUncertaintyScorer(featurize, model).predict_proba(records)
    assert probs.shape == (12, 3)
    np.testing.assert_array_equal(probs[:, 2], 0.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (probs[6:9, 0] > 0.99).all() and (probs[9:, 1] > 0.99).all()


def test_key_reflects_method_and_model_version(data, model):
    _, _, _, featurize = data
    default = ClassifierUncertaintyScorer(featurize, model)
    assert default.key() == f"classifier_uncertainty()@{model.version}"
    assert ClassifierUncertaintyScorer(featurize, model, method="entropy").key().startswith(
        "classifier_uncertainty(method=entropy)@")
    other = fit_classifier(data[0][::2], data[1][::2], classes=CLASSES, rng=np.random.default_rng(1))
    assert ClassifierUncertaintyScorer(featurize, other).key() != default.key()


def test_warm_start_starts_from_previous_coefficients(data, model):
    X, y, _, _ = data
    again = fit_classifier(X, y, previous=model, rng=np.random.default_rng(1), C=1.0)
    assert again.warm_started and not model.warm_started
    assert again.classes == CLASSES  # inherited from the previous model
    assert again.n_iter <= 1 < model.n_iter  # already at the optimum: (almost) nothing to do
    np.testing.assert_allclose(again.estimator.coef_, model.estimator.coef_, atol=1e-6)


def test_warm_start_converges_in_fewer_iterations_on_the_next_round(model):
    X2, y2 = blobs(np.random.default_rng(5), 60)
    X1, y1 = blobs(np.random.default_rng(0), 40)
    X, y = np.concatenate([X1, X2]), y1 + y2
    cold = fit_classifier(X, y, classes=CLASSES, rng=np.random.default_rng(2))
    warm = fit_classifier(X, y, classes=CLASSES, previous=model, rng=np.random.default_rng(2))
    assert warm.warm_started and not cold.warm_started
    assert warm.n_iter < cold.n_iter
    # Same (strictly convex) objective, so the same optimum up to the solver's tolerance.
    np.testing.assert_allclose(warm.predict_proba(X), cold.predict_proba(X), atol=1e-2)


def test_warm_start_across_a_new_class_and_a_new_feature_size(model):
    rng = np.random.default_rng(3)
    X, y = blobs(rng, 30)
    third = rng.normal(size=(30, D))
    third[:, 1] += 6.0
    grown = fit_classifier(np.concatenate([X, third]), y + ["neutral"] * 30, previous=model, rng=rng)
    assert grown.warm_started and grown.classes == CLASSES
    probe = np.zeros((1, D))
    probe[0, 1] = 8.0
    assert grown.predict_proba(probe)[0, 2] > 0.9
    wider = fit_classifier(np.concatenate([X, X[:, :1]], axis=1), y, previous=model, rng=rng)
    assert not wider.warm_started and wider.n_features == D + 1


def test_committee_members_differ_and_are_deterministic(data):
    X, y, records, featurize = data
    c1 = fit_committee(X, y, classes=CLASSES, n_members=4, rng=np.random.default_rng(7))
    c2 = fit_committee(X, y, classes=CLASSES, n_members=4, rng=np.random.default_rng(7))
    c3 = fit_committee(X, y, classes=CLASSES, n_members=4, rng=np.random.default_rng(8))
    versions = [m.version for m in c1.members]
    assert len(set(versions)) == 4
    coefs = np.stack([m.estimator.coef_ for m in c1.members])
    assert np.ptp(coefs, axis=0).max() > 1e-3
    assert versions == [m.version for m in c2.members] and c1.version == c2.version
    assert c3.version != c1.version
    probs = c1.predict_proba(featurize([r.fields["text"] for r in records]))
    assert probs.shape == (4, 12, 3)
    np.testing.assert_array_equal(CommitteeScorer(featurize, c1).score(records),
                                  CommitteeScorer(featurize, c2).score(records))


@pytest.mark.parametrize("method", ["vote_entropy", "kl_to_mean"])
def test_committee_disagrees_more_at_the_boundary(data, method):
    X, y, records, featurize = data
    committee = fit_committee(X, y, classes=CLASSES, n_members=7, rng=np.random.default_rng(11))
    scores = CommitteeScorer(featurize, committee, method=method).score(records)
    assert scores.shape == (12,) and scores.dtype == np.float64
    np.testing.assert_allclose(scores[6:], 0.0, atol=1e-5)
    assert scores[:6].min() > 1e-3  # bootstrap members put the boundary in different places
    assert scores[:6].min() > 100 * scores[6:].max()


def test_stratified_bootstrap_keeps_class_counts():
    codes = np.array([0] * 9 + [1] * 3)
    idx = stratified_bootstrap(codes, rng=np.random.default_rng(0))
    assert idx.shape == (12,) and (np.diff(idx) >= 0).all()
    assert (codes[idx] == 0).sum() == 9 and (codes[idx] == 1).sum() == 3


def test_badge_embeddings_hand_value_and_shape():
    g = badge_embeddings([[0.7, 0.3]], [[1.0, 2.0]])
    assert g.shape == (1, 4) and g.dtype == np.float32
    np.testing.assert_allclose(g[0], [-0.3, -0.6, 0.3, 0.6], rtol=1e-6)


def test_badge_embeddings_are_near_zero_for_confident_predictions(data, model):
    _, _, records, featurize = data
    g = ClassifierUncertaintyScorer(featurize, model).gradient_embeddings(records)
    assert g.shape == (12, 3 * D)
    norms = np.linalg.norm(g, axis=1)
    assert norms[6:].max() < 0.05 * norms[:6].min()
    assert norms[6:].max() < 1e-2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda X, y, f, m: fit_classifier(X, ["neg"] * len(X), classes=CLASSES, rng=np.random.default_rng(0)),
         "at least 2 classes"),
        (lambda X, y, f, m: fit_classifier(X, y[:-1] + ["spam"], classes=CLASSES, rng=np.random.default_rng(0)),
         "'spam'"),
        (lambda X, y, f, m: fit_classifier(X, y[:3], rng=np.random.default_rng(0)), "same length"),
        (lambda X, y, f, m: fit_committee(X, y, n_members=1, rng=np.random.default_rng(0)), "n_members"),
        (lambda X, y, f, m: ClassifierUncertaintyScorer(f, m, method="bald"), "method"),
        (lambda X, y, f, m: ClassifierUncertaintyScorer(f, m).score(
            [Record(id="x", kind="preference", fields={})]), "'text' records"),
        (lambda X, y, f, m: ClassifierUncertaintyScorer(lambda t: np.zeros((1, D)), m).score(
            [text_record("a"), text_record("b")]), r"shape \(2, d\)"),
        (lambda X, y, f, m: m.predict_proba(np.zeros((2, D + 1))), "trained on 4 features"),
        (lambda X, y, f, m: badge_embeddings([[0.5, 0.5]], np.zeros((2, 3))), "same n"),
    ],
)
def test_invalid_input_raises_input_error(data, model, call, message):
    X, y, _, featurize = data
    with pytest.raises(InputError, match=message):
        call(X, y, featurize, model)


def test_empty_pool_gives_empty_scores_without_calling_the_featurizer(data, model):
    _, _, _, featurize = data
    before = featurize.calls
    out = ClassifierUncertaintyScorer(featurize, model).score([])
    assert out.shape == (0,) and out.dtype == np.float64 and featurize.calls == before


def test_curate_fits_the_inverse_l2_strength_the_selection_suite_measured(data):
    """The recipes' classifiers, the benchmark's loops and `curate bench label-efficiency --C` use one value, so the
    README's ratios are those of the classifier curate fits."""
    import inspect

    from curate.bench.label_efficiency import BenchConfig
    from curate.bench.label_efficiency_loops import LoopConfig
    from curate.cli.bench import label_efficiency_cmd
    from curate.scorers.classifier_models import DEFAULT_C, fit_committee

    X, y, _, _ = data
    assert DEFAULT_C == 10.0
    assert fit_classifier(X, y, rng=np.random.default_rng(0)).estimator.C == DEFAULT_C
    committee = fit_committee(X, y, n_members=2, rng=np.random.default_rng(0))
    assert {m.estimator.C for m in committee.members} == {DEFAULT_C}
    assert BenchConfig(task="classify").C == LoopConfig(budgets=(10,)).C == DEFAULT_C
    assert inspect.signature(label_efficiency_cmd).parameters["c_reg"].default == DEFAULT_C


def _two_blocks(rng: np.random.Generator, n: int, signal_in: str) -> tuple[np.ndarray, list[str]]:
    """8 base columns and 4 word columns; the class shows in one block only, the other is noise."""
    y = rng.integers(0, 3, n)
    base, words = rng.normal(size=(n, 8)), rng.normal(size=(n, 4))
    block = base if signal_in == "base" else words
    block[:, 0] += 3.0 * (y == 1)
    block[:, 1] += 3.0 * (y == 2)
    return np.hstack([base, words]), [("a", "b", "c")[v] for v in y]


@pytest.mark.parametrize(("signal_in", "used"), [("base", 8), ("words", 12)])
def test_the_classifier_reads_the_word_columns_only_where_they_help(signal_in, used):
    rng = np.random.default_rng(0)
    X, y = _two_blocks(rng, 300, signal_in)
    model = fit_classifier(X, y, rng=rng, base=-4)  # the last 4 columns are the word columns
    assert model.columns_used == used and model.n_features == 12
    if used == 8:  # word columns left out have weight 0, so the model still takes all 12 columns
        assert np.all(model.estimator.coef_[:, 8:] == 0.0)
        only_base = fit_classifier(X[:, :8], y, rng=np.random.default_rng(1))
        np.testing.assert_allclose(model.predict_proba(X), only_base.predict_proba(X[:, :8]), atol=1e-4)
    assert np.mean(model.predict_proba(X).argmax(axis=1) == [("a", "b", "c").index(v) for v in y]) > 0.8
    assert fit_classifier(X, y, rng=rng).columns_used == 12  # no base given: every column


def test_column_choice_keeps_the_base_when_labels_are_too_few_or_tie():
    from curate.scorers.feature_choice import choose_columns

    rng = np.random.default_rng(0)
    X, y = _two_blocks(rng, 300, "words")
    codes = np.array([("a", "b", "c").index(v) for v in y])
    assert choose_columns(X, codes, (8, 12), C=10.0, rng=rng) == 12
    assert choose_columns(X[:5], codes[:5], (8, 12), C=10.0, rng=rng) == 8  # too few to cross-validate
    same = np.hstack([X[:, :8], np.zeros((300, 4))])  # zero word columns: the same accuracy, the base wins
    assert choose_columns(same, codes, (8, 12), C=10.0, rng=rng) == 8
