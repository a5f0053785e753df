"""Scorers for a rewrite budget: which prompt-completion rows most need an expert's rewrite.

* ``shortest`` / ``longest`` (:class:`CompletionLengthScorer`): the completion's length in characters; truncated
  answers and non-answers are short, so ``shortest`` scores shorter answers higher; ``longest`` is the "Long Is
  More" ordering.
* ``relevance`` (:class:`RelevanceScorer`): ``1 - cos(prompt, completion)`` of their MiniLM embeddings; higher = the
  answer is further from its question (the answer of another prompt, a generic reply).
* :class:`RankAverageScorer`: the mean rank of several scorers' scores within the scored set (rank 0 = lowest, ties
  averaged); ``rewrite_need`` is the combination ``curate bench rewrite-budget`` chose across data sets (see the
  README). Ranks depend on which records are scored together, so it is set-dependent.

Every score: higher = more worth a rewrite; records without a prompt-completion pair score NaN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from curate.errors import InputError
from curate.ingest.records import Record, as_text, is_conversational
from curate.runtime.embeddings import Embedder
from curate.scorers.base import BaseScorer, BuildContext, Scorer, Scores

#: The parts of ``rewrite_need``, chosen leave-one-data-set-out by ``benchmarks/bench_rewrite_budget.py``: on each of
#: three sets left out it was the best on the other two, and found 2.42-2.57x the damaged rows random finds at a 30%
#: budget there (``relevance`` alone, without a language model, was within 0.01 on average).
REWRITE_NEED: tuple[str, ...] = ("shortest", "relevance", "ifd")


def prompt_and_completion(record: Record) -> tuple[str, str] | None:
    """``(prompt, completion)`` texts of an ``example`` record (a messages record: all turns before the last
    assistant message, and that message), or ``None``."""
    fields = record.fields
    if record.kind != "example":
        return None
    messages = fields.get("messages")
    if is_conversational(messages) and messages and messages[-1].get("role") == "assistant":
        return as_text(messages[:-1]), as_text(messages[-1].get("content", ""))
    if "completion" in fields:
        return as_text(fields.get("prompt", "")), as_text(fields["completion"])
    return None


def rank_average(columns: Sequence[Scores]) -> Scores:
    """Mean of each column's ranks (0 = lowest, ties averaged; NaN ranks lowest): shape ``(n,)``, higher = higher.
    A record that no column can score (NaN in every one) is NaN: it is not a pair the combination can judge.

    >>> rank_average([np.array([3.0, 1, 2]), np.array([1.0, 2, 3])]).tolist()
    [1.0, 0.5, 1.5]
    >>> rank_average([np.array([np.nan, 1.0]), np.array([np.nan, 2.0])]).tolist()
    [nan, 1.0]
    """
    from scipy.stats import rankdata

    values = [np.asarray(c, dtype=np.float64) for c in columns]
    ranks = [rankdata(np.nan_to_num(c, nan=-np.inf), method="average") - 1 for c in values]
    out = np.asarray(np.mean(ranks, axis=0), dtype=np.float64)
    out[np.all([np.isnan(c) for c in values], axis=0)] = np.nan
    return out


@dataclasses.dataclass(frozen=True)
class CompletionLengthScorer(BaseScorer):
    """Completion length in characters: ``shortest`` (default) scores shorter answers higher, ``longest`` longer."""

    name: ClassVar[str] = "completion_length"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {"shortest": {"direction": "shortest"},
                                                     "longest": {"direction": "longest"}}
    direction: str = "shortest"

    def __post_init__(self) -> None:
        if self.direction not in ("shortest", "longest"):
            raise InputError(f"completion_length: direction must be shortest or longest; got {self.direction!r}")

    def score(self, records: Sequence[Record]) -> Scores:
        """Shape ``(n,)``: minus the length (shortest) or the length (longest); NaN without a completion."""
        sign = -1.0 if self.direction == "shortest" else 1.0
        pairs = [prompt_and_completion(r) for r in records]
        return np.array([np.nan if p is None else sign * len(p[1].strip()) for p in pairs], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class RelevanceScorer(BaseScorer):
    """``1 - cos(prompt, completion)`` of their sentence embeddings; higher = the answer is further from its
    question. The embedder is excluded from the key (its name is the model version)."""

    name: ClassVar[str] = "relevance"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {"relevance": {}}
    embeddings_only: ClassVar[bool] = True
    key_exclude: ClassVar[frozenset[str]] = frozenset({"embedder"})
    embedder: Embedder = dataclasses.field(default_factory=Embedder, compare=False)

    @classmethod
    def build(cls, ctx: BuildContext, **options: Any) -> RelevanceScorer:
        """With ``ctx``'s (cached) embedder."""
        return cls(embedder=ctx.make_embedder(), **options)

    def model_version(self) -> str:
        """The embedder's key."""
        return self.embedder.key

    def score(self, records: Sequence[Record]) -> Scores:
        """Shape ``(n,)`` in ``[0, 2]``; NaN without a prompt-completion pair."""
        pairs = [prompt_and_completion(r) for r in records]
        rows = [i for i, p in enumerate(pairs) if p is not None]
        out = np.full(len(records), np.nan, dtype=np.float64)
        if rows:
            prompts = self.embedder.embed_texts([pairs[i][0] for i in rows])  # type: ignore[index]
            answers = self.embedder.embed_texts([pairs[i][1] for i in rows])  # type: ignore[index]
            out[rows] = 1.0 - np.sum(prompts * answers, axis=1, dtype=np.float64)
        return out


@dataclasses.dataclass(frozen=True)
class RankAverageScorer(BaseScorer):
    """Mean rank of its parts' scores within the scored records; higher = ranked high by the parts on average.

    Args:
        parts: the scorers combined (built from catalog names by :meth:`build`).
    """

    name: ClassVar[str] = "rank_average"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {"rewrite_need": {"parts": REWRITE_NEED}}
    set_dependent: ClassVar[bool] = True
    key_exclude: ClassVar[frozenset[str]] = frozenset({"parts"})
    parts: tuple[Any, ...] = ()

    @classmethod
    def build(cls, ctx: BuildContext, **options: Any) -> RankAverageScorer:
        """Each part (a catalog name, or a built scorer) built for ``ctx``."""
        from curate.runtime.catalog import build_scorer

        parts = tuple(build_scorer(p, ctx) if isinstance(p, str) else p for p in options.pop("parts", ()))
        return cls(parts=parts, **options)

    def __post_init__(self) -> None:
        if not self.parts:
            raise InputError("rank_average needs at least one part scorer")

    def model_version(self) -> str:
        """The parts' keys, joined."""
        return "+".join(p.key() for p in self.parts)

    def score(self, records: Sequence[Record]) -> Scores:
        """Shape ``(n,)``: the mean over parts of each record's rank (0 = lowest; NaN ranks lowest)."""
        if not records:
            return np.zeros(0, dtype=np.float64)
        parts: list[Scorer] = list(self.parts)
        return self.combine([np.asarray(p.score(records), dtype=np.float64) for p in parts])

    def combine(self, part_scores: Sequence[Scores]) -> Scores:
        """The rank average of the parts' scores of the same records (each ``(n,)``); the score cache scores
        each part on its own (cached, with progress) and calls this."""
        return rank_average([np.asarray(s, dtype=np.float64) for s in part_scores])
