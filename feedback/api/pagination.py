"""Cursor pagination by descending id: stable under inserts and constant-time on large tables."""
from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000
