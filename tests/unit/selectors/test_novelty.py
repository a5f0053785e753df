"""NoveltyBonus: uncertainty plus the log distance to what is already covered (BAL-PM's acquisition)."""

from __future__ import annotations

import numpy as np
import pytest

from curate.errors import InputError
from curate.runtime.catalog import build_selector, selector_names
from curate.selectors import NoveltyBonus, Prefilter, PrefilterNovelty, TopK, novelty_bonus_pick

RNG = np.random.default_rng(0)


def test_beta_zero_is_top_k():
    scores = RNG.random(50)
    emb = RNG.normal(size=(50, 4))
    got = NoveltyBonus(beta=0.0).select(scores, 7, embeddings=emb, rng=RNG)
    assert got.tolist() == TopK().select(scores, 7, rng=RNG).tolist()


def test_covered_rows_push_picks_to_new_regions():
    # rows 0-1 sit next to an already labelled row (NaN score); row 2 is elsewhere with a slightly lower score
    scores = np.array([1.0, 0.95, 0.9, np.nan])
    emb = np.array([[1.0, 0.0], [1.0, 0.02], [0.0, 1.0], [0.99, 0.05]])
    assert novelty_bonus_pick(scores, emb, 1, beta=0.3).tolist() == [2]
    assert novelty_bonus_pick(scores, emb, 1, beta=0.0).tolist() == [0]


def test_a_batch_spreads_over_clusters():
    # two tight clusters; the higher-scored cluster has 5 rows, the other 5 slightly lower
    emb = np.r_[np.tile([1.0, 0.0], (5, 1)) + 0.001 * RNG.normal(size=(5, 2)),
                np.tile([0.0, 1.0], (5, 1)) + 0.001 * RNG.normal(size=(5, 2))]
    scores = np.r_[np.full(5, 1.0), np.full(5, 0.9)]
    picks = novelty_bonus_pick(scores, emb, 2, beta=0.3)
    assert {int(p) // 5 for p in picks} == {0, 1}
    assert len(set(picks.tolist())) == 2


def test_catalog_and_errors():
    assert "novelty_bonus" in selector_names()
    assert isinstance(build_selector("novelty_bonus"), NoveltyBonus)
    with pytest.raises(InputError, match="embeddings"):
        NoveltyBonus().select(np.ones(3), 2, rng=RNG)
    with pytest.raises(InputError, match="beta"):
        NoveltyBonus(beta=-1.0)


def test_prefilter_novelty_spreads_the_most_uncertain_over_uncovered_regions():
    # row 0 is labelled (NaN); rows 1-3 are the three highest scores, row 4 a low score beside row 3
    emb = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [-1.0, 0.0], [-0.99, 0.05]])
    scores = np.array([np.nan, 0.9, 0.8, 0.7, 0.1])
    picks = PrefilterNovelty(factor=1.5).select(scores, 2, embeddings=emb, rng=RNG)  # candidates: rows 1, 2, 3
    assert picks.tolist() == [3, 2]  # the farthest candidates from row 0 first; row 1 sits on the labelled row
    assert 4 not in picks.tolist()  # outside the candidates: never picked ...
    # ... and not counted as covered: Prefilter(NoveltyBonus) masks row 4 to NaN, so row 3 looks covered
    masked = Prefilter(NoveltyBonus(beta=100.0), factor=3.0).select(scores, 1, embeddings=emb, rng=RNG)
    assert masked.tolist() == [2]
    assert PrefilterNovelty(factor=3.0).select(scores, 1, embeddings=emb, rng=RNG).tolist() == [3]


def test_prefilter_novelty_checks_its_inputs():
    with pytest.raises(InputError, match="factor"):
        PrefilterNovelty(factor=0.5)
    with pytest.raises(InputError):
        PrefilterNovelty().select(np.ones(3), 1, rng=RNG)  # no embeddings
