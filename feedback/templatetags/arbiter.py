"""Template filters for Arbiter pages."""
from django import template
from django.utils.safestring import mark_safe

from feedback.rendering import markdown_render

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    """Untrusted Markdown to HTML with all embedded HTML escaped (see ``feedback.rendering``)."""
    return mark_safe(markdown_render(text or ""))  # noqa: S308 - escaped by markdown-it (html=False)


@register.filter
def get_item(mapping, key):
    """``mapping[key]``, or "" when it is missing (``{{ kept|get_item:name }}``)."""
    try:
        return mapping.get(key, "")
    except AttributeError:
        return ""
