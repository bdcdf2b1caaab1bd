"""``POST /api/imports/preferences/``: upload a preference file (TRL, HH-RLHF or Arena) and import
it inline, whole or not at all (admins only). Larger files than ``UPLOAD_MAX_BYTES``:
``manage.py import_preferences``."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import imports
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
            400: OpenApiResponse(description="Nothing imported: messages by field; file problems under 'file', "
                                             "flagged rows' numbers by flag under 'flagged'."),
        },
    )
    def post(self, request):
        form = PreferenceImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        arena = data["format"] == "arena"
        try:
            summary = imports.preferences_import_upload(
                chunks=data["file"].chunks(),
                format=data["format"],
                source=(data.get("source") or "").strip() or None,
                model_name=None if arena else ((data.get("model_name") or "").strip() or None),
                split=data.get("split") or None,
                eval_fraction=data["eval_fraction"],
                skip_refused=data["skip_refused"],
                allow_flagged=data["allow_flagged"],
            )
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
        body = summary.as_dict() | {
            "unit": summary.unit, "refusals": [list(item) for item in summary.refusals], "report": summary.report(),
        }
        return Response(body, status=status.HTTP_201_CREATED)
