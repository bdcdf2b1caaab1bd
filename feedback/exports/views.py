"""The admins' export page and the download. Thin: parse, call one service or selector, render.

``/manage/exports/``: the form and the exports, newest first. The table polls every 2 s while an
export is queued or running and is answered 286 (htmx: stop polling) once none is. The form is a
plain POST (redirect after success), so it works without JavaScript.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from config.wording import counted
from config.proxy import client_ip_address
from feedback.governance.enforcement import download_audit
from feedback.models import Export, ExportStatus
from feedback.roles import is_feedback_admin

from . import selectors, services
from .files import directory_zip_chunks
from .forms import ExportForm

STOP_POLLING = 286
TEMPLATE = "feedback/manage_exports.html"


def _require_admin(request: HttpRequest) -> None:
    if not is_feedback_admin(request.user):
        raise PermissionDenied("Only admins may export data.")


def _page_context(request: HttpRequest, form: ExportForm) -> dict:
    services.exports_reap()
    page = Paginator(selectors.export_list(), 50).get_page(request.GET.get("page"))
    return {
        "form": form, "page": page, "active": selectors.exports_any_active(page),
        "inline_max": services.inline_max_votes(),
    }


@login_required
@require_http_methods(["GET", "POST"])
def manage_exports(request: HttpRequest) -> HttpResponse:
    """Admins: start an export (errors next to their fields, 400, nothing recorded) and see every
    export's live status, row count, checksum and download link."""
    _require_admin(request)
    if request.method == "GET":
        context = _page_context(request, ExportForm())
        if request.htmx and request.htmx.target == "export-table":
            return render(request, f"{TEMPLATE}#table", context, status=200 if context["active"] else STOP_POLLING)
        return render(request, TEMPLATE, context)
    form = ExportForm(request.POST)
    if form.is_valid():
        try:
            export = services.export_create(
                **form.request(), policy_override=form.cleaned_data.get("policy_override"),
                created_by=request.user, remote_addr=client_ip_address(request),
            )
        except ValidationError as error:
            form.add_service_errors(error.message_dict)
        else:
            if export.status == ExportStatus.SUCCEEDED:
                messages.success(request, f"Export {export.pk} written: {counted(export.row_count, 'row')}.")
            elif export.status == ExportStatus.FAILED:
                messages.error(request, f"Export {export.pk} failed: {export.error}")
            else:
                messages.success(request, f"Export {export.pk} queued over {counted(export.votes_total, 'vote')}.")
            return redirect("manage-exports")
    return render(request, TEMPLATE, _page_context(request, form), status=400)


def export_file_response(export: Export, *, request: HttpRequest | None = None) -> HttpResponse:
    """The export's file as a streamed attachment (a zip made on the fly for ``hf-dataset``);
    the download is written to the audit trail (who: ``request.user``).

    Raises:
        Http404: the export has no file (not finished, failed, or the file is gone).
    """
    try:
        path = selectors.export_file(export=export)
    except LookupError as error:
        raise Http404(str(error)) from None
    name = selectors.export_download_name(export=export)
    download_audit(export=export, user=getattr(request, "user", None), request=request)
    if path.is_dir():
        response = StreamingHttpResponse(
            directory_zip_chunks(path, root_name=name.removesuffix(".zip")), content_type="application/zip"
        )
        response["Content-Disposition"] = f'attachment; filename="{name}"'
    else:
        response = FileResponse(open(path, "rb"), as_attachment=True, filename=name)
    response["X-Checksum-SHA256"] = export.checksum
    return response


@login_required
@require_GET
def export_download(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: download a finished export's file."""
    _require_admin(request)
    return export_file_response(get_object_or_404(selectors.export_list(), pk=pk), request=request)
