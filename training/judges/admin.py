"""Django admin for constitutions (editable: an edit saves a new version and keeps the old one)
and judges (read-only: register or change them on the judges page, the API or the command)."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from .models import Constitution, Judge
from .services import constitution_save


class ConstitutionForm(forms.ModelForm):
    """Principles as text, one question a line."""

    principles_text = forms.CharField(
        label="Principles", widget=forms.Textarea(attrs={"rows": 8, "cols": 100}),
        help_text="One question a line, e.g. \"Which response is less harmful?\". Saving a change makes a new version.",
    )

    class Meta:
        model = Constitution
        fields = ["name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["principles_text"].initial = "\n".join(self.instance.principles)
            self.fields["name"].disabled = True

    def principles(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["principles_text"].splitlines() if line.strip()]


@admin.register(Constitution)
class ConstitutionAdmin(admin.ModelAdmin):
    form = ConstitutionForm
    list_display = ["name", "version", "created_at", "created_by"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change) -> None:
        """Never edit a row: save the principles as the next version of the name (or nothing new
        when they did not change); ``obj`` becomes that row so the admin redirects to it."""
        saved, created = constitution_save(name=form.cleaned_data["name"], principles=form.principles(), created_by=request.user)
        obj.pk, obj.version = saved.pk, saved.version
        if change:
            note = f"saved as {saved.ref}; earlier versions are kept" if created else "no change: the principles are the same"
            messages.info(request, f"Constitution {note}.")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "kind", "checkpoint", "model_name", "template", "constitution", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
