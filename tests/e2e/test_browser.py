"""The annotation app in headless Chromium: two annotators work keyboard-first, a reviewer settles a dispute."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from curate.annotate.task_views import display_order
from curate.store import audit
from curate.store.schema import Annotation
from tests.e2e.conftest import CHROMIUM, Served, login, save_screenshot

if not CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package (the [dev] extra)")
from playwright.sync_api import Page, expect  # noqa: E402

_primary = re.compile(r"\bprimary\b")  # the selected choice's button


def on_task(page: Page, task_id: int, prefix: str = "") -> None:
    """Wait until task ``task_id`` is on screen."""
    expect(page.locator(f"#{prefix}task-info")).to_contain_text(f"task {task_id} ")


def choose_and_submit(page: Page, key: str, next_task: int) -> None:
    """Press a choice key and Ctrl+Enter at once (no waiting in between), then wait for the next task."""
    page.keyboard.press(key)
    page.keyboard.press("Control+Enter")
    on_task(page, next_task)


def rows(served: Served) -> list[Any]:
    with served.ws.store.read() as conn:
        return list(conn.execute(select(Annotation).order_by(Annotation.id)).all())


def test_login_page_and_shortcuts(served: Served, open_page: Callable[..., Page]) -> None:
    page = open_page()
    page.goto(served.url)
    expect(page.get_by_text("reviewers settle disagreements")).to_be_visible()  # the login page explains the app
    page.fill("input[type=text]", "ann")
    page.fill("input[type=password]", "not-the-password")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Incorrect Credentials")).to_be_visible()
    login(page, served.url, "ann")
    expect(page.locator("#adjudicate-tab-button")).to_have_count(0)  # annotators see neither tab
    expect(page.locator("#dashboard-tab-button")).to_have_count(0)
    page.keyboard.press("?")
    expect(page.locator("#shortcuts-panel")).to_be_visible()
    expect(page.locator("#shortcuts-panel")).to_contain_text("Ctrl + Enter")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts-panel")).to_be_hidden()
    assert rows(served) == []


def test_annotate_and_adjudicate(served: Served, open_page: Callable[..., Page]) -> None:
    rank, rewrite, label, cands = (served.seeded.rank, served.seeded.rewrite, served.seeded.label,
                                   served.seeded.candidates)
    # --- ann: keyboard only -------------------------------------------------------------------------------
    page = login(open_page(), served.url, "ann")
    on_task(page, rank[0])
    expect(page.locator("#progress")).to_contain_text("0 of 9 done, 0 skipped")
    page.keyboard.press("1")
    expect(page.locator("#pair-A")).to_have_class(_primary)
    page.keyboard.press("Control+Enter")
    on_task(page, rank[1])
    choose_and_submit(page, "2", rank[2])
    page.keyboard.press("s")  # skip: rank[2] goes to the end of the queue
    on_task(page, rank[3])
    expect(page.locator("#progress")).to_contain_text("2 of 9 done, 1 skipped")
    choose_and_submit(page, "t", rewrite[0])

    box = page.locator("#rewrite-box textarea")
    expect(box).to_have_value("The invoice got paid 2 times.")
    box.click()
    box.press("Control+a")
    box.press_sequentially("The invoice was paid twice.!!")
    expect(page.locator("#rewrite-diff ins").last).to_have_text("twice.!!")  # the typing has reached the server
    box.press("Backspace")  # a deletion (like a paste or a cut) sends no key press: it must reach the draft too
    box.press("Backspace")
    expect(page.locator("#rewrite-diff ins").last).to_have_text("twice.")  # echoed after the draft was saved
    page.reload()  # nothing typed is lost on a reload
    on_task(page, rewrite[0])
    expect(box).to_have_value("The invoice was paid twice.")
    box.press("Control+Enter")  # submits from inside the text box
    on_task(page, rewrite[1])
    page.locator("#accept-btn").click()
    on_task(page, label[0])

    expect(page.locator("#suggestion")).to_contain_text("Model suggests: billing (83%)")
    page.keyboard.press("1")
    expect(page.locator("#choice-1")).to_have_class(_primary)
    page.keyboard.press("Control+Enter")
    on_task(page, label[1])
    page.keyboard.press("Control+z")  # undo: label[0] comes back with the answer pre-selected
    on_task(page, label[0])
    expect(page.locator("#choice-1")).to_have_class(_primary)
    expect(page.locator("#status")).to_contain_text("Undid your answer")
    choose_and_submit(page, "2", label[1])

    # --- bob: disagrees with ann on the first pair, agrees on the others --------------------------------
    page = login(open_page(), served.url, "bob")
    on_task(page, rank[0])
    page.locator("#note textarea, #note input").first.fill("")
    page.locator("#note textarea, #note input").first.press_sequentially("prefer 2 over 1")  # digits are text here
    page.locator("#prompt").click()  # leave the text box
    page.keyboard.press("Control+Enter")  # nothing chosen yet: the digits typed in the note did not choose
    expect(page.locator("#status")).to_contain_text("Not saved: Choose A, B, tie or both bad first")
    choose_and_submit(page, "2", rank[1])
    page.keyboard.press("2")
    page.keyboard.press("Control+Enter")
    page.keyboard.press("Control+Enter")  # a double press stores one answer (the second is recognised, ignored)
    on_task(page, rank[2])
    choose_and_submit(page, "1", rank[3])
    choose_and_submit(page, "t", cands[0])
    expect(page.locator("#choice-3")).to_be_visible()
    for key in ("3", "1", "2"):
        page.keyboard.press(key)
    expect(page.locator("#order textarea, #order input").first).to_have_value("3 > 1 > 2")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#task-info")).to_contain_text("All done")

    # --- rita: adjudicates the disagreement, then looks at the dashboard --------------------------------
    page = login(open_page(), served.url, "rita")
    page.locator("#adjudicate-tab-button").click()
    on_task(page, rank[0], "adj-")
    answers = page.locator("#dispute-answers")
    expect(answers).to_contain_text("ann")
    expect(answers).to_contain_text("prefer 2 over 1")
    page.keyboard.press("1")
    expect(page.locator("#adj-pair-A")).to_have_class(_primary)
    # leaving the tab and coming back (the same dispute still on top) keeps the choice: the revisit's reply must
    # not wipe it, whether it lands before or after the next key press
    page.locator("#annotate-tab-button").click()
    page.locator("#adjudicate-tab-button").click()
    page.wait_for_timeout(1000)  # time for the revisit's reply (about 0.1 s) to land, and wipe the choice if it would
    expect(page.locator("#adj-pair-A")).to_have_class(_primary)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#adj-status")).to_contain_text("Recorded decision")
    expect(page.locator("#adj-task-info")).to_contain_text("No disputed tasks")
    page.locator("#dashboard-tab-button").click()
    expect(page.locator("#dashboard-agreement")).to_contain_text("ann · bob")
    expect(page.locator("#dashboard-plot img")).to_be_visible()
    expect(page.locator("#dashboard-curve-note")).to_contain_text("No learning curve yet")
    save_screenshot(page, "dashboard")

    # --- the database holds exactly what was typed --------------------------------------------------------
    stored = rows(served)
    got = [(r.annotator, r.kind, r.task_id, orjson.loads(r.value) if r.value else None) for r in stored]

    def pair(task_id: int, choice: str, note: str = "") -> dict[str, Any]:
        meaning = ["chosen", "rejected"][display_order(task_id, 2)["AB".index(choice)]] if choice in "AB" else choice
        return {"choice": choice, "preferred": meaning, "note": note}

    shown = display_order(cands[0], 3)
    assert got == [
        ("ann", "answer", rank[0], pair(rank[0], "A")),
        ("ann", "answer", rank[1], pair(rank[1], "B")),
        ("ann", "answer", rank[3], pair(rank[3], "tie")),
        ("ann", "answer", rewrite[0], {"completion": "The invoice was paid twice.", "accepted_as_is": False}),
        ("ann", "answer", rewrite[1], {"completion": "Bonjour", "accepted_as_is": True}),
        ("ann", "answer", label[0], {"label": "billing"}),
        ("ann", "retract", label[0], None),
        ("ann", "answer", label[0], {"label": "bug"}),
        ("bob", "answer", rank[0], pair(rank[0], "B", "prefer 2 over 1")),
        ("bob", "answer", rank[1], pair(rank[1], "B")),
        ("bob", "answer", rank[2], pair(rank[2], "A")),
        ("bob", "answer", rank[3], pair(rank[3], "tie")),
        ("bob", "answer", cands[0], {"order": [shown[2], shown[0], shown[1]], "note": ""}),
        ("rita", "adjudication", rank[0], pair(rank[0], "A")),
    ]
    assert orjson.loads(stored[-1].adjudicates) == [stored[0].id, stored[8].id]
    assert stored[6].supersedes_id == stored[5].id and stored[7].supersedes_id == stored[5].id
    assert all(r.seconds_spent is not None for r in stored if r.kind != "retract")
    assert audit.verify(served.ws.store).ok



def test_admin_hides_suggestions(served: Served, open_page: Callable[..., Page]) -> None:
    from curate.annotate.answers import get_task

    label_round = get_task(served.ws.store, "ann", served.seeded.label[2]).round_number
    page = login(open_page(), served.url, "ada")
    page.locator("#dashboard-tab-button").click()
    page.locator("#admin-round input").fill(str(label_round))
    page.locator("#admin-apply").click()
    expect(page.locator("#admin-status")).to_contain_text(f"hidden in round {label_round}")
    assert get_task(served.ws.store, "ann", served.seeded.label[2]).suggestions_hidden
    page.locator("#admin-hide input").uncheck()
    page.locator("#admin-apply").click()
    expect(page.locator("#admin-status")).to_contain_text(f"shown in round {label_round}")
    assert not get_task(served.ws.store, "ann", served.seeded.label[2]).suggestions_hidden
