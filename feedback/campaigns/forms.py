"""The campaign pages' forms: shapes only; ``feedback.campaigns.services`` checks the rest and its
field messages come back onto these forms (``add_service_errors``)."""
from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from .models import BUILTIN_ASPECTS, Campaign, RationaleMode, aspect_label_default

_LIST_SEPARATORS = re.compile(r"[,\s]+")
GOLD_FIELDS = ("gold_rate", "gold_feedback", "gold_min_accuracy", "gold_min_votes")


def names_split(text: str) -> list[str]:
    """``"a, b c"`` -> ``["a", "b", "c"]`` (commas or whitespace)."""
    return [name for name in _LIST_SEPARATORS.split(text or "") if name]


class ServiceErrorsMixin:
    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Put a service's ``{field: [messages]}`` next to the form's fields (others above the form)."""
        for name, messages in errors.items():
            for message in messages:
                if name in self.fields:
                    self.add_error(name, message)
                else:
                    self.add_error(None, message if name in ("__all__", "non_field_errors") else f"{name}: {message}")


class CampaignForm(ServiceErrorsMixin, forms.Form):
    """A campaign's settings. The three aspect questions are each a tick box and the label the
    annotator reads; ticked ones are asked, in this order."""

    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=80, required=False, help_text="its URL: /annotate/<slug>/; empty: from the name")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=10_000)
    priority = forms.IntegerField(initial=0, help_text="higher is served first")
    votes_required = forms.IntegerField(initial=1, min_value=1, max_value=100, label="Votes per comparison")
    target_votes = forms.IntegerField(required=False, min_value=1, label="Target votes",
                                      help_text="empty: every comparison's votes")
    deadline = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    ask_strength = forms.BooleanField(required=False, initial=True, label="Ask how strong the preference is")
    rationale = forms.ChoiceField(choices=RationaleMode.choices, initial=RationaleMode.OPTIONAL, label="Rationale")
    ask_demonstration = forms.BooleanField(required=False, initial=True, label='Show "write a better response"')
    show_quality_to_annotators = forms.BooleanField(
        required=False, initial=False, label="Show annotators their agreement with the consensus")
    # Left empty, gold_rate, gold_min_votes and fast_vote_ms keep their current values (0, 10 and 2000 on a new campaign).
    gold_rate = forms.FloatField(required=False, initial=0, min_value=0, max_value=1, label="Gold rate",
                                 help_text="share of served items that are gold (check) items, 0-1")
    gold_feedback = forms.BooleanField(required=False, initial=False, label="Tell annotators how they did on gold items")
    gold_min_accuracy = forms.FloatField(required=False, min_value=0, max_value=1, label="Minimum gold accuracy",
                                         help_text="0-1; below it an annotator is paused; empty: never")
    gold_min_votes = forms.IntegerField(required=False, initial=10, min_value=1, max_value=10_000,
                                        label="Gold votes before pausing")
    fast_vote_ms = forms.IntegerField(required=False, initial=2000, min_value=0, max_value=600_000,
                                      label="Too-fast floor (ms)",
                                      help_text="votes faster than this many ms on the item are flagged as too fast")
    ai_votes_count = forms.BooleanField(
        required=False, initial=False, label="AI judges' votes count toward votes per comparison",
        help_text="off: AI votes are kept and measured, but only people's votes fill a comparison")
    annotators = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"), to_field_name="username",
        required=False, widget=forms.SelectMultiple(attrs={"size": 6}), help_text="people in the pool by name",
    )
    groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"), to_field_name="name", required=False,
        widget=forms.CheckboxSelectMultiple, help_text="everyone in a ticked group is in the pool",
    )

    def __init__(self, *args, campaign: Campaign | None = None, **kwargs):
        if campaign is not None and not args and "data" not in kwargs:
            kwargs["initial"] = self.initial_of(campaign)
        super().__init__(*args, **kwargs)
        for name in BUILTIN_ASPECTS:
            self.fields[f"ask_{name}"] = forms.BooleanField(required=False, label=f"Ask about {name}", initial=True)
            self.fields[f"label_{name}"] = forms.CharField(
                required=False, max_length=200, label=f"Question for {name}", initial=aspect_label_default(name)
            )

    @staticmethod
    def initial_of(campaign: Campaign) -> dict[str, Any]:
        initial = {name: getattr(campaign, name) for name in (
            "name", "slug", "description", "priority", "votes_required", "target_votes", "deadline", "ask_strength",
            "rationale", "ask_demonstration", "show_quality_to_annotators", "fast_vote_ms", "ai_votes_count", *GOLD_FIELDS)}
        initial["annotators"] = list(campaign.annotators.values_list("username", flat=True))
        initial["groups"] = list(campaign.groups.values_list("name", flat=True))
        asked = {aspect["name"]: aspect["label"] for aspect in campaign.aspects}
        for name in BUILTIN_ASPECTS:
            initial[f"ask_{name}"] = name in asked
            initial[f"label_{name}"] = asked.get(name, aspect_label_default(name))
        return initial

    def aspect_fields(self):
        return [(self[f"ask_{name}"], self[f"label_{name}"]) for name in BUILTIN_ASPECTS]

    def values(self) -> dict[str, Any]:
        """The cleaned form as ``campaign_create``/``campaign_update`` values."""
        data = self.cleaned_data
        values = {name: data[name] for name in (
            "name", "slug", "description", "priority", "votes_required", "target_votes", "deadline", "ask_strength",
            "rationale", "ask_demonstration", "show_quality_to_annotators", "fast_vote_ms", "ai_votes_count", *GOLD_FIELDS)}
        for name in ("gold_rate", "gold_min_votes", "fast_vote_ms"):
            if values[name] is None:
                del values[name]
        values["annotators"] = [user.username for user in data["annotators"]]
        values["groups"] = [group.name for group in data["groups"]]
        values["aspects"] = [
            {"name": name, "label": data[f"label_{name}"] or aspect_label_default(name)}
            for name in BUILTIN_ASPECTS if data[f"ask_{name}"]
        ]
        return values


class GuidelinesForm(ServiceErrorsMixin, forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 14}), max_length=100_000, strip=False,
                           label="Guidelines (Markdown)", required=False)


class RulesForm(ServiceErrorsMixin, forms.Form):
    """Which comparisons to move in: every filled rule applies; a list matches any of its names."""

    sources = forms.CharField(required=False, max_length=10_000, help_text="prompt sources, comma-separated")
    tags = forms.CharField(required=False, max_length=10_000, help_text="prompts with any of these tags")
    splits = forms.MultipleChoiceField(choices=[("train", "train"), ("eval", "eval")], required=False,
                                       widget=forms.CheckboxSelectMultiple)
    model_names = forms.CharField(required=False, max_length=10_000, label="Model names",
                                  help_text="either response written by one of these")
    ids = forms.CharField(required=False, max_length=100_000, label="Comparison ids", help_text="comma-separated")

    def clean_ids(self) -> list[int]:
        ids = []
        for text in names_split(self.cleaned_data["ids"]):
            if not text.isdigit():
                raise forms.ValidationError(f"{text!r} is not a comparison id")
            ids.append(int(text))
        return ids

    def rules(self) -> dict[str, list]:
        data = self.cleaned_data
        rules = {name: names_split(data[name]) for name in ("sources", "tags", "model_names")}
        rules["splits"], rules["ids"] = list(data["splits"]), data["ids"]
        return {name: value for name, value in rules.items() if value}
