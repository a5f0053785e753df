"""Features for the label-efficiency benchmark, computed once and cached on disk.

* Texts (``classify``): any ``featurize(texts) -> (n, d)``; the default is curate's cached MiniLM
  :class:`~curate.runtime.embeddings.Embedder` (unit rows, 384 dimensions).
* Pairs (``preference``): a :data:`PairFeaturizer` ``(prompts, responses) -> (n, d)``, one row per response
  in its prompt's context, so a Bradley-Terry head scores ``w . (phi(prompt, chosen) - phi(prompt, rejected))``.

  - :class:`TextPairFeaturizer` embeds ``prompt + "\\n\\n" + response`` with a text featurizer. MiniLM reads
    only 256 word pieces, so the prompt is cut from the left to ``max_prompt_chars`` characters: otherwise a
    long dialogue pushes the response out of the window and both responses get the same vector.
  - :class:`LMHiddenStateFeaturizer` runs a causal LM (the packaged SmolLM2 by default) over
    ``prompt + "\\n\\nAssistant: " + response`` and mean-pools the last hidden layer over the **response**
    tokens (the prompt's states are identical for both responses of a causal LM, so they would only add a
    length-dependent shift). Batched by length; cached per (prompt, response) in the workspace cache. Cost on
    a 2-core CPU: ~5-8 ms per token, i.e. ~25-60 minutes for the 2,300 HH pairs; see ``--pool-limit``.
* :class:`HashingFeaturizer`: a deterministic bag-of-words hashing featurizer (no model; tests, dry runs).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.bench.label_efficiency_data import Split
from curate.runtime.embeddings import EmbeddingCache, text_hash

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


@dataclass
class LMHiddenStateFeaturizer:
    """Mean of a causal LM's last hidden layer over the response tokens; shape ``(n, hidden)`` float32.

    Attributes:
        cache_dir: workspace cache: the per-pair feature cache (``embeddings/<key>/``).
        model: ``None`` for the packaged SmolLM2, else a local folder or Hub id.
        max_length: tokens per sequence; the response keeps its first tokens (up to 3/4 of it), the prompt
            its last tokens.
        batch_tokens: padded tokens per forward pass (sequences are batched by length).
        on_progress: ``(done, total)`` after each batch.
    """

    cache_dir: Path
    model: str | None = None
    max_length: int = 256
    batch_tokens: int = 4096
    on_progress: ProgressFn | None = None
    computed_: int = field(default=0, init=False)
    _loaded: tuple[Any, Any] | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        """Model and pooling, for the report and the cache folder."""
        return f"{self.model or 'smollm2'}-response-mean-{self.max_length}"

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from curate.runtime.models import load_lm

            self._loaded = load_lm(self.model)
        return self._loaded

    def _encode(self, tokenizer: Any, prompt: str, response: str) -> tuple[list[int], int]:
        """Token ids of the sequence and the position where the response starts."""
        p_ids = tokenizer(f"{prompt}\n\nAssistant:" if prompt else "Assistant:")["input_ids"]
        r_ids = tokenizer(" " + response, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
        r_ids = r_ids[: max(1, (3 * self.max_length) // 4)]
        p_ids = p_ids[max(0, len(p_ids) - (self.max_length - len(r_ids))):]
        return p_ids + r_ids, len(p_ids)

    def _forward(self, batch: list[tuple[list[int], int]]) -> Vectors:
        import torch

        model, tokenizer = self._load()
        width = max(len(ids) for ids, _ in batch)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        resp = torch.zeros((len(batch), width), dtype=torch.float32)
        for i, (seq, start) in enumerate(batch):
            ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
            resp[i, start: len(seq)] = 1.0
        with torch.inference_mode():  # the base model: its last hidden state, without the LM head's logits
            hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden.float() * resp[:, :, None]).sum(1) / resp.sum(1, keepdim=True).clamp(min=1.0)
        return np.asarray(pooled.numpy(), dtype=np.float32)

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> Vectors:
        """``(n, hidden)`` features; cached pairs are read from disk, the rest computed longest first."""
        cache = EmbeddingCache(self.cache_dir / "embeddings" / re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name))
        keys = [text_hash(f"{p}\x00{r}") for p, r in zip(prompts, responses, strict=True)]
        hits, found = cache.get(keys)
        out: Vectors | None = None
        if found is not None:
            out = np.empty((len(keys), found.shape[1]), dtype=np.float32)
            out[hits] = found
        todo_set: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            todo_set.setdefault(k, i)
        for i in hits:
            todo_set.pop(keys[i], None)
        todo = list(todo_set.values())
        if todo:
            _, tokenizer = self._load()
            encoded = {i: self._encode(tokenizer, prompts[i], responses[i]) for i in todo}
            todo.sort(key=lambda i: len(encoded[i][0]), reverse=True)
            done = 0
            while done < len(todo):
                size = max(1, self.batch_tokens // len(encoded[todo[done]][0]))
                part = todo[done: done + size]
                vecs = self._forward([encoded[i] for i in part])
                if out is None:
                    out = np.empty((len(keys), vecs.shape[1]), dtype=np.float32)
                out[part] = vecs
                cache.put([keys[i] for i in part], vecs)
                done += len(part)
                self.computed_ += len(part)
                if self.on_progress is not None:
                    self.on_progress(done, len(todo))
        if out is None:
            return np.zeros((0, 0), dtype=np.float32)
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        for i, k in enumerate(keys):  # repeated pairs take the row computed for their first occurrence
            if first[k] != i:
                out[i] = out[first[k]]
        return out


def standardise(train: npt.ArrayLike, *others: npt.ArrayLike) -> list[npt.NDArray[np.float64]]:
    """Centre and scale columns by ``train``'s mean and sd (unsupervised: pool features only), ``(n, d)`` each."""
    x = np.asarray(train, dtype=np.float64)
    mean, sd = x.mean(axis=0), x.std(axis=0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    return [(np.asarray(a, dtype=np.float64) - mean) / sd for a in (x, *others)]


def prompt_features(split: Split) -> np.ndarray:
    """``(n_pool, <=64)`` TF-IDF-SVD features of the pool's prompts (for ``variance-novelty``; no model)."""
    from curate.scorers.reward_laplace import TfidfSvdFeaturizer

    texts = [t or "(no prompt)" for t in split.pool.texts]
    return TfidfSvdFeaturizer(dim=64).fit(texts)(texts)


def tfidf_pair_features(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Chosen / rejected TF-IDF-SVD features of pool, test and calibration (fitted on the pool's pairs, no labels),
    scaled so the pool's mean ``||a - b||`` is 1; each ``(n_pool + n_test + n_cal, <=256)``."""
    from curate.scorers.reward_laplace import TfidfSvdFeaturizer, diff_scale

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
