"""Reward-model uncertainty for ``preference`` and ``candidates`` records.

An ensemble of linear Bradley-Terry reward heads on frozen features: head ``h`` scores a response with
``r_h(x) = w_h . phi(prompt, response)`` and says ``P_h(A > B) = sigmoid(r_h(A) - r_h(B))``. Each head is
trained on its own bootstrap resample of the labelled pairs with the L2-regularised logistic loss on the
difference vectors ``phi(chosen) - phi(rejected)`` (no intercept: it would cancel in the difference):

    L(w) = (1/N) sum_i c_i * log(1 + exp(-w . (phi_chosen_i - phi_rejected_i))) + (l2 / 2) * ||w||^2

with ``c_i`` the bootstrap counts, minimised by L-BFGS from ``w = 0``, so a fixed ``rng`` gives the same heads.

Features: ``phi(prompt, response) = featurize(prompt_text + "\\n\\n" + response_text)`` (just the response text
if the prompt is empty; conversational fields are flattened with :func:`curate.ingest.records.as_text`). A later
version may use the language model's pooled hidden state instead.

In the pool nobody has said which response is better, so a ``preference`` record's ``chosen`` / ``rejected``
are only responses A / B. A ``candidates`` record is scored by its most uncertain pair of completions
(the maximum over all pairs ``i < j``; ties go to the first pair in that order), and
:meth:`RewardUncertaintyScorer.most_uncertain_pair` says which pair that is.

Cold start: with no ensemble, or one fitted on fewer than ``min_pairs`` (default 8) labelled pairs, a pair's
score is the Euclidean distance ``||phi(A) - phi(B)||``: dissimilar responses first, near-identical ones
last. It is the prior disagreement of the model: under an isotropic Gaussian prior on ``w``, the standard
deviation of ``r(A) - r(B)`` is proportional to that distance. The scorer's key then ends in
``@cold-start[<featurizer>]``; once trained it ends in the ensemble's version (a hash of its weights).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import expit

from curate.errors import InputError
from curate.ingest.records import Record, as_text
from curate.scorers.base import BaseScorer, BuildContext, Scores
from curate.scorers.classifier import Featurizer, featurize_checked, featurizer_id
from curate.scorers.uncertainty import PAIRWISE_METHODS, check_method

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
COLD_START = "cold-start"


def _check_pair_features(phi_a: npt.ArrayLike, phi_b: npt.ArrayLike, *, who: str,
                         n_features: int | None = None) -> tuple[FloatArray, FloatArray]:
    try:
        a, b = np.asarray(phi_a, dtype=np.float64), np.asarray(phi_b, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{who}: pair features must be numeric (n, d) arrays; conversion failed ({exc}).") from exc
    if a.ndim != 2 or a.shape != b.shape:
        raise InputError(f"{who}: both feature arrays must have the same shape (n, d); got {a.shape} and "
                         f"{b.shape}.")
    if n_features is not None and a.shape[1] != n_features:
        raise InputError(f"{who}: the ensemble was trained on {n_features} features; got {a.shape[1]}. "
                         "Featurize with the same featurizer, or refit.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError(f"{who}: pair features contain NaN or inf; features must be finite.")
    return a, b


def _bt_loss(w: FloatArray, diff: FloatArray, counts: FloatArray, l2: float) -> tuple[float, FloatArray]:
    z = diff @ w
    n = float(np.sum(counts))
    loss = float(np.sum(counts * np.logaddexp(0.0, -z)) / n + 0.5 * l2 * (w @ w))
    grad = -(diff.T @ (counts * expit(-z))) / n + l2 * w
    return loss, grad


@dataclass(eq=False)
class BradleyTerryEnsemble:
    """An ensemble of linear Bradley-Terry reward heads on frozen features.

    Attributes:
        n_heads: number of heads, each on its own bootstrap resample (at least 2).
        l2: L2 penalty on the weights (the loss is a mean over pairs, so it does not grow with ``N``).
        min_pairs: below this many labelled pairs :meth:`fit` trains nothing and the scorer stays cold.
        max_iter: L-BFGS iteration cap per head.
        weights_: ``(n_heads, d)`` fitted weights, ``None`` until trained.
        n_pairs_: number of labelled pairs the last :meth:`fit` saw.
        version_: ``"cold-start"`` until trained, then a hash of the config and the weights.
    """

    n_heads: int = 8
    l2: float = 1e-2
    min_pairs: int = 8
    max_iter: int = 200
    weights_: FloatArray | None = field(default=None, init=False, repr=False)
    n_pairs_: int = field(default=0, init=False)
    version_: str = field(default=COLD_START, init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.n_heads, int) or self.n_heads < 2:
            raise InputError(f"BradleyTerryEnsemble: n_heads must be an integer >= 2; got {self.n_heads!r}.")
        if not self.l2 >= 0:
            raise InputError(f"BradleyTerryEnsemble: l2 must be >= 0; got {self.l2!r}.")
        if not isinstance(self.min_pairs, int) or self.min_pairs < 1:
            raise InputError(f"BradleyTerryEnsemble: min_pairs must be an integer >= 1; got {self.min_pairs!r}.")

    @property
    def is_trained(self) -> bool:
        """Whether the heads have been fitted (on at least ``min_pairs`` pairs)."""
        return self.weights_ is not None

    def fit(self, phi_chosen: npt.ArrayLike, phi_rejected: npt.ArrayLike, *,
            rng: np.random.Generator) -> BradleyTerryEnsemble:
        """Fit every head on a bootstrap resample of the labelled pairs (chosen beat rejected).

        Args:
            phi_chosen: ``(N, d)`` features of the preferred responses.
            phi_rejected: ``(N, d)`` features of the other responses, row for row.
            rng: draws the bootstrap resamples.

        Returns:
            ``self``. With ``N < min_pairs`` no head is trained (``is_trained`` is False, cold start).

        Raises:
            InputError: shapes differ or are not 2-D, or features are not finite.
        """
        a, b = _check_pair_features(phi_chosen, phi_rejected, who="BradleyTerryEnsemble.fit")
        n, d = a.shape
        self.n_pairs_ = n
        if n < self.min_pairs:
            self.weights_, self.version_ = None, COLD_START
            return self
        diff = a - b
        weights = np.empty((self.n_heads, d), dtype=np.float64)
        for h in range(self.n_heads):
            counts = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
            res = minimize(_bt_loss, np.zeros(d), args=(diff, counts, self.l2), jac=True, method="L-BFGS-B",
                           options={"maxiter": self.max_iter})
            weights[h] = res.x
        self.weights_ = weights
        digest = hashlib.blake2b(f"{self.n_heads},{self.l2!r},{n}".encode(), digest_size=8)
        digest.update(weights.tobytes())
        self.version_ = digest.hexdigest()
        return self

    def _trained_weights(self, who: str) -> FloatArray:
        if self.weights_ is None:
            raise InputError(f"{who}: the ensemble is not trained (it has seen {self.n_pairs_} labelled pairs; "
                             f"it needs at least {self.min_pairs}). Call fit() with more labelled pairs.")
        return self.weights_

    def reward(self, phi: npt.ArrayLike) -> FloatArray:
        """Rewards ``(n_heads, n)`` of responses with features ``phi`` ``(n, d)``."""
        w = self._trained_weights("BradleyTerryEnsemble.reward")
        x, _ = _check_pair_features(phi, phi, who="BradleyTerryEnsemble.reward", n_features=w.shape[1])
        return w @ x.T

    def prob(self, phi_a: npt.ArrayLike, phi_b: npt.ArrayLike) -> FloatArray:
        """``P_h(A > B) = sigmoid(w_h . (phi_a - phi_b))``, shape ``(n_heads, n)``, float64 in ``[0, 1]``."""
        w = self._trained_weights("BradleyTerryEnsemble.prob")
        a, b = _check_pair_features(phi_a, phi_b, who="BradleyTerryEnsemble.prob", n_features=w.shape[1])
        return np.asarray(expit(w @ (a - b).T), dtype=np.float64)


def pair_uncertainty(phi_a: npt.ArrayLike, phi_b: npt.ArrayLike, *, ensemble: BradleyTerryEnsemble | None,
                     method: str = "disagreement") -> FloatArray:
    """Uncertainty of ``n`` pairs ``(A, B)``; higher = more worth labeling.

    Args:
        phi_a: ``(n, d)`` features of responses A.
        phi_b: ``(n, d)`` features of responses B.
        ensemble: a trained ensemble, or ``None`` / untrained for the cold-start rule.
        method: ``"disagreement"`` (std of ``P_h(A > B)`` over heads, in ``[0, 0.5]``), ``"bald"``
            (``H(mean p) - mean H(p_h)``, in ``[0, ln 2]``) or ``"entropy"`` (``H(mean p)``, in ``[0, ln 2]``).

    Returns:
        ``(n,)`` float64. Cold start (any method): ``||phi_a - phi_b||``, in ``[0, inf)``.
    """
    check_method(method, tuple(PAIRWISE_METHODS), who="pair_uncertainty")
    if ensemble is None or not ensemble.is_trained:
        a, b = _check_pair_features(phi_a, phi_b, who="pair_uncertainty")
        return np.asarray(np.linalg.norm(a - b, axis=1), dtype=np.float64)
    return PAIRWISE_METHODS[method](ensemble.prob(phi_a, phi_b))


# --------------------------------------------------------------------------------------------- records


def _pair_text(prompt: str, response: str) -> str:
    return f"{prompt}\n\n{response}" if prompt else response


def _responses(record: Record, i: int, *, who: str) -> list[str]:
    if record.kind == "preference":
        return [as_text(record.fields.get("chosen")), as_text(record.fields.get("rejected"))]
    if record.kind == "candidates":
        completions = record.fields.get("completions")
        if not isinstance(completions, list) or len(completions) < 2:
            raise InputError(f"{who}: candidates record {i} (id {record.id}) needs a list of at least 2 "
                             f"completions; got {completions!r:.80}.")
        return [as_text(c) for c in completions]
    raise InputError(f"{who} scores 'preference' and 'candidates' records; record {i} (id {record.id}) is a "
                     f"{record.kind!r} record. Filter the pool by kind first.")


def response_features(featurize: Featurizer, records: Sequence[Record], *,
                      who: str = "response_features") -> tuple[FloatArray, list[IntArray]]:
    """Features of every response of every record, in one ``featurize`` call.

    Returns:
        ``(phi, rows)``: ``phi`` is ``(total responses, d)``; ``rows[i]`` holds the rows of record ``i``'s
        responses (``[chosen, rejected]`` or the completions in order).
    """
    texts: list[str] = []
    rows: list[IntArray] = []
    for i, rec in enumerate(records):
        prompt = as_text(rec.fields.get("prompt"))
        responses = _responses(rec, i, who=who)
        rows.append(np.arange(len(texts), len(texts) + len(responses), dtype=np.intp))
        texts.extend(_pair_text(prompt, r) for r in responses)
    return featurize_checked(featurize, texts, who=who), rows


def preference_features(featurize: Featurizer, records: Sequence[Record]) -> tuple[FloatArray, FloatArray]:
    """``(phi_chosen, phi_rejected)``, each ``(n, d)``, of labelled ``preference`` records, for :meth:`fit`."""
    for i, rec in enumerate(records):
        if rec.kind != "preference":
            raise InputError(f"preference_features needs 'preference' records; record {i} (id {rec.id}) is "
                             f"{rec.kind!r}. Turn rankings of candidates into chosen/rejected pairs first.")
    if not records:
        raise InputError("preference_features: no records given; pass the labelled preference pairs.")
    phi, rows = response_features(featurize, records, who="preference_features")
    idx = np.stack(rows)
    return phi[idx[:, 0]], phi[idx[:, 1]]


@dataclass(frozen=True)
class PairScores:
    """Per-record result: ``scores`` ``(n,)`` float64 and ``pairs`` ``(n, 2)`` intp response indices."""

    scores: Scores
    pairs: IntArray


@dataclass(frozen=True)
class RewardUncertaintyScorer(BaseScorer):
    """Bradley-Terry ensemble uncertainty on ``preference`` / ``candidates`` records; higher = more worth labeling.

    Attributes:
        featurize: ``featurize(texts) -> (n, d)``; the same featurizer the ensemble was trained on.
        ensemble: a :class:`BradleyTerryEnsemble`; ``None`` or untrained means the cold-start rule (see the
            module docstring).
        method: ``"disagreement"``, ``"bald"`` or ``"entropy"`` (see :func:`pair_uncertainty`).
    """

    name: ClassVar[str] = "reward_uncertainty"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {"disagreement": {"method": "disagreement"},
                                                     "bald": {"method": "bald"}, "bt_entropy": {"method": "entropy"}}
    learns_from: ClassVar[str | None] = "preference"
    key_exclude: ClassVar[frozenset[str]] = frozenset({"featurize", "ensemble"})

    featurize: Featurizer
    ensemble: BradleyTerryEnsemble | None = None
    method: str = "disagreement"

    def __post_init__(self) -> None:
        check_method(self.method, tuple(PAIRWISE_METHODS), who=type(self).__name__)

    @classmethod
    def build(cls, ctx: BuildContext, **options: Any) -> RewardUncertaintyScorer:
        """A Bradley-Terry ensemble fitted on ``ctx.labeled`` preference pairs (none yet: the cold-start rule)."""
        embedder = ctx.make_embedder()
        pairs = [r for r in ctx.labeled if r.kind == "preference"]
        ensemble = BradleyTerryEnsemble()
        if pairs:
            chosen, rejected = preference_features(embedder, pairs)
            ensemble.fit(chosen, rejected, rng=np.random.default_rng(ctx.seed))
        return cls(featurize=embedder, ensemble=ensemble, **options)

    @property
    def cold_start(self) -> bool:
        """Whether scores come from the cold-start rule rather than a trained ensemble."""
        return self.ensemble is None or not self.ensemble.is_trained

    def model_version(self) -> str:
        """The ensemble's version, or ``cold-start[<featurizer>]``."""
        if self.ensemble is None or not self.ensemble.is_trained:
            return f"{COLD_START}[{featurizer_id(self.featurize)}]"
        return self.ensemble.version_

    def pair_scores(self, records: Sequence[Record]) -> PairScores:
        """Score of every record (max over its pairs) and the pair ``(i, j)``, ``i < j``, that attains it.

        For a ``preference`` record the pair is always ``(0, 1)``: 0 = ``chosen`` (A), 1 = ``rejected`` (B).
        """
        if not records:
            return PairScores(scores=np.zeros(0), pairs=np.zeros((0, 2), dtype=np.intp))
        phi, rows = response_features(self.featurize, records, who=self.name)
        local = [np.array(np.triu_indices(len(r), k=1), dtype=np.intp).T for r in rows]
        ia = np.concatenate([r[p[:, 0]] for r, p in zip(rows, local, strict=True)])
        ib = np.concatenate([r[p[:, 1]] for r, p in zip(rows, local, strict=True)])
        flat = pair_uncertainty(phi[ia], phi[ib], ensemble=self.ensemble, method=self.method)
        scores = np.empty(len(records), dtype=np.float64)
        pairs = np.empty((len(records), 2), dtype=np.intp)
        start = 0
        for i, p in enumerate(local):
            chunk = flat[start:start + len(p)]
            best = int(np.argmax(chunk))
            scores[i], pairs[i] = chunk[best], p[best]
            start += len(p)
        return PairScores(scores=scores, pairs=pairs)

    def most_uncertain_pair(self, records: Sequence[Record]) -> IntArray:
        """``(n, 2)`` indices into each record's responses of the pair the ensemble is least sure about."""
        return self.pair_scores(records).pairs

    def score(self, records: Sequence[Record]) -> Scores:
        """``(n,)`` float64: each record's most uncertain pair's score; higher = more worth labeling."""
        return self.pair_scores(records).scores
