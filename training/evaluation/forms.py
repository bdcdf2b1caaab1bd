"""The evaluation launch form and the human-campaign form (pages; the API has its serializers)."""
from __future__ import annotations

from django import forms

from ..forms import _number, _ServiceErrors
from .services import MAX_CAMPAIGN_SAMPLE


class EvaluationForm(_ServiceErrors, forms.Form):
    """Candidates against a baseline on an eval set, scored by a reward model."""

    eval_set_id = forms.TypedChoiceField(coerce=int, label="Eval set")
    baseline = forms.ChoiceField(label="Baseline checkpoint")
    candidates = forms.MultipleChoiceField(label="Candidate checkpoints", help_text="1 to 7, not the baseline",
                                           widget=forms.SelectMultiple(attrs={"size": 5}))
    reward_model = forms.ChoiceField(label="Reward model", help_text="scores every completion")
    tie_band = forms.FloatField(min_value=0, max_value=100, initial=0.0, label="Tie band",
                                widget=_number(min=0, step=0.01),
                                help_text="a prompt is a tie when the two scores differ by at most this")
    max_new_tokens = forms.IntegerField(min_value=1, max_value=4096, initial=256, label="Max new tokens",
                                        widget=_number(min=1))

    def __init__(self, *args, eval_sets, policies, reward_models, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["eval_set_id"].choices = list(eval_sets)
        self.fields["baseline"].choices = [(n, n) for n in policies]
        self.fields["candidates"].choices = [(n, n) for n in policies]
        self.fields["reward_model"].choices = [(n, n) for n in reward_models]

    def service_arguments(self) -> dict:
        data = dict(self.cleaned_data)
        return {"eval_set_id": data["eval_set_id"], "baseline": data["baseline"], "candidates": data["candidates"],
                "reward_model": data["reward_model"], "tie_band": data["tie_band"],
                "generation": {"max_new_tokens": data["max_new_tokens"]}}


class CampaignForm(forms.Form):
    sample_size = forms.IntegerField(min_value=1, max_value=MAX_CAMPAIGN_SAMPLE, initial=50,
                                     label="Prompts to sample", widget=_number(min=1))
