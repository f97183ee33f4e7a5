"""Pages of a list without a total count: on a dealership of a million rows a count costs more
than the page. One row more than the page is fetched to know whether there is a next one.
Templates show the links with `{% include "_page_nav.html" %}`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest


@dataclass
class Page:
    items: list[Any]
    page_number: int
    has_next: bool
    has_previous: bool
    query_string: str  # the request's query without `page`, for the page links

    def context(self) -> dict[str, Any]:
        """What _page_nav.html reads."""
        return {
            "page_number": self.page_number,
            "has_next": self.has_next,
            "has_previous": self.has_previous,
            "query_string": self.query_string,
        }


def page_of(request: HttpRequest, queryset: Any, *, size: int) -> Page:
    try:
        number = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        number = 1
    offset = (number - 1) * size
    batch = list(queryset[offset : offset + size + 1])
    query = request.GET.copy()
    query.pop("page", None)
    return Page(
        items=batch[:size],
        page_number=number,
        has_next=len(batch) > size,
        has_previous=number > 1,
        query_string=query.urlencode(),
    )
