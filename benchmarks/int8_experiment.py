"""An experiment, not shipped: an int8 copy of a Llama-style causal LM for scoring (SmoothQuant + dynamic int8).

``benchmarks/bench_speed.py`` compares it with the exact float32 path. Measured on SmolLM2 and 40 Alpaca records:
Spearman 0.985 with the exact perplexities at 1.1x the speed; leaving ``down_proj`` in float32 gives 0.996 at 0.97x.
It neither keeps rankings at 0.99 nor pays for itself on this CPU, so curate's scorers do not offer it.

PyTorch's dynamic quantisation (``torch.ao.quantization.quantize_dynamic``) scales each layer's input with one
number for the whole batch. Small LMs have a few input channels with activations 10-100x larger than the rest
(after the RMSNorms, and in the MLP's ``silu(gate) * up``), so one scale leaves the other channels a handful of
int8 levels: quantising SmolLM2 that way moved the per-token NLL by 1.2 nats on average (Spearman 0.76 with the
exact scores, 40 Alpaca records). SmoothQuant (Xiao et al., 2023) moves that range into the weights, exactly in
float32 before quantising: for a layer with input ``X`` and weight ``W``, ``X W^T = (X / s) (W s)^T`` with one
factor per input channel ``s_j = max|X_j|^alpha / max|W_:,j|^(1 - alpha)``. The division by ``s`` is folded into
whatever produces ``X``:

* ``q/k/v_proj`` and ``gate/up_proj``: into the RMSNorm weight before them;
* ``down_proj``: into the rows of ``up_proj`` (its input is ``silu(gate) * up``, linear in ``up``);
* ``o_proj``: into the rows of ``v_proj`` (attention is linear in ``V``; with grouped-query attention the factor
  is shared by the query heads of one key/value head).

``max|X_j|`` comes from a fixed calibration set (:data:`CALIBRATION`, formatted with the model's own tokenizer),
so the int8 copy depends on the model only, never on the records scored. The LM head (tied to the input
embeddings in SmolLM2) stays float32, as does any layer of a model that is not Llama-shaped (then nothing is
quantised and the copy is exact). Weights are quantised per output channel.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from typing import Any

from curate.errors import ModelError
from curate.ingest.records import Record

#: Migration strength of SmoothQuant (0 = all range stays in the activations, 1 = all moves to the weights).
ALPHA = 0.8
#: Generic prompt-completion pairs whose activations set the smoothing factors (written for this purpose).
CALIBRATION: tuple[tuple[str, str], ...] = (
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Give three tips for staying healthy.", "1. Eat a balanced diet.\n2. Exercise regularly.\n3. Sleep enough."),
    ("Write a Python function that reverses a string.", "def reverse(s):\n    return s[::-1]"),
    ("Translate 'good morning' into Spanish.", "Buenos días."),
    ("Summarise: The meeting moved to Tuesday because the room was booked.",
     "The meeting is now on Tuesday; the room was taken."),
    ("What is 17 times 23?", "17 x 23 = 391."),
    ("Classify the sentiment: 'I loved the film, but the ending was weak.'", "Mixed, leaning positive."),
    ("Explain photosynthesis in one sentence.",
     "Plants use light, water and carbon dioxide to make sugar and release oxygen."),
    ("List the planets closest to the sun.", "Mercury, Venus, Earth and Mars."),
    ("How do I reset my password?", "Open Settings, choose Security, then Reset password and follow the email link."),
    ("Rewrite more formally: gonna be late, sorry", "I apologise; I will be arriving late."),
    ("Name a famous novel by Jane Austen.", "Pride and Prejudice, published in 1813."),
)


def _layers(model: Any) -> list[Any] | None:
    """The decoder layers if every one is Llama-shaped (norms, q/k/v/o, gate/up/down), else ``None``."""
    base = getattr(model, "model", None)
    layers = list(getattr(base, "layers", None) or [])
    needed = {"input_layernorm": (), "post_attention_layernorm": (),
              "self_attn": ("q_proj", "k_proj", "v_proj", "o_proj"), "mlp": ("gate_proj", "up_proj", "down_proj")}
    for layer in layers:
        for part, children in needed.items():
            module = getattr(layer, part, None)
            if module is None or any(not hasattr(module, c) for c in children):
                return None
        if not hasattr(layer.input_layernorm, "weight") or not hasattr(layer.post_attention_layernorm, "weight"):
            return None
    return layers or None


def _input_maxima(model: Any, tokenizer: Any, layers: list[Any]) -> dict[int, Any]:
    """``max |x_j|`` over the calibration tokens of the input of every smoothed Linear, by module id."""
    import torch

    from curate.scorers.causal_lm import RecordEncoder

    targets = [m for layer in layers for m in (layer.self_attn.q_proj, layer.self_attn.o_proj,
                                                layer.mlp.gate_proj, layer.mlp.down_proj)]
    maxima: dict[int, Any] = {}

    def hook(module: Any, inputs: tuple[Any, ...]) -> None:
        x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).abs().amax(dim=0).float()
        key = id(module)
        maxima[key] = x if key not in maxima else torch.maximum(maxima[key], x)

    handles = [m.register_forward_pre_hook(hook) for m in targets]
    try:
        records = [Record(str(i), "example", {"prompt": p, "completion": c}) for i, (p, c) in enumerate(CALIBRATION)]
        with torch.inference_mode():
            for e in RecordEncoder(tokenizer, max_length=256).encode(records):
                if e is not None:
                    model(input_ids=torch.tensor([e.prompt_ids + e.completion_ids]))
    finally:
        for h in handles:
            h.remove()
    return maxima


def _factors(act_max: Any, weights: list[Any], alpha: float) -> Any:
    w_max = weights[0].abs().amax(dim=0)
    for w in weights[1:]:
        w_max = w_max.maximum(w.abs().amax(dim=0))
    s = act_max.clamp(min=1e-5).pow(alpha) / w_max.clamp(min=1e-5).pow(1 - alpha)
    return s.clamp(min=1e-5)


def _smooth(layers: list[Any], maxima: dict[int, Any], config: Any, alpha: float) -> None:
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    for layer in layers:
        attn, mlp = layer.self_attn, layer.mlp
        for norm, linears, probe in ((layer.input_layernorm, (attn.q_proj, attn.k_proj, attn.v_proj), attn.q_proj),
                                     (layer.post_attention_layernorm, (mlp.gate_proj, mlp.up_proj), mlp.gate_proj)):
            s = _factors(maxima[id(probe)], [lin.weight for lin in linears], alpha)
            norm.weight.div_(s)
            for lin in linears:
                lin.weight.mul_(s)
        s = _factors(maxima[id(mlp.down_proj)], [mlp.down_proj.weight], alpha)
        _scale_rows(mlp.up_proj, s)
        mlp.down_proj.weight.mul_(s)
        # o_proj: one factor per value channel, shared by the query heads that read it
        head_dim = attn.o_proj.weight.shape[1] // heads
        per_query = maxima[id(attn.o_proj)].reshape(kv_heads, heads // kv_heads, head_dim).amax(dim=1)
        w = attn.o_proj.weight.reshape(-1, kv_heads, heads // kv_heads, head_dim).abs().amax(dim=(0, 2))
        s_kv = (per_query.clamp(min=1e-5).pow(alpha) / w.clamp(min=1e-5).pow(1 - alpha)).clamp(min=1e-5)
        _scale_rows(attn.v_proj, s_kv.reshape(-1))
        expanded = s_kv[:, None, :].expand(kv_heads, heads // kv_heads, head_dim).reshape(-1)
        attn.o_proj.weight.mul_(expanded)


def _scale_rows(linear: Any, s: Any) -> None:
    linear.weight.div_(s[:, None])
    if linear.bias is not None:
        linear.bias.div_(s)


def _smoothed_linears(layers: list[Any]) -> Iterator[Any]:
    for layer in layers:
        attn, mlp = layer.self_attn, layer.mlp
        yield from (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj)


class _PerToken:
    """Factory of a module that quantises its input per token (row) around a dynamic int8 ``Linear``.

    The input rows are divided by their own ``max |x|`` before the per-tensor dynamic quantisation, so every token
    gets the full int8 range, and the output rows are multiplied back (the layer is linear without its bias,
    which is added after).
    """

    @staticmethod
    def wrap(inner: Any, bias: Any) -> Any:
        import torch

        class PerTokenInt8Linear(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = inner
                self.bias = bias

            def forward(self, x: Any) -> Any:
                scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-6)
                out = self.inner(x / scale) * scale
                return out if self.bias is None else out + self.bias

        return PerTokenInt8Linear()


def quantize_int8(model: Any, tokenizer: Any, *, alpha: float = ALPHA) -> Any:
    """A SmoothQuant-ed, dynamically quantised int8 copy of ``model`` (see the module docstring); inference only.

    ``model`` itself is left as it is; a PEFT model is copied and its adapter merged first. A model whose layers
    are not Llama-shaped is returned as an unquantised copy.
    """
    import torch

    quantize = getattr(getattr(torch.ao, "quantization", None), "quantize_dynamic", None)
    qconfig = getattr(getattr(torch.ao, "quantization", None), "per_channel_dynamic_qconfig", None)
    if quantize is None or qconfig is None:  # pragma: no cover - removed in some future torch
        raise ModelError(f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic; score with "
                         "fast=None (the exact path) or install a torch that has it.")
    copied = copy.deepcopy(model)
    if hasattr(copied, "merge_and_unload"):
        copied = copied.merge_and_unload()
    copied.eval()
    layers = _layers(copied)
    if layers is None:
        return copied
    with torch.no_grad():
        _smooth(layers, _input_maxima(copied, tokenizer, layers), copied.config, alpha)
    targets = {id(m) for m in _smoothed_linears(layers)}
    names = [name for name, m in copied.named_modules() if id(m) in targets]
    biases = {}
    for name in names:
        linear = copied.get_submodule(name)
        biases[name] = linear.bias
        linear.bias = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        quantized = quantize(copied, {name: qconfig for name in names}, dtype=torch.qint8)
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = quantized.get_submodule(parent)
        setattr(owner, child, _PerToken.wrap(getattr(owner, child), biases[name]))
    return quantized
