"""``POST /api/imports/preferences/``: upload a preference file (TRL, HH-RLHF or Arena) and import
it inline, whole or not at all (admins only); a file over ``ARBITER_IMPORT_INLINE_MAX_BYTES`` is
queued as a background job (202, ``feedback.import_jobs``) whose status ``GET /api/imports/jobs/<id>/`` shows. Larger files than ``UPLOAD_MAX_BYTES``:
``manage.py import_preferences``."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from django.shortcuts import get_object_or_404
from django.urls import reverse

from feedback import import_jobs, imports
from feedback.models import ImportJob
from feedback.import_limits import ImportLimitError
from feedback.jsonl import JSONLFormatError
from feedback.models import Split

from .permissions import IsFeedbackAdmin


class PreferenceImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="JSON lines (.jsonl or .jsonl.gz) or Parquet; told by its content.")
    format = serializers.ChoiceField(choices=imports.PREFERENCE_FORMATS)
    source = serializers.CharField(required=False, allow_blank=True, max_length=100)
    model_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    split = serializers.ChoiceField(choices=Split.values, required=False, allow_blank=True)
    eval_fraction = serializers.FloatField(min_value=0, max_value=1, default=0.1)
    skip_refused = serializers.BooleanField(default=False, help_text="Import the rest when some rows cannot be stored or are flagged.")
    allow_flagged = serializers.BooleanField(
        default=False, help_text="Import flagged rows (feedback.import_flags) and mark their comparisons."
    )

    def validate_file(self, upload):
        if upload.size > imports.UPLOAD_MAX_BYTES:
            raise serializers.ValidationError(
                f"The file is over {imports.UPLOAD_MAX_BYTES // (1024 * 1024)} MB; import it with manage.py import_preferences."
            )
        return upload


class PreferenceImportView(APIView):
    """Import an uploaded preference file. 201 with the summary (``ImportSummary.as_dict()`` plus
    ``refusals`` ``[[number, reason], ...]``, ``unit`` and ``report`` lines); 400 naming the field:
    ``file`` lists the file's problems (every bad row, or the refused/flagged ones, by number) and
    ``flagged`` maps each flag code to its row numbers when flagged rows refused the file, and
    ``limit`` (``{setting, limit, unit, number}``) names an import limit the file passed
    (``feedback.import_limits``)."""

    permission_classes = [IsFeedbackAdmin]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": PreferenceImportSerializer},
        responses={
            201: OpenApiResponse(description="Imported: the summary counts, unit, refusals and report lines."),
            202: OpenApiResponse(description="A file over ARBITER_IMPORT_INLINE_MAX_BYTES: queued as a background "
                                             "job; 'url' (and Location) is GET /api/imports/jobs/<id>/."),
            400: OpenApiResponse(description="Nothing imported: messages by field; file problems under 'file', "
                                             "flagged rows' numbers by flag under 'flagged'."),
        },
    )
    def post(self, request):
        form = PreferenceImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        arena = data["format"] == "arena"
        options = {
            "source": (data.get("source") or "").strip() or None,
            "model_name": None if arena else ((data.get("model_name") or "").strip() or None),
            "split": data.get("split") or None,
            "eval_fraction": data["eval_fraction"],
            "skip_refused": data["skip_refused"],
            "allow_flagged": data["allow_flagged"],
        }
        if data["file"].size > import_jobs.inline_max_bytes():
            job = import_jobs.import_job_create(
                chunks=data["file"].chunks(), file_name=data["file"].name or "", format=data["format"],
                options=options, created_by=request.user,
            )
            url = reverse("import-job", args=[job.pk])
            return Response(job_body(job) | {"url": url}, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
        try:
            summary = imports.preferences_import_upload(chunks=data["file"].chunks(), format=data["format"], **options)
        except JSONLFormatError as error:
            body = {"file": str(error).splitlines()}
            if getattr(error, "flagged", None):
                body["flagged"] = error.flagged
            if isinstance(error, ImportLimitError):
                body["limit"] = error.as_dict()
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        except OSError as error:
            return Response({"file": [f"cannot read the upload: {error.strerror or error}"]}, status=status.HTTP_400_BAD_REQUEST)
        except ValueError as error:
            field = "source" if "a user named" in str(error) else "non_field_errors"
            return Response({field: [str(error)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(import_jobs.summary_dict(summary), status=status.HTTP_201_CREATED)


def job_body(job: ImportJob) -> dict:
    """An import job as the API shows it."""
    return {
        "id": job.pk, "status": job.status, "format": job.format, "file_name": job.file_name,
        "size_bytes": job.size_bytes, "summary": job.summary or None, "error": job.error,
        "problems": job.problems, "limit": job.limit or None,
        "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
    }


class ImportJobView(APIView):
    """``GET /api/imports/jobs/<id>/``: a background import's status and outcome (admins only)."""

    permission_classes = [IsFeedbackAdmin]

    @extend_schema(responses={200: OpenApiResponse(description="status, summary when it succeeded, error, problems and limit when it failed")})
    def get(self, request, pk: int):
        return Response(job_body(get_object_or_404(ImportJob, pk=pk)))
