"""Features of responses in their prompt's context from a causal LM, cached per (prompt, response).

:class:`LMHiddenStateFeaturizer` runs a causal LM (the packaged SmolLM2 by default) over
``prompt + "\\n\\nAssistant: " + response`` and mean-pools the last hidden layer over the **response** tokens (the
prompt's states are identical for both responses of a causal LM, so they would only add a length-dependent shift).
Sequences are cut to ``max_length`` tokens (the response keeps its first tokens, up to 3/4 of them; the prompt its
last), batched by length, longest first, and cached in ``<cache>/embeddings/<model>-response-mean-<max_length>/``, so
an interrupted run keeps what it finished and a rerun reads it back. Cost on a 2-core CPU: ~0.2-0.3 s per response
of 256 tokens with two threads.

Used by the preference benchmarks (``curate bench label-efficiency --features smollm2``, the preference suite) and by
the ``reward_variance`` scorer with ``features="lm"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.runtime.embeddings import EmbeddingCache, Vectors, text_hash

ProgressFn = Callable[[int, int], None]


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
        layers: ``"last"`` (the default: the final, normed layer), ``"all"`` (every decoder layer's mean, first to
            last, concatenated: ``(n, n_layers * hidden)``) or 1-based layer numbers ``"8,16,30"`` (concatenated in
            that order). Each choice has its own cache folder.
    """

    cache_dir: Path
    model: str | None = None
    max_length: int = 256
    batch_tokens: int = 4096
    on_progress: ProgressFn | None = None
    layers: str = "last"
    computed_: int = field(default=0, init=False)
    _loaded: tuple[Any, Any] | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        """Model and pooling, for the report and the cache folder."""
        which = "" if self.layers == "last" else f"-layers-{self.layers.replace(',', '_')}"
        return f"{self.model or 'smollm2'}-response-mean-{self.max_length}{which}"

    @property
    def n_layers(self) -> int:
        """Decoder layers of the model (loads it)."""
        return int(self._load()[0].config.num_hidden_layers)

    def _layer_numbers(self, n_layers: int) -> list[int] | None:
        """1-based decoder layers to pool (``None``: the last hidden state); raises on a bad ``layers``."""
        if self.layers == "last":
            return None
        if self.layers == "all":
            return list(range(1, n_layers + 1))
        try:
            numbers = [int(x) for x in self.layers.split(",") if x.strip()]
        except ValueError:
            numbers = []
        if not numbers or any(not 1 <= n <= n_layers for n in numbers):
            raise InputError(f"LM feature layers: expected 'last', 'all' or comma-separated layer numbers from 1 to "
                             f"{n_layers}; got {self.layers!r}.")
        return numbers

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
        numbers = self._layer_numbers(int(model.config.num_hidden_layers))
        with torch.inference_mode():  # the base model: hidden states, without the LM head's logits
            out = model.base_model(input_ids=ids, attention_mask=mask, output_hidden_states=numbers is not None)
        # hidden_states[0] is the token embeddings, [i] decoder layer i; the last one is the normed final state
        states = [out.last_hidden_state] if numbers is None else [out.hidden_states[n] for n in numbers]
        weights = resp[:, :, None] / resp.sum(1, keepdim=True).clamp(min=1.0)[:, :, None]
        pooled = torch.cat([(h.float() * weights).sum(1) for h in states], dim=1)
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
