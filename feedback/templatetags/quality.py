"""Template filters of the quality dashboard: stored figures as text, undefined ones said as such."""
from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def figure(value: Any, digits: int = 2) -> str:
    """A stored figure (``{"value", "defined", "reason"}``) as text: the value to ``digits`` places,
    or "undefined (reason)"; never 0 or 1 for an undefined figure."""
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    if not value.get("defined") or value.get("value") is None:
        reason = value.get("reason")
        return f"undefined ({reason})" if reason else "undefined"
    return f"{value['value']:.{int(digits)}f}"


@register.filter
def interval(value: Any, digits: int = 2) -> str:
    """A figure's interval as "[low, high]", or "" when it has none."""
    if not isinstance(value, dict) or not value.get("defined") or value.get("low") is None or value.get("high") is None:
        return ""
    return f"[{value['low']:.{int(digits)}f}, {value['high']:.{int(digits)}f}]"


@register.filter
def seconds(value: Any) -> str:
    """A stored ms figure as seconds with one decimal ("4.2 s"), or "undefined (reason)"."""
    if isinstance(value, dict) and value.get("defined") and value.get("value") is not None:
        return f"{value['value'] / 1000:.1f} s"
    return figure(value)


@register.filter
def pvalue(value: Any) -> str:
    """A p-value: three significant digits, "< 0.001" below that."""
    if value is None:
        return ""
    return "< 0.001" if value < 0.001 else f"{value:.3g}"
