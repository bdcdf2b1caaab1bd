"""The critique-revise launch form (``/manage/cai/``)."""
from __future__ import annotations

from typing import Any

from django import forms

from training.forms import _ServiceErrors, _number

from .config import CaiConfig

DEFAULTS = CaiConfig(reviser="", constitution="")


class CaiForm(_ServiceErrors, forms.Form):
    """Launch a Constitutional AI critique-revise job (``training.constitutional.services.cai_job_create``)."""

    reviser = forms.ChoiceField(label="Reviser (policy checkpoint)", help_text="critiques the responses and revises them")
    responses_of = forms.CharField(required=False, max_length=200, label="Revise the responses of",
                                   help_text="a model name (empty: the reviser's own responses)")
    constitution = forms.ChoiceField(help_text="one of its principles is drawn per response")
    split = forms.ChoiceField(choices=[("", "any"), ("train", "train"), ("eval", "eval")], required=False)
    limit = forms.IntegerField(required=False, initial=50, label="At most N responses", widget=_number(min=1))
    max_new_tokens = forms.IntegerField(initial=DEFAULTS.max_new_tokens, widget=_number(min=1))
    temperature = forms.FloatField(initial=DEFAULTS.temperature, widget=_number(min=0, max=2, step="any"))
    batch_size = forms.IntegerField(initial=DEFAULTS.batch_size, widget=_number(min=1))
    pairs = forms.BooleanField(required=False, initial=True, label="Revision-over-original pairs (with an AI vote)")
    demonstrations = forms.BooleanField(required=False, initial=True, label="Revisions as SFT demonstrations")
    campaign_id = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Campaign for the pairs")

    def __init__(self, *args, checkpoint_names: list[str], constitutions: list[str],
                 campaigns: list[tuple[int, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reviser"].choices = [(name, name) for name in checkpoint_names]
        self.fields["constitution"].choices = [(ref, ref) for ref in constitutions]
        self.fields["campaign_id"].choices = [("", "Default"), *[(pk, name) for pk, name in campaigns if name != "Default"]]

    def config(self) -> dict[str, Any]:
        """The cleaned form as a ``CaiConfig`` dict (blank optional settings left out)."""
        data = self.cleaned_data
        config = {k: data[k] for k in ("reviser", "constitution", "responses_of", "max_new_tokens", "temperature",
                                        "batch_size", "pairs", "demonstrations")}
        for key in ("split", "limit", "campaign_id"):
            if data.get(key) not in (None, ""):
                config[key] = data[key]
        return config
