"""Admins' eval-set pages: ``/manage/evalsets/`` (every version, and a form to import a file) and
``/manage/evalsets/<id>/`` (one version: counts, categories, hash, other versions, its prompts).
Importing works as a plain form post; a bad file is a 400 page listing every problem by line."""
from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from ..imports import UPLOAD_MAX_BYTES
from ..jsonl import JSONLFormatError
from ..roles import is_feedback_admin
from . import services
from .models import EvalSet

ITEMS_PER_PAGE = 50


class EvalSetImportForm(forms.Form):
    """An uploaded eval-set file for ``feedback.evalsets.services.eval_set_import``."""

    name = forms.CharField(max_length=services.MAX_NAME_CHARS, help_text="Same name and same content: the same version.")
    file = forms.FileField(help_text="JSON lines with messages or prompt per line, or CSV with a prompt column; "
                                     "optional category, tags, reference.")
    format = forms.ChoiceField(choices=[("", "told by the file"), ("jsonl", "JSON lines"), ("csv", "CSV")], required=False)


def _require_admin(request: HttpRequest) -> None:
    if not is_feedback_admin(request.user):
        raise PermissionDenied("Your account does not have this role.")


@login_required
def manage_evalsets(request: HttpRequest) -> HttpResponse:
    """Admins: every eval set version (newest first), and a form that imports a file as a new
    version (whole or not at all). Shows the import summary, or every problem with its line (400)."""
    _require_admin(request)
    form = EvalSetImportForm(request.POST or None, request.FILES or None)
    context = {"form": form, "result": None, "problems": None, "eval_sets": EvalSet.objects.order_by("-id")[:200],
               "max_mb": UPLOAD_MAX_BYTES // (1024 * 1024)}
    if request.method != "POST":
        return render(request, "feedback/manage_evalsets.html", context)
    if form.is_valid() and form.cleaned_data["file"].size > UPLOAD_MAX_BYTES:
        form.add_error("file", f"The file is over {context['max_mb']} MB; import it with manage.py evalset import.")
    if form.is_valid():
        data = form.cleaned_data
        try:
            context["result"] = services.eval_set_import_upload(
                chunks=data["file"].chunks(), name=data["name"], file_name=data["file"].name or "",
                format=data["format"] or None, created_by=request.user,
            )
        except ValidationError as error:
            for field, texts in error.message_dict.items():
                form.add_error(field if field in form.fields else None, texts)
        except JSONLFormatError as error:
            context["problems"] = str(error).splitlines()[1:] or [str(error)]
        except (OSError, ValueError) as error:
            form.add_error(None, str(error))
    return render(request, "feedback/manage_evalsets.html", context, status=200 if context["result"] else 400)


@login_required
def manage_evalset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: one eval set version: counts, categories, content hash, the name's other versions,
    and its prompts in file order (``ITEMS_PER_PAGE`` a page, ``?page=``)."""
    _require_admin(request)
    eval_set = get_object_or_404(EvalSet, pk=pk)
    items = Paginator(eval_set.items.order_by("position"), ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "eval_set": eval_set, "items": items,
        "versions": EvalSet.objects.filter(name=eval_set.name).order_by("version"),
        "categories": sorted(eval_set.categories.items(), key=lambda kv: (-kv[1], kv[0])),
    }
    return render(request, "feedback/manage_evalset_detail.html", context)
