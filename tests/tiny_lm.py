"""A tiny causal LM built locally for fast tests: a random Llama plus a byte-level BPE tokenizer with a chat template.

Tests never reach the Hugging Face Hub. :func:`build_tiny_lm` writes a folder that both
``AutoModelForCausalLM.from_pretrained(folder)`` and ``AutoTokenizer.from_pretrained(folder)`` load:

* tokenizer: byte-level BPE (any text is representable) trained with the ``tokenizers`` library on
  :data:`CORPUS`, with the special tokens ``<|endoftext|>`` (BOS), ``<|pad|>`` (padding, distinct from EOS),
  ``<|im_start|>`` and ``<|im_end|>`` (EOS, ends a chat turn), and the ChatML template :data:`CHAT_TEMPLATE`;
* model: ``LlamaForCausalLM`` from a ``LlamaConfig`` (2 layers, hidden 32 by default), randomly initialised
  from ``seed``, optionally trained for a few steps on given texts (:func:`train_causal_lm`) so that it has
  learned something a test can check.

Building the default model takes well under a second; the folder is a few hundred kilobytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

BOS, PAD, IM_START, IM_END = "<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [BOS, PAD, IM_START, IM_END]

#: ChatML without a default system prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: Text the tokenizer is trained on (written for this project).
CORPUS = """\
The cat sat on the mat and looked at the window. The dog ran to the door when the bell rang.
A small bird sang in the garden every morning, and the old man listened from his chair.
How do I reset my password? Open the settings page, choose security, and follow the link we send you.
Can I change the email on my account? Yes, go to your profile, edit the email and confirm the change.
What is the capital of France? The capital of France is Paris. What is the capital of Italy? It is Rome.
The sky is blue on a clear day. The grass is green after the rain. Snow is white and cold in winter.
Write a short poem about the sea. The sea is wide, the waves are grey, the wind will carry us away.
Summarise the following text in one sentence. The report says that sales grew by ten percent this year.
Translate to French: good morning. Bonjour. Translate to Spanish: thank you very much. Muchas gracias.
Classify the sentiment of this review: the food was cold and the service was slow. Negative.
Classify the sentiment of this review: a wonderful evening with friendly staff. Positive.
List three fruits. Apple, banana and orange. List three colours. Red, green and blue.
Explain why the moon changes shape. The moon reflects sunlight, and we see a different part of its lit
side as it moves around the earth, so it seems to grow and shrink over about a month.
Give me a recipe for a simple salad. Cut tomatoes, cucumber and onion, add olive oil, salt and lemon juice.
The train leaves at nine in the morning and arrives in the city before noon. Please book two seats.
My invoice shows the wrong number. Send us the correct number and we will issue a new invoice within a day.
Is there a dark mode? Yes: open settings, then appearance, then theme, and choose dark.
Numbers: one two three four five six seven eight nine ten eleven twelve. Days: monday tuesday wednesday
thursday friday saturday sunday. Months: january february march april may june july august september
october november december. Questions start with who, what, where, when, why and how; answers should be
short, correct and kind. The model reads the prompt, then writes the answer one token at a time.
Data curation means choosing which examples are worth a human expert's time, collecting their rewrites
and rankings, and training a better model on the result. Active learning repeats this in rounds.
"""


#: Question-answer pairs a tiny model can memorise; each answer fits only its own question.
QA_PAIRS: tuple[tuple[str, str], ...] = (
    ("What colour is the sky?", "The sky is blue."),
    ("What colour is grass?", "Grass is green."),
    ("What colour is snow?", "Snow is white."),
    ("What is the capital of France?", "Paris."),
    ("List three fruits.", "Apple, banana and orange."),
    ("Translate to French: good morning.", "Bonjour."),
)


def chat_texts(tokenizer: Any, pairs: Sequence[tuple[str, str]] = QA_PAIRS, *, answers_alone: bool = True) -> list[str]:
    """Training texts: each pair as a user/assistant conversation rendered with the chat template.

    With ``answers_alone`` each answer also appears as a lone assistant turn, so the model learns how likely an
    answer is without any question (what IFD's unconditional pass measures).
    """
    texts = [
        tokenizer.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                                      tokenize=False)
        for q, a in pairs
    ]
    if answers_alone:
        texts += [tokenizer.apply_chat_template([{"role": "assistant", "content": a}], tokenize=False)
                  for _, a in pairs]
    return [str(t) for t in texts]


def train_tokenizer(vocab_size: int = 400) -> Any:
    """Train a byte-level BPE tokenizer on :data:`CORPUS` and wrap it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=IM_END, pad_token=PAD, unk_token=BOS
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def train_causal_lm(model: Any, tokenizer: Any, texts: Sequence[str], *, steps: int = 100, lr: float = 1e-2,
                    seed: int = 0) -> None:
    """Train ``model`` in place on ``texts`` (full batch, AdamW, padding masked out), then put it in eval mode."""
    import torch

    torch.manual_seed(seed)
    batch = tokenizer(list(texts), padding=True, return_tensors="pt", add_special_tokens=False)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
        loss.backward()
        optimiser.step()
    model.eval()


def build_tiny_lm(
    folder: Path,
    *,
    seed: int = 0,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    vocab_size: int = 400,
    initializer_range: float = 0.1,
    train_texts: Sequence[str] = (),
    train_steps: int = 0,
) -> Path:
    """Write a tiny Llama causal LM and its tokenizer into ``folder`` (created) and return the folder.

    Args:
        folder: where ``save_pretrained`` writes model and tokenizer.
        seed: seeds the random initialisation (and the training, if any): same seed, same weights.
        hidden_size, num_layers, num_heads, num_kv_heads: the model's shape (intermediate size is 2 x hidden).
        vocab_size: target size of the BPE vocabulary (special tokens included).
        initializer_range: standard deviation of the random weights; larger than Llama's 0.02 so that a random
            model's next-token distributions are far from uniform and tests can tell records apart.
        train_texts: optional texts to train on (e.g. chat-formatted question-answer pairs) before saving.
        train_steps: full-batch AdamW steps on ``train_texts`` (0 = keep the random weights).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=1024,
        initializer_range=initializer_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if train_texts and train_steps:
        train_causal_lm(model, tokenizer, train_texts, steps=train_steps, seed=seed)
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def load_tiny_lm(folder: Path) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a folder written by :func:`build_tiny_lm`, the model in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.eval()
    return model, tokenizer
