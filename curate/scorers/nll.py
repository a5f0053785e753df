"""Negative log-likelihood of completions under a causal LM, batched by length: the maths behind perplexity and IFD.

:func:`sequence_nll` sorts sequences by length and cuts them into batches of similar length
(:func:`length_batches`), runs them under ``torch.inference_mode()`` and restores their order; :func:`completion_nll`
returns per-record conditional and unconditional NLL (:class:`CompletionNLL`). See :mod:`curate.scorers.perplexity`
for the formulas and the score direction.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.ingest.records import Record
from curate.scorers.causal_lm import ProgressFn, RecordEncoder, progress_callback

_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_logits_scale")
_HEAD_CHUNK = 1024
_MIN_PREFIX = 4
_MAX_PADDING = 0.1


@dataclasses.dataclass(frozen=True)
class CompletionNLL:
    """Per-record negative log-likelihoods of the completions; every array has shape ``(n,)``.

    Attributes:
        conditional: mean NLL (nats/token) of the completion tokens given the prompt; NaN = not scored.
        unconditional: the same without the prompt, or ``None`` if not computed.
        n_tokens: completion tokens scored per record (0 where NaN).
        truncated: whether the record was cut to ``max_length``.
    """

    conditional: npt.NDArray[np.float64]
    unconditional: npt.NDArray[np.float64] | None
    n_tokens: npt.NDArray[np.int64]
    truncated: npt.NDArray[np.bool_]

    @property
    def perplexity(self) -> npt.NDArray[np.float64]:
        """``exp(conditional)``, shape ``(n,)``: perplexity of the completion given the prompt (>= 1)."""
        return np.exp(self.conditional)

    @property
    def perplexity_unconditional(self) -> npt.NDArray[np.float64]:
        """``exp(unconditional)``, shape ``(n,)``: perplexity of the completion alone."""
        return np.exp(self._unconditional())

    @property
    def ifd(self) -> npt.NDArray[np.float64]:
        """``perplexity / perplexity_unconditional``, shape ``(n,)``; higher = the prompt helps less."""
        return np.exp(self.conditional - self._unconditional())

    @property
    def flagged(self) -> npt.NDArray[np.bool_]:
        """``IFD > 1``, shape ``(n,)``: the prompt does not help predict the answer (NaN is not flagged)."""
        return ifd_flags(self.ifd)

    def _unconditional(self) -> npt.NDArray[np.float64]:
        if self.unconditional is None:
            raise InputError("the unconditional NLL was not computed; call completion_nll(..., unconditional=True)")
        return self.unconditional


def ifd_flags(ifd: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Boolean mask, shape ``(n,)``: ``IFD > 1`` (the prompt makes the answer less likely); NaN gives False.

    >>> ifd_flags([0.5, 1.2, float("nan")]).tolist()
    [False, True, False]
    """
    values = np.asarray(ifd, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.greater(values, 1.0, where=~np.isnan(values), out=np.zeros(values.shape, dtype=np.bool_))


def _head_only_parts(model: Any) -> tuple[Any, Any] | None:
    """``(decoder, lm_head)`` if logits are just ``lm_head(decoder(...))``, else ``None``."""
    config = getattr(model, "config", None)
    if any(getattr(config, attr, None) not in (None, 1, 1.0) for attr in _LOGIT_TRANSFORMS):
        return None
    try:
        decoder, head = model.get_decoder(), model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if decoder is None or head is None or decoder is model:
        return None
    return decoder, head


def length_batches(lengths: npt.ArrayLike, *, batch_tokens: int, max_batch_size: int,
                   max_padding: float = _MAX_PADDING) -> list[npt.NDArray[np.intp]]:
    """Indices of sequences grouped into batches of similar length, longest first.

    A batch holds at most ``max_batch_size`` sequences and ``batch_tokens`` padded tokens (batch size x its
    longest length; a longer sequence gets a batch of its own), and at most a ``max_padding`` fraction of those
    tokens are padding: on a CPU a forward pass over ~100 tokens already runs near full speed, so padding costs
    more than smaller batches do.

    >>> [b.tolist() for b in length_batches([30, 9, 10, 28, 29], batch_tokens=100, max_batch_size=8)]
    [[0, 4, 3], [2, 1]]
    >>> [len(b) for b in length_batches([30, 9, 10, 28, 29], batch_tokens=100, max_batch_size=8, max_padding=0)]
    [1, 1, 1, 1, 1]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches: list[npt.NDArray[np.intp]] = []
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size, real = 1, int(lengths[order[start]])
        while start + size < len(order) and size < max_batch_size and (size + 1) * longest <= batch_tokens:
            candidate = real + int(lengths[order[start + size]])
            if (size + 1) * longest - candidate > max_padding * (size + 1) * longest:
                break
            size, real = size + 1, candidate
        batches.append(order[start:start + size])
        start += size
    return batches


def _shared_prefix(model: Any, parts: tuple[Any, Any] | None, contexts: list[Sequence[int]]) -> tuple[int, Any]:
    """``(length, kv_cache)`` of the longest prefix shared by all contexts (at least one context token is left)."""
    import torch

    limit = min((len(c) for c in contexts), default=0) - 1
    length = min(len(os.path.commonprefix([list(c) for c in contexts])), limit) if contexts else 0
    if length < _MIN_PREFIX:
        return 0, None
    runner = parts[0] if parts is not None else model
    try:
        cache = runner(input_ids=torch.tensor([list(contexts[0][:length])]), use_cache=True).past_key_values
    except (TypeError, ValueError):  # a model without a key/value cache: no prefix sharing
        return 0, None
    return (length, cache) if hasattr(cache, "batch_repeat_interleave") else (0, None)


def _batch_nll(model: Any, parts: tuple[Any, Any] | None, seqs: list[tuple[Sequence[int], Sequence[int]]],
               pad_token_id: int, prefix: tuple[int, Any]) -> tuple[Any, Any]:
    import torch
    import torch.nn.functional as F

    width = max(len(c) + len(t) for c, t in seqs)
    ids = torch.full((len(seqs), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    rows: list[int] = []
    cols: list[int] = []
    for r, (context, target) in enumerate(seqs):
        n = len(context) + len(target)
        ids[r, :n] = torch.tensor([*context, *target], dtype=torch.long)
        mask[r, :n] = 1
        first = max(len(context), 1)  # a target token is scored only if a token precedes it
        cols.extend(range(first - 1, n - 1))
        rows.extend([r] * (n - first))
    rows_t, cols_t = torch.tensor(rows), torch.tensor(cols)
    targets = ids[rows_t, cols_t + 1]
    ids, mask = ids[:, :-1], mask[:, :-1]  # the last token predicts nothing that is scored: not fed
    attention_mask = None if bool(mask.all()) else mask
    skip, cache = prefix
    if cache is not None:  # the shared prefix is already in the key/value cache: feed only the rest
        cache = copy.deepcopy(cache)
        cache.batch_repeat_interleave(len(seqs))
    inputs = {"input_ids": ids[:, skip:], "attention_mask": attention_mask, "past_key_values": cache,
              "use_cache": cache is not None}
    if parts is not None:
        decoder, head = parts
        hidden = decoder(**inputs)[0][rows_t, cols_t - skip]
        nll = torch.cat([
            F.cross_entropy(head(hidden[s:s + _HEAD_CHUNK]).float(), targets[s:s + _HEAD_CHUNK], reduction="none")
            for s in range(0, len(rows), _HEAD_CHUNK)
        ])
    else:
        logits = model(**inputs).logits
        nll = F.cross_entropy(logits[rows_t, cols_t - skip].float(), targets, reduction="none")
    sums = torch.zeros(len(seqs), dtype=torch.float64).index_add_(0, rows_t, nll.double())
    return sums, torch.bincount(rows_t, minlength=len(seqs))


def sequence_nll(
    model: Any,
    sequences: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    pad_token_id: int = 0,
    batch_tokens: int = 4096,
    max_batch_size: int = 64,
    head_only: bool = True,
    share_prefix: bool = True,
    progress: bool | ProgressFn | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Mean NLL of each ``target`` given its ``context``, for ``(context, target)`` token-id pairs.

    Length-bucketed and batched (see the module docstring); the result is in the order of ``sequences``.
    Only target tokens count: context and padding never enter the loss. If ``context`` is empty, the first target
    token has nothing to be predicted from and is not scored.

    Args:
        model: a causal LM (``transformers`` or a PEFT-wrapped one); put in eval mode for the call.
        sequences: ``n`` pairs ``(context_ids, target_ids)``.
        pad_token_id: id written into padding positions (never attended to, never scored).
        batch_tokens: most padded tokens (batch size x longest sequence) per forward pass.
        max_batch_size: most sequences per forward pass.
        head_only: apply the LM head only where a target token is predicted (falls back to the full forward for
            models that transform their logits, e.g. Gemma-2's soft-capping).
        share_prefix: run the longest token prefix that all contexts share (e.g. a chat template's default
            system prompt) once, and reuse its key/value cache in every batch instead of recomputing it.
        progress: ``True`` for a tqdm bar, or a callback ``f(done, total)`` called after each batch.

    Returns:
        ``(mean_nll, n_tokens)``, both of shape ``(n,)``: nats per scored token (NaN where no token is scored)
        and the number of scored tokens.
    """
    import torch

    if batch_tokens < 1 or max_batch_size < 1:
        raise InputError(f"batch_tokens and max_batch_size must be >= 1; got {batch_tokens} and {max_batch_size}")
    n = len(sequences)
    sums = np.zeros(n, dtype=np.float64)
    counts = np.zeros(n, dtype=np.int64)
    scoreable = np.array([len(t) - (0 if len(c) else 1) > 0 for c, t in sequences], dtype=bool)
    lengths = np.array([len(c) + len(t) for c, t in sequences], dtype=np.int64)
    indices = np.flatnonzero(scoreable)
    parts = _head_only_parts(model) if head_only else None
    update, close = progress_callback(progress, n, unit="seq", desc="perplexity")
    was_training = bool(getattr(model, "training", False))
    model.eval()
    done = n - len(indices)
    try:
        with torch.inference_mode():
            contexts = [sequences[int(i)][0] for i in indices]
            prefix = _shared_prefix(model, parts, contexts) if share_prefix else (0, None)
            fed = lengths[indices] - prefix[0]
            for batch in length_batches(fed, batch_tokens=batch_tokens, max_batch_size=max_batch_size):
                rows = indices[batch]
                batch_sums, batch_counts = _batch_nll(model, parts, [sequences[i] for i in rows], pad_token_id,
                                                      prefix)
                sums[rows] = batch_sums.numpy()
                counts[rows] = batch_counts.numpy()
                done += len(rows)
                if update is not None:
                    update(done, n)
    finally:
        model.train(was_training)
        close()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return mean, counts


def completion_nll(
    model: Any,
    tokenizer: Any,
    records: Sequence[Record],
    *,
    unconditional: bool = False,
    template: str = "auto",
    max_length: int = 1024,
    batch_tokens: int = 4096,
    max_batch_size: int = 64,
    head_only: bool = True,
    share_prefix: bool = True,
    progress: bool | ProgressFn | None = None,
) -> CompletionNLL:
    """Mean NLL of each record's completion given its prompt (and, if asked, without it).


    Args:
        model: a causal LM.
        tokenizer: its tokenizer (formats records as described in :mod:`curate.scorers.causal_lm`).
        records: ``n`` records; ``example`` records with a prompt and a completion, or messages.
        unconditional: also compute the NLL of the completion without the prompt (needed for IFD).
        template: ``"auto"``, ``"chat"`` or ``"plain"``.
        max_length: most tokens per sequence; longer records are truncated (prompt from the left, completion
            from the right).
        batch_tokens, max_batch_size, head_only, share_prefix: see :func:`sequence_nll`.
        progress: ``True`` for a tqdm bar, or a callback ``f(done, total)`` over both passes' sequences.

    Returns:
        A :class:`CompletionNLL` with arrays of shape ``(n,)``; NaN for empty completions and records without
        a prompt-completion pair.
    """
    encoder = RecordEncoder(tokenizer, template=template, max_length=max_length)
    encoded = encoder.encode(records)
    owners = [i for i, e in enumerate(encoded) if e is not None and e.completion_ids]
    pairs = [(e.prompt_ids, e.completion_ids) for e in encoded if e is not None and e.completion_ids]
    n, m = len(records), len(owners)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    options: dict[str, Any] = {"pad_token_id": int(pad or 0), "batch_tokens": batch_tokens,
                               "max_batch_size": max_batch_size, "head_only": head_only, "share_prefix": share_prefix}
    total = 2 * m if unconditional else m
    update, close = progress_callback(progress, total, unit="seq", desc="perplexity")
    try:
        # The two passes run separately so that each shares its own context prefix.
        nll, counts = sequence_nll(model, pairs, progress=update and (lambda d, _t: update(d, total)), **options)
        conditional = np.full(n, np.nan)
        conditional[owners] = nll
        n_tokens = np.zeros(n, dtype=np.int64)
        n_tokens[owners] = counts
        uncond: npt.NDArray[np.float64] | None = None
        if unconditional:
            context = encoder.unconditional_context
            nll, _ = sequence_nll(model, [(context, target) for _, target in pairs],
                                  progress=update and (lambda d, _t: update(m + d, total)), **options)
            uncond = np.full(n, np.nan)
            uncond[owners] = nll
    finally:
        close()
    truncated = np.array([e is not None and e.truncated for e in encoded], dtype=np.bool_)
    return CompletionNLL(conditional, uncond, n_tokens, truncated)


