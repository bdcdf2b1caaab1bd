"""Template filters for Arbiter pages."""
from django import template
from django.utils.safestring import mark_safe

from feedback.rendering import markdown_render

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    """Untrusted Markdown to HTML with all embedded HTML escaped (see ``feedback.rendering``)."""
    return mark_safe(markdown_render(text or ""))  # noqa: S308 - escaped by markdown-it (html=False)


# Keys of the aspect rows on the annotator page, by row (first aspect shown = row 1): left, right,
# same. Three rows of the right hand's keys, top to bottom, so row n on screen is row n on the
# keyboard; no a/b (they would read as the stored sides) and none of the vote, skip or undo keys.
ASPECT_KEYS = (("i", "o", "p"), ("j", "k", "l"), ("m", ",", "."))


@register.filter
def aspect_keys(row: int) -> tuple[str, ...]:
    """The (left, right, same) keys of aspect row ``row`` (1-based), or ``()`` past the last keyed row."""
    try:
        return ASPECT_KEYS[int(row) - 1] if int(row) >= 1 else ()
    except (IndexError, TypeError, ValueError):
        return ()


@register.filter
def text_measure(text: str) -> str:
    """A response's length as a reader counts it: ``"1,234 characters · 210 words"`` (the Markdown
    source; no tokenizer, so it means the same for every model)."""
    text = text or ""
    chars, words = len(text), len(text.split())
    return f"{chars:,} character{'s' if chars != 1 else ''} · {words:,} word{'s' if words != 1 else ''}"

@register.filter
def get_item(mapping, key):
    """``mapping[key]``, or "" when it is missing (``{{ kept|get_item:name }}``)."""
    try:
        return mapping.get(key, "")
    except AttributeError:
        return ""
