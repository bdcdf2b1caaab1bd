"""Template filters for the training pages."""
from __future__ import annotations

import json

from django import template

register = template.Library()


@register.filter
def param_count(value) -> str:
    """A parameter count, short: 134515008 -> "134.5M", 7241732096 -> "7.24B"; "—" when unknown."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return "—"
    if value >= 1_000_000_000:
        return f"{value / 1e9:.2f}B"
    if value >= 1_000_000:
        return f"{value / 1e6:.1f}M"
    if value >= 1_000:
        return f"{value / 1e3:.1f}K"
    return str(value)


@register.filter
def yes_no_unknown(value) -> str:
    """``True`` -> "yes", ``False`` -> "no", anything else -> "—" (metadata that was never recorded)."""
    return {True: "yes", False: "no"}.get(value, "—") if isinstance(value, bool) else "—"


@register.filter
def escaped(value) -> str:
    """A string with its control characters written as escapes (``"\\n\\nHuman:"`` shows as
    ``\\n\\nHuman:``), as in JSON: a stop string that starts with blank lines stays visible."""
    return json.dumps(str(value), ensure_ascii=False)[1:-1]
