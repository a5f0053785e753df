"""The task panel's pick buttons (plain HTML) and the updates it leaves out when nothing changed."""

import re
from types import SimpleNamespace
from typing import Any

import gradio as gr

from apps.annotate_views import TaskPanel
from apps.task_text import pick_buttons_html


def test_pick_buttons_carry_ids_keys_and_the_selection():
    pairs, choices = pick_buttons_html("", "pair", [], 0, "B", set())
    assert choices == ""
    assert re.findall(r'id="(pair-[^"]+)"', pairs) == ["pair-A", "pair-B", "pair-tie", "pair-both_bad"]
    assert re.search(r'id="pair-B" class="[^"]*\bprimary\b', pairs)
    assert not re.search(r'id="pair-A" class="[^"]*\bprimary\b', pairs)

    classes = [f"class <{i}>" for i in range(1, 13)]
    pairs, choices = pick_buttons_html("adj-", "label", classes, 12, "12", {11})
    assert pairs == ""
    ids = re.findall(r'id="(adj-choice-\d+)"', choices)
    assert ids == [f"adj-choice-{i}" for i in range(1, 13)]
    assert "01 · class &lt;1&gt;" in choices and "<1>" not in choices  # names escaped
    assert re.search(r'class="[^"]*\bkey2-12\b[^"]*\bprimary\b[^"]*" data-pick="12"', choices)
    assert "key-9 " in choices and "key-10" not in choices  # one key only for the first nine


def _view(task_id: int, text: str) -> dict[str, Any]:
    return {"task_id": task_id, "round_number": 1, "type": "rank", "prompt": "Which is better?",
            "responses": [text, text + "!"], "classes": [], "guidelines": "Prefer correct.",
            "queue": {"done": task_id, "total": 9, "skipped": 0}}


def test_show_leaves_out_unchanged_server_owned_updates():
    with gr.Blocks():
        panel = TaskPanel()
    request = SimpleNamespace(session_hash="s1")
    first = panel.show(_view(1, "one"), "empty", request)  # type: ignore[arg-type]
    second = panel.show(_view(2, "two"), "empty", request)  # type: ignore[arg-type]
    assert panel.pair_row in first and panel.pair_row not in second  # still a pair: nothing to re-send
    assert panel.submit in first and panel.submit not in second
    for component in (panel.info, panel.resp_a, panel.choice, panel.order, panel.note, panel.pairs, panel.progress):
        assert component in second  # what changes, and what the browser may have changed, is always sent
    other = panel.show(_view(3, "three"), "empty", SimpleNamespace(session_hash="s2"))  # type: ignore[arg-type]
    assert panel.pair_row in other  # another browser session gets everything
    empty = panel.show(None, "No tasks.", request)  # type: ignore[arg-type]
    assert panel.pair_row in empty and panel.submit in empty


LAYOUT_TYPES = {"row", "column", "accordion", "group", "tab", "tabitem", "tabs", "form"}


def test_loading_statuses_land_on_small_leaves(workspace):
    """Gradio's page re-reads every component that ever had a loading status, and all of its children, on each
    status change (measured: 12-15 ms of a ~100 ms submit). Every event with several outputs names the one leaf
    its progress shows on, and no progress target is a layout block."""
    from apps.annotate import build_app

    config = build_app(workspace).get_config_file()
    types = {c["id"]: c["type"] for c in config["components"]}
    targets: set[int] = set()
    for dep in config["dependencies"]:
        these = dep.get("show_progress_on") or dep["outputs"]
        assert len(these) <= 2, (dep.get("api_name"), [types[t] for t in these])
        targets.update(these)
    assert not {types[t] for t in targets} & LAYOUT_TYPES
    assert len(targets) < 20


def test_guidelines_keep_text_written_like_a_tag():
    """Markdown drops an unknown tag: "keep placeholders like <PERSON_1>" lost the very placeholder it names."""
    with gr.Blocks():
        panel = TaskPanel()
    view = {**_view(1, "one"), "guidelines": "Fix tone; keep placeholders like <PERSON_1>."}
    shown = panel.show(view, "empty", SimpleNamespace(session_hash="g1"))  # type: ignore[arg-type]
    assert shown[panel.guidelines] == "Fix tone; keep placeholders like &lt;PERSON_1>."


def test_the_rewrite_diff_rebuilds_both_texts_when_the_head_and_tail_are_cut_off():
    """The diff matches only what lies between the unchanged head and tail: every change must still be there, at
    its place (the edited text = the diff without <del>; the original = the diff without <ins>)."""
    import html
    import random

    from apps.task_text import diff_html

    rng = random.Random(0)
    for _ in range(300):
        words = [rng.choice(["ab", "cd", "ef", "gh"]) for _ in range(rng.randint(0, 25))]
        edited = list(words)
        for _ in range(rng.randint(1, 4)):
            where = rng.randint(0, len(edited))
            if rng.random() < 0.5 or not edited:
                edited.insert(where, rng.choice(["zz", "ab"]))
            else:
                edited.pop(min(where, len(edited) - 1))
        a, b = " ".join(words), " ".join(edited)
        if a == b or not b.strip():
            continue
        body = diff_html(a, b, compact=False).removeprefix('<div class="diff">').removesuffix("</div>")
        assert html.unescape(re.sub(r"</?ins>", "", re.sub(r"<del>.*?</del>", "", body))) == b
        assert html.unescape(re.sub(r"</?del>", "", re.sub(r"<ins>.*?</ins>", "", body))) == a
