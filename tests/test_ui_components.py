"""The staff pages' shared list and number components (docs/ui.md): counts and page numbers of
every list, and numbers and money written the same way in every page."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import translation

from crm.core.formatting import money, number
from crm.core.paging import COUNT_LIMIT, Page, page_of


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [
        (1234567, 0, "1,234,567"),
        (1234.5, 1, "1,234.5"),
        (Decimal("0.5"), 0, "1"),  # halves up, not to even
        (Decimal("2.5"), 0, "3"),
        (-1234.45, 1, "-1,234.5"),
        ("98765", 0, "98,765"),
        (None, 0, "—"),
        ("", 0, "—"),
        ("n/a", 0, "n/a"),
        (True, 0, "True"),
    ],
)
def test_number_groups_thousands_and_rounds_halves_up(value, places, shown):
    assert number(value, places) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234.5"), "¥1,234.50"),
        (1234.565, "¥1,234.57"),
        (-12, "-¥12.00"),
        (0, "¥0.00"),
        (None, "—"),
        (Decimal("NaN"), "NaN"),
    ],
)
def test_money_is_cny_with_two_decimals(value, shown):
    assert money(value) == shown


def test_the_filters_write_the_same_in_both_languages():
    template = Template("{% load ui %}{{ a|money }} {{ b|number }} {{ c|number:1 }}")
    for language in ("zh-hans", "en"):
        with translation.override(language):
            assert (
                template.render(Context({"a": 64800000, "b": 1120822, "c": 81.04})) == "¥64,800,000.00 1,120,822 81.0"
            )


def _page(total: int | None, number: int, size: int = 25) -> Page:
    return Page(
        items=[], page_number=number, has_next=False, has_previous=number > 1, query_string="", total=total, size=size
    )


def test_page_numbers_show_the_first_the_last_and_two_either_side_with_gaps():
    assert _page(250, 1).page_numbers() == [1, 2, 3, None, 10]
    assert _page(250, 6).page_numbers() == [1, None, 4, 5, 6, 7, 8, None, 10]
    assert _page(250, 10).page_numbers() == [1, None, 8, 9, 10]
    assert _page(25, 1).page_numbers() == [1] and _page(0, 1).num_pages == 1
    # past the count limit the last page is unknown: no last number, Next goes on
    beyond = _page(COUNT_LIMIT + 1, 1)
    assert not beyond.total_is_exact and beyond.page_numbers() == [1, 2, 3]
    assert _page(None, 3).page_numbers() == []


def _nav(page: Page) -> str:
    with translation.override("en"):
        return Template('{% include "_page_nav.html" %}').render(Context(page.context()))


def test_the_page_navigation_counts_exactly_up_to_the_limit_and_says_more_than_past_it():
    assert "1,234 results" in _nav(_page(1234, 1))
    assert "1 result<" in _nav(_page(1, 1))
    past = _nav(_page(COUNT_LIMIT + 1, 1))
    assert "More than 10,000 results" in past and 'data-testid="page-401"' not in past


@pytest.mark.django_db
def test_page_of_counts_a_queryset_once_capped_at_the_limit(dealer_a, in_tenant, django_assert_num_queries):
    from customers.models import Customer
    from tests.factories import CustomerFactory

    with in_tenant(dealer_a):
        for n in range(30):
            CustomerFactory(name=f"计数{n:02d}")
        request = RequestFactory().get("/customers/", {"page": "2"})
        rows = Customer.objects.filter(name__startswith="计数").order_by("name")
        with django_assert_num_queries(2):  # the page (one row more) and the capped count
            page = page_of(request, rows, size=25)
        assert page.total == 30 and [c.name for c in page.items] == ["计数25", "计数26", "计数27", "计数28", "计数29"]
        assert page.page_numbers() == [1, 2] and not page.has_next
