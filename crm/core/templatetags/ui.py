"""The staff pages' shared template vocabulary (docs/ui.md): `{% load ui %}`.

- `{{ value|number }}`, `{{ value|number:1 }}`, `{{ value|money }}` (crm/core/formatting.py);
- `{{ paginator|elided_pages:page.number }}`: a Django Paginator's page numbers with gaps;
- `{% sort_header label "name" %}`, `{% sort_header label "last_visit" "stale" "descending" %}`: a
  column header that sorts the list (the view's own allow-list decides what a sort key means).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from crm.core import formatting

register = template.Library()


@register.filter(name="number")
def number_filter(value: Any, places: Any = 0) -> str:
    try:
        decimals = int(places)
    except (TypeError, ValueError):
        decimals = 0
    return formatting.number(value, decimals)


@register.filter(name="money")
def money_filter(value: Any) -> str:
    return formatting.money(value)


@register.filter
def elided_pages(paginator: Any, number: Any) -> list[Any]:
    """A Django Paginator's page numbers as _page_nav.html shows them (the first, the current ± 2,
    the last; paginator.ELLIPSIS for a gap)."""
    return list(paginator.get_elided_page_range(number, on_each_side=2, on_ends=1))


@register.simple_tag(takes_context=True)
def sort_header(
    context: template.Context, label: Any, key: str, other: str = "", first: str = "ascending", param: str = "sort"
) -> SafeString:
    """A <th> whose link sorts the list by `key` (`first`: the direction `key` sorts in). Once the
    list is sorted by `key`, the link is to `other` (the reverse order), and back. The link keeps
    every filter and starts at page 1. `aria-sort` and an arrow mark the column the list is sorted
    by. The view decides what a key means: an unknown one falls back to its default order."""
    request = context["request"]
    current = request.GET.get(param, "")
    query = request.GET.copy()
    query.pop("page", None)
    query[param] = other if (other and current == key) else key
    second = "descending" if first == "ascending" else "ascending"
    direction = first if current == key else second if (other and current == other) else ""
    if not direction:
        return format_html(
            '<th><a href="?{}" class="sort-link" data-sort="{}">{}</a></th>', query.urlencode(), key, label
        )
    return format_html(
        '<th aria-sort="{}"><a href="?{}" class="sort-link sort-active" data-sort="{}">{} '
        '<span aria-hidden="true">{}</span></a></th>',
        direction,
        query.urlencode(),
        key,
        label,
        "▲" if direction == "ascending" else "▼",
    )
