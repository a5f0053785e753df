"""Rendering the next task ahead: the read-only peek at a queue, the render cache, and the background warm-up."""

from __future__ import annotations

from sqlalchemy import select, update

from apps.markdown_view import _render_cached, render_markdown
from apps.prefetch import Prefetcher
from curate.annotate import answers as A
from curate.store.schema import Assignment
from tests.annotation_setup import seed


def _opened(ws, user: str) -> dict[int, object]:
    with ws.store.read() as conn:
        return {int(r.task_id): r.opened_at for r in conn.execute(
            select(Assignment.task_id, Assignment.opened_at).where(Assignment.annotator == user))}


def test_upcoming_view_is_the_next_open_task_and_starts_no_clock(workspace, tmp_path):
    s = seed(workspace, tmp_path)
    store = workspace.store
    first = A.get_task(store, "ann")
    assert first is not None and first.task_id == s.rank[0]
    before = _opened(workspace, "ann")
    after = A.upcoming_view(store, "ann", first.task_id)
    assert after is not None and after.task_id != first.task_id
    A.submit(store, "ann", first.task_id, {"choice": "A"})
    shown = A.get_task(store, "ann")
    assert shown is not None and shown.task_id == after.task_id  # what was peeked is what the submit brings
    assert after.responses == shown.responses and after.prompt == shown.prompt
    assert before[after.task_id] is None  # peeking wrote nothing: the clock started only when it was shown
    # with one open task left there is nothing after it
    with workspace.store.write() as conn:
        conn.execute(update(Assignment).where(Assignment.annotator == "ann", Assignment.task_id != after.task_id)
                     .values(status="done"))
    assert A.upcoming_view(store, "ann", after.task_id) is None


def test_prefetcher_renders_the_next_task_into_the_cache(workspace, tmp_path):
    seed(workspace, tmp_path)
    store = workspace.store
    first = A.get_task(store, "ann")
    assert first is not None
    upcoming = A.upcoming_view(store, "ann", first.task_id)
    assert upcoming is not None
    texts = [t for t in (upcoming.prompt, *upcoming.responses) if t]
    _render_cached.cache_clear()
    rendered = Prefetcher(store).after("ann", first.task_id)
    assert rendered is not None and rendered.result(timeout=30) == len(texts) > 0
    hits = _render_cached.cache_info().hits
    for text in texts:
        assert render_markdown(text).startswith('<div class="md">')
    assert _render_cached.cache_info().hits == hits + len(texts)  # the submit finds every text rendered
    assert Prefetcher(store).after("ann", None) is None
    assert Prefetcher(store).after("nobody", first.task_id).result(timeout=30) == 0  # an empty queue: nothing
