#!/usr/bin/env python
"""Markdown rendering cost on pathological model output (feedback.rendering).

    .venv/bin/python bench/render.py            # about 20 s on a shared 2-core machine
    .venv/bin/python bench/render.py --size 50000

Per pathological input (deeply nested lists and quotes, huge tables, emphasis delimiters, long
link references, brackets, ...) of ``--size`` characters: the time markdown-it-py takes unbounded
(what every page view cost before) and the time ``markdown_render`` takes now, first view and
cached. Then a worst page as the API allows it, rendered the way the annotate page does (inside
a request's budget): 200 prompt turns of pathological Markdown just under the size limit and
two maximal (2,000,000-character) pathological completions, first view and reload.

The last line is one JSON object. Times are wall clock (``time.perf_counter``) on whatever machine
runs it; the goal is a page under 1 s of server time for any accepted input.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("DEBUG", "0")

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from markdown_it import MarkdownIt  # noqa: E402

from feedback import rendering  # noqa: E402
from feedback.messages import MAX_COMPLETION_CHARS, MAX_MESSAGES  # noqa: E402


def cases(n: int) -> dict[str, str]:
    """Pathological Markdown inputs of exactly ``n`` characters each."""
    raw = {
        "nested_lists": "".join("  " * (i % 400) + "- x\n" for i in range(n)),
        "nested_quotes": "".join(">" * (i % 200) + " x\n" for i in range(n // 50)),
        "lazy_quotes": "> a\nb\n" * n,
        "table": "|" + "a|" * 100 + "\n|" + "-|" * 100 + "\n" + ("|" + "b|" * 100 + "\n") * n,
        "emphasis": "*a_" * n,
        "strong": "a**" * n,
        "delimiter_runs": "*" * (n // 2) + "a" + "*" * n,
        "strike": "~~a" * n,
        "brackets": "[" * n,
        "link_openers": "[](" * n,
        "links": "[a](b " * n,
        "link_references": "".join(f"[l{i}]: http://x/{i}\n" for i in range(n // 20))
        + "".join(f"[l{i}] " for i in range(n)),
        "list_items": "".join(f"{i}. x\n" for i in range(n)),
        "empty_items": "*\n" * n,
        "headings": "# a\n" * n,
        "backticks": "`a``" * n,
        "angle_brackets": "<" * n,
    }
    return {name: text[:n] for name, text in raw.items()}


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=rendering.MARKDOWN_MAX_CHARS, help="characters per input")
    args = parser.parse_args()

    unbounded = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable("table").enable("strikethrough")
    per_case = {}
    print(f"{'input':18s} {'chars':>9s} {'before s':>9s} {'µs/char':>8s} {'now s':>7s} {'cached s':>9s}  path")
    for name, text in cases(args.size).items():
        before = timed(unbounded.render, text)
        cache.clear()
        now = timed(rendering.markdown_render, text)
        cached = timed(rendering.markdown_render, text)
        plain = rendering.markdown_render(text).startswith(rendering.PLAIN_NOTE)
        per_case[name] = {"before_s": round(before, 3), "now_s": round(now, 3), "cached_s": round(cached, 4),
                          "plain": plain}
        print(f"{name:18s} {len(text):9d} {before:9.3f} {before * 1e6 / len(text):8.1f} {now:7.3f} {cached:9.4f}"
              f"  {'plain' if plain else 'markdown'}", flush=True)

    # The worst page the API accepts, as the annotate page renders it (a request's budget).
    turn = ("[" * 500 + "*a_" * 500 + "\n") * (rendering.MARKDOWN_MAX_CHARS // 2001)
    completion = ("[" * 1000 + "*a_" * 1000 + "\n") * (MAX_COMPLETION_CHARS // 4001)
    page = [turn + f"{i}" for i in range(MAX_MESSAGES)] + [completion, completion + "b"]

    def render_page() -> None:
        rendering.markdown_page_begin()
        try:
            for text in page:
                rendering.markdown_render(text)
        finally:
            rendering.markdown_page_end()

    cache.clear()
    first = timed(render_page)
    reload = timed(render_page)
    chars = sum(map(len, page))
    before_page_estimate = per_case["brackets"]["before_s"] / args.size * chars
    print(f"\nworst page: {len(page)} texts, {chars:,} characters")
    print(f"  first view {first:.3f} s, reload {reload:.3f} s "
          f"(unbounded markdown-it estimate at the brackets rate: {before_page_estimate:.0f} s)")
    worst_now = max(v["now_s"] for v in per_case.values())
    print(json.dumps({
        "size": args.size, "cases": per_case, "worst_text_now_s": worst_now,
        "worst_text_before_s": max(v["before_s"] for v in per_case.values()),
        "page_chars": chars, "page_first_view_s": round(first, 3), "page_reload_s": round(reload, 3),
        "page_before_estimate_s": round(before_page_estimate, 1), "goal_met": first < 1.0 and worst_now < 1.0,
    }))


if __name__ == "__main__":
    main()
