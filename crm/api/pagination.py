from __future__ import annotations

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination, PageNumberPagination
from rest_framework.request import Request


class StrictPageSize:
    """A `page_size` that is not a whole number from 1 to the maximum is a 400 on that parameter,
    not silently the default (DRF's own behaviour)."""

    page_size_query_param = "page_size"

    def get_page_size(self, request: Request) -> int | None:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None:
            maximum = self.max_page_size  # type: ignore[attr-defined]
            if not raw.isdigit() or not 1 <= int(raw) <= maximum:
                message = f"A whole number from 1 to {maximum}."
                raise ValidationError({self.page_size_query_param: [message]})
        size: int | None = super().get_page_size(request)  # type: ignore[misc]
        return size


class DefaultPagination(StrictPageSize, PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CreatedCursorPagination(StrictPageSize, CursorPagination):
    """Stable paging for large, growing lists (integrations syncing everything)."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = ("-created_at", "-id")

    def decode_cursor(self, request: Request) -> Cursor | None:
        # A cursor the client mangled is bad input (400 on the `cursor` field), not a missing page.
        try:
            cursor: Cursor | None = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [str(self.invalid_cursor_message)]}) from None
        return cursor
