"""HTML forms: shape only; the services hold the rules."""
from django import forms

from .models import AspectChoice, Choice, ComparisonStatus, Split, Strength
from .selectors import COMPARISON_ORDERS


class VoteForm(forms.Form):
    comparison = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    choice = forms.ChoiceField(choices=Choice.choices)
    strength = forms.ChoiceField(choices=[("", "—"), *Strength.choices], required=False)
    rationale = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea)
    helpfulness = forms.ChoiceField(choices=[("", "—"), *AspectChoice.choices], required=False)
    harmlessness = forms.ChoiceField(choices=[("", "—"), *AspectChoice.choices], required=False)
    honesty = forms.ChoiceField(choices=[("", "—"), *AspectChoice.choices], required=False)
    ms_on_item = forms.IntegerField(required=False, min_value=0, max_value=24 * 3600 * 1000)
    # Its length is checked by services.vote_submit (MAX_DEMONSTRATION_CHARS), after line breaks are normalised.
    demonstration = forms.CharField(required=False, strip=False, widget=forms.Textarea)


class SkipForm(forms.Form):
    comparison = forms.IntegerField(min_value=1)


class ComparisonFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "any status"), *ComparisonStatus.choices], required=False)
    split = forms.ChoiceField(choices=[("", "any split"), *Split.choices], required=False)
    model_name = forms.CharField(required=False, max_length=200)
    tag = forms.CharField(required=False, max_length=100)
    order = forms.ChoiceField(choices=list(COMPARISON_ORDERS.items()), required=False)
