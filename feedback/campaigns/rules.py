"""How an admin picks the comparisons of a campaign: rules over prompt source, tags and split, the
models that wrote either response, and explicit ids. Every given rule applies; a list matches any
of its values."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from feedback.models import Comparison, Completion
from feedback.selectors import prompts_with_tag

MAX_RULE_VALUES = 10_000
RULE_KEYS = ("sources", "tags", "splits", "model_names", "ids")


def rules_check(rules: Any) -> dict[str, list]:
    """``rules`` cleaned: only ``RULE_KEYS``, each a sorted list without repeats (a lone string is a
    list of one), empty ones dropped.

    Raises:
        ValidationError: not an object, an unknown rule (named), a bad value, or no rule at all.
    """
    if not isinstance(rules, Mapping):
        raise ValidationError({"rules": "must be an object of sources, tags, splits, model_names, ids"})
    unknown = sorted(set(rules) - set(RULE_KEYS))
    if unknown:
        raise ValidationError({name: f"not a rule: use {', '.join(RULE_KEYS)}" for name in unknown})
    cleaned: dict[str, list] = {}
    for key in RULE_KEYS:
        values = rules.get(key)
        if values in (None, [], ""):
            continue
        if isinstance(values, str) and key != "ids":
            values = [values]
        if not isinstance(values, list) or len(values) > MAX_RULE_VALUES:
            raise ValidationError({key: f"must be a list (at most {MAX_RULE_VALUES})"})
        if key == "ids":
            if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**63 for v in values):
                raise ValidationError({"ids": "must be a list of comparison ids (positive whole numbers)"})
        elif not all(isinstance(v, str) and v.strip() for v in values):
            raise ValidationError({key: "must be a list of non-empty names"})
        elif key == "splits" and set(values) - {"train", "eval"}:
            raise ValidationError({"splits": "must be train or eval"})
        cleaned[key] = sorted({v.strip() if isinstance(v, str) else v for v in values})
    if not cleaned:
        raise ValidationError({"rules": "give at least one rule: sources, tags, splits, model_names or ids"})
    return cleaned


def comparisons_matching(*, rules: Mapping[str, list]) -> QuerySet[Comparison]:
    """Comparisons that satisfy every given rule (a list matches any of its values): prompt
    ``sources``, prompt ``tags``, prompt ``splits``, ``model_names`` (either completion), ``ids``."""
    qs = Comparison.objects.all()
    if rules.get("ids"):
        qs = qs.filter(pk__in=rules["ids"])
    if rules.get("sources"):
        qs = qs.filter(prompt__source__in=rules["sources"])
    if rules.get("splits"):
        qs = qs.filter(prompt__split__in=rules["splits"])
    if rules.get("model_names"):
        writers = Completion.objects.filter(model_name__in=rules["model_names"]).values("pk")
        qs = qs.filter(Q(completion_a__in=writers) | Q(completion_b__in=writers))
    if rules.get("tags"):
        tagged = Q()
        for tag in rules["tags"]:
            tagged |= Q(prompt__in=prompts_with_tag(tag).values("pk"))
        qs = qs.filter(tagged)
    return qs
