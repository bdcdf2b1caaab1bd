"""HTML forms for judges: shape only; ``judge_save`` and ``judging_job_create`` hold the rules."""
from __future__ import annotations

import re
from typing import Any

from django import forms

from training.forms import _ServiceErrors

from .config import JudgeOptions, JudgingConfig
from .models import JudgeKind

OPTIONS = JudgeOptions()
JOB = JudgingConfig(judge="")


class JudgeForm(_ServiceErrors, forms.Form):
    """Register a judge, or a new version of one (same name, changed settings)."""

    ERROR_FIELDS = {f"options.{name}": name for name in ("timeout_s", "max_retries", "max_concurrency", "tie_band", "label_mass_min")}

    name = forms.CharField(max_length=100, help_text="Lower-case letters, digits, _ . -; the same name with changed settings is a new version.")
    kind = forms.ChoiceField(choices=JudgeKind.choices)
    checkpoint = forms.ChoiceField(required=False, help_text="local model or reward model")
    base_url = forms.CharField(required=False, max_length=500, label="Base URL", help_text="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    model_name = forms.CharField(required=False, max_length=200, label="Endpoint model")
    api_key_env = forms.CharField(required=False, max_length=100, label="Key variable",
                                  help_text="The NAME of the worker's environment variable holding the key (never the key).")
    template = forms.ChoiceField(required=False, help_text="Prompt template (not for reward models).")
    constitution = forms.ChoiceField(required=False, help_text="Ask per principle (needs a per-principle template).")
    timeout_s = forms.FloatField(initial=OPTIONS.timeout_s, label="Timeout (s)")
    max_retries = forms.IntegerField(initial=OPTIONS.max_retries)
    max_concurrency = forms.IntegerField(initial=OPTIONS.max_concurrency)
    label_mass_min = forms.FloatField(initial=OPTIONS.label_mass_min, label="Least label probability (local)")
    tie_band = forms.FloatField(initial=OPTIONS.tie_band, label="Tie band (reward model)")

    def __init__(self, *args, checkpoints: list[str], templates: list[str], constitutions: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["checkpoint"].choices = [("", "—")] + [(n, n) for n in checkpoints]
        self.fields["template"].choices = [("", "—")] + [(t, t) for t in templates]
        self.fields["constitution"].choices = [("", "none")] + [(c, c) for c in constitutions]

    def save_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        kind = data["kind"]
        options = {k: data[k] for k in ("timeout_s", "max_retries", "max_concurrency", "label_mass_min", "tie_band")}
        return {
            "name": data["name"], "kind": kind, "checkpoint": data["checkpoint"], "base_url": data["base_url"].strip(),
            "model_name": data["model_name"].strip(), "api_key_env": data["api_key_env"].strip(),
            "template": "" if kind == JudgeKind.REWARD_MODEL else data["template"],
            "constitution": data["constitution"], "options": options,
        }


class JudgingForm(_ServiceErrors, forms.Form):
    """Launch a judging job over a campaign's open comparisons or a list of comparison ids."""

    judge = forms.ChoiceField()
    campaign_id = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Campaign (its open comparisons)")
    comparison_ids = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Or comparison ids",
                                     help_text="Numbers separated by spaces or commas (any status).")
    limit = forms.IntegerField(required=False, min_value=1, label="At most N comparisons")
    batch_size = forms.IntegerField(initial=JOB.batch_size, min_value=1, help_text="Comparisons per committed batch.")
    only_unjudged = forms.BooleanField(required=False, initial=True, label="Skip comparisons this judge version voted on")

    def __init__(self, *args, judges: list[str], campaigns: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["judge"].choices = [(j, j) for j in judges]
        self.fields["campaign_id"].choices = [("", "—")] + list(campaigns)

    def clean_comparison_ids(self) -> list[int] | None:
        text = self.cleaned_data["comparison_ids"].strip()
        if not text:
            return None
        parts = [p for p in re.split(r"[\s,]+", text) if p]
        if not all(p.isdigit() and int(p) > 0 for p in parts):
            raise forms.ValidationError("Give comparison ids: whole numbers separated by spaces or commas.")
        return [int(p) for p in parts]

    def config(self) -> dict[str, Any]:
        data = self.cleaned_data
        config = {key: data[key] for key in ("judge", "batch_size", "only_unjudged")}
        for key in ("campaign_id", "comparison_ids", "limit"):
            if data.get(key) is not None:
                config[key] = data[key]
        return config
