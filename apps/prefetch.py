"""Render the next task while the expert reads the current one.

Rendering a task's Markdown (two ~2,000-character responses with highlighted code) takes 2-3 ms of the server's
answer to a submit. After a task is shown, one background thread fetches the task that follows it in the
person's queue (read-only: no clock starts) and renders its texts into :func:`apps.markdown_view.render_markdown`'s
cache, so the submit that brings it on screen finds them rendered. A warm-up that fails changes nothing: the
submit renders the texts itself.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from apps.markdown_view import render_markdown
from curate.annotate.answers import upcoming_view
from curate.store.database import Store

log = logging.getLogger(__name__)


class Prefetcher:
    """Renders, in one background thread, the task after the one just shown to a person."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-prefetch")

    def after(self, user: str, task_id: int | None) -> Future[int] | None:
        """Start rendering the task that follows ``task_id`` in ``user``'s queue; the future gives the number of
        texts rendered (None when nothing is shown)."""
        if task_id is None:
            return None
        return self._pool.submit(self._warm, user, int(task_id))

    def _warm(self, user: str, task_id: int) -> int:
        try:
            view = upcoming_view(self.store, user, task_id)
        except Exception:  # a warm-up never fails a request: the submit renders the texts itself
            log.debug("prefetch after task %s failed", task_id, exc_info=True)
            return 0
        if view is None:
            return 0
        texts = [t for t in (view.prompt, *view.responses) if t]
        for text in texts:
            render_markdown(text)
        return len(texts)
