"""The model-server form of the servers page: shape only (``model_server_save`` checks the values)."""
from __future__ import annotations

from typing import Any

from django import forms

from training.forms import _ServiceErrors

from .models import ModelServer

DEFAULTS = ModelServer()


class ModelServerForm(_ServiceErrors, forms.Form):
    name = forms.CharField(max_length=100)
    base_url = forms.CharField(max_length=500, label="Base URL", help_text="e.g. http://127.0.0.1:8000/v1")
    model_name = forms.CharField(max_length=200, label="Served model name", help_text="as the server's /v1/models lists it")
    api_key_env = forms.CharField(
        max_length=100, required=False, label="Key variable",
        help_text="the NAME of the worker's environment variable holding the key (never the key); empty: no key",
    )
    max_concurrency = forms.IntegerField(initial=DEFAULTS.max_concurrency, widget=forms.NumberInput(attrs={"min": 1, "max": 256}))
    timeout_s = forms.FloatField(initial=DEFAULTS.timeout_s, label="Timeout (s)")
    max_retries = forms.IntegerField(initial=DEFAULTS.max_retries, widget=forms.NumberInput(attrs={"min": 0, "max": 10}))
    backoff_s = forms.FloatField(initial=DEFAULTS.backoff_s, label="First retry after (s)")
    stream = forms.BooleanField(required=False, label="Streamed answers (server-sent events)")

    def settings(self) -> dict[str, Any]:
        return {**self.cleaned_data, "api_key_env": self.cleaned_data.get("api_key_env") or ""}
