"""The scorer contract.

A scorer turns records into one float each: ``score(records) -> NDArray[float64]`` of shape ``(n,)``.
**Higher = more worth a human's time**, always; a scorer whose natural quantity runs the other way negates it.
NaN means "cannot score this record" (selectors skip NaN). A scorer is a frozen dataclass: its fields are its
serialisable configuration, and :meth:`BaseScorer.key` (name + non-default fields + model version) identifies
its scores in the cache and the audit log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from curate.ingest.records import Record
from curate.runtime.config import config_key
from curate.runtime.embeddings import Embedder

Scores = npt.NDArray[np.float64]


@runtime_checkable
class Scorer(Protocol):
    """Anything with a ``name``, a ``key()`` and ``score(records) -> (n,) float64, higher = more worth labeling``."""

    name: ClassVar[str]

    def key(self) -> str:
        """Name, non-default parameters and model version: identifies this scorer's scores."""
        ...

    def score(self, records: Sequence[Record]) -> Scores:
        """One score per record, shape ``(len(records),)``, higher = more worth labeling; NaN = cannot score."""
        ...


@dataclasses.dataclass
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
        """The (disk-cached) embedder ``embedder`` names (:func:`~curate.runtime.word_features.embedder_for_spec`)."""
        from curate.runtime.word_features import embedder_for_spec

        return embedder_for_spec(self.embedder, self.cache_dir)


@dataclasses.dataclass(frozen=True)
class BaseScorer:
    """Base of curate's scorers: frozen config fields plus :meth:`key`.

    Subclasses set ``name`` and implement :meth:`score`. Fields named in ``key_exclude`` (caches, models held at
    run time) are left out of the key; ``model_version`` says which model produced the scores.
    """

    name: ClassVar[str] = "scorer"
    key_exclude: ClassVar[frozenset[str]] = frozenset()
    #: True when a record's score depends on which other records are scored with it (e.g. density):
    #: the score cache then keys scores by the scored set as well.
    set_dependent: ClassVar[bool] = False
    #: The names ``curate score --scorer`` knows this class by, each with the options it builds with (the class's
    #: own ``name`` is also accepted, with no options).
    catalog: ClassVar[dict[str, dict[str, Any]]] = {}
    #: The kind of labeled records the scorer trains on (``"text"`` for classifiers, ``"preference"`` for reward
    #: models), or ``None`` when it needs no labels.
    learns_from: ClassVar[str | None] = None
    #: True when the scores come from a causal LM (``--model``, ``--adapter`` or ``--model-version``).
    needs_model_version: ClassVar[bool] = False
    #: True when the scores depend only on sentence embeddings (no model version recorded; embedded on Ray).
    embeddings_only: ClassVar[bool] = False
    #: Records per ``score`` call when the caller does not choose (``None``: the score cache's default). A slow
    #: scorer asks for a few, so that finished work is committed every few seconds and progress moves.
    records_per_call: ClassVar[int | None] = None

    @classmethod
    def build(cls, ctx: BuildContext, **options: Any) -> BaseScorer:
        """The scorer for ``ctx`` (its models, cache and labeled records) with ``options`` (from :attr:`catalog`)."""
        return cls(**options)

    def model_version(self) -> str | None:
        """Version of the model behind the scores (``None`` for model-free scorers)."""
        return None

    def key(self) -> str:
        """``name(param=value,...)@model_version`` with only the fields that differ from their defaults."""
        return config_key(self, exclude=self.key_exclude, version=self.model_version())

    def score(self, records: Sequence[Record]) -> Scores:
        """One score per record, shape ``(n,)``, higher = more worth labeling."""
        raise NotImplementedError


def as_scores(values: Any, n: int, *, who: str) -> Scores:
    """Check and convert a scorer's output: float64, shape ``(n,)``."""
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (n,):
        raise ValueError(f"{who} returned scores of shape {out.shape}; expected ({n},)")
    return out
