"""A Bayesian (Laplace) Bradley-Terry reward model on model-free TF-IDF features, and its epistemic variance.

Why another reward model: on the preference sets where a small reward model keeps learning (AlpacaEval GPT-4
judgements, UltraFeedback), frozen MiniLM sentence embeddings of the responses carry almost no preference
signal (UltraFeedback test accuracy stays at 0.50-0.54 whatever the label count), while word 1-2-gram TF-IDF
features of the responses reach 0.58-0.62 (``benchmarks/results/selection_preference.json``). A linear model
with a Laplace posterior gives the epistemic variance of ``r(A) - r(B)`` in closed form, which is what the
acquisition needs (a bootstrap ensemble of 8 heads is a noisy estimate of it).

* :class:`~curate.runtime.tfidf_svd.TfidfSvdFeaturizer` (imported here): hashed word 1-2-gram TF-IDF (sublinear
  tf), reduced by truncated SVD to at most ``dim`` columns; fitted on unlabelled texts only, ``(n, dim)`` float64.
* :class:`LaplaceBradleyTerry`: MAP weights of ``P(A > B) = sigmoid(w . (phi_A - phi_B))`` under a Gaussian prior
  ``N(0, I / l2)`` (sum of log-losses, not a mean: the prior does not shrink as labels grow), and the Laplace
  covariance ``S = (sum_i p_i (1 - p_i) d_i d_i^T + l2 I)^-1``. ``variance(a, b) = d^T S d`` with
  ``d = phi_a - phi_b``: higher = the model knows less about that comparison.
* :class:`RewardVarianceScorer` (``reward_variance``): that variance per ``preference`` record (the most
  uncertain pair of a ``candidates`` record). Features are fitted on the scored records' and the labelled
  pairs' responses, so the scores depend on the scored set (``set_dependent``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import expit

from curate.errors import InputError
from curate.ingest.records import Record, as_text
from curate.runtime.tfidf_svd import TfidfSvdFeaturizer
from curate.scorers.base import BaseScorer, BuildContext, Scores

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


def _loss(w: FloatArray, diff: FloatArray, l2: float) -> tuple[float, FloatArray]:
    z = diff @ w
    return float(np.sum(np.logaddexp(0.0, -z)) + 0.5 * l2 * (w @ w)), -(diff.T @ expit(-z)) + l2 * w


@dataclass(eq=False)
class LaplaceBradleyTerry:
    """Linear Bradley-Terry reward model with a Laplace (Gaussian) posterior over its weights.

    Attributes:
        l2: prior precision (``w ~ N(0, I / l2)``); features should have ``||phi_a - phi_b||`` of order 1.
        min_pairs: below this many labelled pairs :meth:`fit` trains nothing (cold start).
        weights_: ``(d,)`` MAP weights; ``covariance_``: ``(d, d)`` Laplace covariance (``None`` untrained).
    """

    l2: float = 1.0
    min_pairs: int = 8
    max_iter: int = 300
    weights_: FloatArray | None = field(default=None, init=False, repr=False)
    covariance_: FloatArray | None = field(default=None, init=False, repr=False)
    n_pairs_: int = field(default=0, init=False)
    version_: str = field(default="cold-start", init=False)

    def __post_init__(self) -> None:
        if not self.l2 > 0:
            raise InputError(f"LaplaceBradleyTerry: l2 must be > 0 (it is the prior precision); got {self.l2!r}.")

    @property
    def is_trained(self) -> bool:
        """Whether :meth:`fit` saw at least ``min_pairs`` pairs."""
        return self.weights_ is not None

    def fit(self, phi_chosen: npt.ArrayLike, phi_rejected: npt.ArrayLike) -> LaplaceBradleyTerry:
        """MAP fit on ``(N, d)`` chosen / rejected features (chosen won), then the Laplace covariance."""
        a, b = np.asarray(phi_chosen, dtype=np.float64), np.asarray(phi_rejected, dtype=np.float64)
        if a.ndim != 2 or a.shape != b.shape:
            raise InputError(f"LaplaceBradleyTerry.fit: features must be two (N, d) arrays of one shape; got "
                             f"{a.shape} and {b.shape}.")
        self.n_pairs_ = len(a)
        if len(a) < self.min_pairs:
            self.weights_ = self.covariance_ = None
            self.version_ = "cold-start"
            return self
        diff = a - b
        w = minimize(_loss, np.zeros(a.shape[1]), args=(diff, self.l2), jac=True, method="L-BFGS-B",
                     options={"maxiter": self.max_iter}).x
        p = expit(diff @ w)
        hessian = (diff * (p * (1 - p))[:, None]).T @ diff + self.l2 * np.eye(a.shape[1])
        self.weights_, self.covariance_ = w, np.linalg.inv(hessian)
        digest = hashlib.blake2b(f"laplace-bt,{self.l2!r},{len(a)}".encode(), digest_size=8)
        digest.update(w.tobytes())
        self.version_ = digest.hexdigest()
        return self

    def _trained(self) -> tuple[FloatArray, FloatArray]:
        if self.weights_ is None or self.covariance_ is None:
            raise InputError(f"LaplaceBradleyTerry: not trained (it has seen {self.n_pairs_} labelled pairs; it "
                             f"needs {self.min_pairs}). Call fit() with more labelled pairs.")
        return self.weights_, self.covariance_

    def margin(self, phi_a: npt.ArrayLike, phi_b: npt.ArrayLike) -> FloatArray:
        """``(n,)`` posterior mean of ``r(A) - r(B)``; > 0 means A is predicted to win."""
        w, _ = self._trained()
        return np.asarray((np.asarray(phi_a, dtype=np.float64) - np.asarray(phi_b, dtype=np.float64)) @ w)

    def variance(self, phi_a: npt.ArrayLike, phi_b: npt.ArrayLike) -> FloatArray:
        """``(n,)`` posterior variance of ``r(A) - r(B)``, >= 0; higher = less known."""
        _, cov = self._trained()
        d = np.asarray(phi_a, dtype=np.float64) - np.asarray(phi_b, dtype=np.float64)
        return np.asarray(np.einsum("ij,jk,ik->i", d, cov, d), dtype=np.float64)

    def prob(self, phi_a: npt.ArrayLike, phi_b: npt.ArrayLike) -> FloatArray:
        """``(n,)`` predictive ``P(A > B)`` (probit approximation of the posterior average), in ``[0, 1]``."""
        mean, var = self.margin(phi_a, phi_b), self.variance(phi_a, phi_b)
        return np.asarray(expit(mean / np.sqrt(1.0 + np.pi * var / 8.0)), dtype=np.float64)

    def mutual_information(self, phi_a: npt.ArrayLike, phi_b: npt.ArrayLike, *, nodes: int = 24) -> FloatArray:
        """``(n,)`` BALD: mutual information (nats) between the pair's label and the weights under the Laplace
        posterior, ``H[E p] - E H[p]`` with ``r(A) - r(B) ~ N(margin, variance)``, by Gauss-Hermite quadrature
        (``nodes`` points); in ``[0, log 2]``, higher = a label would teach the model more."""
        mean, var = self.margin(phi_a, phi_b), self.variance(phi_a, phi_b)
        x, weights = np.polynomial.hermite_e.hermegauss(nodes)  # probabilists' Hermite: N(0, 1) expectations
        weights = weights / weights.sum()
        p = np.clip(expit(mean[:, None] + np.sqrt(var)[:, None] * x[None, :]), 1e-12, 1 - 1e-12)
        expected_entropy = -(p * np.log(p) + (1 - p) * np.log1p(-p)) @ weights
        q = np.clip(p @ weights, 1e-12, 1 - 1e-12)
        entropy_of_mean = -(q * np.log(q) + (1 - q) * np.log1p(-q))
        return np.asarray(np.maximum(entropy_of_mean - expected_entropy, 0.0), dtype=np.float64)

    def epig(self, phi_a: npt.ArrayLike, phi_b: npt.ArrayLike, target_a: npt.ArrayLike, target_b: npt.ArrayLike,
             *, samples: int = 256, rng: np.random.Generator) -> FloatArray:
        """``(n,)`` EPIG (Bickford Smith et al., 2023): expected mutual information, in nats, between a pair's label
        and the label of a target pair drawn from ``target_*`` (``(m, d)``, a sample of the pairs the model will be
        asked about), under ``samples`` Monte Carlo draws of the Laplace posterior; higher = a label would teach the
        model more about the predictions that matter. Unlike BALD it does not reward uncertainty in directions no
        target pair varies along (outlying pairs)."""
        w, cov = self._trained()
        d = np.asarray(phi_a, dtype=np.float64) - np.asarray(phi_b, dtype=np.float64)
        t = np.asarray(target_a, dtype=np.float64) - np.asarray(target_b, dtype=np.float64)
        root = np.linalg.cholesky(cov + 1e-12 * np.eye(len(cov)))
        draws = w[:, None] + root @ rng.standard_normal((len(w), samples))  # (d, S)
        p, q = expit(d @ draws), expit(t @ draws)  # (n, S), (m, S)
        joint = np.clip(p @ q.T / samples, 1e-12, None)  # P(y = 1, y* = 1), (n, m)
        pm, qm = p.mean(axis=1)[:, None], q.mean(axis=1)[None, :]
        total = np.zeros(len(d))
        for pj, pa, pb in ((joint, pm, qm), (pm - joint, pm, 1 - qm), (qm - joint, 1 - pm, qm),
                           (1 - pm - qm + joint, 1 - pm, 1 - qm)):
            pj = np.clip(pj, 1e-12, None)
            total += np.sum(pj * (np.log(pj) - np.log(np.clip(pa * pb, 1e-12, None))), axis=1)
        return np.asarray(np.maximum(total / len(t), 0.0), dtype=np.float64)


def diff_scale(phi_a: npt.ArrayLike, phi_b: npt.ArrayLike) -> float:
    """Mean ``||phi_a - phi_b||`` over rows (1.0 if zero): divide features by it so ``l2`` means the same."""
    diff = np.asarray(phi_a, dtype=np.float64) - np.asarray(phi_b, dtype=np.float64)
    norm = float(np.mean(np.linalg.norm(diff, axis=1))) if len(diff) else 0.0
    return norm if norm > 1e-12 else 1.0


def _response_lists(records: Sequence[Record], who: str) -> list[list[str]]:
    from curate.scorers.reward import _responses

    return [_responses(r, i, who=who) for i, r in enumerate(records)]


@dataclass(frozen=True)
class RewardVarianceScorer(BaseScorer):
    """Laplace posterior variance of the reward margin of each record's most uncertain pair; higher = label it.

    ``build`` keeps the labelled ``preference`` pairs; ``score(records)`` fits :class:`TfidfSvdFeaturizer` on the
    responses of ``records`` and of the labelled pairs (no labels used), scales features so the mean pair
    difference has norm 1, fits :class:`LaplaceBradleyTerry` on the labelled pairs and returns the variance.
    With fewer than ``min_pairs`` labelled pairs (cold start) the score is ``||phi_a - phi_b||`` (the prior
    variance up to a constant). Returns ``(n,)`` float64 >= 0.
    """

    name: ClassVar[str] = "reward_variance"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {"reward_variance": {}, "reward_variance_lm": {"features": "lm"}}
    learns_from: ClassVar[str | None] = "preference"
    set_dependent: ClassVar[bool] = True
    key_exclude: ClassVar[frozenset[str]] = frozenset({"labeled", "labeled_prompts", "cache_dir"})

    labeled: tuple[tuple[str, str], ...] = ()
    labeled_prompts: tuple[str, ...] = ()
    l2: float = 1.0
    dim: int = 256
    min_pairs: int = 8
    labeled_digest: str = ""
    features: str = "tfidf"
    model: str = "smollm2"
    cache_dir: str = ""

    def __post_init__(self) -> None:
        if self.features not in ("tfidf", "lm"):
            raise InputError(f"reward_variance: features must be tfidf or lm; got {self.features!r}.")

    @classmethod
    def build(cls, ctx: BuildContext, **options: Any) -> RewardVarianceScorer:
        """The labelled ``preference`` pairs of ``ctx.labeled`` (chosen, rejected, and their prompts), digested into
        the key; ``features="lm"`` reads ``ctx.model``'s features through the workspace cache."""
        labeled = [r for r in ctx.labeled if r.kind == "preference"]
        pairs = tuple((as_text(r.fields.get("chosen")), as_text(r.fields.get("rejected"))) for r in labeled)
        prompts = tuple(as_text(r.fields.get("prompt")) for r in labeled)
        digest = hashlib.blake2b(repr((pairs, prompts)).encode(), digest_size=8).hexdigest()
        if options.get("features") == "lm":  # the TF-IDF scorer's key stays free of the LM's name
            options = {"model": ctx.model, **options}
        return cls(labeled=pairs, labeled_prompts=prompts, labeled_digest=digest, cache_dir=str(ctx.cache_dir),
                   **options)

    def model_version(self) -> str:
        """``laplace-bt[<labelled pairs>:<digest>]`` (``laplace-bt-lm`` with LM features) or ``cold-start[...]``."""
        if len(self.labeled) < self.min_pairs:
            return f"cold-start[{self.features}]"
        return f"laplace-bt{'-lm' if self.features == 'lm' else ''}[{len(self.labeled)}:{self.labeled_digest}]"

    def score(self, records: Sequence[Record]) -> Scores:
        """``(n,)`` float64 variance of each record's most uncertain pair (cold start: feature distance)."""
        if not records:
            return np.zeros(0, dtype=np.float64)
        responses = _response_lists(records, self.name)
        flat_texts = [t for rs in responses for t in rs]
        starts = np.cumsum([0] + [len(rs) for rs in responses])
        ia = np.concatenate([starts[i] + np.triu_indices(len(rs), k=1)[0] for i, rs in enumerate(responses)])
        ib = np.concatenate([starts[i] + np.triu_indices(len(rs), k=1)[1] for i, rs in enumerate(responses)])
        if self.features == "lm":
            prompts = [as_text(r.fields.get("prompt")) for r, rs in zip(records, responses, strict=True) for _ in rs]
            phi, lab_a, lab_b = self._lm_features(prompts, flat_texts)
        else:
            first = [flat_texts[i] for i in ia] + [c for c, _ in self.labeled]
            second = [flat_texts[i] for i in ib] + [r for _, r in self.labeled]
            feats = TfidfSvdFeaturizer(dim=self.dim).fit(first, paired_with=second)
            phi = feats(flat_texts)
            lab_a, lab_b = ((feats([c for c, _ in self.labeled]), feats([r for _, r in self.labeled]))
                            if self.labeled else (phi[:0], phi[:0]))
        scale = diff_scale(phi[ia], phi[ib])
        model = LaplaceBradleyTerry(l2=self.l2, min_pairs=self.min_pairs)
        if self.labeled:
            model.fit(lab_a / scale, lab_b / scale)
        flat = (model.variance(phi[ia] / scale, phi[ib] / scale) if model.is_trained
                else np.linalg.norm(phi[ia] - phi[ib], axis=1) / scale)
        owner = np.concatenate([np.full(len(rs) * (len(rs) - 1) // 2, i) for i, rs in enumerate(responses)])
        out = np.full(len(records), -np.inf)
        np.maximum.at(out, owner, flat)
        return np.asarray(out, dtype=np.float64)

    def _lm_features(self, prompts: list[str], texts: list[str]) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(responses, labelled chosen, labelled rejected)`` LM features (cached), each standardised by the
        scored responses' column statistics."""

        from curate.runtime.lm_features import LMHiddenStateFeaturizer, standardise
        from curate.runtime.notices import logged_progress

        lab_prompts = list(self.labeled_prompts) or [""] * len(self.labeled)
        featurize = LMHiddenStateFeaturizer(Path(self.cache_dir), model=self.model,
                                            on_progress=logged_progress(f"{self.name}: LM features of responses"))
        every = np.asarray(featurize(prompts + lab_prompts + lab_prompts,
                                     texts + [c for c, _ in self.labeled] + [r for _, r in self.labeled]),
                           dtype=np.float64)
        _, every = standardise(every[: len(texts)], every)
        n, k = len(texts), len(self.labeled)
        return every[:n], every[n: n + k], every[n + k:]
