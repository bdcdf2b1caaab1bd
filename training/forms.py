"""HTML forms: shape only. ``GenerationConfig`` and ``generation_job_create`` hold the rules."""
from __future__ import annotations

from typing import Any

from django import forms

from .config import MAX_BATCH_SIZE, MAX_NEW_TOKENS_LIMIT, STRATEGIES, GenerationConfig

DEFAULTS = GenerationConfig(checkpoints=[], limit=20)
SPLITS = [("", "any split"), ("train", "train"), ("eval", "eval")]
STRATEGY_LABELS = {"two_samples": "two samples of A", "head_to_head": "A against B"}
STRATEGY_CHOICES = [(name, STRATEGY_LABELS.get(name, name)) for name in STRATEGIES]


def _number(**attrs) -> forms.NumberInput:
    return forms.NumberInput(attrs=attrs)


class GenerationForm(forms.Form):
    """Launch a generation job. Defaults suit a CPU laptop: 20 prompts, 128 new tokens, batches of 8."""

    checkpoint = forms.ChoiceField(label="Checkpoint A")
    opponent = forms.ChoiceField(label="Checkpoint B", required=False, help_text="head_to_head only")
    strategy = forms.ChoiceField(choices=STRATEGY_CHOICES, initial=DEFAULTS.strategy)
    tag = forms.CharField(required=False, max_length=100)
    split = forms.ChoiceField(choices=SPLITS, required=False)
    max_open_comparisons = forms.IntegerField(
        required=False, label="Only prompts with fewer than N open comparisons", widget=_number(min=1)
    )
    limit = forms.IntegerField(required=False, initial=DEFAULTS.limit, label="At most N prompts", widget=_number(min=1))
    max_new_tokens = forms.IntegerField(
        initial=DEFAULTS.max_new_tokens, widget=_number(min=1, max=MAX_NEW_TOKENS_LIMIT)
    )
    temperature = forms.FloatField(initial=DEFAULTS.temperature, widget=_number(min=0, max=2, step="any"))
    top_p = forms.FloatField(initial=DEFAULTS.top_p, label="Top-p", widget=_number(min=0, max=1, step="any"))
    batch_size = forms.IntegerField(initial=DEFAULTS.batch_size, widget=_number(min=1, max=MAX_BATCH_SIZE))
    seed = forms.IntegerField(initial=DEFAULTS.seed, widget=_number(min=0))
    votes_required = forms.IntegerField(initial=DEFAULTS.votes_required, widget=_number(min=1, max=100))
    priority = forms.IntegerField(initial=DEFAULTS.priority)

    # Error keys of GenerationConfig / generation_job_create that are not field names here.
    ERROR_FIELDS = {"checkpoints": "checkpoint"}
    UNPREFIXED = {"prompts", "config"}  # their messages read well on their own

    def __init__(self, *args, checkpoint_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(name, name) for name in checkpoint_names]
        self.fields["checkpoint"].choices = choices
        self.fields["opponent"].choices = [("", "—"), *choices]

    def config(self) -> dict[str, Any]:
        """The cleaned form as a ``GenerationConfig`` dict (blank optional settings left out)."""
        data = self.cleaned_data
        names = [data["checkpoint"]] + ([data["opponent"]] if data.get("opponent") else [])
        config = {"checkpoints": names, "strategy": data["strategy"]}
        for name in ("tag", "split", "max_open_comparisons", "limit"):
            if data.get(name) not in (None, ""):
                config[name] = data[name]
        for name in ("max_new_tokens", "temperature", "top_p", "batch_size", "seed", "votes_required", "priority"):
            config[name] = data[name]
        return config

    def add_service_errors(self, message_dict: dict[str, list[str]]) -> None:
        """Show a ``ValidationError``'s field messages next to the fields they concern."""
        for key, messages in message_dict.items():
            field = self.ERROR_FIELDS.get(key, key)
            if field not in self.fields:
                field = None
                if key not in self.UNPREFIXED:
                    messages = [f"{key}: {m}" for m in messages]
            for message in messages:
                self.add_error(field, message)
