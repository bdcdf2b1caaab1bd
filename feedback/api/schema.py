"""The OpenAPI schema (drf-spectacular) says every answer an operation can give, errors included.

``AutoSchema`` (``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``) adds to each operation the error answers
DRF and ``feedback.api.errors.exception_handler`` give, unless the view documents that code itself:

- 400 ``BadRequest`` where the operation takes a body or query parameters: an object mapping each
  field or parameter to its messages (``{"page_size": ["..."]}``), or ``{"detail": ...}`` for a
  body that is not JSON; nothing is stored.
- 401 and 403 ``Error`` everywhere: no valid credentials; or signed in without the role, the
  assignment (``code`` ``not_assigned``) or, for a session, the CSRF token.
- 404 ``Error`` where the path names an object: no such object, or one the caller may not see.
- 413 and 415 ``Error`` where the operation takes a body: a body over the size limits
  (``config.middleware``, refused before it is read), or a ``Content-Type`` the API does not read.

409 (``Conflict``) and 429 are documented by the views that give them.
"""
from __future__ import annotations

import uritemplate
from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

from feedback.errors import ComparisonClosed, ItemChanged, LeaseExpired, VoteConflict

from .serializers import AnnotatorVoteSerializer

BAD_REQUEST = {
    "type": "object",
    "additionalProperties": True,
    "description": "Each bad field or parameter mapped to a list of messages, or `detail` for a malformed body.",
}


# The codes of the services' 409s (the schema's ConflictCodeEnum, named in SPECTACULAR_SETTINGS).
CONFLICT_CODES = [(error.code, error.code) for error in (VoteConflict, LeaseExpired, ComparisonClosed, ItemChanged)]


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer but 400: a readable reason, and for service errors a code."""

    detail = serializers.CharField()
    code = serializers.CharField(required=False, help_text="set by the services' errors: not_assigned, vote_conflict, ...")


class ConflictSerializer(ErrorSerializer):
    """409: the request clashes with what is stored (an earlier vote, an expired lease, a closed comparison)."""

    code = serializers.ChoiceField(choices=CONFLICT_CODES)
    vote = AnnotatorVoteSerializer(
        required=False, help_text="for vote_conflict on POST /api/votes/: your vote already stored, in screen terms"
    )


def conflict(description: str) -> OpenApiResponse:
    """A 409 answer for ``extend_schema(responses=...)``."""
    return OpenApiResponse(ConflictSerializer, description=description)


def too_many_requests(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's ``AutoSchema`` plus the error answers in the module docstring."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, (body, description) in self._error_answers().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(body, description=description), code, direction=direction
                )
        return responses

    def _error_answers(self) -> dict[str, tuple]:
        takes_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        takes_query = any(p.get("in") == "query" for p in self._get_parameters())
        answers = {}
        if takes_body or takes_query:
            answers["400"] = (BAD_REQUEST, "Bad input; nothing is stored.")
        answers["401"] = (ErrorSerializer, "No valid credentials: send `Authorization: Token <key>` or sign in.")
        answers["403"] = (ErrorSerializer, "Not allowed: the role or the assignment is missing, or (sessions) the CSRF token.")
        if uritemplate.variables(self.path):
            answers["404"] = (ErrorSerializer, "No such object, or not one the caller may see.")
        if takes_body:
            answers["415"] = (ErrorSerializer, "A Content-Type the API does not read (JSON, form or multipart).")
            answers["413"] = (ErrorSerializer, "The body is over ARBITER_MAX_BODY_BYTES (or, without logging in, "
                                               "ARBITER_ANONYMOUS_MAX_BODY_BYTES); refused before it is read.")
        return answers


def one_or_many(serializer_class, name: str) -> PolymorphicProxySerializer:
    """A body that is one object or a list of them (the bulk create endpoints take and answer both)."""
    return PolymorphicProxySerializer(
        component_name=name,
        serializers=[serializer_class, serializer_class(many=True)],
        resource_type_field_name=None,
        many=False,
    )
