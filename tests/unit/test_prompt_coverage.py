"""prompt_coverage: greedy farthest-first over prompts, the preference suite's measured ``novelty`` in product form."""

from __future__ import annotations

import random

import numpy as np
import pytest

from curate.ingest.records import Record
from curate.runtime.catalog import BuildContext, build_scorer
from curate.runtime.tfidf_svd import TfidfSvdFeaturizer
from curate.scorers.prompt_coverage import coverage_scores, prompt_text
from curate.selectors.novelty import novelty_bonus_pick

TOPICS = {
    "bread": "bake bread dough oven yeast flour",
    "space": "black hole star galaxy orbit planet",
    "tax": "tax income freelancer invoice deduction",
    "code": "python function list loop error",
}


def _prompts(n: int, seed: int = 0) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        topic = list(TOPICS.values())[i % len(TOPICS)].split()
        out.append(" ".join(rnd.sample(topic, 3) + [f"w{rnd.randrange(200)}" for _ in range(3)]) + f" q{i}")
    return out


def _record(i: int, prompt: str, kind: str = "candidates") -> Record:
    fields = ({"prompt": prompt, "completions": [f"a{i}", f"b{i}"]} if kind == "candidates"
              else {"prompt": prompt, "chosen": f"a{i}", "rejected": f"b{i}"})
    return Record(id=f"r{i}", kind=kind, fields=fields)


def test_top_k_is_the_suites_novelty_pick_order():
    """The same order as the benchmark's ``novelty`` strategy (NoveltyBonus, beta 1, zero scores) on the same
    TF-IDF-SVD prompt features, with the labelled prompts covered."""
    pool, labelled = _prompts(120, seed=1), _prompts(10, seed=2)
    scores = coverage_scores(pool, labelled)
    ours = np.argsort(-scores, kind="stable")[:40]
    texts = pool + labelled
    x = TfidfSvdFeaturizer(dim=64).fit(texts)(texts)
    base = np.zeros(len(texts))
    base[len(pool):] = np.nan
    assert ours.tolist() == novelty_bonus_pick(base, x, 40, beta=1.0).tolist()


def test_covered_topics_come_last_and_each_topic_is_reached_early(caplog):
    caplog.set_level("INFO", logger="curate")
    pool = ["bake bread with yeast", "bread dough in the oven", "flour and yeast for bread",
            "black hole near a star", "python loop error", "tax deduction for a freelancer"]
    first = coverage_scores(pool, [])
    assert first.shape == (6,) and np.all((first > 0) & (first <= 1)) and len(set(first.tolist())) == 6
    covered = coverage_scores(pool, ["how to bake bread with yeast and flour in an oven"])
    top3 = set(np.argsort(-covered)[:3].tolist())
    assert top3 == {3, 4, 5}  # the three uncovered topics before any bread prompt
    assert "prompt_coverage: ordering 6 prompts (1 covered): done in" in caplog.text  # one call, no bar: it says so


def test_only_max_ranked_picks_get_a_rank_and_the_rest_score_zero():
    scores = coverage_scores(_prompts(50), [], max_ranked=10)
    assert np.count_nonzero(scores) == 10 and scores.max() == 1.0
    with pytest.raises(Exception, match="max_ranked"):
        coverage_scores(_prompts(5), [], max_ranked=0)


def test_catalog_scorer_covers_ranked_prompts_and_keys_by_them(tmp_path):
    pool = [_record(i, p) for i, p in enumerate(["bake bread with yeast", "black hole near a star",
                                                 "python loop error", "bread dough in the oven"])]
    cold = build_scorer("prompt_coverage", BuildContext(cache_dir=tmp_path))
    ranked = [_record(9, "flour and yeast for bread, baked in an oven", kind="preference")]
    warm = build_scorer("prompt_coverage", BuildContext(cache_dir=tmp_path, labeled=ranked))
    assert cold.key() != warm.key() and "covered[1:" in warm.key()
    s = warm.score(pool)
    assert s.shape == (4,) and max(s[1], s[2]) > max(s[0], s[3])  # bread is covered by the ranked pair
    assert prompt_text(Record(id="m", kind="preference", fields={"messages": [{"role": "user", "content": "hi"}],
                                                                 "chosen": "a", "rejected": "b"})) == "hi"
    assert prompt_text(_record(1, "  ")) == "(no prompt)"
