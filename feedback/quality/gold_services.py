"""Writes for gold items: an admin sets a comparison's gold answer, and lifts an annotator's pause."""
from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from feedback.models import Campaign, CampaignAnnotatorPause, Choice, Comparison, ComparisonStatus, Vote


def comparison_gold_set(*, comparison: Comparison, gold_choice: str) -> Comparison:
    """Set (``a``, ``b``, ``tie``, ``both_bad``) or clear (``""``) the comparison's gold answer.

    Votes are scored against it when read, so past votes are re-scored. Setting an answer on a
    complete comparison reopens it (a gold item stays open to be served as a check in a campaign
    with a ``gold_rate``); a retired one stays retired.
    Raises ValidationError ``{"gold_choice": message}`` for any other value."""
    if not isinstance(gold_choice, str) or gold_choice not in ("", *Choice.values):
        raise ValidationError({"gold_choice": f"must be empty or one of {', '.join(Choice.values)}"})
    with transaction.atomic():
        comparison = Comparison.objects.select_for_update().get(pk=comparison.pk)
        comparison.gold_choice = gold_choice
        fields = ["gold_choice"]
        if gold_choice and comparison.status == ComparisonStatus.COMPLETE:
            comparison.status = ComparisonStatus.OPEN
            fields.append("status")
        comparison.save(update_fields=fields)
    return comparison


def pause_lift(
    *, campaign: Campaign, annotator=None, username: str = "", lifted_by=None, now: datetime | None = None
) -> int:
    """Lift the open gold pause of ``annotator`` (or the user named ``username``) in ``campaign``:
    they are served its comparisons again. Their gold record stays; a later gold vote below the
    threshold pauses them again. Returns how many pauses were lifted (0 or 1).
    Raises ValidationError ``{"username": ...}`` for an unknown username."""
    if annotator is None:
        annotator = get_user_model().objects.filter(username=username).first()
        if annotator is None:
            raise ValidationError({"username": f"no such user: {username}"})
    return CampaignAnnotatorPause.objects.filter(
        campaign=campaign, annotator=annotator, lifted_at__isnull=True
    ).update(lifted_at=now or timezone.now(), lifted_by=lifted_by)


def gold_from_imported_votes(*, campaign: Campaign, source: str) -> int:
    """Make the campaign's comparisons that carry an imported human preference gold items: the
    answer is the imported vote's choice (``Vote.source == source``, e.g. ``"hh-rlhf"``; never
    ``"annotator"``). The preference files (``feedback.imports``) have no gold column, so this runs
    after an import and a move into the campaign. A comparison with several imported votes of that
    source that disagree, or one that already has a gold answer, is left as it is; a complete one
    is reopened. Returns how many comparisons became gold items.
    Raises ValidationError ``{"source": ...}`` for ``"annotator"`` or an empty source."""
    if not isinstance(source, str) or not source or source == "annotator":
        raise ValidationError({"source": "name an import source (the annotators' own votes are not gold answers)"})
    choices: dict[int, set[str]] = {}
    rows = Vote.objects.filter(comparison__campaign=campaign, comparison__gold_choice="", source=source,
                               origin="human").exclude(  # an AI judge's answer is never a gold answer
        comparison__status=ComparisonStatus.RETIRED
    ).values_list("comparison_id", "choice")
    for comparison_id, choice in rows:
        choices.setdefault(comparison_id, set()).add(choice)
    agreed = {pk: next(iter(found)) for pk, found in choices.items() if len(found) == 1}
    with transaction.atomic():
        for choice in set(agreed.values()):
            ids = [pk for pk, value in agreed.items() if value == choice]
            Comparison.objects.filter(pk__in=ids, gold_choice="").update(gold_choice=choice)
        Comparison.objects.filter(pk__in=list(agreed), status=ComparisonStatus.COMPLETE).update(status=ComparisonStatus.OPEN)
    return len(agreed)
