"""What the causal-LM scorers share: records as token ids, and a lazily loaded model with a version.

Records become a prompt and a completion (:func:`prompt_and_completion`), then token ids
(:class:`RecordEncoder`):

* **Chat format** (``template="chat"``, or ``"auto"`` when the tokenizer has a chat template, and always for
  conversational records when it has one): the prompt is rendered with the chat template and the generation
  prompt (``<|im_start|>assistant\\n`` for ChatML); the completion is the rest of the rendered conversation,
  so it includes the template's end-of-turn tokens. A plain-string prompt is the user turn and a plain-string
  completion the assistant turn.
* **Plain format** (``"plain"``, or ``"auto"`` without a chat template): the prompt text tokenized with the
  tokenizer's special tokens (e.g. BOS), followed by the completion text tokenized without them. The two are
  tokenized separately, so the seam between them is always a token boundary. Messages are joined with
  blank lines (:func:`curate.ingest.records.as_text`).
* **Unconditional context**, for "the completion without the prompt": in chat format the template's assistant
  header alone (plus BOS if the template starts with one); in plain format what the tokenizer adds to an
  empty string, else its BOS, else its EOS token. The same completion tokens are scored in both passes.
* **Truncation** to ``max_length`` tokens keeps the completion's start: the prompt keeps its *last* tokens (the
  part nearest the answer; at least half the budget when it is that long), the completion its *first* tokens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from curate.errors import InputError
from curate.ingest.records import Record, as_text, is_conversational
from curate.runtime.models import DEFAULT_LM, file_digest
from curate.scorers.base import BaseScorer, BuildContext

Template = Literal["auto", "chat", "plain"]
ProgressFn = Callable[[int, int], None]
TEMPLATES: tuple[str, ...] = ("auto", "chat", "plain")
_PROBE = [{"role": "user", "content": "x"}]


def prompt_and_completion(record: Record) -> tuple[Any, Any] | None:
    """The prompt and completion of a record, as strings or message lists; ``None`` if it has no prompt.

    ``messages`` records split at their last assistant turn: the turns before it are the prompt, that turn is
    the completion (later turns are ignored). Records with a ``prompt`` but no ``completion`` (preferences,
    candidates) get an empty completion. ``text`` records and conversations without an assistant turn give
    ``None``.

    >>> prompt_and_completion(Record("0", "example", {"prompt": "2+2?", "completion": "4"}))
    ('2+2?', '4')
    """
    fields = record.fields
    messages = fields.get("messages")
    if isinstance(messages, list) and is_conversational(messages):
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
        if last is None:
            return None
        return messages[:last], [messages[last]]
    if "prompt" in fields:
        return fields["prompt"], fields.get("completion") or ""
    return None


def _as_messages(value: Any, role: str) -> list[dict[str, Any]]:
    if is_conversational(value):
        return list(value)
    text = as_text(value)
    return [{"role": role, "content": text}] if text else []


@dataclasses.dataclass(frozen=True)
class EncodedExample:
    """Token ids of one record: ``prompt_ids`` is the context, ``completion_ids`` the tokens that are scored."""

    prompt_ids: list[int]
    completion_ids: list[int]
    truncated: bool = False


def truncate_pair(prompt: list[int], completion: list[int], max_length: int) -> tuple[list[int], list[int], bool]:
    """Fit ``prompt + completion`` into ``max_length`` tokens, keeping the prompt's end and the completion's start.

    >>> truncate_pair([1, 2, 3, 4], [5, 6, 7, 8], 6)
    ([2, 3, 4], [5, 6, 7], True)
    """
    if len(prompt) + len(completion) <= max_length:
        return prompt, completion, False
    keep_prompt = min(len(prompt), max(max_length - len(completion), max_length // 2))
    keep_completion = max_length - keep_prompt
    return prompt[len(prompt) - keep_prompt:], completion[:keep_completion], True


class RecordEncoder:
    """Turns records into token ids for one tokenizer (see the module docstring for the format).

    Args:
        tokenizer: a Hugging Face tokenizer.
        template: ``"auto"`` (chat template when the tokenizer has one), ``"chat"`` or ``"plain"``.
        max_length: most tokens of prompt + completion fed to the model (and of the unconditional pass).
    """

    def __init__(self, tokenizer: Any, *, template: str = "auto", max_length: int = 1024) -> None:
        if template not in TEMPLATES:
            raise InputError(f"template must be one of {list(TEMPLATES)}; got {template!r}")
        if max_length < 2:
            raise InputError(f"max_length must be at least 2 tokens; got {max_length}")
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if template == "chat" and not has_template:
            raise InputError(
                f"template='chat' needs a tokenizer with a chat template; {type(tokenizer).__name__} "
                f"({getattr(tokenizer, 'name_or_path', '?')}) has none. Use template='plain' or 'auto'."
            )
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.template = template
        self.chat_available = has_template and template != "plain"
        self.header_text = self._header_text() if self.chat_available else ""
        self.unconditional_context = self._unconditional_context()

    def _render(self, messages: list[dict[str, Any]], generation_prompt: bool) -> str:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        return str(text)

    def _header_text(self) -> str:
        without, with_header = self._render(_PROBE, False), self._render(_PROBE, True)
        header = with_header[len(without):] if with_header.startswith(without) else ""
        bos = self.tokenizer.bos_token
        if bos and without.startswith(bos) and not header.startswith(bos):
            header = bos + header
        return header

    def _ids(self, texts: list[str], special: bool) -> list[list[int]]:
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=special)["input_ids"]]

    def _unconditional_context(self) -> list[int]:
        if self.header_text:
            return self._ids([self.header_text], False)[0]
        context = self._ids([""], True)[0]
        for token_id in (self.tokenizer.bos_token_id, self.tokenizer.eos_token_id):
            if not context and token_id is not None:
                context = [int(token_id)]
        return context

    def _chat_texts(self, prompt: Any, completion: Any) -> tuple[str, str]:
        prompt_msgs = _as_messages(prompt, "user")
        completion_msgs = _as_messages(completion, "assistant")
        prompt_text = self._render(prompt_msgs, True) if prompt_msgs else self.header_text
        full = self._render(prompt_msgs + completion_msgs, False)
        if full.startswith(prompt_text):
            return prompt_text, full[len(prompt_text):]
        # A template that rewrites earlier turns: score the completion's text followed by EOS.
        return prompt_text, as_text(completion) + (self.tokenizer.eos_token or "")

    def encode(self, records: Sequence[Record], *, prompts_only: bool = False) -> list[EncodedExample | None]:
        """Token ids per record; ``None`` for records without a prompt (see :func:`prompt_and_completion`).

        A record whose completion is empty (or whitespace) gets empty ``completion_ids``; so does every record
        with ``prompts_only=True`` (its prompt then ends with the chat template's generation prompt, ready for
        sampling, and keeps its last ``max_length`` tokens).
        """
        chat: list[tuple[int, str, str]] = []
        plain: list[tuple[int, str, str]] = []
        for i, record in enumerate(records):
            parts = prompt_and_completion(record)
            if parts is None:
                continue
            prompt, completion = parts
            if prompts_only or not as_text(completion).strip():
                completion = ""
            if self.chat_available and completion:
                chat.append((i, *self._chat_texts(prompt, completion)))
            elif self.chat_available:
                prompt_msgs = _as_messages(prompt, "user")
                chat.append((i, self._render(prompt_msgs, True) if prompt_msgs else self.header_text, ""))
            else:
                plain.append((i, as_text(prompt), as_text(completion)))
        out: list[EncodedExample | None] = [None] * len(records)
        for group, prompt_special in ((chat, False), (plain, True)):
            prompts = self._ids([p for _, p, _ in group], prompt_special)
            completions = self._ids([c for _, _, c in group], False)
            budget = self.max_length - len(self.unconditional_context)
            for (i, _, _), p_ids, c_ids in zip(group, prompts, completions, strict=True):
                cut = len(c_ids) > budget
                p_ids, c_ids, truncated = truncate_pair(p_ids, c_ids[:budget], self.max_length)
                out[i] = EncodedExample(p_ids, c_ids, truncated or cut)
        return out


def progress_callback(progress: bool | ProgressFn | None, total: int, *, unit: str,
                      desc: str) -> tuple[ProgressFn | None, Callable[[], None]]:
    """``(callback, close)`` for a ``progress`` option: ``True`` = a tqdm bar, a callable = itself, else nothing."""
    if not progress:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit=unit, desc=desc)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def default_cache_dir() -> Path:
    """The cache folder of the default workspace (``$CURATE_WORKSPACE`` or ``./curate-workspace``)."""
    from curate.store.workspace import DEFAULT_WORKSPACE

    return Path(os.environ.get("CURATE_WORKSPACE") or DEFAULT_WORKSPACE) / "cache"


def _model_id(name: str) -> str:
    if name == DEFAULT_LM:
        from curate.errors import ModelError
        from curate.runtime.models import packaged_gguf

        try:
            gguf = packaged_gguf()
        except ModelError:
            return name
        return f"{name}:{gguf.name}:{gguf.stat().st_size}"
    path = Path(name).expanduser()
    return f"{path.name}:{file_digest(path)}" if path.exists() else name


def _lora_digest(model: Any) -> str:
    h = hashlib.blake2b(digest_size=8)
    for name, tensor in sorted(model.state_dict().items()):
        if "lora_" in name:
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class CausalLMScorer(BaseScorer):
    """Base of the scorers backed by a causal LM: names the model, loads it once, reports its version.

    Attributes:
        model: ``"smollm2"`` (the packaged default), a local folder or a Hub id.
        adapter: folder of a LoRA adapter to apply on top of ``model``, or ``None``.
        cache_dir: the model cache the packaged default is converted into (default: the per-user cache,
            :func:`curate.runtime.models.model_cache`).
        lm: an already-loaded ``(model, tokenizer)`` pair to use instead of loading (tests, notebooks).
    """

    key_exclude: ClassVar[frozenset[str]] = frozenset({"cache_dir", "lm", "progress"})

    model: str = DEFAULT_LM
    adapter: str | None = None
    cache_dir: Path | None = None
    lm: tuple[Any, Any] | None = dataclasses.field(default=None, compare=False, repr=False)
    _state: dict[str, Any] = dataclasses.field(default_factory=dict, init=False, compare=False, repr=False)
    needs_model_version: ClassVar[bool] = True
    #: A small-model forward pass scores a few records a second on a CPU: 16 per call commit every few seconds.
    records_per_call: ClassVar[int | None] = 16

    @classmethod
    def build(cls, ctx: BuildContext, **options: Any) -> CausalLMScorer:
        """The scorer on ``ctx.model`` (+ ``ctx.adapter``); the packaged default loads from the per-user cache."""
        return cls(model=ctx.model, adapter=ctx.adapter, **options)

    def load(self) -> tuple[Any, Any]:
        """The ``(model, tokenizer)`` pair: the injected one, else loaded on first use and kept."""
        if self.lm is not None:
            return self.lm
        if "lm" not in self._state:
            from curate.runtime.models import load_lm

            self._state["lm"] = load_lm(self.model, cache_dir=self.cache_dir, adapter=self.adapter)
        loaded: tuple[Any, Any] = self._state["lm"]
        return loaded

    def model_version(self) -> str | None:
        """``base[+adapter]``: the model's name and a digest of its files, plus the adapter's content digest."""
        if "version" not in self._state:
            if self.lm is not None:
                name = str(getattr(getattr(self.lm[0], "config", None), "_name_or_path", "") or "injected")
                version = _model_id(name)
                if hasattr(self.lm[0], "peft_config"):
                    version += f"+lora:{_lora_digest(self.lm[0])}"
            else:
                version = _model_id(self.model)
            if self.adapter:
                version += f"+{Path(self.adapter).name}:{file_digest(Path(self.adapter).expanduser())}"
            self._state["version"] = version
        return str(self._state["version"])
