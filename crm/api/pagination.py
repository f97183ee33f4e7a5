from __future__ import annotations

from rest_framework.pagination import CursorPagination, PageNumberPagination


class DefaultPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CreatedCursorPagination(CursorPagination):
    """Stable paging for large, growing lists (integrations syncing everything)."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = ("-created_at", "-id")
