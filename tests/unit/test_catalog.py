"""The catalog's names come from the classes: every documented scorer and selector name builds, and capabilities
(needs embeddings, learns from, model version) are read from the objects, not from name lists."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from curate.cli import select as select_cli
from curate.errors import InputError
from curate.runtime.catalog import (
    BuildContext,
    build_scorer,
    build_selector,
    scorer_class,
    scorer_names,
    scorer_options,
    selector_names,
)
from curate.scorers.classifier import ClassifierUncertaintyScorer
from curate.scorers.reward import RewardUncertaintyScorer
from curate.selectors import (
    BADGE,
    ClusterPick,
    KCenterGreedy,
    Prefilter,
    PrefilterCluster,
    RandomMix,
    RoundRobin,
    TopK,
    needs_embeddings,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def _help_names(text: str) -> list[str]:
    return [n.strip() for n in re.split(r",| or ", text.split("or package.module")[0]) if n.strip()]


def test_every_scorer_name_in_the_cli_help_is_in_the_catalog_and_back():
    """`--scorer`'s help is written out (importing every scorer to list them would slow every command down): every
    name in it builds, and every catalog name is in it."""
    from curate.runtime.catalog import _scorer_table

    documented = _help_names(select_cli.ScorerOpt.__metadata__[0].help)
    assert len(documented) == 20
    assert set(documented) <= set(scorer_names())
    for name in documented:
        assert scorer_class(name) is not None
    catalog = {name for name, (cls, _) in _scorer_table().items() if name in cls.catalog}
    assert catalog and sorted(catalog - set(documented)) == []


def test_every_selector_named_in_the_readme_builds():
    text = README.read_text(encoding="utf-8")
    listed = re.findall(r"`([a-z_]+)`", text[text.index("Selectors: `topk`"):text.index("Every batch is")])
    assert {"topk", "kcenter", "cluster", "badge", "deita", "round_robin", "novelty_bonus",
            "prefilter_cluster", "prefilter_centroid", "prefilter_novelty"} <= set(listed)
    for name in listed:
        assert build_selector(name).name == name
    assert set(selector_names()) == {"topk", "kcenter", "cluster", "badge", "deita", "round_robin", "novelty_bonus",
                                     "prefilter_cluster", "prefilter_centroid", "prefilter_novelty"}
    assert build_selector("deita", threshold=0.8).key() == "deita(threshold=0.8)"


def test_class_names_build_too_and_aliases_carry_their_options(tmp_path):
    assert scorer_options("bt_entropy") == {"method": "entropy"}
    assert scorer_options("margin") == {"method": "margin"}
    ctx = BuildContext(cache_dir=tmp_path)
    built = build_scorer("reward_uncertainty", ctx)  # asked for by the preference-rank recipe
    assert isinstance(built, RewardUncertaintyScorer) and built.method == "disagreement" and built.cold_start
    assert isinstance(build_scorer("bt_entropy", ctx), RewardUncertaintyScorer)
    with pytest.raises(InputError, match="unknown scorer 'margn'.*margin"):
        build_scorer("margn", ctx)
    with pytest.raises(InputError, match="at least 2 classes"):
        build_scorer("margin", ctx)


def test_capabilities_live_on_the_classes():
    assert scorer_class("margin") is ClassifierUncertaintyScorer
    assert scorer_class("margin").learns_from == "text"
    assert scorer_class("disagreement").learns_from == "preference"
    assert scorer_class("ifd").needs_model_version and scorer_class("egl").needs_model_version
    assert not scorer_class("margin").needs_model_version
    assert scorer_class("novelty").embeddings_only and not scorer_class("perplexity").embeddings_only
    assert not needs_embeddings(TopK()) and needs_embeddings(KCenterGreedy()) and needs_embeddings(BADGE())
    assert needs_embeddings(RandomMix(ClusterPick())) and not needs_embeddings(RandomMix(TopK()))
    assert needs_embeddings(Prefilter(ClusterPick())) and not needs_embeddings(Prefilter(TopK()))
    assert needs_embeddings(RoundRobin()) and not needs_embeddings(RoundRobin(labels=np.zeros(3, dtype=np.int64)))
    assert not needs_embeddings(object())


def test_the_benchmark_selectors_are_ordinary_validated_selectors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    scores = rng.random(60)
    for selector in (ClusterPick(metric="cosine", clusters_per_pick=2.0), Prefilter(ClusterPick(metric="cosine"), 5),
                     RoundRobin(candidates_per_pick=3.0), BADGE(candidates=30)):
        picks = selector.select(scores, 8, embeddings=x, rng=np.random.default_rng(1))
        assert len(picks) == 8 and len(set(picks.tolist())) == 8
        again = selector.select(scores, 8, embeddings=x, rng=np.random.default_rng(1))
        assert picks.tolist() == again.tolist()
    top = set(np.argsort(-scores)[:15].tolist())
    assert set(Prefilter(TopK(), 15 / 8).select(scores, 8, rng=rng).tolist()) <= top
    with pytest.raises(InputError, match="factor"):
        Prefilter(TopK(), factor=0.5)
    with pytest.raises(InputError, match="clusters_per_pick"):
        ClusterPick(clusters_per_pick=0.5)
    with pytest.raises(InputError, match="within"):
        RoundRobin(within="sideways")
    with pytest.raises(InputError, match="needs embeddings"):
        RoundRobin().select(scores, 4, rng=rng)
    assert Prefilter(ClusterPick(metric="cosine"), 5).key() == "prefilter(base=cluster(metric=cosine),factor=5)"
    named = build_selector("prefilter_cluster")  # the classifier loop's default: the same picks under one name
    assert named.key() == "prefilter_cluster()" and needs_embeddings(named)
    same = Prefilter(ClusterPick(metric="cosine"), named.factor).select(scores, 8, embeddings=x,
                                                                       rng=np.random.default_rng(3))
    assert named.select(scores, 8, embeddings=x, rng=np.random.default_rng(3)).tolist() == same.tolist()
    with pytest.raises(InputError, match="needs embeddings"):
        named.select(scores, 8, rng=rng)
    with pytest.raises(InputError, match="factor"):
        PrefilterCluster(factor=0.5)
    assert RoundRobin(labels=np.zeros(60, dtype=np.int64)).key() == "round_robin()"
