"""Sentence embeddings beside word features: the ``--embedder minilm+words`` of loops, scorers and selectors.

An embedding blurs the words that decide short texts ("how many", "who", a product name); word 1-2-gram TF-IDF
keeps them. ``<base>+words`` (e.g. ``minilm+words``) gives each text the unit row
``[base(text), WORD_WEIGHT * unit(words(text))] / norm``, where ``words`` is a
:class:`~curate.runtime.tfidf_svd.TfidfSvdFeaturizer` (hashed word 1-2-grams, sublinear TF-IDF, truncated SVD
to :data:`WORD_DIM` columns) **fitted once per workspace** on the texts of its pool (no labels; at most
:data:`FIT_LIMIT` of them, a seeded sample) and frozen in ``<workspace>/cache/embeddings/<spec>/words.npz``: records
ingested later are read through the same fit, so a loop's features never move under it. Delete that file to fit
again on today's pool.

Measured (``benchmarks/bench_word_features.py``: logistic regression on random label subsets, README): on the whole
pool TREC-6's short questions go from 0.898 to 0.936, AG News 0.873 -> 0.883, banking77 0.930 -> 0.936; with 2
labels per class of banking77's 77 they tie (0.475 -> 0.472 at 150 random labels, since classifiers on these rows fit
with ``C * c_scale``), but from a stratified start of 2 per class the selection suite's curve stayed 0.5-0.9 points
lower up to about 900 labels (0.660 -> 0.651 at the start). Since 2026-12-06 classifiers read the word columns only
where 3-fold cross-validation on their labels says they help (:mod:`curate.scorers.feature_choice`), and
``minilm+words`` is the ``label-teach`` recipe's default.

The base embeddings are cached as the base embedder's own (``embeddings/minilm``), so switching a workspace to
``minilm+words`` embeds nothing again; the word columns are recomputed on each call (sparse: 0.1-0.4 s for
7,600-10,000 texts here).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.runtime.embeddings import (
    _SAFE,
    Embedder,
    MemoEmbedder,
    Vectors,
    embedder_from_spec,
    encoder_from_spec,
    record_text,
)
from curate.runtime.tfidf_svd import TfidfSvdFeaturizer

if TYPE_CHECKING:
    from curate.store.workspace import Workspace

WORDS_SUFFIX = "+words"
#: SVD columns of the word features, and the weight of their unit rows beside the unit embedding (chosen on
#: whole-pool and random-subset accuracy of banking77, TREC-6 and AG News; README).
WORD_DIM = 256
WORD_WEIGHT = 0.5
#: Hashed word columns used by fewer fitted texts are left out of the SVD (words seen once).
WORD_MIN_DF = 2
#: Most word columns the SVD keeps (the most used): a saved state of at most ``WORD_DIM x 2**15`` float32, 32 MB.
WORD_MAX_COLUMNS = 2**15
#: Most pool texts the word features are fitted on (a seeded sample beyond it).
FIT_LIMIT = 50_000
FitFn = Callable[[str, int], None]


def c_scale_for(weight: float = WORD_WEIGHT) -> float:
    """How much a classifier's C grows on unit rows of word weight ``weight``: ``1 + weight**2`` (the rows shrink
    the base part by ``1 / sqrt(1 + weight**2)``; :func:`~curate.scorers.classifier_models.classifier_c`)."""
    return 1.0 + weight**2


def is_words_spec(spec: str) -> bool:
    """True for ``<base>+words`` embedder specs."""
    return spec.endswith(WORDS_SUFFIX) and len(spec) > len(WORDS_SUFFIX)


def base_spec(spec: str) -> str:
    """``minilm+words`` -> ``minilm``."""
    return spec[: -len(WORDS_SUFFIX)]


def words_path(cache_dir: Path, spec: str) -> Path:
    """Where the workspace's fitted word features for ``spec`` live."""
    return cache_dir / "embeddings" / _SAFE.sub("_", spec) / "words.npz"


class WordAugmentedEmbedder(Embedder):
    """``[base(texts), weight * unit(words(texts))]`` as unit rows, ``(n, d_base + d_words)`` float32.

    ``base`` is any :class:`Embedder` (its own disk cache is used); ``words`` a fitted
    :class:`~curate.runtime.tfidf_svd.TfidfSvdFeaturizer`. Unit rows shrink the base part by
    ``1 / sqrt(1 + weight**2)``; ``c_scale = 1 + weight**2`` gives it back to the classifiers fitted on them, which
    keeps banking77's accuracy with 2 labels per class (0.463 -> 0.472 at 150 random labels, MiniLM alone 0.475).
    """

    def __init__(self, base: Embedder, words: TfidfSvdFeaturizer, *, weight: float = WORD_WEIGHT) -> None:
        super().__init__(base.name + WORDS_SUFFIX, cache_dir=None, batch_size=base.batch_size)
        self.base, self.words, self.weight = base, words, weight
        #: Classifiers on these rows fit with ``C * c_scale`` (:func:`~curate.scorers.classifier_models.classifier_c`).
        self.c_scale = c_scale_for(weight)
        #: The last columns, the word features: a classifier reads them only where they help on its labels
        #: (:func:`~curate.scorers.feature_choice.base_columns`).
        self.word_columns = words.width

    def embed_texts(self, texts: Sequence[str], *,
                    on_progress: Callable[[int, int], None] | None = None) -> Vectors:
        """Unit rows ``(len(texts), d)`` float32; ``on_progress`` follows the base embedder's model calls."""
        if not len(texts):
            return np.zeros((0, 0), dtype=np.float32)
        dense = self.base.embed_texts(texts, on_progress=on_progress)
        self.computed_ = self.base.computed_
        return beside(dense, self.words(texts), self.weight)


def beside(dense: npt.ArrayLike, words: npt.ArrayLike, weight: float = WORD_WEIGHT) -> Vectors:
    """Unit rows of ``[dense, weight * unit(words)]``: ``(n, d) + (n, k) -> (n, d + k)`` float32.

    >>> beside([[1.0, 0.0]], [[0.0, 2.0]], weight=1.0).astype(float).round(3).tolist()
    [[0.707, 0.0, 0.0, 0.707]]
    """
    dense64, words64 = np.asarray(dense, dtype=np.float64), np.array(words, dtype=np.float64)
    words64 /= np.maximum(np.linalg.norm(words64, axis=1, keepdims=True), 1e-12)
    both = np.hstack([dense64, weight * words64])
    return np.asarray(both / np.maximum(np.linalg.norm(both, axis=1, keepdims=True), 1e-12), dtype=np.float32)


def sample_texts(texts: Iterable[str], limit: int, *, seed: int = 0) -> list[str]:
    """At most ``limit`` of ``texts`` (reservoir sampling: one pass, ``limit`` texts in memory), in stream order."""
    rng = np.random.default_rng(seed)
    kept: list[tuple[int, str]] = []
    for i, text in enumerate(texts):
        if i < limit:
            kept.append((i, text))
        else:
            j = int(rng.integers(0, i + 1))
            if j < limit:
                kept[j] = (i, text)
    return [t for _, t in sorted(kept)]


def new_word_featurizer() -> TfidfSvdFeaturizer:
    """An unfitted featurizer with the word features' settings (:data:`WORD_DIM`, :data:`WORD_MIN_DF`)."""
    return TfidfSvdFeaturizer(dim=WORD_DIM, min_df=WORD_MIN_DF, max_columns=WORD_MAX_COLUMNS)


def fit_words(texts: Sequence[str], path: Path, *, source: str = "") -> TfidfSvdFeaturizer:
    """Fit :data:`WORD_DIM`-column word features on ``texts``, save them (with a ``.json`` note) to ``path`` and
    return them as saved (what every later run loads).

    Raises:
        InputError: fewer than 2 distinct non-empty texts.
    """
    distinct = list(dict.fromkeys(t for t in texts if t.strip()))
    if len(distinct) < 2:
        raise InputError(f"word features need at least 2 distinct texts in the pool{f' of {source}' if source else ''}"
                         f"; found {len(distinct)}. Ingest records first (curate ingest FILE), or use --embedder "
                         "minilm.")
    started = time.perf_counter()
    new_word_featurizer().fit(distinct).save(path)
    note = {"texts": len(distinct), "source": source, "dim": WORD_DIM, "weight": WORD_WEIGHT,
            "seconds": round(time.perf_counter() - started, 2),
            "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "refit": f"delete {path.name} to fit again on the pool as it is then"}
    path.with_suffix(".json").write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
    return TfidfSvdFeaturizer.load(path)


def load_words_embedder(spec: str, cache_dir: Path | None, *, memo: bool = False) -> WordAugmentedEmbedder:
    """The ``<base>+words`` embedder whose word features were fitted in this workspace cache.

    Raises:
        InputError: not fitted yet (the message says how to fit them).
    """
    path = words_path(cache_dir, spec) if cache_dir is not None else None
    if path is None or not path.exists():
        raise InputError(f"--embedder {spec}: its word features are not fitted in this workspace yet; they are "
                         "fitted on the pool by the first curate loop / curate select / curate seed run with "
                         f"--embedder {spec} (or curate.runtime.word_features.workspace_embedder).")
    base = base_spec(spec)
    inner = MemoEmbedder(base, encode=encoder_from_spec(base)) if memo else embedder_from_spec(base, cache_dir)
    return WordAugmentedEmbedder(inner, TfidfSvdFeaturizer.load(path))


def embedder_for_spec(spec: str, cache_dir: Path | None) -> Embedder:
    """:func:`~curate.runtime.embeddings.embedder_from_spec`, plus ``<base>+words`` whose word features are fitted
    in ``cache_dir`` already (:func:`load_words_embedder`)."""
    return load_words_embedder(spec, cache_dir) if is_words_spec(spec) else embedder_from_spec(spec, cache_dir)


def workspace_embedder(spec: str, ws: Workspace, *, memo: bool = False, on_fit: FitFn | None = None) -> Embedder:
    """The embedder ``spec`` names for workspace ``ws``: plain specs as :func:`embedder_from_spec` (or
    :class:`MemoEmbedder` with ``memo``); ``<base>+words`` with its word features fitted on the pool's texts the
    first time (``on_fit(spec, n_texts)`` is called before that fit), loaded afterwards."""
    if not is_words_spec(spec):
        return MemoEmbedder(spec, encode=encoder_from_spec(spec)) if memo else embedder_from_spec(spec, ws.cache_dir)
    path = words_path(ws.cache_dir, spec)
    if not path.exists():
        texts = sample_texts((record_text(r) for r in ws.store.iter_records(split="pool")), FIT_LIMIT)
        if on_fit is not None:
            on_fit(spec, len(texts))
        fit_words(texts, path, source=str(ws.root))
    return load_words_embedder(spec, ws.cache_dir, memo=memo)


__all__ = ["FIT_LIMIT", "c_scale_for", "WORDS_SUFFIX", "WORD_DIM", "WORD_MAX_COLUMNS", "WORD_MIN_DF", "WORD_WEIGHT",
           "WordAugmentedEmbedder", "base_spec", "beside", "embedder_for_spec", "fit_words", "is_words_spec",
           "load_words_embedder", "new_word_featurizer", "sample_texts", "words_path", "workspace_embedder"]
