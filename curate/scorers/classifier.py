"""Classifier uncertainty scorers for ``text`` records labelled with a label schema's classes.

:class:`ClassifierUncertaintyScorer` (one classifier: least confidence, margin, entropy) and :class:`CommitteeScorer`
(a bagged committee: vote entropy, KL to the mean) score records with models fitted by
:mod:`curate.scorers.classifier_models`, on features from a featurizer you pass in, ``featurize(texts) -> (n, d)``;
this module never loads a model itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.ingest.records import Record, as_text
from curate.scorers.base import BaseScorer, BuildContext, Scores
from curate.scorers.classifier_models import (
    ClassifierModel,
    Committee,
    badge_embeddings,
    classifier_c,
    fit_classifier,
    fit_committee,
)
from curate.scorers.feature_choice import base_columns
from curate.scorers.uncertainty import COMMITTEE_METHODS, SINGLE_MODEL_METHODS, check_method

FloatArray = npt.NDArray[np.float64]
#: ``featurize(texts) -> (len(texts), d)`` float array; e.g. a cached MiniLM embedder.
Featurizer = Callable[[Sequence[str]], npt.NDArray[Any]]


# --------------------------------------------------------------------------------------------- features


def featurize_checked(featurize: Featurizer, texts: Sequence[str], *, who: str) -> FloatArray:
    """Call ``featurize`` and check it returned finite ``(len(texts), d)`` features; returns float64."""
    try:
        feats = np.asarray(featurize(list(texts)), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{who}: the featurizer must return a numeric (n, d) array; converting its output "
                         f"failed ({exc}).") from exc
    if feats.ndim != 2 or feats.shape[0] != len(texts) or feats.shape[1] < 1:
        raise InputError(f"{who}: the featurizer must return shape ({len(texts)}, d) for {len(texts)} texts; "
                         f"got shape {feats.shape}. Check that it embeds each text to one row.")
    if not np.isfinite(feats).all():
        row = int(np.argwhere(~np.isfinite(feats))[0, 0])
        raise InputError(f"{who}: the featurizer returned NaN or inf for text {row}; features must be finite.")
    return feats


def featurizer_id(featurize: Featurizer) -> str:
    """A readable identity for a featurizer: its ``key()``, its ``name``, or its qualified name."""
    key = getattr(featurize, "key", None)
    if callable(key):
        return str(key())
    name = getattr(featurize, "name", None)
    if isinstance(name, str):
        return name
    target = featurize if hasattr(featurize, "__qualname__") else type(featurize)
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(target))}"


def _text_of(records: Sequence[Record], *, who: str) -> list[str]:
    texts = []
    for i, rec in enumerate(records):
        if rec.kind != "text":
            raise InputError(f"{who} scores 'text' records; record {i} (id {rec.id}) is a {rec.kind!r} record. "
                             "Filter the pool to kind 'text' first.")
        texts.append(as_text(rec.fields.get("text")))
    return texts


def labeled_texts(labeled: Sequence[Record]) -> tuple[list[Record], list[str]]:
    """The labeled ``text`` records and their labels (as strings)."""
    texts = [r for r in labeled if r.kind == "text" and r.label is not None]
    return texts, [str(r.label) for r in texts]


def _training_set(ctx: BuildContext, name: str) -> tuple[Any, Any, list[str]]:
    """``(embedder, features (n, d), labels)`` of ``ctx``'s labeled texts; :class:`InputError` below two classes."""
    records, labels = labeled_texts(ctx.labeled)
    if len(set(labels)) < 2:
        raise InputError(
            f"the {name} scorer needs labeled text records of at least 2 classes to train on; found "
            f"{len(records)} labeled record(s) of {len(set(labels))} class(es). Label a cold-start seed first "
            "(for example with a stratified or cluster seed), or ingest records with a label column."
        )
    embedder = ctx.make_embedder()
    return embedder, embedder.embed_records(records), labels


@dataclass(frozen=True)
class ClassifierUncertaintyScorer(BaseScorer):
    """Uncertainty of one classifier on ``text`` records; higher = more worth labeling.

    Attributes:
        featurize: ``featurize(texts) -> (n, d)``; the same featurizer the model was trained on.
        model: a fitted :class:`ClassifierModel`.
        method: ``"least_confidence"`` (``1 - max p``), ``"margin"`` (``1 - (p1 - p2)``, entropy tie-break) or
            ``"entropy"`` (``-sum p ln p``); see :mod:`curate.scorers.uncertainty`.
    """

    name: ClassVar[str] = "classifier_uncertainty"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {m: {"method": m} for m in ("least_confidence", "margin", "entropy")}
    learns_from: ClassVar[str | None] = "text"
    key_exclude: ClassVar[frozenset[str]] = frozenset({"featurize", "model"})

    featurize: Featurizer
    model: ClassifierModel
    method: str = "margin"

    def __post_init__(self) -> None:
        check_method(self.method, tuple(SINGLE_MODEL_METHODS), who=type(self).__name__)

    @classmethod
    def build(cls, ctx: BuildContext, **options: Any) -> ClassifierUncertaintyScorer:
        """A logistic regression fitted on ``ctx.labeled`` texts (embedded by ``ctx``'s embedder), then scored."""
        embedder, x, labels = _training_set(ctx, str(options.get("method", "margin")))
        model = fit_classifier(x, labels, rng=np.random.default_rng(ctx.seed), C=classifier_c(embedder),
                               base=base_columns(embedder))
        return cls(featurize=embedder, model=model, **options)

    def model_version(self) -> str:
        """The classifier's version (a hash of its coefficients)."""
        return self.model.version

    def features(self, records: Sequence[Record]) -> FloatArray:
        """``(n, d)`` features of the records' texts."""
        return featurize_checked(self.featurize, _text_of(records, who=self.name), who=self.name)

    def predict_proba(self, records: Sequence[Record]) -> FloatArray:
        """``(n, K)`` probabilities over the schema's classes."""
        if not records:
            return np.zeros((0, len(self.model.classes)))
        return self.model.predict_proba(self.features(records))

    def gradient_embeddings(self, records: Sequence[Record]) -> npt.NDArray[np.float32]:
        """``(n, K * d)`` BADGE embeddings of the records (see :func:`badge_embeddings`)."""
        x = self.features(records)
        return badge_embeddings(self.model.predict_proba(x), x)

    def score(self, records: Sequence[Record]) -> Scores:
        """``(n,)`` float64 uncertainty, higher = more worth labeling."""
        if not records:
            return np.zeros(0)
        return SINGLE_MODEL_METHODS[self.method](self.predict_proba(records))


@dataclass(frozen=True)
class CommitteeScorer(BaseScorer):
    """Disagreement of a bagged committee on ``text`` records; higher = more worth labeling.

    Attributes:
        featurize: ``featurize(texts) -> (n, d)``; the same featurizer the committee was trained on.
        committee: a fitted :class:`Committee`.
        method: ``"vote_entropy"`` (entropy of the members' argmax votes) or ``"kl_to_mean"`` (mean KL of each
            member from the consensus); see :mod:`curate.scorers.uncertainty`.
    """

    name: ClassVar[str] = "committee_disagreement"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {m: {"method": m} for m in ("vote_entropy", "kl_to_mean")}
    learns_from: ClassVar[str | None] = "text"
    key_exclude: ClassVar[frozenset[str]] = frozenset({"featurize", "committee"})

    featurize: Featurizer
    committee: Committee
    method: str = "vote_entropy"

    def __post_init__(self) -> None:
        check_method(self.method, tuple(COMMITTEE_METHODS), who=type(self).__name__)

    @classmethod
    def build(cls, ctx: BuildContext, **options: Any) -> CommitteeScorer:
        """A bagged committee fitted on ``ctx.labeled`` texts (embedded by ``ctx``'s embedder), then scored."""
        embedder, x, labels = _training_set(ctx, str(options.get("method", "vote_entropy")))
        committee = fit_committee(x, labels, rng=np.random.default_rng(ctx.seed), C=classifier_c(embedder))
        return cls(featurize=embedder, committee=committee, **options)

    def model_version(self) -> str:
        """The committee's version (a hash of its members' versions)."""
        return self.committee.version

    def score(self, records: Sequence[Record]) -> Scores:
        """``(n,)`` float64 disagreement, higher = more worth labeling."""
        if not records:
            return np.zeros(0)
        x = featurize_checked(self.featurize, _text_of(records, who=self.name), who=self.name)
        return COMMITTEE_METHODS[self.method](self.committee.predict_proba(x))
