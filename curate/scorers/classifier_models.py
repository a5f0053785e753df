"""The classifiers behind uncertainty scoring: a logistic regression, a bagged committee, BADGE embeddings.

For ``text`` records labelled with a label schema's classes.

A multinomial :class:`~sklearn.linear_model.LogisticRegression` (L2, ``lbfgs``) is trained on features from a
featurizer you pass in, ``featurize(texts) -> (n, d)``; this module never loads a model itself. Probabilities
are always over the **schema's** classes in schema order: a class with no labelled example yet gets
probability 0 (zero-filled column), so scores and BADGE embeddings keep the same width from round to round.

Warm start: ``fit_classifier(..., previous=model)`` starts L-BFGS from the previous round's coefficients
(mapped by class name to the classes seen now; classes new this round start at 0) instead of from zeros,
via scikit-learn's ``warm_start=True``. The objective is strictly convex, so the optimum is the same as a cold
fit; warm start only reaches it in fewer iterations (``ClassifierModel.n_iter``). The L2 penalty still pulls
towards 0, not towards the previous coefficients. If the feature dimension changed, the fit is cold
(``warm_started=False``).

Cold start: with no model there is nothing to be uncertain about; use a diversity selector (k-center or
clusters) for the first round, then fit once two classes have labels.

Pieces: :func:`fit_classifier` / :class:`ClassifierModel`, :func:`fit_committee` / :class:`Committee`
(bagged members on stratified bootstrap resamples), :class:`ClassifierUncertaintyScorer`,
:class:`CommitteeScorer` and :func:`badge_embeddings` (for the BADGE selector).
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

from curate.errors import InputError
from curate.scorers.feature_choice import choose_columns
from curate.scorers.uncertainty import check_probs

FloatArray = npt.NDArray[np.float64]

#: Inverse L2 strength of every classifier curate fits (scorers, committees, the loop's model, the benchmarks).
#: Sentence embeddings are unit-norm (each of MiniLM's 384 dimensions has a standard deviation near 0.05), so C=1
#: pulls the weights hard towards 0. At 1,500 labels, C=10 over C=1 (benchmarks/results/selection_classify.json, 10
#: seeds): prefilter-cluster-margin +3.0 / -0.2 / -0.5 points of accuracy on banking77 / TREC-6 / AG News, random
#: sampling +8.1 / +0.4 / -1.4; the selection suite's ratios are measured at this value.
DEFAULT_C: Final = 10.0


def classifier_c(featurize: object, C: float = DEFAULT_C) -> float:
    """The inverse L2 strength for features from ``featurize``: ``C * featurize.c_scale`` when it declares one,
    else ``C``.

    ``<base>+words`` embedders (:mod:`curate.runtime.word_features`) declare ``1 + weight**2``: their unit rows
    shrink the embedding part by ``1 / sqrt(1 + weight**2)``, and a logistic regression on rows scaled by ``s``
    with ``C * ...`` is the one on unscaled rows with ``C * s**2``: so the embedding keeps the strength
    :data:`DEFAULT_C` was measured at, while cosine code still sees unit rows.

    >>> classifier_c(object()), classifier_c(type("F", (), {"c_scale": 1.25})())
    (10.0, 12.5)
    """
    return float(C) * float(getattr(featurize, "c_scale", 1.0))


def check_features(X: npt.ArrayLike, *, who: str, n_features: int | None = None) -> FloatArray:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{who}: X must be a numeric (n, d) array; conversion failed ({exc}).") from exc
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise InputError(f"{who}: X must have shape (n, d); got shape {arr.shape}.")
    if n_features is not None and arr.shape[1] != n_features:
        raise InputError(f"{who}: the model was trained on {n_features} features; got X of shape {arr.shape}. "
                         "Featurize with the same featurizer, or refit.")
    if not np.isfinite(arr).all():
        raise InputError(f"{who}: X contains NaN or inf; features must be finite.")
    return arr


def _digest(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        h.update(part)
        h.update(b"\x00")
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- single model


@dataclass(frozen=True, eq=False)
class ClassifierModel:
    """A fitted classifier plus what scoring needs to know about it.

    Attributes:
        estimator: the fitted ``LogisticRegression``; its ``classes_`` are indices into ``classes``.
        classes: the label schema's classes, in the order of probability columns.
        n_features: feature dimension ``d`` it was trained on.
        n_iter: L-BFGS iterations the fit took.
        warm_started: whether the fit started from a previous model's coefficients.
        version: hash of the fitted coefficients and classes; the scorers' model version.
        columns_used: the leading feature columns the model reads (the rest have weight 0): ``n_features``, or
            fewer when cross-validation found the word columns of ``<base>+words`` features did not help
            (:mod:`curate.scorers.feature_choice`).
    """

    estimator: LogisticRegression
    classes: tuple[str, ...]
    n_features: int
    n_iter: int
    warm_started: bool
    version: str
    columns_used: int = 0

    def predict_proba(self, X: npt.ArrayLike) -> FloatArray:
        """Probabilities ``(n, K)`` over the schema's classes; columns of classes unseen in training are 0."""
        arr = check_features(X, who="ClassifierModel.predict_proba", n_features=self.n_features)
        out = np.zeros((arr.shape[0], len(self.classes)), dtype=np.float64)
        out[:, self.estimator.classes_.astype(np.intp)] = self.estimator.predict_proba(arr)
        return out

    def class_weights(self) -> FloatArray:
        """Per-class logit weights ``(K, d + 1)`` (last column: intercept); zero rows for unseen classes.

        A binary model's ``w`` is written as ``-w/2`` and ``+w/2`` for its two classes (the same softmax).
        """
        est = self.estimator
        seen = est.classes_.astype(np.intp)
        rows = np.concatenate([est.coef_, est.intercept_[:, None]], axis=1)
        if len(seen) == 2:
            rows = np.stack([-rows[0] / 2.0, rows[0] / 2.0])
        out = np.zeros((len(self.classes), self.n_features + 1), dtype=np.float64)
        out[seen] = rows
        return out


def _encode_labels(y: Sequence[str], classes: tuple[str, ...], *, who: str) -> npt.NDArray[np.intp]:
    index = {c: i for i, c in enumerate(classes)}
    codes = np.empty(len(y), dtype=np.intp)
    for i, label in enumerate(y):
        if label not in index:
            raise InputError(f"{who}: label {label!r} of example {i} is not one of the schema's classes "
                             f"{list(classes)}. Fix the label or pass the full class list as classes=... .")
        codes[i] = index[label]
    return codes


def _warm_init(previous: ClassifierModel, classes: tuple[str, ...], seen: npt.NDArray[np.intp],
               ) -> tuple[FloatArray, FloatArray]:
    """Previous coefficients mapped by class name onto the classes seen now: ``(coef_, intercept_)``."""
    old = previous.class_weights()
    old_index = {c: i for i, c in enumerate(previous.classes)}
    rows = np.zeros((len(seen), previous.n_features + 1), dtype=np.float64)
    for j, c in enumerate(seen):
        if classes[c] in old_index:
            rows[j] = old[old_index[classes[c]]]
    if len(seen) == 2:
        rows = (rows[1] - rows[0])[None, :]
    return np.ascontiguousarray(rows[:, :-1]), np.ascontiguousarray(rows[:, -1])


def _fit(X: FloatArray, codes: npt.NDArray[np.intp], classes: tuple[str, ...], previous: ClassifierModel | None,
         rng: np.random.Generator, C: float, max_iter: int) -> ClassifierModel:
    seen = np.unique(codes)
    est = LogisticRegression(C=C, max_iter=max_iter, warm_start=True,
                             random_state=int(rng.integers(2**31 - 1)))
    warm = previous is not None and previous.n_features == X.shape[1]
    if warm and previous is not None:
        est.coef_, est.intercept_ = _warm_init(previous, classes, seen)
    with warnings.catch_warnings():  # many classes with few labels each is the usual seed set, not a regression
        warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
        est.fit(X, codes)
    coef = np.ascontiguousarray(est.coef_, dtype=np.float64)
    version = _digest(repr(classes).encode(), seen.tobytes(), coef.tobytes(),
                      np.ascontiguousarray(est.intercept_, dtype=np.float64).tobytes())
    return ClassifierModel(estimator=est, classes=classes, n_features=X.shape[1], n_iter=int(np.max(est.n_iter_)),
                           warm_started=warm, version=version, columns_used=X.shape[1])


def _prepare(X: npt.ArrayLike, y: Sequence[str], classes: Sequence[str] | None, previous_classes: tuple[str, ...]
             | None, *, who: str) -> tuple[FloatArray, npt.NDArray[np.intp], tuple[str, ...]]:
    arr = check_features(X, who=who)
    if len(y) != arr.shape[0]:
        raise InputError(f"{who}: X and y must be the same length, but X has {arr.shape[0]} rows and y has "
                         f"{len(y)} labels.")
    if classes is not None:
        schema = tuple(classes)
    elif previous_classes is not None:
        schema = previous_classes
    else:
        schema = tuple(sorted(set(y)))
    if len(set(schema)) != len(schema) or len(schema) < 2:
        raise InputError(f"{who}: classes must be at least 2 distinct names; got {list(schema)}.")
    codes = _encode_labels(y, schema, who=who)
    if len(np.unique(codes)) < 2:
        raise InputError(f"{who}: training needs labelled examples of at least 2 classes; got {len(codes)} "
                         f"example(s) of {len(np.unique(codes))} class(es). Label more examples first "
                         "(until then, pick the first batch with a diversity selector).")
    return arr, codes, schema


def fit_classifier(X: npt.ArrayLike, y: Sequence[str], *, classes: Sequence[str] | None = None,
                   previous: ClassifierModel | None = None, rng: np.random.Generator, C: float = DEFAULT_C,
                   max_iter: int = 200, base: int | None = None) -> ClassifierModel:
    """Fit an L2 logistic regression on features, warm-started from ``previous`` if given.

    Args:
        X: ``(n, d)`` features of the labelled examples.
        y: ``n`` class names, each one of ``classes``.
        classes: the label schema's classes (the probability columns); default: ``previous.classes``, else
            the sorted distinct labels.
        previous: last round's model; its coefficients are the starting point (see the module docstring).
        rng: source of the estimator's ``random_state`` (``lbfgs`` itself is deterministic).
        C: inverse L2 regularisation strength (:data:`DEFAULT_C`).
        max_iter: L-BFGS iteration cap.
        base: ``X``'s columns before its word columns (negative: counted from the end; see
            :mod:`curate.scorers.feature_choice`). When given, the model reads either those columns alone or all of
            them, whichever predicts the labels better by cross-validation; the word columns it does not read get
            weight 0, so the model still takes ``(n, d)`` features. None: all columns.

    Returns:
        The fitted :class:`ClassifierModel`.

    Raises:
        InputError: bad shapes, a label outside ``classes``, or fewer than 2 distinct labelled classes.
    """
    arr, codes, schema = _prepare(X, y, classes, previous.classes if previous else None, who="fit_classifier")
    width = arr.shape[1]
    if base is None or not 0 < base % width < width:
        return _fit(arr, codes, schema, previous, rng, C, max_iter)
    used = choose_columns(arr, codes, (base % width, width), C=C, rng=rng)
    if used == width:
        return _fit(arr, codes, schema, previous, rng, C, max_iter)
    masked = arr.copy()
    masked[:, used:] = 0.0  # a zero column gets weight 0 under the L2 penalty: the base-columns model, full width
    return dataclasses.replace(_fit(masked, codes, schema, previous, rng, C, max_iter), columns_used=used)


# --------------------------------------------------------------------------------------------- committee


@dataclass(frozen=True, eq=False)
class Committee:
    """Bagged classifiers over the same classes; ``predict_proba`` stacks their outputs ``(m, n, K)``."""

    members: tuple[ClassifierModel, ...]

    @property
    def classes(self) -> tuple[str, ...]:
        """The schema's classes (same for every member)."""
        return self.members[0].classes

    @property
    def version(self) -> str:
        """Hash of the members' versions."""
        return _digest(*(m.version.encode() for m in self.members))

    def predict_proba(self, X: npt.ArrayLike) -> FloatArray:
        """Member probabilities ``(m, n, K)`` over the schema's classes."""
        return np.stack([m.predict_proba(X) for m in self.members])


def stratified_bootstrap(codes: npt.NDArray[np.intp], *, rng: np.random.Generator) -> npt.NDArray[np.intp]:
    """Indices of a bootstrap resample drawn per class (each class keeps its count), sorted ascending."""
    parts = [rng.choice(np.flatnonzero(codes == c), size=int(np.sum(codes == c)), replace=True)
             for c in np.unique(codes)]
    return np.sort(np.concatenate(parts)).astype(np.intp)


def fit_committee(X: npt.ArrayLike, y: Sequence[str], *, classes: Sequence[str] | None = None, n_members: int = 5,
                  previous: Committee | None = None, rng: np.random.Generator, C: float = DEFAULT_C,
                  max_iter: int = 200) -> Committee:
    """Fit ``n_members`` classifiers, each on a stratified bootstrap resample of ``(X, y)``.

    The resample is drawn per class, so every member sees every class the labelled set has (a plain bootstrap
    can drop a rare class and break the fit). Member ``i`` warm-starts from ``previous.members[i]`` if present.
    The same ``rng`` state gives the same committee.

    Args:
        X: ``(n, d)`` features of the labelled examples.
        y: ``n`` class names.
        classes: the label schema's classes (see :func:`fit_classifier`).
        n_members: committee size, at least 2.
        previous: last round's committee, for warm starts.
        rng: draws the resamples.
        C: inverse L2 regularisation strength (:data:`DEFAULT_C`).
        max_iter: L-BFGS iteration cap.

    Returns:
        The fitted :class:`Committee`.

    Raises:
        InputError: as :func:`fit_classifier`, or ``n_members < 2``.
    """
    if not isinstance(n_members, int) or n_members < 2:
        raise InputError(f"fit_committee: n_members must be an integer >= 2; got {n_members!r}.")
    prev_classes = previous.classes if previous else None
    arr, codes, schema = _prepare(X, y, classes, prev_classes, who="fit_committee")
    members = []
    for i in range(n_members):
        idx = stratified_bootstrap(codes, rng=rng)
        prev = previous.members[i] if previous is not None and i < len(previous.members) else None
        members.append(_fit(arr[idx], codes[idx], schema, prev, rng, C, max_iter))
    return Committee(members=tuple(members))


# --------------------------------------------------------------------------------------------- BADGE


def badge_embeddings(probs: npt.ArrayLike, features: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """BADGE gradient embeddings: ``g_i = (p_i - onehot(argmax p_i)) outer x_i``, flattened class-major.

    This is the gradient of the cross-entropy loss with respect to the last (linear) layer's weights when the
    label is the predicted one (ties go to the lowest class index). Block ``k`` (columns ``k*d:(k+1)*d``) is
    ``(p_ik - [k == argmax]) * x_i``. Its norm ``||p_i - e_yhat|| * ||x_i||`` is ~0 for confident predictions
    and grows with uncertainty; its direction carries the features, so k-means++ seeding picks items that are
    both uncertain and diverse. Returned as float32 to halve the memory of the ``K * d`` wide rows.

    Args:
        probs: ``(n, K)`` class probabilities (rows summing to 1, no NaN).
        features: ``(n, d)`` the features the last layer sees.

    Returns:
        ``(n, K * d)`` float32.

    Raises:
        InputError: invalid probabilities (including NaN), bad shapes, or different ``n``.
    """
    p, nan = check_probs(probs, who="badge_embeddings")
    if nan.any():
        raise InputError(f"badge_embeddings: probs row {int(np.argmax(nan))} contains NaN; every row needs "
                         "a distribution. Drop the items that cannot be scored first.")
    x = check_features(features, who="badge_embeddings")
    if x.shape[0] != p.shape[0]:
        raise InputError(f"badge_embeddings: probs and features must have the same n, but probs has {p.shape[0]} "
                         f"rows and features has {x.shape[0]}.")
    residual = p.copy()
    residual[np.arange(p.shape[0]), np.argmax(p, axis=1)] -= 1.0
    return (residual[:, :, None] * x[:, None, :]).reshape(p.shape[0], -1).astype(np.float32)


# --------------------------------------------------------------------------------------------- scorers




class GradientEmbeddings:
    """BADGE's gradient embeddings of a pool, built only for the rows asked for: ``self[rows] -> (m, K * d)``.

    Holds the classifier's probabilities ``(n, K)`` and the features ``(n, d)``; behaves as an ``(n, K * d)``
    matrix for :class:`curate.selectors.BADGE` (``ndim``, ``shape``, ``len`` and row indexing) without building it.
    """

    def __init__(self, probs: npt.ArrayLike, features: npt.ArrayLike) -> None:
        self.probs = np.asarray(probs, dtype=np.float64)
        self.features = np.asarray(features)
        if len(self.probs) != len(self.features):
            raise InputError(f"GradientEmbeddings: {len(self.probs)} probability rows for {len(self.features)} "
                             "feature rows; give one of each per record")
        self.ndim = 2
        self.shape = (len(self.features), self.probs.shape[1] * self.features.shape[1])

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, rows: npt.ArrayLike) -> npt.NDArray[np.float32]:
        idx = np.asarray(rows, dtype=np.intp)
        return badge_embeddings(self.probs[idx], self.features[idx])
