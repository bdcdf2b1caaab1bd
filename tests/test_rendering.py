"""Bounded Markdown rendering: the plain path above a size, the cache, the per-text and per-page
time bounds, long delimiter runs (feedback.rendering; timings live in bench/render.py)."""
import pytest
from django.core.cache import cache

from feedback import rendering, services
from feedback.messages import MAX_COMPLETION_CHARS
from feedback.rendering import PLAIN_NOTE, markdown_page_begin, markdown_page_end, markdown_render
from tests.factories import ComparisonFactory
from tests.test_views import FixedSide, section


@pytest.fixture(autouse=True)
def _fresh_cache_and_page():
    cache.clear()
    markdown_page_end()
    yield
    cache.clear()
    markdown_page_end()


@pytest.fixture
def parses(monkeypatch):
    """Counts calls of markdown-it's render on the shared parser."""
    calls = []
    md = rendering._markdown()
    original = md.render

    def counting(text, env=None):
        calls.append(text)
        return original(text, env)

    monkeypatch.setattr(md, "render", counting)
    return calls


def test_a_text_over_the_size_limit_is_shown_as_plain_text_without_parsing(parses):
    text = "**not bold** <b>x</b>\nsecond line\n\n" + "[" * rendering.MARKDOWN_MAX_CHARS
    html = markdown_render(text)
    assert parses == []
    assert html.startswith(PLAIN_NOTE)
    assert '<p class="md-plain" dir="auto">**not bold** &lt;b&gt;x&lt;/b&gt;<br>\nsecond line</p>' in html
    assert "<strong>" not in html and "<b>" not in html
    at_limit = "**bold**" + "x" * (rendering.MARKDOWN_MAX_CHARS - 8)
    assert "<strong>bold</strong>" in markdown_render(at_limit) and len(parses) == 1


def test_the_rendered_html_is_cached_per_text(parses):
    first = markdown_render("**bold** answer")
    second = markdown_render("**bold** answer")
    assert first == second and "<strong>bold</strong>" in first
    assert parses == ["**bold** answer"]  # parsed once, then served from the cache
    markdown_render("**other** answer")
    assert len(parses) == 2


def test_a_text_that_runs_out_of_its_time_is_plain_and_cached_so(parses, monkeypatch):
    monkeypatch.setattr(rendering, "MARKDOWN_TEXT_SECONDS", 1e-9)  # the first deadline check fails
    html = markdown_render("# Title\n\n*a* [b](https://example.com)")
    assert html.startswith(PLAIN_NOTE) and "# Title" in html and "<h1>" not in html
    monkeypatch.setattr(rendering, "MARKDOWN_TEXT_SECONDS", 10.0)
    assert markdown_render("# Title\n\n*a* [b](https://example.com)") == html  # not parsed again
    assert len(parses) == 1


def test_a_spent_page_budget_shows_later_texts_plain_without_caching_them(parses):
    markdown_page_begin(0.0)
    assert markdown_render("**late**").startswith(PLAIN_NOTE)
    assert parses == []
    markdown_page_end()  # outside a page only the per-text bound applies
    assert "<strong>late</strong>" in markdown_render("**late**")


def test_each_request_starts_a_fresh_page_budget(client, annotator):
    ComparisonFactory(completion_a__text="**left**", completion_b__text="**right**")
    services.assignment_claim(annotator=annotator, rng=FixedSide("a"))
    client.force_login(annotator)
    markdown_page_begin(0.0)  # spent before the request: the request resets it
    page = client.get("/annotate/")
    assert "<strong>left</strong>" in section(page, "left-text")
    assert "<strong>right</strong>" in section(page, "right-text")


def test_long_delimiter_runs_are_literal_text_and_short_ones_still_emphasise():
    run = "*" * rendering.LONG_DELIMITER_RUN
    html = markdown_render(f"{run}a{run} and _b_ and ~~c~~")
    assert f"{run}a{run}" in html
    assert "<em>b</em>" in html and "<s>c</s>" in html
    assert "<strong>x</strong>" in markdown_render("*" * 2 + "x" + "*" * 2)


def test_a_maximal_pathological_completion_shows_as_plain_text_on_the_page(client, annotator, parses):
    nasty = ("[" * 1000 + "*a_" * 1000 + "\n") * (MAX_COMPLETION_CHARS // 4001)
    ComparisonFactory(completion_a__text=nasty, completion_b__text="fine **answer**")
    services.assignment_claim(annotator=annotator, rng=FixedSide("a"))
    client.force_login(annotator)
    page = client.get("/annotate/")
    assert page.status_code == 200
    assert "Shown as plain text" in section(page, "left-text")
    assert "<strong>answer</strong>" in section(page, "right-text")
    assert nasty not in parses


# --- HTML for the annotator page: directions, headings, images, links ------------------------------
PAGE_TEXT = (
    "# Title\n\n### Deep\n\nשלום `print(1)` עולם\n\n- פריט\n- item\n\n> quote\n\n    indented code\n\n"
    "```python\nx = 1\n```\n\n![a *pixel*](https://evil.example/p.png) ![](data:image/png;base64,AAAA)"
    " [docs](https://example.com/docs)\n\n| a |\n|---|\n| 1 |\n"
)


def test_no_image_is_ever_loaded_an_image_is_a_marked_link():
    html = markdown_render(PAGE_TEXT)
    assert "<img" not in html and "src=" not in html
    assert ('<a class="md-image" href="https://evil.example/p.png" target="_blank" rel="noopener noreferrer nofollow">'
            "[image: <bdi>a pixel</bdi>] https://evil.example/p.png</a>") in html
    assert '<span class="md-image">[image]</span>' in html and "data:image" not in html


def test_code_is_left_to_right_and_blocks_take_their_own_direction():
    html = markdown_render(PAGE_TEXT)
    assert '<p dir="auto">שלום <code dir="ltr">print(1)</code> עולם</p>' in html
    assert '<pre dir="ltr"><code>indented code' in html
    assert '<pre dir="ltr"><code class="language-python">x = 1' in html
    assert '<ul>\n<li dir="auto">פריט</li>\n<li dir="auto">item</li>' in html
    assert '<blockquote>\n<p dir="auto">quote</p>' in html and '<td dir="auto">1</td>' in html and '<th dir="auto">a</th>' in html


def test_headings_are_demoted_below_the_page_labels_and_classed():
    html = markdown_render(PAGE_TEXT)
    assert '<h3 class="md-heading" dir="auto">Title</h3>' in html
    assert '<h5 class="md-heading" dir="auto">Deep</h5>' in html
    assert "<h1" not in html and "<h2" not in html


def test_links_open_in_a_new_tab():
    html = markdown_render(PAGE_TEXT)
    assert '<a href="https://example.com/docs" target="_blank" rel="noopener noreferrer nofollow">docs</a>' in html
    assert html.count("<a ") == html.count('target="_blank"') == 2
