"""Reads of identity leaks, for admins only (patterns name models): the pattern list with how many
comparisons each flags, the latest re-scan, and a comparison's matching patterns."""
from __future__ import annotations

from django.db.models import Count, QuerySet

from .models import IdentityPattern, IdentityScan


def pattern_list(*, active: bool | None = None) -> QuerySet[IdentityPattern]:
    """Every pattern (or only active/inactive ones), global first, each annotated with
    ``flagged``: how many comparisons it matches now."""
    rows = IdentityPattern.objects.annotate(flagged=Count("matches")).select_related("created_by")
    if active is not None:
        rows = rows.filter(active=active)
    return rows.order_by("scope", "text", "id")


def scan_latest() -> IdentityScan | None:
    """The newest re-scan (queued, running or finished), or None."""
    return IdentityScan.objects.order_by("-id").first()


def comparison_identity_patterns(*, comparison) -> list[IdentityPattern]:
    """The patterns matching a response of ``comparison``, by id."""
    return list(IdentityPattern.objects.filter(matches__comparison=comparison).order_by("id"))
