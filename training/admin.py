"""Django admin for checkpoints: where a checkpoint's stop strings (role markers) are edited.

Checkpoints are registered by imports and training runs (their files must be complete first), so
the admin neither adds nor deletes them; of a checkpoint's fields only ``stop_strings`` and
``server`` (the model server that serves it) are editable.
"""
from django import forms
from django.contrib import admin

from .models import Checkpoint, CheckpointKind


class CheckpointForm(forms.ModelForm):
    class Meta:
        model = Checkpoint
        fields = ["stop_strings", "server"]

    def clean_server(self):
        server = self.cleaned_data.get("server")
        if server is not None and self.instance.kind != CheckpointKind.POLICY:
            raise forms.ValidationError("only a policy can be served for generation")
        return server


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    form = CheckpointForm
    list_display = ["name", "kind", "parent", "is_adapter", "server", "stop_strings", "created_at"]
    list_filter = ["kind", "is_adapter"]
    search_fields = ["name"]
    fields = ["name", "kind", "parent", "weights_dir", "hub_id", "is_adapter", "run", "stop_strings", "server", "metadata",
              "created_at"]
    readonly_fields = ["name", "kind", "parent", "weights_dir", "hub_id", "is_adapter", "run", "metadata", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


from .judges import admin as judges_admin  # noqa: E402,F401  (constitutions and judges)
from .backends import admin as backends_admin  # noqa: E402,F401  (model servers)
