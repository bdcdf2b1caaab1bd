"""Cursor pagination by descending id: stable under inserts and constant-time on large tables.

Bad paging parameters are refused, not guessed at: ``page_size`` that is not a whole number from 1
to ``max_page_size``, or a ``cursor`` that is not one this API handed out, is a 400 naming the
parameter (DRF's own class falls back to the default size, and answers 404 for a bad cursor).
"""
from __future__ import annotations

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request) -> int:
        """``page_size`` from the query (1 to ``max_page_size``), else the default; 400 naming it when bad."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        value = raw.strip()
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= self.max_page_size:
            raise ValidationError(
                {self.page_size_query_param: [f"must be a whole number from 1 to {self.max_page_size}; got {raw[:40]!r}"]}
            )
        return int(value)

    def decode_cursor(self, request):
        """The ``cursor`` from the query, or ``None``; 400 naming it when it is not one this API made."""
        try:
            cursor = super().decode_cursor(request)
        except NotFound:  # DRF's answer to an undecodable cursor
            cursor = False
        # Positions are ids here (ordering "-id"); anything else would reach the query as a bad value.
        if cursor is False or (cursor is not None and cursor.position is not None and not cursor.position.isdigit()):
            raise ValidationError({self.cursor_query_param: ["is not a cursor this API handed out"]})
        return cursor

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
                parameter["description"] = f"Results per page, 1 to {self.max_page_size} (default {self.page_size})."
        return parameters
