#!/usr/bin/env python
"""Markdown rendering cost on pathological model output (feedback.rendering).

    .venv/bin/python bench/render.py            # about 20 s on a shared 2-core machine
    .venv/bin/python bench/render.py --size 50000

Per pathological input (deeply nested lists and quotes, huge tables, emphasis delimiters, long
link references, brackets, ...) of ``--size`` characters: the time markdown-it-py takes unbounded
(what every page view cost before) and the time ``markdown_render`` takes now, first view and
cached. Then a worst page as the API allows it: 200 prompt turns of pathological Markdown just
under the size limit and two maximal (2,000,000-character) pathological completions, first as the
rendering alone (inside a request's budget), then as the whole annotate page (``GET /annotate/``
through Django's test client, after one warm-up request: session, queries, template and 14 MB of
HTML) on a scratch SQLite database, first view and the best of three reloads.

The last line is one JSON object. Times are CPU seconds of the process (``time.process_time``:
on a shared machine wall time mostly measures the neighbours); the rendering's own bounds are wall
clock, so under contention a text falls back to plain text sooner. The goal is a page under 1 s of
server time for any accepted input.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import tempfile  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
SCRATCH = tempfile.TemporaryDirectory(prefix="arbiter-bench-render-")
os.environ["DATABASE_URL"] = f"sqlite:///{SCRATCH.name}/bench.sqlite3"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("HTTPS", "0")
os.environ["ALLOWED_HOSTS"] = "testserver"  # Django test client's host
os.environ.setdefault("ARBITER_PLAIN_STATIC", "1")

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


def annotate_page_timings(turns: list[str], completions: list[str]) -> tuple[float, float, int]:
    """CPU seconds for ``GET /annotate/`` (first view, best of three reloads) showing ``turns`` and ``completions``,
    and the page's size in bytes; on the scratch database, with the rendering cache cleared first."""
    from django.core.management import call_command
    from django.test import Client

    from feedback import services
    from feedback.roles import user_create

    call_command("migrate", verbosity=0)
    annotator = user_create(username="bench-annotator", password="bench passphrase 42", role="annotator")
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    if messages[-1]["role"] != "user":
        messages.pop()
    client = Client()
    client.force_login(annotator)
    client.get("/annotate/")  # a warm server: the first request imports the views and URL conf
    (prompt,) = services.prompt_create_bulk(prompts=[{"messages": messages}])
    a, b = services.completion_create_bulk(
        completions=[{"prompt": prompt, "model_name": f"m{i}", "text": text} for i, text in enumerate(completions)]
    )
    services.comparison_create(completion_a=a, completion_b=b)
    cache.clear()
    first, response = timed_call(client.get, "/annotate/")
    assert response.status_code == 200, response.status_code
    reload = min(timed_call(client.get, "/annotate/")[0] for _ in range(3))
    return first, reload, len(response.content)


def timed_call(fn, *args):
    """(CPU seconds of this process, result): on a shared machine wall time mostly measures the neighbours."""
    started = time.process_time()
    result = fn(*args)
    return time.process_time() - started, result


def timed(fn, *args) -> float:
    """CPU seconds of this process for ``fn(*args)``."""
    started = time.process_time()
    fn(*args)
    return time.process_time() - started


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
    page_first, page_reload, page_bytes = annotate_page_timings(page[:MAX_MESSAGES - 1], page[MAX_MESSAGES:])
    print(f"  the annotate page (GET /annotate/, {page_bytes / 1e6:.1f} MB of HTML): "
          f"first view {page_first:.3f} s, reload {page_reload:.3f} s")
    worst_now = max(v["now_s"] for v in per_case.values())
    print(json.dumps({
        "size": args.size, "cases": per_case, "worst_text_now_s": worst_now,
        "worst_text_before_s": max(v["before_s"] for v in per_case.values()),
        "page_chars": chars, "page_first_view_s": round(first, 3), "page_reload_s": round(reload, 3),
        "page_before_estimate_s": round(before_page_estimate, 1),
        "annotate_page_first_view_s": round(page_first, 3), "annotate_page_reload_s": round(page_reload, 3),
        "annotate_page_bytes": page_bytes, "goal_met": max(first, page_first, page_reload, worst_now) < 1.0,
    }))


if __name__ == "__main__":
    main()
