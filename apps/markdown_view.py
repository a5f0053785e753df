"""Record texts rendered as sanitised Markdown for the annotation app.

Responses of LLMs are Markdown: headings, lists, tables and fenced code. They are shown rendered, with code in a
monospace font and highlighted (Pygments), but never as markup from the data: raw HTML in a text is escaped
(``html=False``), and links to anything but http(s) / mailto / relative addresses are not made links, so a planted
``<img onerror>``, ``<script>`` or ``javascript:`` link stays inert text; Markdown images are shown as links,
never loaded (opening a task must not call anyone's server).
"""

from __future__ import annotations

import html
from functools import lru_cache

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

MAX_RENDER_CHARS = 200_000  # longer texts are shown as plain text (rendering cost grows with length)
MAX_CACHED_CHARS = 50_000  # texts up to this length keep their rendering (the next task is rendered ahead)
_SAFE_SCHEMES = ("http://", "https://", "mailto:")


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Pygments HTML for a fenced block in ``lang`` (escaped plain text when the language is unknown): one
    ``<pre>`` (markdown-it wraps anything that does not start with ``<pre`` in another ``<pre><code>``)."""
    try:
        lexer = get_lexer_by_name(lang.strip().split()[0]) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return f'<pre class="code"><code>{html.escape(code)}</code></pre>'
    tokens = highlight(code, lexer, HtmlFormatter(nowrap=True))
    return f'<pre class="code highlight"><code>{tokens}</code></pre>'


def _validate_link(url: str) -> bool:
    lowered = url.strip().lower()
    return lowered.startswith(_SAFE_SCHEMES) or ":" not in lowered.split("/")[0]


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight, "breaks": True})
    md.enable(["table", "strikethrough"])
    md.disable("image")  # an image in the data would load from its site when the task opens (a tracking pixel)
    md.validateLink = _validate_link  # type: ignore[method-assign]
    return md


def render_markdown(text: str) -> str:
    """``text`` as sanitised HTML (a ``<div class="md">``); raw HTML in ``text`` is shown as text.

    The last 256 renderings of texts up to :data:`MAX_CACHED_CHARS` are kept: a task rendered ahead of time
    (:mod:`apps.prefetch`) or shown again costs a dictionary lookup.
    """
    text = str(text)
    return _render_cached(text) if len(text) <= MAX_CACHED_CHARS else _render(text)


@lru_cache(maxsize=256)
def _render_cached(text: str) -> str:
    return _render(text)


def _render(text: str) -> str:
    if len(text) > MAX_RENDER_CHARS:
        return f'<div class="md plain">{html.escape(text)}</div>'
    body = _parser().render(text)
    body = body.replace("<a href=", '<a target="_blank" rel="noopener noreferrer nofollow" href=')
    return f'<div class="md">{body}</div>'


def pygments_css() -> str:
    """The style sheet of highlighted code (scoped to ``.md .highlight``)."""
    return str(HtmlFormatter(style="friendly").get_style_defs(".md .highlight"))
