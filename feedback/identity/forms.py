"""The identity page's form: one pattern. Shape only; ``services`` checks the text (regex safety)."""
from __future__ import annotations

from django import forms

from .matcher import MAX_PATTERN_CHARS
from .models import PatternKind


class IdentityPatternForm(forms.Form):
    text = forms.CharField(max_length=MAX_PATTERN_CHARS, strip=True,
                           help_text="A word or phrase (whole words, any case), or a regular expression.")
    kind = forms.ChoiceField(choices=PatternKind.choices, initial=PatternKind.WORD)
    scope = forms.CharField(required=False, max_length=200, label="Model name",
                            help_text="Only that model's completions; empty: every completion.")
    note = forms.CharField(required=False, max_length=2000)
    active = forms.BooleanField(required=False, initial=True)
