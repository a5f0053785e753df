"""Perplexity and IFD (instruction-following difficulty) of completions under a causal LM.

For each prompt-completion record, with the completion's tokens :math:`y_1..y_m`:

* ``nll_cond   = -(1/m) sum_t log p(y_t | prompt, y_<t)``  (mean over completion tokens, nats/token)
* ``nll_uncond = -(1/m) sum_t log p(y_t | y_<t)``          (the same tokens without the prompt)
* ``perplexity = exp(nll_cond)``; ``IFD = exp(nll_cond) / exp(nll_uncond)`` (Cherry LLM, Li et al. 2024;
  Superfiltering shows a small model's IFD ranks data as well as a large one's).

**Score direction** (higher = more worth a human's time): :class:`PerplexityScorer` scores ``perplexity``
(higher = the model finds the answer more surprising). :class:`IFDScorer` scores ``IFD`` (higher = the prompt
helps the model less to predict the answer = a harder instruction). ``IFD > 1`` flags records whose prompt
makes the answer *less* likely than no prompt at all, which Cherry LLM filters out as misaligned
(:func:`ifd_flags`, :attr:`CompletionNLL.flagged`). Records with an empty completion, or that have no
prompt/completion (``text`` records), score NaN. How records become tokens, and what is truncated, is described
in :mod:`curate.scorers.causal_lm`.

The work is done by :func:`curate.scorers.nll.sequence_nll`: sequences are sorted by length and cut into batches
of similar length (at
most ``batch_tokens`` padded tokens, at most 10% of them padding; :func:`length_batches`), run under
``torch.inference_mode()`` with right padding and restored to their original order; when the model allows it, the LM
head is applied only at the positions that predict a completion token (with a 49k vocabulary the head is ~20% of
SmolLM2's forward cost per position), and the token prefix shared by every context (SmolLM2's chat template puts the
same 24-token system prompt before each prompt) is run once and its key/value cache reused by every batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from curate.errors import InputError
from curate.ingest.records import Record
from curate.scorers.base import Scores, as_scores
from curate.scorers.causal_lm import TEMPLATES, CausalLMScorer
from curate.scorers.nll import CompletionNLL, completion_nll


#: Config attributes under which a model transforms its logits after the LM head (then the full forward is used).
@dataclasses.dataclass(frozen=True)
class _CompletionScorer(CausalLMScorer):
    key_exclude: ClassVar[frozenset[str]] = CausalLMScorer.key_exclude | {"batch_tokens", "max_batch_size",
                                                                          "threads"}

    template: str = "auto"
    max_length: int = 1024
    batch_tokens: int = 4096
    max_batch_size: int = 64
    progress: bool = False
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise InputError(f"{self.name}: threads must be >= 1 or None (torch's setting); got {self.threads}")
        if self.template not in TEMPLATES:
            raise InputError(f"template must be one of {list(TEMPLATES)}; got {self.template!r}")
        if self.max_length < 2 or self.batch_tokens < 1 or self.max_batch_size < 1:
            raise InputError(
                f"max_length must be >= 2 and batch_tokens, max_batch_size >= 1; got max_length={self.max_length}, "
                f"batch_tokens={self.batch_tokens}, max_batch_size={self.max_batch_size}"
            )

    def details(self, records: Sequence[Record], *, unconditional: bool = True) -> CompletionNLL:
        """The per-record NLLs behind the score (arrays of shape ``(n,)``)."""
        from curate.runtime.onnx_embedder import torch_threads

        model, tokenizer = self.load()
        with torch_threads(self.threads):
            return completion_nll(model, tokenizer, records, unconditional=unconditional, template=self.template,
                                  max_length=self.max_length, batch_tokens=self.batch_tokens,
                                  max_batch_size=self.max_batch_size, progress=self.progress)


@dataclasses.dataclass(frozen=True)
class PerplexityScorer(_CompletionScorer):
    """Perplexity of the completion given the prompt; higher = more surprising to the model = more worth a look.

    Fields: ``model``, ``adapter``, ``cache_dir``, ``lm`` (see :class:`~curate.scorers.causal_lm.CausalLMScorer`),
    ``template``, ``max_length`` (tokens; longer records are truncated), ``batch_tokens``, ``max_batch_size`` and
    ``threads`` (torch threads while scoring; ``None`` = torch's setting) (speed only, not in the key), ``progress``
    (tqdm bar).
    """

    name: ClassVar[str] = "perplexity"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {"perplexity": {}}

    def score(self, records: Sequence[Record]) -> Scores:
        """``exp(mean NLL of the completion | prompt)``, shape ``(n,)``, float64; NaN for empty completions."""
        return as_scores(self.details(records, unconditional=False).perplexity, len(records), who=self.name)


@dataclasses.dataclass(frozen=True)
class IFDScorer(_CompletionScorer):
    """Instruction-following difficulty ``ppl(completion | prompt) / ppl(completion)``; higher = harder.

    Same fields as :class:`PerplexityScorer`. :meth:`flags` (or ``details(records).flagged``) marks records with
    ``IFD > 1``, whose prompt does not help predict the answer. Costs two forward passes per record.
    """

    name: ClassVar[str] = "ifd"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {"ifd": {}}

    def score(self, records: Sequence[Record]) -> Scores:
        """IFD per record, shape ``(n,)``, float64; NaN for empty completions."""
        return as_scores(self.details(records).ifd, len(records), who=self.name)

    def flags(self, records: Sequence[Record]) -> npt.NDArray[np.bool_]:
        """Boolean mask, shape ``(n,)``: ``IFD > 1`` (the prompt makes the answer less likely)."""
        return self.details(records).flagged
