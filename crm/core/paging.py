"""The one list component of the staff pages (docs/ui.md, "Lists"): a page of rows with a total
count and page numbers.

Counting is capped: on a dealership of a million rows an exact count costs more than the page, so
`page_of` counts at most COUNT_LIMIT + 1 rows (`SELECT count(*) FROM (… LIMIT 10001)`). Up to the
limit the count is exact; past it the page says "more than 10,000" and numbers the pages up to the
limit, and Next still works (one row more than the page is fetched to know whether there is one).

Templates show the links with `{% include "_page_nav.html" %}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

COUNT_LIMIT = 10_000
PAGE_WINDOW = 2  # page numbers shown on each side of the current page (plus the first and last)


@dataclass
class Page:
    items: list[Any]
    page_number: int
    has_next: bool
    has_previous: bool
    query_string: str  # the request's query without `page`, for the page links
    total: int | None = None  # rows counted, at most COUNT_LIMIT + 1; None when not countable
    size: int = 25

    @property
    def total_is_exact(self) -> bool:
        return self.total is not None and self.total <= COUNT_LIMIT

    @property
    def num_pages(self) -> int | None:
        if self.total is None:
            return None
        counted = min(self.total, COUNT_LIMIT)
        return max(1, -(-counted // self.size))

    def page_numbers(self) -> list[int | None]:
        """The numbers to link: the first, the current ± PAGE_WINDOW, the last (when the count is
        exact); None marks a gap ("…")."""
        last = self.num_pages
        if last is None:
            return []
        last = max(last, self.page_number)
        shown = {1, *range(self.page_number - PAGE_WINDOW, self.page_number + PAGE_WINDOW + 1)}
        if self.total_is_exact:
            shown.add(last)
        out: list[int | None] = []
        previous = 0
        for n in sorted(n for n in shown if 1 <= n <= last):
            if n - previous > 1:
                out.append(None)
            out.append(n)
            previous = n
        return out

    def context(self) -> dict[str, Any]:
        """What _page_nav.html reads."""
        return {
            "page_number": self.page_number,
            "has_next": self.has_next,
            "has_previous": self.has_previous,
            "query_string": self.query_string,
            "total": self.total,
            "total_is_exact": self.total_is_exact,
            "count_limit": COUNT_LIMIT,
            "page_numbers": self.page_numbers(),
        }


def _count(queryset: Any) -> int | None:
    if isinstance(queryset, QuerySet):
        return queryset.order_by()[: COUNT_LIMIT + 1].count()
    if isinstance(queryset, list | tuple):
        return len(queryset)
    return None


def page_of(request: HttpRequest, queryset: Any, *, size: int, count: bool = True) -> Page:
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
        total=_count(queryset) if count else None,
        size=size,
    )
