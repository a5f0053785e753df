"""What the annotation app writes on screen for a task: escaped texts, rendered Markdown, diffs, progress, answers.

Pure functions of a task view (:meth:`curate.annotate.task_views.TaskView.as_dict`) and of the person's selection;
no Gradio here. Record texts are data, never markup: they are escaped, or rendered by :mod:`apps.markdown_view`.
"""

from __future__ import annotations

import difflib
import html
import re
from typing import Any

from apps.markdown_view import render_markdown
from curate.annotate.task_views import display_order
from curate.annotate.values import PAIR_CHOICES

PAIR_WORDS = {"A": "A", "B": "B", "tie": "tie", "both_bad": "both bad"}
TYPE_NAMES = {"pair": "rank a pair", "candidates": "order the candidates", "rewrite": "rewrite", "label": "label"}
ORDER_SEP = " > "
DIFF_CONTEXT_WORDS = 6  # unchanged words kept on each side of a change in the compact diff
_WORDS = re.compile(r"\s+|[^\s]+")


def esc(text: Any) -> str:
    """``text`` escaped for HTML (record texts are data, never markup)."""
    return html.escape(str(text), quote=True)


def text_block(title: str, text: str) -> str:
    """A titled block of plain text (wrapped, never rendered)."""
    return f'<div class="block-title">{esc(title)}</div><div class="text-block">{esc(text)}</div>'


def markdown_block(title: str, text: str, elem_class: str = "") -> str:
    """A titled block of ``text`` rendered as sanitised Markdown."""
    return (f'<div class="block-title">{esc(title)}</div>'
            f'<div class="text-block rendered {elem_class}">{render_markdown(text)}</div>')


def _elide(tokens: list[str], where: str) -> str:
    """Unchanged tokens, shortened to :data:`DIFF_CONTEXT_WORDS` words next to the changes (``where``: which
    side(s) touch a change: ``before``, ``after``, ``both``)."""
    words = [i for i, t in enumerate(tokens) if not t.isspace()]
    keep = DIFF_CONTEXT_WORDS
    if len(words) <= 2 * keep + 2:
        return esc("".join(tokens))
    head = "".join(tokens[:words[keep - 1] + 1]) if where in ("after", "both") else ""
    tail = "".join(tokens[words[-keep]:]) if where in ("before", "both") else ""
    return f'{esc(head)}<span class="elided"> … </span>{esc(tail)}'


def diff_html(original: str, edited: str, *, compact: bool = True) -> str:
    """Word-level diff of ``edited`` against ``original`` as HTML with ``<ins>`` / ``<del>``.

    ``compact`` keeps only :data:`DIFF_CONTEXT_WORDS` unchanged words around each change (a 2,000-character
    rewrite with one fixed word shows one line, not the whole text again).
    """
    if original == edited:
        return '<div class="diff"><em>No changes yet: edit the text above, or accept it as is.</em></div>'
    if not edited.strip():
        return '<div class="diff"><em>The text is empty: a rewrite needs a completion.</em></div>'
    a, b = _WORDS.findall(original), _WORDS.findall(edited)
    ops = _word_ops(a, b)
    out = []
    for k, (op, i1, i2, j1, j2) in enumerate(ops):
        if op in ("delete", "replace"):
            out.append(f"<del>{esc(''.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{esc(''.join(b[j1:j2]))}</ins>")
        if op == "equal":
            if not compact:
                out.append(esc("".join(a[i1:i2])))
                continue
            where = "both" if 0 < k < len(ops) - 1 else ("before" if k == 0 else "after")
            out.append(_elide(a[i1:i2], where))
    return f'<div class="diff">{"".join(out)}</div>'


def _word_ops(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib's opcodes of ``b`` against ``a``, with the unchanged head and tail cut off first: an edit touches a
    few words of a long text, and matching costs grow with the square of what is left (90k characters: 16 s on
    every keystroke before, a few milliseconds now for a local edit)."""
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[len(a) - 1 - tail] == b[len(b) - 1 - tail]:
        tail += 1
    middle = difflib.SequenceMatcher(a=a[head:len(a) - tail], b=b[head:len(b) - tail], autojunk=False).get_opcodes()
    ops = [("equal", 0, head, 0, head)] if head else []
    ops += [(op, i1 + head, i2 + head, j1 + head, j2 + head) for op, i1, i2, j1, j2 in middle]
    if tail:
        ops.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return ops


def changes_html(original: str, edited: str) -> str:
    """The titled compact diff shown under the rewrite box."""
    return f'<div class="block-title">Your changes</div>{diff_html(original, edited)}'


def mode_of(view: dict[str, Any]) -> str:
    """How a task is answered: ``pair``, ``candidates``, ``rewrite`` or ``label``."""
    if view["type"] == "rank":
        return "pair" if len(view["responses"]) == 2 else "candidates"
    return str(view["type"])


def format_order(positions: list[int]) -> str:
    """Display positions (0-based) as the 1-based order the person sees, e.g. ``2 > 1 > 3``."""
    return ORDER_SEP.join(str(p + 1) for p in positions)


def parse_order(text: str) -> list[int]:
    """The inverse of :func:`format_order`."""
    return [int(p) - 1 for p in text.split(ORDER_SEP) if p.strip().isdigit()] if text else []


def progress_line(queue: dict[str, int]) -> str:
    """``3 of 9 done, 1 skipped``."""
    total = sum(queue.values())
    return f"{queue.get('done', 0)} of {total} done, {queue.get('skipped', 0)} skipped"


def progress_html(queue: dict[str, int] | None) -> str:
    """A progress bar of the person's queue with :func:`progress_line` beside it ("" without a queue)."""
    if not queue:
        return ""
    total = max(sum(queue.values()), 1)
    share = round(100 * queue.get("done", 0) / total)
    return (f'<div class="progress-wrap"><div class="progress-bar" role="progressbar" aria-valuenow="{share}" '
            f'aria-valuemin="0" aria-valuemax="100"><div style="width:{share}%"></div></div>'
            f'<span class="progress-text">{esc(progress_line(queue))}</span></div>')


def key_label(i: int, n: int) -> str:
    """The keys that choose the ``i``-th (1-based) of ``n`` buttons: ``3``, or ``03`` when ``n`` > 9 (two keys)."""
    return f"{i:02d}" if n > 9 else str(i)


def suggestion_line(view: dict[str, Any]) -> str:
    """``Model suggests: billing (83%)``, or an empty string when hidden or absent."""
    value = view.get("suggestion")
    if view.get("suggestions_hidden") or value is None:
        return ""
    if isinstance(value, list):
        value = format_order([int(v) for v in value])
    conf = view.get("confidence")
    share = f" ({round(100 * conf)}%)" if isinstance(conf, int | float) else ""
    return f"**Model suggests:** {esc(value)}{share}"


def answer_text(view: dict[str, Any], value: dict[str, Any] | None) -> str:
    """A stored answer in the terms the reviewer sees (letters, classes, display positions)."""
    if not value:
        return ""
    mode = mode_of(view)
    if mode == "pair":
        return PAIR_WORDS.get(str(value.get("choice")), str(value.get("choice")))
    if mode == "candidates":
        order = display_order(int(view["task_id"]), len(view["responses"]))
        return format_order([order.index(int(i)) for i in value.get("order", []) if int(i) in order])
    if mode == "label":
        return str(value.get("label"))
    return str(value.get("completion", ""))


def restore(view: dict[str, Any]) -> tuple[str, str, str, str]:
    """``(choice, order, note, rewrite text)`` restored from the task's draft (or an undone answer)."""
    draft = view.get("draft")
    draft = draft if isinstance(draft, dict) else {}
    note = draft.get("note") if isinstance(draft.get("note"), str) else ""
    mode, choice, order = mode_of(view), "", ""
    if mode == "pair" and draft.get("choice") in PAIR_CHOICES:
        choice = str(draft["choice"])
    elif mode == "label" and draft.get("label") in view["classes"]:
        choice = str(view["classes"].index(draft["label"]) + 1)
    elif mode == "candidates":
        n = len(view["responses"])
        if isinstance(draft.get("order_shown"), list):  # saved by this app, in display positions
            positions = [int(p) for p in draft["order_shown"]]
        elif isinstance(draft.get("order"), list):  # an undone answer, in the record's indices
            shown = display_order(int(view["task_id"]), n)
            positions = [shown.index(int(i)) for i in draft["order"] if int(i) in shown]
        else:
            positions = []
        order = format_order([p for p in dict.fromkeys(positions) if 0 <= p < n])
    text = draft.get("completion") if mode == "rewrite" and isinstance(draft.get("completion"), str) else ""
    return choice, order, note or "", text or str(view.get("completion", ""))


def rewrites_side_by_side(original: str, answers: list[dict[str, Any]]) -> str:
    """The rewrites of a disputed rewrite task, one column per annotator: a compact diff of the original, the full
    text, and a button (keys 1-9) that puts that text in the reviewer's editor."""
    cols = []
    for i, a in enumerate(answers, start=1):
        text = str(a["value"].get("completion", ""))
        same = text == original
        diff = ('<div class="diff"><em>Unchanged: the original text.</em></div>' if same
                else diff_html(original, text))
        key = f"key-{i}" if i < 10 else ""
        cols.append(f'<div class="rewrite-col"><div class="block-title">{esc(a["annotator"])}'
                    f'{" · accepted as is" if a["value"].get("accepted_as_is") else ""}</div>{diff}'
                    f'<button type="button" class="use-rewrite {key}">{i if i < 10 else ""} · Use this text</button>'
                    f'<details><summary>Full text</summary><div class="text-block full-text">{esc(text)}</div>'
                    "</details></div>")
    return f'<div class="block-title">Rewrites in disagreement</div><div class="rewrites-side">{"".join(cols)}</div>'


def pick_buttons_html(prefix: str, mode: str, classes: list[str], n_buttons: int, choice: str,
                      picked: set[int]) -> tuple[str, str]:
    """The pair buttons and the class / candidate buttons as HTML: ``(pairs, choices)``.

    Plain ``<button data-pick=...>`` elements in two HTML components (one update each, where twenty Gradio
    buttons cost the browser ~35 ms per task): a click sets the choice through the component's click event,
    keys click them through their ``key-*`` / ``key2-NN`` classes. ``picked`` holds 0-based indexes shown selected.
    """
    pairs = "".join(
        f'<button type="button" id="{prefix}pair-{value}" class="pick pair-btn {key} '
        f'{"primary" if mode == "pair" and choice == value else "secondary"}" data-pick="{value}">{label}</button>'
        for value, label, key in PAIR_BUTTON_SPECS) if mode == "pair" else ""
    buttons = []
    for i in range(1, n_buttons + 1):
        label = key_label(i, n_buttons)
        label = f"{label} · {esc(classes[i - 1])}" if mode == "label" and i <= len(classes) else label
        keys = f"key2-{i:02d}" + (f" key-{i}" if i < 10 else "")
        buttons.append(f'<button type="button" id="{prefix}choice-{i}" class="pick choice-btn {keys} '
                       f'{"primary" if i - 1 in picked else "secondary"}" data-pick="{i}">{label}</button>')
    return (f'<div class="pick-row">{pairs}</div>' if pairs else "",
            f'<div class="pick-grid">{"".join(buttons)}</div>' if buttons else "")


PAIR_BUTTON_SPECS = (("A", "1 · A", "key-1"), ("B", "2 · B", "key-2"), ("tie", "T · Tie", "key-t"),
                     ("both_bad", "0 · Both bad", "key-0"))
