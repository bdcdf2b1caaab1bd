"""Model output rendered as safe Markdown.

Completions are untrusted: raw HTML in them is shown as text (markdown-it with ``html=False``
escapes it), images are not loaded (no tracking pixels), links get ``rel="nofollow noopener
noreferrer"`` and markdown-it's link validation drops ``javascript:``/``vbscript:``/``data:`` URLs.
"""
from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False, "breaks": True})
    md.enable("table").enable("strikethrough")
    md.disable("image")

    def link_open(renderer, tokens, idx, options, env):  # markdown-it-py passes the renderer first
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


def markdown_render(text: str) -> str:
    """Render Markdown ``text`` to an HTML string in which any HTML from the input is escaped.

    The caller marks the result safe; the escaping is markdown-it's (``html=False``).
    """
    return _markdown().render(text)
