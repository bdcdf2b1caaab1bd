"""Governance forms: shapes only; the services check the rest."""
from __future__ import annotations

from django import forms

from .audit_models import AuditAction
from .detectors import LABELS
from .models import DataPolicy
from .scan_models import FindingStatus, RowKind
from .services import POLICY_FIELDS


class DataPolicyForm(forms.ModelForm):
    class Meta:
        model = DataPolicy
        fields = list(POLICY_FIELDS)
        widgets = {"basis": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"source": "scope source: a prompt source name (empty: prompts with no source)"}

    def values(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in POLICY_FIELDS if name in self.cleaned_data}


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(choices=[("", "any action"), *AuditAction.choices], required=False)
    actor = forms.CharField(required=False, max_length=150, help_text="username")
    object_type = forms.CharField(required=False, max_length=40, label="Object type")
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


DETECTOR_CHOICES = [("", "any detector"), *[(name, name) for name in LABELS]]


class FindingFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "any status"), *FindingStatus.choices], required=False, initial="open")
    detector = forms.ChoiceField(choices=DETECTOR_CHOICES, required=False)
    row_kind = forms.ChoiceField(choices=[("", "any row"), *RowKind.choices], required=False, label="Row")
