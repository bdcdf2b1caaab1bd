"""Django admin for model servers: every save goes through ``model_server_save`` (its field
messages are shown on the form), and the key variable's NAME is all there is to see."""
from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from .models import ModelServer
from .services import SETTINGS, model_server_save


class ModelServerForm(forms.ModelForm):
    class Meta:
        model = ModelServer
        fields = list(SETTINGS)

    def clean(self):
        """The service's checks, as form errors by field (nothing is saved here)."""
        cleaned = super().clean()
        from .config import model_server_problems

        values = {name: cleaned.get(name) for name in SETTINGS}
        values["api_key_env"] = values["api_key_env"] or ""
        values["stream"] = bool(values["stream"])
        for name, message in model_server_problems(**values).items():
            if name in self.fields and name not in self.errors:
                self.add_error(name, message)
        return cleaned


@admin.register(ModelServer)
class ModelServerAdmin(admin.ModelAdmin):
    form = ModelServerForm
    list_display = ["name", "base_url", "model_name", "api_key_env", "max_concurrency", "timeout_s", "stream"]
    search_fields = ["name", "model_name"]

    def save_model(self, request, obj, form, change) -> None:
        settings = {name: form.cleaned_data[name] for name in SETTINGS}
        settings["api_key_env"] = settings["api_key_env"] or ""
        try:
            saved = model_server_save(server=ModelServer.objects.get(pk=obj.pk) if change else None, **settings)
        except ValidationError as error:  # pragma: no cover - clean() ran the same checks
            raise forms.ValidationError(error.messages) from None
        obj.pk = saved.pk
