"""Expected gradient length (EGL) of a LoRA adapter: how much the model itself would change on a record.

For a record's prompt ``x``, the score is

    EGL(x) = E_{y ~ p(.|x)} || grad_LoRA log p(y | x) ||_2

estimated with ``samples`` completions sampled from the model (ancestral sampling at ``temperature``, up to
``max_new_tokens`` tokens or EOS), one backward pass per sample, the norm taken over all LoRA parameters. This
is Settles & Craven's "expected model change" for the LLM being fine-tuned: **higher = labeling this prompt
would move the adapter more = more worth a human's time.** Only the prompt is used (the record's own
completion is ignored, so records with an empty completion are scored too); ``text`` records score NaN.

The LoRA parameters are those of the given ``PeftModel``'s adapter, or of a fresh adapter (``lora_r``,
``lora_alpha``, ``target_modules``) attached for the call and removed afterwards. peft initialises a fresh
adapter's ``B`` matrices to zero, so at a fresh adapter the gradient lives in ``B`` (the gradient for ``A`` is
zero) and the model's outputs equal the base model's. Base weights are never modified: gradients are taken
with :func:`torch.autograd.grad` with respect to the LoRA parameters only, nothing is stepped, and every
``requires_grad`` flag is restored.

Randomness is explicit: each record's samples come from a ``torch.Generator`` seeded with ``(seed, record.id)``,
so a record's score does not depend on the other records or on global RNG state. This is the slow path (a few
forward and backward passes per record): meant for pools of hundreds, not millions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from curate.errors import InputError, MissingDependencyError, ModelError
from curate.ingest.records import Record
from curate.scorers.base import Scores, as_scores
from curate.scorers.causal_lm import TEMPLATES, CausalLMScorer, ProgressFn, RecordEncoder, progress_callback


def record_seed(seed: int, record_id: str) -> int:
    """A 63-bit seed derived from ``seed`` and a record id (stable across runs and machines)."""
    digest = hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


def _lora_params(model: Any) -> list[Any]:
    return [p for name, p in model.named_parameters() if "lora_" in name]


@contextlib.contextmanager
def lora_attached(
    model: Any, *, r: int = 8, alpha: int = 16, target_modules: Sequence[str] | None = None, seed: int = 0
) -> Iterator[tuple[Any, list[Any]]]:
    """Yield ``(model_with_lora, lora_parameters)`` with only the LoRA parameters requiring grad.

    A ``PeftModel`` is used as it is (its adapter's parameters); any other model gets a fresh LoRA adapter
    (initialised from ``seed`` without touching the global RNG), removed again on exit with ``unload()``. On
    exit every parameter's ``requires_grad`` is what it was before.
    """
    import torch

    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise MissingDependencyError("peft", "train", "The expected-gradient-length scorer") from exc
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    fresh = not hasattr(model, "peft_config")
    wrapped = model
    if fresh:
        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                            target_modules=list(target_modules) if target_modules else None)
        try:
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                torch.manual_seed(seed)
                wrapped = get_peft_model(model, config)
        except ValueError as exc:
            raise ModelError(
                f"cannot attach a LoRA adapter to {type(model).__name__}: {exc}. Pass target_modules naming its "
                "linear layers (e.g. ('q_proj', 'v_proj'))."
            ) from exc
    params = _lora_params(wrapped)
    try:
        if not params:
            raise ModelError(f"{type(model).__name__} has a PEFT config but no LoRA parameters; EGL needs LoRA.")
        for p in wrapped.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        yield wrapped, params
    finally:
        if fresh and wrapped is not model:
            wrapped.unload()
        for name, p in model.named_parameters():
            p.requires_grad_(flags.get(name, p.requires_grad))


def _stop_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, getattr(getattr(model, "config", None), "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    return ids


def sample_completions(model: Any, prompt_ids: Sequence[int], *, samples: int, max_new_tokens: int,
                       temperature: float, generator: Any, stop_ids: set[int]) -> list[list[int]]:
    """``samples`` completions of ``prompt_ids`` drawn from the model (each ends at a stop token or the limit)."""
    import torch

    with torch.no_grad():
        ids = torch.tensor([list(prompt_ids)] * samples, dtype=torch.long)
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        seqs: list[list[int]] = [[] for _ in range(samples)]
        alive = [True] * samples
        for _ in range(max_new_tokens):
            probs = torch.softmax(out.logits[:, -1, :].float() / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
            for i, token in enumerate(nxt[:, 0].tolist()):
                if alive[i]:
                    seqs[i].append(int(token))
                    alive[i] = int(token) not in stop_ids
            if not any(alive):
                break
            out = model(input_ids=nxt, past_key_values=out.past_key_values, use_cache=True)
    return seqs


def log_prob_grad_norm(model: Any, params: Sequence[Any], prompt_ids: Sequence[int], completion_ids: Sequence[int],
                       *, per_token: bool = False) -> float:
    """``|| grad_params log p(completion | prompt) ||_2`` (divided by the length first if ``per_token``)."""
    import torch

    ids = torch.tensor([[*prompt_ids, *completion_ids]], dtype=torch.long)
    m = len(completion_ids)
    logits = model(input_ids=ids, use_cache=False, logits_to_keep=m + 1).logits[0, :-1].float()
    targets = torch.tensor(list(completion_ids), dtype=torch.long)
    log_prob = torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None]).sum()
    if per_token:
        log_prob = log_prob / m
    grads = torch.autograd.grad(log_prob, list(params), allow_unused=True)
    return math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads if g is not None))


def expected_gradient_length(
    model: Any,
    tokenizer: Any,
    records: Sequence[Record],
    *,
    samples: int = 4,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    seed: int = 0,
    lora_r: int = 8,
    lora_alpha: int = 16,
    target_modules: Sequence[str] | None = None,
    per_token: bool = False,
    template: str = "auto",
    max_prompt_length: int = 512,
    progress: bool | ProgressFn | None = None,
) -> Scores:
    """EGL of the LoRA parameters per record (see the module docstring); higher = bigger expected change.

    Args:
        model: a causal LM, or a ``PeftModel`` whose LoRA adapter is used.
        tokenizer: its tokenizer; prompts are formatted as in :mod:`curate.scorers.causal_lm`.
        records: ``n`` records with a prompt (``example``, ``preference``, ``candidates``).
        samples: completions sampled per record to estimate the expectation.
        max_new_tokens: most tokens per sampled completion.
        temperature: sampling temperature (1.0 samples the model's own distribution).
        seed: with each record's id, seeds that record's sampling (and a fresh adapter's initialisation).
        lora_r, lora_alpha, target_modules: the fresh adapter (ignored for a ``PeftModel``); ``None`` lets peft
            choose the modules for known architectures (``q_proj``, ``v_proj`` for Llama).
        per_token: use the gradient of the mean per-token log-likelihood instead of the sequence's.
        template: ``"auto"``, ``"chat"`` or ``"plain"``.
        max_prompt_length: prompts keep their last ``max_prompt_length`` tokens.
        progress: ``True`` for a tqdm bar, or a callback ``f(done, total)`` called after each record.

    Returns:
        Scores of shape ``(n,)``, float64, >= 0; NaN for records without a prompt.
    """
    import torch

    if samples < 1 or max_new_tokens < 1 or temperature <= 0:
        raise InputError(f"samples and max_new_tokens must be >= 1 and temperature > 0; got samples={samples}, "
                         f"max_new_tokens={max_new_tokens}, temperature={temperature}")
    encoder = RecordEncoder(tokenizer, template=template, max_length=max_prompt_length)
    encoded = encoder.encode(records, prompts_only=True)
    stop_ids = _stop_ids(model, tokenizer)
    out = np.full(len(records), np.nan)
    callback, close = progress_callback(progress, len(records), unit="record", desc="egl")
    was_training = bool(getattr(model, "training", False))
    try:
        with lora_attached(model, r=lora_r, alpha=lora_alpha, target_modules=target_modules, seed=seed) as (
            wrapped,
            params,
        ):
            wrapped.eval()
            for i, (record, enc) in enumerate(zip(records, encoded, strict=True)):
                prompt = (enc.prompt_ids or encoder.unconditional_context) if enc is not None else []
                if prompt:
                    generator = torch.Generator().manual_seed(record_seed(seed, record.id))
                    drawn = sample_completions(wrapped, prompt, samples=samples, max_new_tokens=max_new_tokens,
                                               temperature=temperature, generator=generator, stop_ids=stop_ids)
                    norms = [log_prob_grad_norm(wrapped, params, prompt, y, per_token=per_token) for y in drawn]
                    out[i] = float(np.mean(norms))
                if callback is not None:
                    callback(i + 1, len(records))
    finally:
        model.train(was_training)
        close()
    return out


@dataclasses.dataclass(frozen=True)
class ExpectedGradientLengthScorer(CausalLMScorer):
    """Expected LoRA gradient length per record; higher = labeling it would change the model more.

    Fields: ``model``, ``adapter`` (its LoRA is the one differentiated; without one a fresh adapter is used),
    ``cache_dir``, ``lm`` (see :class:`~curate.scorers.causal_lm.CausalLMScorer`), then the parameters of
    :func:`expected_gradient_length`. Slow: a few forward and backward passes per record.
    """

    name: ClassVar[str] = "egl"
    catalog: ClassVar[dict[str, dict[str, Any]]] = {"egl": {}}
    #: ~5 s a record on a CPU: one record per call, so progress moves and Ctrl-C keeps every finished record (each
    #: record's sampling is seeded by its id, so the scores do not depend on the batching).
    records_per_call: ClassVar[int | None] = 1

    samples: int = 4
    max_new_tokens: int = 32
    temperature: float = 1.0
    seed: int = 0
    lora_r: int = 8
    lora_alpha: int = 16
    target_modules: tuple[str, ...] | None = None
    per_token: bool = False
    template: str = "auto"
    max_prompt_length: int = 512
    progress: bool = False

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise InputError(f"template must be one of {list(TEMPLATES)}; got {self.template!r}")
        if self.samples < 1 or self.max_new_tokens < 1 or self.temperature <= 0 or self.lora_r < 1:
            raise InputError(
                f"samples, max_new_tokens and lora_r must be >= 1 and temperature > 0; got samples={self.samples}, "
                f"max_new_tokens={self.max_new_tokens}, lora_r={self.lora_r}, temperature={self.temperature}"
            )

    def score(self, records: Sequence[Record]) -> Scores:
        """EGL per record, shape ``(n,)``, float64, >= 0; NaN for records without a prompt."""
        model, tokenizer = self.load()
        scores = expected_gradient_length(
            model, tokenizer, records, samples=self.samples, max_new_tokens=self.max_new_tokens,
            temperature=self.temperature, seed=self.seed, lora_r=self.lora_r, lora_alpha=self.lora_alpha,
            target_modules=self.target_modules, per_token=self.per_token, template=self.template,
            max_prompt_length=self.max_prompt_length, progress=self.progress,
        )
        return as_scores(scores, len(records), who=self.name)
