"""Rewrite-budget scorers: completion length, prompt-answer relevance, and their rank average (rewrite_need)."""

from __future__ import annotations

import numpy as np

from curate.ingest.records import Record, record_id
from curate.runtime.catalog import BuildContext, build_scorer
from curate.runtime.embeddings import Embedder
from curate.scorers.rewrite import CompletionLengthScorer, RankAverageScorer, RelevanceScorer


def _example(prompt: str, completion: str) -> Record:
    fields = {"prompt": prompt, "completion": completion}
    return Record(id=record_id("example", fields), kind="example", fields=fields)


RECORDS = [
    _example("How do I boil an egg?", "Put the egg in boiling water for eight minutes, then cool it in cold water."),
    _example("How do I boil an egg?", "I don't know."),
    _example("How do I boil an egg?", "The capital of France is Paris, a city on the Seine with many museums."),
    Record(id="t", kind="text", fields={"text": "not a prompt-completion pair"}),
]


def _topic_embedder() -> Embedder:
    """Unit vectors by topic word: egg/boil/water -> axis 0, France/Paris -> axis 1, anything else -> axis 2."""
    def encode(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 3), dtype=np.float32)
        for i, t in enumerate(texts):
            low = t.lower()
            axis = 0 if any(w in low for w in ("egg", "boil", "water")) else 1 if "paris" in low else 2
            out[i, axis] = 1.0
        return out

    return Embedder("topics", encode=encode)


def test_shortest_and_longest_score_the_completion_length():
    short = CompletionLengthScorer().score(RECORDS)
    assert short[1] > short[0] and short[1] == -len("I don't know.") and np.isnan(short[3])
    long = build_scorer("longest", BuildContext(cache_dir=None)).score(RECORDS)  # type: ignore[arg-type]
    assert long[0] > long[1] and np.isnan(long[3])


def test_relevance_is_high_for_an_answer_to_another_question():
    scores = RelevanceScorer(embedder=_topic_embedder()).score(RECORDS)
    assert scores[0] == 0.0 and scores[2] == 1.0 and scores[1] == 1.0 and np.isnan(scores[3])


def test_rank_average_combines_the_parts_ranks_within_the_set():
    combined = RankAverageScorer(parts=(CompletionLengthScorer(), RelevanceScorer(embedder=_topic_embedder())))
    scores = combined.score(RECORDS[:3])
    assert int(np.argmax(scores)) == 1  # short and off-topic: ranked first by both
    assert int(np.argmin(scores)) == 0  # the real answer: last by both
    assert combined.set_dependent and "completion_length" in combined.key() and "relevance" in combined.key()
    built = build_scorer("rewrite_need", BuildContext(cache_dir=None))  # type: ignore[arg-type]
    assert isinstance(built, RankAverageScorer) and [p.name for p in built.parts] == ["completion_length",
                                                                                     "relevance", "ifd"]
