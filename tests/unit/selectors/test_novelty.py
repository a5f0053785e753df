"""NoveltyBonus: uncertainty plus the log distance to what is already covered (BAL-PM's acquisition)."""

from __future__ import annotations

import numpy as np
import pytest

from curate.errors import InputError
from curate.runtime.catalog import build_selector, selector_names
from curate.selectors import NoveltyBonus, TopK, novelty_bonus_pick

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
