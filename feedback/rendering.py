"""Model output rendered as safe Markdown, in bounded time.

Completions are untrusted: raw HTML in them is shown as text (markdown-it with ``html=False``
escapes it), and markdown-it's link validation drops ``javascript:``/``vbscript:``/``data:`` URLs.
The HTML is written for the annotator's page (``_markdown`` lists the render rules):

- Images are never loaded (no tracking pixels; the HTML has no ``<img>``): ``![alt](url)`` becomes
  a marked link ``[image: alt] url`` (an embedded ``data:`` image becomes the marker alone).
- Links open in a new tab (``target="_blank" rel="noopener noreferrer nofollow"``), so a click on
  model output never navigates the annotator away from an item half-judged.
- Headings are demoted below the page's own (``#`` -> ``<h3>``, ``##`` -> ``<h4>``, deeper ->
  ``<h5>``/``<h6>``) and carry ``class="md-heading"``, so they read as part of the response, never
  as the page's LEFT/RIGHT labels.
- Blocks of text (paragraphs, list items, headings, table cells) carry ``dir="auto"``: each
  takes its direction from its own text, list markers included (the stylesheet indents a list
  item on its own start side); code
  (inline, indented and fenced) carries ``dir="ltr"`` (the stylesheet isolates it), so code inside
  right-to-left text stays left to right.

Rendering time is bounded, since a page shows up to 200 prompt turns and two completions of up to
2 million characters each, and markdown-it-py spends up to about 20 µs of CPU per character on
pathological input (``[[[[...``, ``*a_*a_...``, thousands of one-line list items): a maximal
completion took about 45 s of CPU per page view. Three bounds, in CPU seconds of the rendering
thread (``time.thread_time``), so what a text shows does not depend on how busy the server is
(figures from ``bench/render.py``):

- Size: a text over ``MARKDOWN_MAX_CHARS`` characters is shown as plain text (escaped, paragraphs
  and line breaks kept) without parsing it; that path is linear and takes milliseconds per megabyte.
- Time per text: the parser checks a deadline at block starts and inline delimiters (every 32nd),
  before each inline token and post-processing pass, and every 256 tokens while writing HTML; a
  text that has not rendered within ``MARKDOWN_TEXT_SECONDS`` is shown as plain text. Runs of
  ``LONG_DELIMITER_RUN`` or more ``*``/``_``/``~`` are literal text (one step the deadline cannot
  split otherwise).
- Time per page: within one request, Markdown rendering stops after ``MARKDOWN_PAGE_SECONDS`` in
  all; later texts on that page are shown as plain text. The budget is reset when a request
  starts (``request_started``); outside a request only the per-text bound applies.

Rendered HTML is cached in Django's default cache, keyed by the SHA-256 of the text, so a reload
costs a lookup; a text that ran out of its own time is cached as its plain rendering too, so it
is not parsed again. A text that ran out of the page's budget is not cached (it may render next
time).
"""
from __future__ import annotations

import hashlib
import html
import re
import time
from contextvars import ContextVar
from functools import lru_cache

from django.core.cache import cache
from django.core.signals import request_finished, request_started
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML

MARKDOWN_MAX_CHARS = 50_000  # above this, plain text without parsing (ordinary prose: about 0.05 s)
MARKDOWN_TEXT_SECONDS = 0.15  # one text's parse and render, CPU seconds of the thread
MARKDOWN_PAGE_SECONDS = 0.3  # all Markdown rendering in one request, CPU seconds of the thread
LONG_DELIMITER_RUN = 32  # a run of this many *, _ or ~ is shown as the characters themselves
CACHE_PREFIX = "arbiter:markdown:v2:"  # v2: dir attributes, demoted headings, image links
CACHE_SECONDS = 24 * 3600

PLAIN_NOTE = '<p class="md-plain-note">Shown as plain text: too long or too complex to format quickly.</p>\n'

_page_budget: ContextVar[list[float] | None] = ContextVar("markdown_page_budget", default=None)


class _OutOfTime(Exception):
    """The deadline passed during parsing."""


def _clock() -> float:
    """CPU seconds of this thread: the bounds are on the request's own work, so what a text shows
    does not depend on how busy the machine is."""
    return time.thread_time()


def _check(env) -> None:
    if _clock() > env["deadline"]:
        raise _OutOfTime


def _check_often(env) -> None:
    """``_check`` on every 32nd call: for the rules tried at every line and every delimiter (each
    a few to tens of microseconds), where reading the thread's CPU clock each time would cost more."""
    env["ticks"] += 1
    if not env["ticks"] & 31:
        _check(env)


def _deadline_block(state, start_line, end_line, silent):
    """A block rule, and terminator of paragraphs, lists, quotes and tables: tried at every line."""
    _check_often(state.env)
    return False


def _deadline_inline(state, silent):
    """An inline rule tried at every position that plain text does not cover (each delimiter)."""
    _check_often(state.env)
    return False


def _deadline_pass(state) -> None:
    """A post-processing pass (inline ``ruler2``, core) that only checks the deadline."""
    _check(state.env)


_LONG_RUN = re.compile(r"([*_~])\1{%d,}" % (LONG_DELIMITER_RUN - 1))


def _long_run_as_text(state, silent):
    """Take a run of ``LONG_DELIMITER_RUN`` or more ``*``, ``_`` or ``~`` as literal text.

    Such a run can only make degenerate nested emphasis, and markdown-it spends one token per
    delimiter on it (about 10 µs a character) in steps the deadline cannot interrupt.
    """
    match = _LONG_RUN.match(state.src, state.pos, state.posMax)
    if match is None:
        return False
    if not silent:
        state.pending += match.group(0)
    state.pos = match.end()
    return True


def _inline_with_deadline(state) -> None:
    """markdown-it's core ``inline`` rule with the deadline checked before each inline token."""
    for token in state.tokens:
        if token.type == "inline":
            _check(state.env)
            if token.children is None:
                token.children = []
            state.md.inline.parse(token.content, state.md, state.env, token.children)


class _DeadlineRenderer(RendererHTML):
    """``RendererHTML`` whose loops check the deadline every 256 tokens (same output)."""

    def render(self, tokens, options, env):
        out = []
        for i, token in enumerate(tokens):
            if not i & 255:
                _check(env)
            if token.type == "inline":
                if token.children:
                    out.append(self.renderInline(token.children, options, env))
            elif token.type in self.rules:
                out.append(self.rules[token.type](tokens, i, options, env))
            else:
                out.append(self.renderToken(tokens, i, options, env))
        return "".join(out)

    def renderInline(self, tokens, options, env):  # noqa: N802 - markdown-it-py's name
        out = []
        for i, token in enumerate(tokens):
            if not i & 255:
                _check(env)
            if token.type in self.rules:
                out.append(self.rules[token.type](tokens, i, options, env))
            else:
                out.append(self.renderToken(tokens, i, options, env))
        return "".join(out)


LINK_REL = "noopener noreferrer nofollow"
# Blocks holding text, not containers of them: ``dir="auto"`` skips descendants that have a ``dir``
# of their own, so on a list or quote it would always say ltr (lists indent by the item's own
# direction in the stylesheet instead).
_BLOCKS_AUTO = ("paragraph_open", "list_item_open", "th_open", "td_open")
_HEADING_TAGS = {"h1": "h3", "h2": "h4", "h3": "h5", "h4": "h6", "h5": "h6", "h6": "h6"}


def _dir_auto(renderer, tokens, idx, options, env):
    """A block element takes its direction from its own text (``dir="auto"``)."""
    tokens[idx].attrSet("dir", "auto")
    return renderer.renderToken(tokens, idx, options, env)


def _heading(renderer, tokens, idx, options, env):
    """``#``..``######`` -> ``<h3>``..``<h6>`` with ``class="md-heading"`` and ``dir="auto"``."""
    token = tokens[idx]
    token.tag = _HEADING_TAGS.get(token.tag, "h6")
    if token.nesting == 1:
        token.attrSet("class", "md-heading")
        token.attrSet("dir", "auto")
    return renderer.renderToken(tokens, idx, options, env)


def _code_inline(renderer, tokens, idx, options, env):
    tokens[idx].attrSet("dir", "ltr")
    return RendererHTML.code_inline(renderer, tokens, idx, options, env)


def _code_block(renderer, tokens, idx, options, env):
    tokens[idx].attrSet("dir", "ltr")  # on the <pre>
    return RendererHTML.code_block(renderer, tokens, idx, options, env)


def _fence(renderer, tokens, idx, options, env):
    rendered = RendererHTML.fence(renderer, tokens, idx, options, env)  # "<pre><code ...>...</code></pre>"
    return '<pre dir="ltr">' + rendered.removeprefix("<pre>")


def _link_open(renderer, tokens, idx, options, env):
    """A link opens in a new tab and passes on neither the page nor a referrer."""
    tokens[idx].attrSet("target", "_blank")
    tokens[idx].attrSet("rel", LINK_REL)
    return renderer.renderToken(tokens, idx, options, env)


def _image(renderer, tokens, idx, options, env):
    """``![alt](url)`` -> a marked link ``[image: alt] url``; nothing is loaded. ``data:`` URLs
    (markdown-it lets images through as ``data:image/...``) become the marker alone."""
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    src = token.attrGet("src") or ""
    marker = f"[image: <bdi>{escapeHtml(alt)}</bdi>]" if alt else "[image]"  # alt text in any direction
    if not src or src.lower().startswith("data:"):
        return f'<span class="md-image">{marker}</span>'
    url = escapeHtml(src)
    return f'<a class="md-image" href="{url}" target="_blank" rel="{LINK_REL}">{marker} {url}</a>'


_PAGE_RULES = {
    **{name: _dir_auto for name in _BLOCKS_AUTO},
    "heading_open": _heading,
    "heading_close": _heading,
    "code_inline": _code_inline,
    "code_block": _code_block,
    "fence": _fence,
    "link_open": _link_open,
    "image": _image,
}


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark", {"html": False, "linkify": False, "typographer": False, "breaks": True},
        renderer_cls=_DeadlineRenderer,
    )
    md.enable("table").enable("strikethrough")
    md.block.ruler.before(
        "table", "deadline", _deadline_block, {"alt": ["paragraph", "reference", "blockquote", "list", "table"]},
    )
    md.inline.ruler.after("text", "deadline", _deadline_inline)
    md.inline.ruler.before("strikethrough", "long_delimiter_run", _long_run_as_text)
    md.core.ruler.at("inline", _inline_with_deadline)
    for name in ("balance_pairs", "strikethrough", "emphasis", "fragments_join"):  # each a pass over delimiters
        md.inline.ruler2.before(name, f"deadline_{name}", _deadline_pass)
    md.core.ruler.before("text_join", "deadline", _deadline_pass)
    for name, rule in _PAGE_RULES.items():
        md.add_render_rule(name, rule)
    return md


_BLANK_LINES = re.compile(r"\n[ \t]*\n+")


def plain_render(text: str) -> str:
    """``text`` as escaped HTML paragraphs (blank lines) with ``<br>`` line breaks; linear time.

    Used instead of Markdown for texts too long or too slow to parse; starts with ``PLAIN_NOTE``.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if not text.strip():
        return ""
    paragraphs = _BLANK_LINES.split(html.escape(text, quote=False))
    body = "".join(f'<p class="md-plain" dir="auto">{p.replace(chr(10), "<br>" + chr(10))}</p>\n' for p in paragraphs)
    return PLAIN_NOTE + body


def markdown_page_begin(seconds: float = MARKDOWN_PAGE_SECONDS) -> None:
    """Start a page's rendering budget of ``seconds`` (CPU seconds) for this thread/context."""
    _page_budget.set([seconds])


def markdown_page_end() -> None:
    """Drop the page's budget: only the per-text bound applies until the next ``markdown_page_begin``."""
    _page_budget.set(None)


def _on_request_started(**kwargs) -> None:
    markdown_page_begin()


def _on_request_finished(**kwargs) -> None:
    markdown_page_end()


request_started.connect(_on_request_started, dispatch_uid="feedback.rendering.page_begin")
request_finished.connect(_on_request_finished, dispatch_uid="feedback.rendering.page_end")


def markdown_render(text: str) -> str:
    """Render Markdown ``text`` to an HTML string in which any HTML from the input is escaped.

    The caller marks the result safe; the escaping is markdown-it's (``html=False``) or, on the
    plain path, ``html.escape``. Texts over ``MARKDOWN_MAX_CHARS`` characters, texts that do not
    render within ``MARKDOWN_TEXT_SECONDS`` and texts met after the page's budget is spent come
    back as ``plain_render(text)``. Never raises for any string.
    """
    if len(text) > MARKDOWN_MAX_CHARS:
        return plain_render(text)
    key = CACHE_PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return cached
    budget = _page_budget.get()
    allowed = MARKDOWN_TEXT_SECONDS if budget is None else min(MARKDOWN_TEXT_SECONDS, budget[0])
    if allowed <= 0:
        return plain_render(text)
    started = _clock()
    try:
        rendered = _markdown().render(text, {"deadline": started + allowed, "ticks": 0})
    except _OutOfTime:
        rendered = plain_render(text)
        if allowed < MARKDOWN_TEXT_SECONDS:  # the page ran out, not the text: it may render next time
            budget[0] = 0.0
            return rendered
    if budget is not None:
        budget[0] -= _clock() - started
    cache.set(key, rendered, CACHE_SECONDS)
    return rendered
