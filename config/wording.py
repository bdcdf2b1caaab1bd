"""Words shared by every app's messages and command output."""
from __future__ import annotations

from django.utils.translation import ngettext


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """``count`` followed by the noun that agrees with it: ``counted(1, "row")`` is ``"1 row"``,
    ``counted(0, "row")`` and ``counted(2, "row")`` are ``"0 rows"`` and ``"2 rows"`` (``plural``
    when the noun does not just take an s). Python's side of Django's ``pluralize`` filter."""
    return f"{count} {ngettext(singular, plural or f'{singular}s', count)}"
