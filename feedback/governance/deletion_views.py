"""Admins' deletion pages and API (issue 18 item 6), thin over ``deletion`` and ``retention``:

- ``/manage/governance/deletion/``: GET a form (annotator username or source name); POST with
  ``preview`` shows the counts, POST with ``delete`` deletes (an unknown name is a 400 with one line).
- ``/manage/governance/snapshots/<id>/rebuild/``: POST rebuilds a snapshot holding deleted data.
- ``POST /api/governance/deletions/`` ``{"annotator": "ann"}`` or ``{"source": "x"}`` (``"dry_run": true``
  to preview): 200 ``{"what", "counts", "dry_run"}``; 400 ``{"detail": "no annotator named ..."}``.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.proxy import client_ip_address
from feedback.api.permissions import IsFeedbackAdmin

from .deletion import DeletionTargetUnknown, annotator_deletion_plan, deletion_apply, source_deletion_plan
from .retention import snapshot_rebuild
from .views import require_admin


def _plan(annotator: str, source: str):
    """The plan for exactly one of ``annotator``/``source``; DeletionTargetUnknown otherwise."""
    if bool(annotator) == bool(source):
        raise DeletionTargetUnknown("name either an annotator or a source, not both or neither")
    return annotator_deletion_plan(username=annotator) if annotator else source_deletion_plan(source=source)


@login_required
@require_http_methods(["GET", "POST"])
def manage_deletion(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST ``preview``: the counts. POST ``delete``: delete and say what was done."""
    require_admin(request)
    annotator = request.POST.get("annotator", "").strip()
    source = request.POST.get("source", "").strip()
    # An error about the one name given is shown beside its field; "neither or both" above the form.
    context = {"annotator": annotator, "source": source,
               "error_field": "annotator" if annotator and not source else "source" if source and not annotator else ""}
    if request.method == "GET":
        return render(request, "feedback/governance_deletion.html", context)
    try:
        plan = _plan(annotator, source)
        if "delete" not in request.POST:
            return render(request, "feedback/governance_deletion.html", context | {"plan": plan})
        deletion_apply(plan=plan, kind="annotator" if annotator else "source", user=request.user,
                       remote_addr=client_ip_address(request))
    except DeletionTargetUnknown as error:  # unknown, or deleted by a request sent just before (a double click)
        return render(request, "feedback/governance_deletion.html", context | {"error": str(error)}, status=400)
    messages.success(request, f"Deleted {plan.summary()}.")
    return redirect("manage-deletion")


@login_required
@require_POST
def manage_snapshot_rebuild(request: HttpRequest, pk: int) -> HttpResponse:
    """Rebuild a snapshot holding deleted data; back to where the admin came from (or the audit page)."""
    require_admin(request)
    try:
        new = snapshot_rebuild(snapshot_id=pk, user=request.user, remote_addr=client_ip_address(request))
    except LookupError as error:
        messages.error(request, str(error))
    except ValidationError as error:
        messages.error(request, "; ".join(error.messages))
    else:
        messages.success(request, f"Snapshot {pk} rebuilt as snapshot {new.pk}.")
    back = request.META.get("HTTP_REFERER") or ""
    from django.utils.http import url_has_allowed_host_and_scheme

    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(back)
    return redirect("manage-audit")


class DeletionRequestSerializer(serializers.Serializer):
    annotator = serializers.CharField(required=False, allow_blank=True, help_text="A username.")
    source = serializers.CharField(required=False, allow_blank=True, help_text="A Prompt.source value.")
    dry_run = serializers.BooleanField(required=False, default=False)


class DeletionView(APIView):
    """Admins: delete (or preview deleting) one annotator's or one source's data."""

    permission_classes = [IsFeedbackAdmin]

    @extend_schema(request=DeletionRequestSerializer, responses={
        200: OpenApiResponse(description='{"what", "counts", "dry_run"}'),
        400: OpenApiResponse(description='{"detail": "no annotator named ..."}')})
    def post(self, request):
        shape = DeletionRequestSerializer(data=request.data)
        shape.is_valid(raise_exception=True)
        annotator = shape.validated_data.get("annotator", "").strip()
        source = shape.validated_data.get("source", "").strip()
        dry_run = shape.validated_data["dry_run"]
        try:
            plan = _plan(annotator, source)
            if not dry_run:
                deletion_apply(plan=plan, kind="annotator" if annotator else "source", user=request.user,
                               remote_addr=client_ip_address(request))
        except DeletionTargetUnknown as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"what": plan.label or plan.what, "counts": plan.counts(), "dry_run": dry_run})
