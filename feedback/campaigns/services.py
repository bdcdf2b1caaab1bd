"""Writes to campaigns: create, edit, guidelines, comparisons by rules, and the status changes.

Every function validates, writes inside one transaction and returns what it wrote. Keyword-only
arguments; errors are ``django.core.exceptions.ValidationError`` with field -> messages.

Status changes: draft -> active (``campaign_activate``, refused while the pool or the comparison
list is empty), active <-> paused, and any of them -> closed (``campaign_close``, final: it releases
the live leases on the campaign's comparisons). The Default campaign may be paused, never closed:
comparisons created without a campaign land in it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, Value, When
from django.utils import timezone
from django.utils.text import slugify

from feedback.ai_votes import is_judge_username
from feedback.models import Assignment, AssignmentStatus, Comparison, ComparisonStatus

from .models import (
    BUILTIN_ASPECTS,
    DEFAULT_CAMPAIGN_SLUG,
    Campaign,
    CampaignStatus,
    GuidelineVersion,
    RationaleMode,
    aspect_label_default,
)
from .rules import comparisons_matching, rules_check
from .pool import RESERVED_SLUGS
from .selectors import campaign_activation_problems, campaign_pool_size

MAX_VOTES_REQUIRED = 100
MAX_PRIORITY = 1_000_000
MAX_GUIDELINES_CHARS = 100_000
MAX_LABEL_CHARS = 200
EDITABLE_FIELDS = (
    "name", "slug", "description", "priority", "votes_required", "target_votes", "deadline", "ask_strength",
    "aspects", "rationale", "ask_demonstration", "show_quality_to_annotators", "annotators", "groups",
    "gold_rate", "gold_feedback", "gold_min_accuracy", "gold_min_votes", "fast_vote_ms", "ai_votes_count",
)
MAX_GOLD_MIN_VOTES = 10_000
MAX_FAST_VOTE_MS = 600_000
GUIDELINE_SAVE_TRIES = 5


# --- create and edit --------------------------------------------------------------------------------
def _int_check(errors: dict, name: str, value: Any, low: int, high: int, *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors[name] = f"must be a whole number from {low} to {high}" + (" (or empty)" if nullable else "")


def _share_check(errors: dict, name: str, value: Any, *, nullable: bool = False) -> bool:
    """A share from 0 to 1 (an int or float, not a bool); the problem is added to ``errors``."""
    if value is None and nullable:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        errors[name] = "must be a number from 0 to 1" + (" (or empty)" if nullable else "")
        return False
    return True


def _gold_fields_apply(campaign: Campaign, values: Mapping[str, Any], errors: dict) -> None:
    """The gold settings: ``gold_rate`` 0-1, ``gold_feedback`` true/false, ``gold_min_accuracy``
    0-1 or None (never pause), ``gold_min_votes`` 1-MAX_GOLD_MIN_VOTES."""
    for name, nullable in (("gold_rate", False), ("gold_min_accuracy", True)):
        if name in values and _share_check(errors, name, values[name], nullable=nullable):
            setattr(campaign, name, None if values[name] is None else float(values[name]))
    if "gold_feedback" in values:
        if not isinstance(values["gold_feedback"], bool):
            errors["gold_feedback"] = "must be true or false"
        else:
            campaign.gold_feedback = values["gold_feedback"]
    if "gold_min_votes" in values:
        _int_check(errors, "gold_min_votes", values["gold_min_votes"], 1, MAX_GOLD_MIN_VOTES)
        if "gold_min_votes" not in errors:
            campaign.gold_min_votes = values["gold_min_votes"]


def _deadline_moved(before: datetime | None, after: datetime) -> bool:
    """A form gives minutes: a deadline within a minute of the stored one is the same deadline."""
    return before is None or abs((after - before).total_seconds()) >= 60


def _aspects_check(aspects: Any) -> list[dict[str, str]]:
    """``[{"name": one of BUILTIN_ASPECTS, "label": text}, ...]``, each name once; a missing label is the name."""
    if not isinstance(aspects, list):
        raise ValidationError({"aspects": "must be a list of {name, label}"})
    cleaned, seen = [], set()
    for aspect in aspects:
        if isinstance(aspect, str):
            aspect = {"name": aspect}
        if not isinstance(aspect, Mapping) or set(aspect) - {"name", "label"}:
            raise ValidationError({"aspects": "each aspect is {name, label}"})
        name, label = aspect.get("name"), aspect.get("label") or aspect_label_default(str(aspect.get("name", "")))
        if name not in BUILTIN_ASPECTS:
            raise ValidationError({"aspects": f"{name!r} is not an aspect: use {', '.join(BUILTIN_ASPECTS)}"})
        if name in seen:
            raise ValidationError({"aspects": f"{name} is listed twice"})
        if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL_CHARS:
            raise ValidationError({"aspects": f"the label of {name} must be 1-{MAX_LABEL_CHARS} characters"})
        seen.add(name)
        cleaned.append({"name": name, "label": label.strip()})
    return cleaned


def _users_resolve(usernames: Iterable[str]) -> list:
    names = sorted({str(name).strip() for name in usernames if str(name).strip()})
    judges = sorted(name for name in names if is_judge_username(name))
    if judges:  # an AI judge's system user never joins a pool (issue 16)
        raise ValidationError({"annotators": f"an AI judge is not an annotator: {', '.join(judges)}"})
    users = list(get_user_model().objects.filter(username__in=names))
    missing = sorted(set(names) - {user.username for user in users})
    if missing:
        raise ValidationError({"annotators": f"no such user: {', '.join(missing)}"})
    return users


def _groups_resolve(names: Iterable[str]) -> list[Group]:
    names = sorted({str(name).strip() for name in names if str(name).strip()})
    groups = list(Group.objects.filter(name__in=names))
    missing = sorted(set(names) - {group.name for group in groups})
    if missing:
        raise ValidationError({"groups": f"no such group: {', '.join(missing)}"})
    return groups


def _pool_resolve(values: Mapping[str, Any], errors: dict[str, Any]) -> tuple[list | None, list | None]:
    """The users and groups named by ``values["annotators"]`` and ``values["groups"]`` (None when
    not given); problems are added to ``errors``."""
    found: dict[str, list | None] = {"annotators": None, "groups": None}
    for name, resolve in (("annotators", _users_resolve), ("groups", _groups_resolve)):
        if name not in values:
            continue
        names = values[name]
        if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
            errors[name] = "must be a list of names"
            continue
        try:
            found[name] = resolve(names)
        except ValidationError as error:
            errors.update(error.message_dict)
    return found["annotators"], found["groups"]


def _fields_apply(campaign: Campaign, values: Mapping[str, Any]) -> tuple[list | None, list | None]:
    """Check ``values`` and set them on ``campaign`` (unsaved); returns the pool (users, groups) to
    set after saving, None for a part not given. Raises ValidationError with every field's problem."""
    unknown = sorted(set(values) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError({name: "not a campaign setting" for name in unknown})
    errors: dict[str, Any] = {}
    if "name" in values:
        name = values["name"]
        if not isinstance(name, str) or not name.strip():
            errors["name"] = "a campaign needs a name"
        else:
            campaign.name = name.strip()
    if "slug" in values or not campaign.slug:
        slug = values.get("slug") or slugify(campaign.name or "")[:80]
        if not isinstance(slug, str) or not slug or slugify(slug) != slug:
            errors["slug"] = "letters, digits, hyphens and underscores only (it is the campaign's URL)"
        elif campaign.slug == DEFAULT_CAMPAIGN_SLUG and slug != DEFAULT_CAMPAIGN_SLUG:
            errors["slug"] = "the Default campaign keeps its slug"
        elif slug in RESERVED_SLUGS:
            errors["slug"] = (
                f"'{slug}' is taken by an annotator page (/annotate/{slug}/); choose another"
                + ("" if "slug" in values else " (it was made from the name: give a slug)")
            )
        else:
            campaign.slug = slug
    for name, low, high, nullable in (
        ("priority", -MAX_PRIORITY, MAX_PRIORITY, False),
        ("votes_required", 1, MAX_VOTES_REQUIRED, False),
        ("target_votes", 1, 10**9, True),
        ("fast_vote_ms", 0, MAX_FAST_VOTE_MS, False),
    ):
        if name in values:
            _int_check(errors, name, values[name], low, high, nullable=nullable)
            setattr(campaign, name, values[name])
    if "deadline" in values:
        deadline = values["deadline"]
        if deadline is not None and not isinstance(deadline, datetime):
            errors["deadline"] = "must be a date and time (or empty)"
        elif deadline is not None and _deadline_moved(campaign.deadline, deadline) and deadline <= timezone.now():
            errors["deadline"] = "is in the past"
        else:
            campaign.deadline = deadline
    if "description" in values:
        if not isinstance(values["description"], str):
            errors["description"] = "must be text"
        else:
            campaign.description = values["description"]
    _gold_fields_apply(campaign, values, errors)
    for name in ("ask_strength", "ask_demonstration", "show_quality_to_annotators", "ai_votes_count"):
        if name in values:
            if not isinstance(values[name], bool):
                errors[name] = "must be true or false"
            else:
                setattr(campaign, name, values[name])
    if "rationale" in values:
        if values["rationale"] not in RationaleMode.values:
            errors["rationale"] = f"must be one of {', '.join(RationaleMode.values)}"
        else:
            campaign.rationale = values["rationale"]
    if "aspects" in values:
        try:
            campaign.aspects = _aspects_check(values["aspects"])
        except ValidationError as error:
            errors.update(error.message_dict)
    users, groups = _pool_resolve(values, errors)
    if not errors:
        try:
            campaign.full_clean(exclude=["rules", "aspects", "annotators", "groups", "created_by"])
        except ValidationError as error:
            errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    return users, groups


def campaign_create(*, values: Mapping[str, Any], created_by=None) -> Campaign:
    """Create a draft campaign from ``values`` (any of ``EDITABLE_FIELDS``; ``name`` is required,
    ``slug`` defaults to the name slugified; ``annotators`` are usernames, ``groups`` group names).

    Raises:
        ValidationError: ``{field: [messages]}`` for every bad or unknown field (a taken name or
        slug, votes_required outside 1-100, a deadline in the past, an unknown aspect, user or group).
    """
    campaign = Campaign(created_by=created_by, status=CampaignStatus.DRAFT)
    if "name" not in values:
        raise ValidationError({"name": "a campaign needs a name"})
    users, groups = _fields_apply(campaign, values)
    with transaction.atomic():
        campaign.save()
        if users is not None:
            campaign.annotators.set(users)
        if groups is not None:
            campaign.groups.set(groups)
    return campaign


def campaign_update(*, campaign: Campaign, values: Mapping[str, Any]) -> Campaign:
    """Change the given settings of ``campaign`` (the others stay); its status changes only through
    activate, pause and close. A new ``votes_required`` applies to comparisons added from now on.

    An active campaign keeps a non-empty pool (as activating needs one): emptying it is refused;
    pause the campaign first.

    Raises:
        ValidationError: as ``campaign_create``, or ``{"annotators": ...}`` when the change would
            leave an active campaign with nobody in its pool; nothing is saved then.
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        users, groups = _fields_apply(campaign, values)
        campaign.save()
        if users is not None:
            campaign.annotators.set(users)
        if groups is not None:
            campaign.groups.set(groups)
        pool_changed = users is not None or groups is not None
        if pool_changed and campaign.status == CampaignStatus.ACTIVE and campaign_pool_size(campaign=campaign) == 0:
            raise ValidationError({"annotators": "an active campaign needs someone in its pool; pause it before emptying the pool"})
    return campaign


# --- guidelines ---------------------------------------------------------------------------------
def guidelines_edit(*, campaign: Campaign, text: str, created_by=None) -> GuidelineVersion:
    """Add a guidelines version (Markdown ``text``) numbered one above the campaign's latest.

    No version is ever changed. Two admins saving at once both keep theirs: the campaign row is
    locked while the number is chosen (PostgreSQL; SQLite's IMMEDIATE transactions serialise the
    writes), and a save that still meets the unique (campaign, number) constraint tries again.
    Text equal to the latest version's adds nothing and returns that version.

    Raises:
        ValidationError: ``{"text": ...}`` for empty text or text over ``MAX_GUIDELINES_CHARS``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationError({"text": "the guidelines are empty"})
    if len(text) > MAX_GUIDELINES_CHARS:
        raise ValidationError({"text": f"at most {MAX_GUIDELINES_CHARS} characters"})
    text = text.replace("\r\n", "\n")
    for attempt in range(GUIDELINE_SAVE_TRIES):
        try:
            with transaction.atomic():
                Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
                latest = GuidelineVersion.objects.filter(campaign=campaign).order_by("-number").first()
                if latest is not None and latest.text == text:
                    return latest
                return GuidelineVersion.objects.create(
                    campaign=campaign, number=(latest.number if latest else 0) + 1, text=text, created_by=created_by
                )
        except IntegrityError:
            if attempt == GUIDELINE_SAVE_TRIES - 1:
                raise
    raise AssertionError("unreachable")


# --- comparisons by rules -----------------------------------------------------------------------
def campaign_comparisons_add(*, campaign: Campaign, rules: Mapping[str, Any]) -> int:
    """Move every comparison matching ``rules`` (``{"sources", "tags", "splits", "model_names",
    "ids"}``: lists; all given rules apply) into ``campaign`` and give it the campaign's
    ``votes_required`` (a comparison then open or complete by its vote count; retired stays retired).
    The rules are recorded as ``campaign.rules``. Returns how many comparisons moved in.

    Raises:
        ValidationError: no rule or an unknown one, a bad value, ids that do not exist (named),
        or a closed campaign.
    """
    cleaned = rules_check(rules)
    if cleaned.get("ids"):
        found = set(Comparison.objects.filter(pk__in=cleaned["ids"]).values_list("pk", flat=True))
        missing = [str(pk) for pk in cleaned["ids"] if pk not in found]
        if missing:
            raise ValidationError({"ids": f"no such comparison: {', '.join(missing)}"})
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status == CampaignStatus.CLOSED:
            raise ValidationError({"status": "the campaign is closed: it takes no more comparisons"})
        required = campaign.votes_required
        moved = (
            comparisons_matching(rules=cleaned)
            .exclude(campaign=campaign)
            .update(
                campaign=campaign,
                votes_required=required,
                status=Case(
                    When(status=ComparisonStatus.RETIRED, then=Value(ComparisonStatus.RETIRED)),
                    When(vote_count__gte=required, then=Value(ComparisonStatus.COMPLETE)),
                    default=Value(ComparisonStatus.OPEN),
                ),
            )
        )
        campaign.rules = cleaned
        campaign.save(update_fields=["rules", "updated_at"])
    return moved


# --- status ---------------------------------------------------------------------------------------
def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def campaign_activate(*, campaign: Campaign) -> Campaign:
    """Open a draft or paused campaign to its pool.

    Raises:
        ValidationError: ``{"status": ...}`` for a closed campaign, ``{"pool": ...}`` when no user
        is in the pool (no annotators, and no group or only empty ones), ``{"comparisons": ...}``
        when it has none; every reason at once (``selectors.campaign_activation_problems``).
    """
    with transaction.atomic():
        campaign = _locked(campaign)
        problems = campaign_activation_problems(campaign=campaign)
        if problems:
            raise ValidationError(problems)
        campaign.status = CampaignStatus.ACTIVE
        campaign.save(update_fields=["status", "updated_at"])
    return campaign


def campaign_pause(*, campaign: Campaign) -> Campaign:
    """Stop serving an active campaign's comparisons (votes on items already on screen still count).

    Raises:
        ValidationError: ``{"status": ...}`` when the campaign is not active.
    """
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.status != CampaignStatus.ACTIVE:
            raise ValidationError({"status": f"only an active campaign can be paused; this one is {campaign.status}"})
        campaign.status = CampaignStatus.PAUSED
        campaign.save(update_fields=["status", "updated_at"])
    return campaign


def campaign_close(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Close the campaign for good and release every live lease on its comparisons (their
    ``expires_at`` becomes ``now``, so they hold no slot). Returns how many leases were released.

    Raises:
        ValidationError: ``{"status": ...}`` when it is closed already or is the Default campaign.
    """
    now = now or timezone.now()
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.status == CampaignStatus.CLOSED:
            raise ValidationError({"status": "the campaign is closed already"})
        if campaign.slug == DEFAULT_CAMPAIGN_SLUG:
            raise ValidationError({"status": "the Default campaign cannot be closed: new comparisons land in it (pause it instead)"})
        campaign.status = CampaignStatus.CLOSED
        campaign.save(update_fields=["status", "updated_at"])
        # expires_at must stay after leased_at (a check constraint): a lease is always stamped before now.
        released = Assignment.objects.filter(
            comparison__campaign=campaign, status=AssignmentStatus.LEASED, expires_at__gt=now, leased_at__lt=now
        ).update(expires_at=now)
    return released
