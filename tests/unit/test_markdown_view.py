"""Record texts as sanitised Markdown: markup from the data stays text, code is highlighted in one <pre>."""

from __future__ import annotations

import re

from apps.markdown_view import MAX_RENDER_CHARS, pygments_css, render_markdown


def test_planted_markup_and_script_links_stay_inert() -> None:
    html = render_markdown('<img src="x" onerror="alert(1)"> <script>alert(2)</script>\n\n'
                           "[click](javascript:alert(3)) and [docs](https://example.org/a)")
    assert "<img" not in html and "<script" not in html
    assert "&lt;img" in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert 'href="https://example.org/a"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_code_is_highlighted_in_a_single_pre() -> None:
    html = render_markdown("Intro\n\n```python\ndef f(x):\n    return x < 2\n```\n")
    assert html.count("<pre") == 1, html
    assert re.search(r'<pre class="code highlight"><code><span class="k">def</span>', html)
    assert "&lt;" in html  # the comparison is escaped inside the highlighted code
    assert ".md .highlight .k" in pygments_css()


def test_unknown_language_and_plain_fences_are_escaped_text() -> None:
    html = render_markdown("```nolang\nx<y\n```\n\n```\n<b>bold?</b>\n```")
    assert html.count('<pre class="code"><code>') == 2
    assert "x&lt;y" in html and "&lt;b&gt;bold?&lt;/b&gt;" in html


def test_tables_lists_and_headings_render() -> None:
    html = render_markdown("### Steps\n\n1. one\n2. two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    for tag in ("<h3>", "<ol>", "<li>one</li>", "<table>", "<td>2</td>"):
        assert tag in html, tag


def test_very_long_text_is_shown_plain() -> None:
    text = "**bold** " * (MAX_RENDER_CHARS // 9 + 1)
    html = render_markdown(text)
    assert html.startswith('<div class="md plain">') and "<strong>" not in html


def test_images_in_the_data_are_never_loaded():
    """Opening a task must not fetch anything from a site named in the data (a tracking pixel)."""
    from apps.markdown_view import render_markdown

    shown = render_markdown("Logo: ![logo](https://tracker.example/p.png?id=42)")
    assert "<img" not in shown and "tracker.example" in shown
