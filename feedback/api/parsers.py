"""A JSON parser that refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE with a readable 400.

DRF reads the request stream directly, so Django's own body-size check never runs for JSON.
"""
from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if declared > limit:
            raise ParseError(f"Request body is {declared} bytes; at most {limit} bytes are accepted.")
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:  # json.loads on thousands of nested brackets; not a ValueError, so DRF lets it through
            raise ParseError("JSON parse error - nested too deeply") from None
