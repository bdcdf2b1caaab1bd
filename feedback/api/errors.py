"""Map service errors to HTTP answers: ValidationError -> 400 with field messages, FeedbackError -> its status."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from feedback.errors import FeedbackError, GuidelinesUnread, VoteConflict


def exception_handler(exc, context):
    """DRF exception handler that also answers Django ``ValidationError`` and ``FeedbackError``."""
    if isinstance(exc, RequestDataTooBig):
        # DRF >= 3.16 reads request.body for JSON, so Django's size check fires before LimitedJSONParser's.
        request = context.get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else "?"
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        detail = f"Request body is {declared} bytes; at most {limit} bytes are accepted."
        return Response({"detail": detail}, status=http.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        body = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(body, status=http.HTTP_400_BAD_REQUEST)
    if isinstance(exc, FeedbackError):
        body = {"detail": str(exc), "code": exc.code}
        if isinstance(exc, VoteConflict) and exc.vote is not None:
            from .serializers import AnnotatorVoteSerializer

            body["vote"] = AnnotatorVoteSerializer(exc.vote).data  # the caller's own vote, in screen terms
        if isinstance(exc, GuidelinesUnread):  # what to read, and where to say so
            body["guidelines"] = {"campaign": exc.campaign_slug, "version": exc.version,
                                  "acknowledge": "POST /api/guidelines/acknowledge/"}
        return Response(body, status=exc.status)
    return drf_exception_handler(exc, context)
