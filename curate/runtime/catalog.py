"""Build scorers and selectors from the names the CLI and recipes use.

No global registry: a fixed table of names maps to constructors here, and any other name of the form
``package.module:ClassName`` is imported and constructed without arguments (for your own scorer or selector).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import InputError
from curate.ingest.records import Record
from curate.runtime.embeddings import Embedder
from curate.scorers.base import Scorer
from curate.selectors.base import Selector

EMBEDDING_SCORERS = ("novelty", "density")
LM_SCORERS = ("perplexity", "ifd", "egl")
CLASSIFIER_SCORERS = ("least_confidence", "margin", "entropy", "vote_entropy", "kl_to_mean")
REWARD_SCORERS = ("disagreement", "bald", "bt_entropy")
SCORER_NAMES = EMBEDDING_SCORERS + LM_SCORERS + CLASSIFIER_SCORERS + REWARD_SCORERS
SELECTOR_NAMES = ("topk", "kcenter", "cluster", "badge", "deita")


@dataclass
class BuildContext:
    """What building a scorer may need: where the cache is, which models, and the labeled records.

    Attributes:
        cache_dir: the workspace cache (converted models, embeddings).
        labeled: records whose answer is known (a source label, or a final annotation); classifier and
            reward scorers train on them, novelty measures distance to them.
        embedder: embedding model name (``minilm`` by default).
        model: causal LM name or path (``smollm2`` by default); ``adapter`` an optional LoRA adapter folder.
        k: neighbours for density.
        seed: seed of the generator used to train committees and ensembles.
    """

    cache_dir: Path
    labeled: Sequence[Record] = ()
    embedder: str = "minilm"
    model: str = "smollm2"
    adapter: str | None = None
    k: int = 10
    seed: int = 0

    def make_embedder(self) -> Embedder:
        """The (disk-cached) embedder."""
        return Embedder(self.embedder, cache_dir=self.cache_dir)


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"cannot import {path!r}: {exc}. Give package.module:ClassName of an installed module."
        ) from exc


def _labeled_texts(ctx: BuildContext) -> tuple[list[Record], list[str]]:
    texts = [r for r in ctx.labeled if r.kind == "text" and r.label is not None]
    return texts, [str(r.label) for r in texts]


def _classifier_scorer(name: str, ctx: BuildContext) -> Scorer:
    from curate.scorers.classifier import ClassifierUncertaintyScorer, CommitteeScorer
    from curate.scorers.classifier_models import fit_classifier, fit_committee

    records, labels = _labeled_texts(ctx)
    if len(set(labels)) < 2:
        raise InputError(
            f"the {name} scorer needs labeled text records of at least 2 classes to train on; found "
            f"{len(records)} labeled record(s) of {len(set(labels))} class(es). Label a cold-start seed first "
            "(for example with a stratified or cluster seed), or ingest records with a label column."
        )
    embedder = ctx.make_embedder()
    X = embedder.embed_records(records)
    rng = np.random.default_rng(ctx.seed)
    if name in ("vote_entropy", "kl_to_mean"):
        committee = fit_committee(X, labels, rng=rng)
        return CommitteeScorer(featurize=embedder, committee=committee, method=name)
    model = fit_classifier(X, labels, rng=rng)
    return ClassifierUncertaintyScorer(featurize=embedder, model=model, method=name)


def seed_model_check(ctx: BuildContext) -> Any:
    """Cross-validate a logistic regression on the labeled texts (:func:`curate.selectors.check_seed_model`).

    Returns the report (its ``warnings`` say when the seed model is too weak or overfit for its uncertainty
    rankings to mean anything), or ``None`` when fewer than two classes are labeled.
    """
    from curate.selectors import check_seed_model

    records, labels = _labeled_texts(ctx)
    if len(set(labels)) < 2:
        return None
    X = ctx.make_embedder().embed_records(records)
    return check_seed_model(X, labels, rng=np.random.default_rng(ctx.seed))


def _reward_scorer(name: str, ctx: BuildContext) -> Scorer:
    from curate.scorers.reward import BradleyTerryEnsemble, RewardUncertaintyScorer, preference_features

    embedder = ctx.make_embedder()
    pairs = [r for r in ctx.labeled if r.kind == "preference"]
    ensemble = BradleyTerryEnsemble()
    if pairs:
        chosen, rejected = preference_features(embedder, pairs)
        ensemble.fit(chosen, rejected, rng=np.random.default_rng(ctx.seed))
    method = {"bt_entropy": "entropy"}.get(name, name)
    return RewardUncertaintyScorer(featurize=embedder, ensemble=ensemble, method=method)


def _lm_scorer(name: str, ctx: BuildContext) -> Scorer:
    if name == "egl":
        from curate.scorers.egl import ExpectedGradientLengthScorer

        egl: Scorer = ExpectedGradientLengthScorer(model=ctx.model, adapter=ctx.adapter, cache_dir=ctx.cache_dir)
        return egl
    from curate.scorers.perplexity import IFDScorer, PerplexityScorer

    cls = IFDScorer if name == "ifd" else PerplexityScorer
    scorer: Scorer = cls(model=ctx.model, adapter=ctx.adapter, cache_dir=ctx.cache_dir)
    return scorer


def build_scorer(name: str, ctx: BuildContext) -> Scorer:
    """The scorer called ``name`` (see :data:`SCORER_NAMES`) or ``package.module:ClassName``."""
    if ":" in name:
        scorer = _import(name)()
        if not isinstance(scorer, Scorer):
            raise InputError(f"{name} is not a scorer: it needs name, key() and score(records).")
        return scorer
    if name == "novelty":
        from curate.scorers.embedding import NoveltyScorer

        return NoveltyScorer(embedder=ctx.make_embedder(), labeled=tuple(ctx.labeled))
    if name == "density":
        from curate.scorers.embedding import DensityScorer

        return DensityScorer(embedder=ctx.make_embedder(), k=ctx.k)
    builders: dict[tuple[str, ...], Callable[[str, BuildContext], Scorer]] = {
        LM_SCORERS: _lm_scorer, CLASSIFIER_SCORERS: _classifier_scorer, REWARD_SCORERS: _reward_scorer,
    }
    for names, build in builders.items():
        if name in names:
            return build(name, ctx)
    raise InputError(f"unknown scorer {name!r}; use one of {', '.join(SCORER_NAMES)} or package.module:ClassName.")


def build_selector(name: str, *, threshold: float | None = None) -> Selector:
    """The selector called ``name`` (see :data:`SELECTOR_NAMES`) or ``package.module:ClassName``.

    ``badge`` selects over gradient embeddings, which only the classifier scorers provide; ``threshold`` is the
    cosine threshold of ``deita``.
    """
    from curate.selectors import BADGE, DEITA, ClusterPick, KCenterGreedy, TopK

    if ":" in name:
        selector = _import(name)()
        if not isinstance(selector, Selector):
            raise InputError(f"{name} is not a selector: it needs name, key() and select(scores, k, ...).")
        return selector
    table: dict[str, Callable[[], Selector]] = {
        "topk": TopK, "kcenter": lambda: KCenterGreedy(metric="cosine"), "cluster": ClusterPick, "badge": BADGE,
        "deita": lambda: DEITA(threshold=threshold) if threshold is not None else DEITA(),
    }
    if name not in table:
        raise InputError(
            f"unknown selector {name!r}; use one of {', '.join(SELECTOR_NAMES)} or package.module:ClassName."
        )
    return table[name]()
