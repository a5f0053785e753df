"""Features for the label-efficiency benchmark, computed once and cached on disk.

* Texts (``classify``): any ``featurize(texts) -> (n, d)``; the default is curate's cached MiniLM
  :class:`~curate.runtime.embeddings.Embedder` (unit rows, 384 dimensions).
* Pairs (``preference``): a :data:`PairFeaturizer` ``(prompts, responses) -> (n, d)``, one row per response
  in its prompt's context, so a Bradley-Terry head scores ``w . (phi(prompt, chosen) - phi(prompt, rejected))``.

  - :class:`TextPairFeaturizer` embeds ``prompt + "\\n\\n" + response`` with a text featurizer. MiniLM reads
    only 256 word pieces, so the prompt is cut from the left to ``max_prompt_chars`` characters: otherwise a
    long dialogue pushes the response out of the window and both responses get the same vector.
  - :class:`~curate.runtime.lm_features.LMHiddenStateFeaturizer`: a causal LM's last layer over the response
    tokens (:func:`lm_pair_features` standardises and scales it).
* :class:`HashingFeaturizer`: a deterministic bag-of-words hashing featurizer (no model; tests, dry runs).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.bench.label_efficiency_data import Split
from curate.runtime.lm_features import standardise

Vectors = npt.NDArray[np.float32]
TextFeaturizer = Callable[[Sequence[str]], npt.NDArray[Any]]
#: ``(prompts, responses) -> (n, d)`` features of each response in its prompt's context.
PairFeaturizer = Callable[[Sequence[str], Sequence[str]], npt.NDArray[Any]]
ProgressFn = Callable[[int, int], None]
_TOKEN = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class HashingFeaturizer:
    """Bag of words (and word bigrams) hashed into ``dim`` buckets with signs, L2-normalised; ``(n, dim)``.

    >>> HashingFeaturizer(dim=8)(["a b", ""]).shape
    (2, 8)
    """

    dim: int = 256
    name: str = "hashing"

    def _bucket(self, token: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        return h % self.dim, 1.0 if (h >> 32) & 1 else -1.0

    def __call__(self, texts: Sequence[str]) -> Vectors:
        """``(len(texts), dim)`` float32 unit rows (a text without words is a zero row)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            for token in words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]:
                j, sign = self._bucket(token)
                out[i, j] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)


@dataclass
class MiniLMFeaturizer:
    """curate's cached MiniLM embedder with a progress callback ``(stage, done, total)``; ``texts -> (n, 384)``."""

    cache_dir: Path | None
    progress: Callable[[str, int, int], None] | None
    name: str = "minilm"

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Unit rows, cached on disk under ``cache_dir``."""
        from curate.runtime.embeddings import Embedder

        def show(done: int, total: int) -> None:
            if self.progress is not None:
                self.progress("MiniLM embeddings (new texts)", done, total)

        return Embedder("minilm", cache_dir=self.cache_dir).embed_texts(texts, on_progress=show)


@dataclass(frozen=True)
class EmbeddingPlusTfidf:
    """Sentence embeddings beside word features: ``[embed(texts), weight * tfidf_svd(texts)]``, ``(n, d + <=dim)``.

    The TF-IDF (vocabulary of word 1-2-grams seen in at least 2 texts, sublinear counts) and its truncated SVD are
    fitted on the texts of the call (the benchmark passes pool, test and calibration at once; no labels); the SVD
    rows are L2-normalised, then scaled by ``weight`` (the embedding rows are unit-norm). Short questions lean on
    words an embedding blurs ("how many", "who"): on TREC-6, logistic regression on the whole pool reaches 0.940
    with these features against 0.894 on MiniLM alone (``full_pool_accuracy`` of selection_classify_tfidf.json and
    selection_classify.json in benchmarks/results).
    """

    embed: TextFeaturizer
    dim: int = 256
    weight: float = 0.5

    @property
    def name(self) -> str:
        """The embedder's name plus the TF-IDF settings, e.g. ``minilm+tfidf256x0.5`` (a resume key)."""
        return f"{getattr(self.embed, 'name', type(self.embed).__name__)}+tfidf{self.dim}x{self.weight}"

    def __call__(self, texts: Sequence[str]) -> Vectors:
        """``(len(texts), d + k)`` float32, ``k = min(dim, vocabulary - 1, len(texts) - 1)``."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        dense = np.asarray(self.embed(texts), dtype=np.float32)
        counts = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(list(texts))
        k = min(self.dim, counts.shape[1] - 1, len(texts) - 1)
        words = TruncatedSVD(k, random_state=0).fit_transform(counts)
        words /= np.maximum(np.linalg.norm(words, axis=1, keepdims=True), 1e-12)
        return np.hstack([dense, self.weight * words]).astype(np.float32)


class EmbeddingPlusWords:
    """The product's ``minilm+words`` features (:mod:`curate.runtime.word_features`) in the benchmark, ``(n, d + k)``.

    As the loop fits the word features on a workspace's pool, :func:`~curate.bench.label_efficiency.run_benchmark`
    calls :meth:`fit_pool` with the pool's texts before featurizing pool, test and calibration; the rows are
    :func:`~curate.runtime.word_features.beside` of the embedding and those word features (unit rows).
    """

    def __init__(self, embed: TextFeaturizer) -> None:
        from curate.runtime.word_features import WORD_WEIGHT, c_scale_for

        self.embed, self.weight = embed, WORD_WEIGHT
        self._words: Any = None
        self.word_columns: int | None = None
        #: The product's C scaling for word rows (:func:`~curate.scorers.classifier_models.classifier_c`).
        self.c_scale = c_scale_for(WORD_WEIGHT)

    @property
    def name(self) -> str:
        """``<embedder>+words<dim>x<weight>-Cx<c_scale>-cv`` (a resume key: the settings are the product's constants;
        before 2026-12-06 the classifier kept C unscaled, ``...+words256x0.5``, and read the word columns always,
        ``...-Cx1.25``; since then it reads them where cross-validation on its labels says they help)."""
        from curate.runtime.word_features import WORD_DIM

        base = getattr(self.embed, "name", type(self.embed).__name__)
        return f"{base}+words{WORD_DIM}x{self.weight}-Cx{self.c_scale:g}-cv"

    def fit_pool(self, texts: Sequence[str]) -> None:
        """Fit the word features on the pool's texts (no labels) and read them back as saved, exactly as
        :func:`~curate.runtime.word_features.workspace_embedder` does."""
        import tempfile

        from curate.runtime.word_features import fit_words

        with tempfile.TemporaryDirectory() as folder:
            self._words = fit_words(texts, Path(folder) / "words.npz", source="benchmark pool")
        self.word_columns = self._words.width  # as the product's WordAugmentedEmbedder

    def __call__(self, texts: Sequence[str]) -> Vectors:
        """``(len(texts), d + k)`` float32 unit rows; :meth:`fit_pool` first."""
        from curate.runtime.word_features import beside

        if self._words is None:
            raise RuntimeError("EmbeddingPlusWords: call fit_pool(pool texts) first")
        return beside(self.embed(texts), self._words(texts))


def pair_text(prompt: str, response: str, *, max_prompt_chars: int | None = None) -> str:
    """``prompt + "\\n\\n" + response`` with the prompt cut from the left to ``max_prompt_chars`` characters.

    >>> pair_text("first turn. last turn", "reply", max_prompt_chars=9)
    'last turn\\n\\nreply'
    """
    if max_prompt_chars is not None and len(prompt) > max_prompt_chars:
        prompt = prompt[len(prompt) - max_prompt_chars:].lstrip()
    return f"{prompt}\n\n{response}" if prompt else response


@dataclass(frozen=True)
class TextPairFeaturizer:
    """A text featurizer applied to :func:`pair_text` of each (prompt, response); shape ``(n, d)``."""

    featurize: TextFeaturizer
    max_prompt_chars: int | None = 600

    @property
    def name(self) -> str:
        """Featurizer name plus the prompt cut, for the report."""
        inner = getattr(self.featurize, "name", type(self.featurize).__name__)
        return f"{inner}(prompt[-{self.max_prompt_chars}:] + response)"

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> npt.NDArray[Any]:
        """``(n, d)`` features, one row per (prompt, response)."""
        texts = [pair_text(p, r, max_prompt_chars=self.max_prompt_chars)
                 for p, r in zip(prompts, responses, strict=True)]
        return np.asarray(self.featurize(texts))


def prompt_features(split: Split) -> np.ndarray:
    """``(n_pool, <=64)`` TF-IDF-SVD features of the pool's prompts (for ``variance-novelty``; no model)."""
    from curate.runtime.tfidf_svd import TfidfSvdFeaturizer

    texts = [t or "(no prompt)" for t in split.pool.texts]
    return TfidfSvdFeaturizer(dim=64).fit(texts)(texts)


def minilm_prompt_features(split: Split, cache_dir: Path | None = None) -> np.ndarray:
    """``(n_pool, 384)`` MiniLM embeddings of the pool's prompts, what the product's ``novelty_bonus`` selector
    covers (record embeddings); cached under ``cache_dir`` when given."""
    from curate.runtime.embeddings import Embedder

    texts = [t or "(no prompt)" for t in split.pool.texts]
    return np.asarray(Embedder("minilm", cache_dir=cache_dir).embed_texts(texts), dtype=np.float64)  # repeats once


def tfidf_pair_features(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Chosen / rejected TF-IDF-SVD features of pool, test and calibration (fitted on the pool's pairs, no labels),
    scaled so the pool's mean ``||a - b||`` is 1; each ``(n_pool + n_test + n_cal, <=256)``."""
    from curate.runtime.tfidf_svd import TfidfSvdFeaturizer
    from curate.scorers.reward_laplace import diff_scale

    parts = (split.pool, split.test, split.calibration)
    feats = TfidfSvdFeaturizer().fit(split.pool.chosen, paired_with=split.pool.rejected)
    a = feats([r for p in parts for r in p.chosen])
    b = feats([r for p in parts for r in p.rejected])
    scale = diff_scale(a[: len(split.pool)], b[: len(split.pool)])
    return a / scale, b / scale


def lm_pair_features(split: Split, pair: PairFeaturizer) -> tuple[np.ndarray, np.ndarray]:
    """Chosen / rejected features of pool, test and calibration from ``pair`` (e.g. the packaged SmolLM2's
    response-mean last layer, :class:`LMHiddenStateFeaturizer`), each ``(n_pool + n_test + n_cal, hidden)``: columns
    standardised by the pool's statistics, then scaled so the pool's mean ``||a - b||`` is 1, as
    :func:`tfidf_pair_features` does (a Laplace prior precision then means the same on both)."""
    from curate.scorers.reward_laplace import diff_scale

    parts = (split.pool, split.test, split.calibration)
    prompts = [t for p in parts for t in p.texts]
    ab = np.asarray(pair(prompts + prompts, [r for p in parts for r in p.chosen]
                         + [r for p in parts for r in p.rejected]), dtype=np.float64)
    a, b = ab[: len(prompts)], ab[len(prompts):]
    n_pool = len(split.pool)
    _, a, b = standardise(np.concatenate([a[:n_pool], b[:n_pool]]), a, b)
    scale = diff_scale(a[:n_pool], b[:n_pool])
    return a / scale, b / scale


def classify_features(featurize: Any, split: Split, C: float) -> tuple[np.ndarray, float, int | None]:
    """Features of pool + test + calibration rows ``(n, d)`` float32 as the product fits on them: word features
    fitted on the pool alone (``fit_pool``), and the classifier's C scaled and base columns (word columns read only
    where they help) for these features. Returns ``(x, C, base)``."""
    from curate.scorers.classifier_models import classifier_c
    from curate.scorers.feature_choice import base_columns

    if hasattr(featurize, "fit_pool"):
        featurize.fit_pool(split.pool.texts)
    texts = [t for part in (split.pool, split.test, split.calibration) for t in part.texts]
    return np.asarray(featurize(texts), dtype=np.float32), classifier_c(featurize, C), base_columns(featurize)
