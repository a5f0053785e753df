"""The app at 1366x768 with an expert's real load: 2,000-character Markdown responses with code, long rewrites, a
12-class schema. Every action is done from the keyboard without scrolling; the action bar stays in the viewport;
each new task starts at the top; planted markup stays inert; rewrites are guarded; review and errors behave."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from curate.store import audit
from curate.store.accounts import add_user, deactivate_user
from curate.store.schema import Annotation
from curate.store.workspace import Workspace
from tests.e2e.conftest import CHROMIUM, VIEWPORT, Served, free_port, login, require_browser, save_screenshot
from tests.e2e.long_tasks import CLASSES_12, PASSWORD, long_completion, seed_long

if not CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package (the [dev] extra)")
from playwright.sync_api import Page, expect  # noqa: E402

PRIMARY = re.compile(r"\bprimary\b")  # the selected choice's button
MIN_READ = 1.0  # seconds per 1,000 characters before "accept as is" (2 s for the 2,000-character rewrites)


@pytest.fixture(scope="module")
def served_long(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The long-task workspace served with a short reading guard; rewrites go to eve and max."""
    require_browser()
    from apps.annotate import launch_app

    tmp = tmp_path_factory.mktemp("layout")
    ws = Workspace.open(tmp / "ws", f"sqlite:///{tmp / 'curate.db'}")
    seeded = seed_long(ws, tmp, rewrite_people=("eve", "max"))
    demo, url = launch_app(ws, port=free_port(), prevent_thread_lock=True, quiet=True, min_read_seconds=MIN_READ)
    try:
        yield Served(ws, seeded, url)  # type: ignore[arg-type]
    finally:
        demo.close()
        ws.store.dispose()


def on_task(page: Page, task_id: int, prefix: str = "") -> None:
    expect(page.locator(f"#{prefix}task-info")).to_contain_text(f"task {task_id} ")


def assert_fits(page: Page, prefix: str = "") -> None:
    """The action bar and its submit button lie inside the 1366x768 viewport; the page is at the top."""
    size = page.viewport_size or VIEWPORT
    for selector in (f"#{prefix}action-bar", f"#{prefix}submit-btn"):
        box = page.locator(selector).bounding_box()
        assert box is not None, selector
        assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
        assert box["x"] + box["width"] <= size["width"] + 0.5, (selector, box)
        assert box["y"] + box["height"] <= size["height"] + 0.5, (selector, box)
    assert page.evaluate("window.scrollY") == 0


def read_then_submit(page: Page, key: str, next_task: int) -> None:
    """Scroll down as a reader does, choose with ``key``, submit: the next task starts at the top."""
    page.mouse.wheel(0, 1500)
    page.wait_for_function("window.scrollY > 0")
    page.keyboard.press(key)
    page.keyboard.press("Control+Enter")
    on_task(page, next_task)
    page.wait_for_function("window.scrollY === 0")


def answers(ws: Workspace) -> list[Any]:
    with ws.store.read() as conn:
        return list(conn.execute(select(Annotation).order_by(Annotation.id)).all())


def test_rank_rewrite_and_label_from_the_keyboard(served_long: Served, open_page: Callable[[], Page]) -> None:
    ws, seeded = served_long.ws, served_long.seeded
    rank, rewrite, label = seeded.rank, seeded.rewrite, seeded.label  # type: ignore[attr-defined]
    page = login(open_page(), served_long.url, "eve")

    # --- rank: rendered Markdown, inert markup, the bar in view, the top of the page on each task --------------
    on_task(page, rank[0])
    assert_fits(page)
    expect(page.locator("#guidelines")).to_be_visible()  # the first task of these guidelines: open
    pane = page.locator("#response-a, #response-b")
    expect(pane.locator("h3")).to_have_count(2)
    expect(pane.locator("table")).to_have_count(2)
    code = page.locator("#response-a pre.highlight").first
    expect(code).to_contain_text("def verify(path: str) -> bool:")
    assert "mono" in code.evaluate("el => getComputedStyle(el).fontFamily").lower()
    assert page.locator("#response-a .highlight span").count() > 5  # highlighted tokens
    planted = page.locator("#response-a, #response-b").get_by_text("window.__curate_xss = 2", exact=False)
    expect(planted).to_have_count(1)  # shown as text
    assert page.locator("#response-a img, #response-b img, #response-a script, #response-b script").count() == 0
    assert page.locator("#response-a a[href^='javascript'], #response-b a[href^='javascript']").count() == 0
    assert page.evaluate("window.__curate_xss") is None
    assert page.evaluate("document.documentElement.scrollHeight") > VIEWPORT["height"]  # responses are long
    page.keyboard.press("1")
    expect(page.locator("#pair-A")).to_have_class(PRIMARY)
    save_screenshot(page, "layout_rank", full_page=False)
    read_then_submit(page, "1", rank[1])
    assert_fits(page)
    expect(page.locator("#guidelines")).to_be_hidden()  # the same guidelines again: collapsed
    read_then_submit(page, "2", rank[2])
    read_then_submit(page, "t", rank[3])
    read_then_submit(page, "0", rewrite[0])

    # --- rewrite: E edits, no strike-through before an edit, compact diff, guarded accept ---------------------
    assert_fits(page)
    diff = page.locator("#rewrite-diff")
    expect(diff).to_contain_text("No changes yet")
    assert diff.locator("del").count() == 0
    page.keyboard.press("Control+Enter")  # unchanged text: Ctrl+Enter is not "accept as is"
    expect(page.locator("#status")).to_contain_text("Not saved: The text is unchanged")
    page.keyboard.press("Control+Shift+Enter")  # at once: refused, unread
    expect(page.locator("#status")).to_contain_text("Read the text before accepting it as is")
    assert answers(ws)[-1].task_id == rank[3]
    page.keyboard.press("e")
    assert page.evaluate("document.activeElement.closest('#rewrite-box') !== null")
    page.keyboard.press("Control+End")
    page.keyboard.type(" Refund approved.")
    expect(diff.locator("ins")).to_have_text(" Refund approved.")
    assert diff.locator("del").count() == 0
    assert len(diff.inner_text()) < 200  # the changed words with a little context, not the whole text again
    save_screenshot(page, "layout_rewrite", full_page=False)
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.closest('#rewrite-box') === null")
    page.keyboard.press("Control+Enter")
    on_task(page, rewrite[1])
    assert_fits(page)
    started = time.monotonic()
    page.keyboard.press("Control+Shift+Enter")
    expect(page.locator("#status")).to_contain_text("Read the text")
    time.sleep(max(0.0, 2.2 - (time.monotonic() - started)))
    page.keyboard.press("Control+Shift+Enter")
    on_task(page, label[0])

    # --- label: 12 classes, two keys, names wrap ---------------------------------------------------------------
    assert_fits(page)
    expect(page.locator("#guidelines")).to_contain_text("Pick the main topic")
    for i, name in enumerate(CLASSES_12, start=1):
        button = page.locator(f"#choice-{i}")
        expect(button).to_have_text(f"{i:02d} · {name}")
        box = button.bounding_box()
        assert box is not None and box["y"] + box["height"] <= VIEWPORT["height"]
        assert button.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), name  # wrapped, not clipped
    page.keyboard.press("1")
    page.keyboard.press("2")
    expect(page.locator("#choice-12")).to_have_class(PRIMARY)
    save_screenshot(page, "layout_label", full_page=False)
    page.keyboard.press("Control+Enter")
    on_task(page, label[1])
    page.keyboard.press("0")
    page.keyboard.press("9")
    page.keyboard.press("Control+Enter")
    on_task(page, label[2])
    expect(page.locator("#status")).to_contain_text("Saved answer")
    page.keyboard.press("Control+Enter")  # nothing chosen: the status line is replaced, not stacked
    expect(page.locator("#status")).to_contain_text("Not saved: Choose a class first (keys 01-12, two keys each)")
    expect(page.locator("#status")).not_to_contain_text("Saved answer")

    stored = [(r.task_id, orjson.loads(r.value), r.seconds_spent) for r in answers(ws) if r.annotator == "eve"]
    assert [t for t, _, _ in stored] == [*rank, *rewrite, label[0], label[1]]
    assert [v["choice"] for _, v, _ in stored[:4]] == ["A", "B", "tie", "both_bad"]
    assert [v for _, v, _ in stored[4:]] == [
        {"completion": long_completion(0) + " Refund approved.", "accepted_as_is": False},
        {"completion": long_completion(1), "accepted_as_is": True},
        {"label": CLASSES_12[11]}, {"label": CLASSES_12[8]}]
    assert stored[5][2] is not None and stored[5][2] >= 2 * MIN_READ  # the guard's time is the recorded time


def test_differing_rewrites_reach_the_reviewer(served_long: Served, open_page: Callable[[], Page]) -> None:
    rewrite = served_long.seeded.rewrite  # type: ignore[attr-defined]
    page = login(open_page(), served_long.url, "max")
    on_task(page, rewrite[0])
    page.keyboard.press("e")
    page.keyboard.press("Control+End")
    page.keyboard.type(" Refund  approved. ")  # eve's edit up to whitespace: agrees
    page.keyboard.press("Control+Enter")
    on_task(page, rewrite[1])
    page.keyboard.press("e")
    page.keyboard.press("Control+Home")
    page.keyboard.type("Billing: ")  # eve accepted as is: differs
    page.keyboard.press("Control+Enter")
    expect(page.locator("#task-info")).to_contain_text("All done")

    reviewer = login(open_page(), served_long.url, "rex")
    on_task(reviewer, rewrite[1], "adj-")  # lands on the adjudication queue, not an empty Annotate tab
    expect(reviewer.locator("#adjudicate-tab-button")).to_have_attribute("aria-selected", "true")
    side = reviewer.locator("#dispute-answers .rewrite-col")
    expect(side).to_have_count(2)
    expect(side.nth(0)).to_contain_text("eve · accepted as is")
    expect(side.nth(1).locator("ins")).to_have_text("Billing: ")
    assert_fits(reviewer, "adj-")
    save_screenshot(reviewer, "layout_review", full_page=False)
    box = reviewer.locator("#adj-rewrite-box textarea")
    reviewer.keyboard.press("2")  # max's text into the editor
    expect(box).to_have_value("Billing: " + long_completion(1))
    reviewer.keyboard.press("e")
    reviewer.keyboard.press("Control+End")
    reviewer.keyboard.type(" Merged.")
    reviewer.keyboard.press("Control+Enter")
    expect(reviewer.locator("#adj-status")).to_contain_text("Recorded decision")
    expect(reviewer.locator("#adj-task-info")).to_contain_text("No disputed tasks")
    last = answers(served_long.ws)[-1]
    assert (last.kind, last.annotator, last.task_id) == ("adjudication", "rex", rewrite[1])
    assert orjson.loads(last.value)["completion"] == "Billing: " + long_completion(1) + " Merged."
    assert audit.verify(served_long.ws.store).ok


def test_logout_and_ended_sessions_show_the_login_page(served_long: Served, open_page: Callable[[], Page]) -> None:
    page = login(open_page(), served_long.url, "max")
    pages_before = len(page.context.pages)
    page.locator("#logout-link").click()
    expect(page.locator("input[type=password]")).to_be_visible()  # the login form, in this very tab
    assert len(page.context.pages) == pages_before
    add_user(served_long.ws.store, "tmp", "annotator", PASSWORD)
    page = login(page, served_long.url, "tmp")
    deactivate_user(served_long.ws.store, "tmp")
    page.keyboard.press("Control+z")  # any action of a disabled account: refused, then the login page
    expect(page.locator("input[type=password]")).to_be_visible(timeout=10_000)
    expect(page.locator("#whoami")).to_have_count(0)


def test_full_hd_and_shortcuts(served_long: Served, open_page: Callable[[], Page]) -> None:
    page = open_page()
    page.set_viewport_size({"width": 1920, "height": 1080})
    login(page, served_long.url, "rex")  # a reviewer with no disputes left: the Annotate tab, then Adjudicate
    page.locator("#adjudicate-tab-button").click()
    expect(page.locator("#adj-task-info")).to_contain_text("No disputed tasks")
    assert_fits(page, "adj-")
    page.close()
    page = login(open_page(), served_long.url, "max")
    page.keyboard.press("?")
    panel = page.locator("#shortcuts-panel")
    for text in ("01 … 20", "Ctrl + Shift + Enter", "Esc leaves the box"):
        expect(panel).to_contain_text(text)
