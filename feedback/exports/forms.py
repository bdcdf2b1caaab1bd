"""The export form of the admin page: shapes only; ``services.export_create`` checks the rest."""
from __future__ import annotations

import re
from typing import Any

from django import forms

from .filters import GOLD, SPLITS
from .formats import FILE_TYPES, FORMATS

_LIST_SEPARATORS = re.compile(r"[,\s]+")


def _names(text: str) -> list[str]:
    return [name for name in _LIST_SEPARATORS.split(text or "") if name]


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(name, f.label) for name, f in FORMATS.items()], initial="trl-preference")
    file_type = forms.ChoiceField(
        choices=[(t, t) for t in FILE_TYPES], initial="jsonl", label="File type",
        help_text="csv: raw votes only; hf-dataset: a datasets folder (save_to_disk), downloaded as a zip",
    )
    date_from = forms.DateField(required=False, label="Votes from", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="Votes to (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))
    annotators = forms.CharField(required=False, max_length=10_000, help_text="usernames, comma-separated; empty: everyone")
    exclude_annotators = forms.CharField(required=False, max_length=10_000, label="Exclude annotators")
    model_names = forms.CharField(required=False, max_length=10_000, label="Model names", help_text="either side of a comparison")
    tags = forms.CharField(required=False, max_length=10_000, help_text="prompts with any of these tags")
    splits = forms.MultipleChoiceField(
        choices=[(s, s) for s in SPLITS], initial=list(SPLITS), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="none ticked: both",
    )
    min_agreement = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Minimum agreement",
        help_text="0-1: share of a comparison's votes giving the most common choice",
    )
    gold = forms.ChoiceField(choices=[(g, f"gold items: {g}") for g in GOLD], initial="include", label="Gold items")
    include_flagged = forms.BooleanField(
        required=False, label="Include flagged imports",
        help_text="comparisons imported with flags (a missing margin, a truncated-looking or early-diverging pair) "
        "are left out and counted unless ticked",
    )
    include_eval_set_prompts = forms.BooleanField(
        required=False, label="Keep eval-set prompts (analysis exports)",
        help_text="comparisons whose prompt is in an eval set (or a near-duplicate of one) are left out of every "
        "format with texts and counted, so no one trains on held-out queries, unless ticked; raw votes keep them",
    )
    votes = forms.ChoiceField(
        choices=[("human", "people's votes only"), ("ai", "AI judges' votes only"), ("both", "both, AI votes weighted")],
        initial="human", required=False, label="Votes from",
    )
    ai_weight = forms.FloatField(
        required=False, label="Weight of an AI vote (with both)", help_text="0-1; a person's vote weighs 1; empty: 1",
    )
    plain_text = forms.BooleanField(required=False, label="Plain text instead of messages (TRL formats)")
    no_margin = forms.BooleanField(required=False, label="No margin column (TRL preference)")
    real_usernames = forms.BooleanField(
        required=False, label="Real usernames instead of pseudonyms (raw votes, arena)",
    )

    policy_override = forms.CharField(
        required=False, max_length=5000, label="Policy override", widget=forms.Textarea(attrs={"rows": 2}),
        help_text="only to export data its data-use policy refuses: why (20+ characters); recorded in the audit trail",
    )

    OPTION_FIELDS = {"plain_text": "conversational", "no_margin": "include_margin", "real_usernames": "real_usernames",
                     "include_eval_set_prompts": "include_eval_set_prompts"}

    def request(self) -> dict[str, Any]:
        """``export_create`` keyword arguments from the cleaned data: only given filters, and only
        ticked options (so an option that does not apply to the format is reported, not dropped)."""
        data = self.cleaned_data
        filters: dict[str, Any] = {}
        for name in ("date_from", "date_to"):
            if data.get(name):
                filters[name] = data[name].isoformat()
        for name in ("annotators", "exclude_annotators", "model_names", "tags"):
            if _names(data.get(name, "")):
                filters[name] = _names(data[name])
        if data.get("splits"):
            filters["splits"] = data["splits"]
        if data.get("min_agreement") is not None:
            filters["min_agreement"] = data["min_agreement"]
        if data.get("gold") and data["gold"] != "include":
            filters["gold"] = data["gold"]
        if data.get("include_flagged"):
            filters["include_flagged"] = True
        if data.get("votes") and data["votes"] != "human":  # people's votes: the filters read as before
            filters["votes"] = data["votes"]
        if data.get("ai_weight") is not None:  # refused by the filters unless votes is "both"
            filters["ai_weight"] = data["ai_weight"]
        options: dict[str, bool] = {}
        if data.get("plain_text"):
            options["conversational"] = False
        if data.get("no_margin"):
            options["include_margin"] = False
        if data.get("real_usernames"):
            options["real_usernames"] = True
        if data.get("include_eval_set_prompts"):
            options["include_eval_set_prompts"] = True
        return {"format": data["format"], "file_type": data["file_type"], "filters": filters, "options": options}

    def add_service_errors(self, message_dict: dict[str, list[str]]) -> None:
        """Show each service error on its field (``options`` on the form as a whole)."""
        for key, messages in message_dict.items():
            field = key if key in self.fields else None
            for message in messages:
                self.add_error(field, message if field or key in ("options", "filters") else f"{key}: {message}")
