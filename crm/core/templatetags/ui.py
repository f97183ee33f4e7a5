"""The staff pages' shared template vocabulary (docs/ui.md): `{% load ui %}`.

- `{{ value|number }}`, `{{ value|number:1 }}`, `{{ value|money }}` (crm/core/formatting.py);
- `{{ paginator|elided_pages:page.number }}`: a Django Paginator's page numbers with gaps.
"""

from __future__ import annotations

from typing import Any

from django import template

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
