"""Reads of customer data, always through the viewer's visibility."""

from __future__ import annotations

import contextlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from crm.core.errors import NotAllowed
from crm.tenancy.models import Membership
from customers.models import CONSENT_FIELDS, ConsentChange, Customer, CustomerSearchTerm, Vehicle
from customers.normalize import search_text
from customers.validators import mask_email, mask_id_number, mask_mobile, normalize_plate


def customer_visible_to(*, viewer: Membership) -> QuerySet[Customer]:
    """Customers the viewer may see: the whole dealership, or only their own book.

    Merged tombstones are never listed.
    """
    queryset = Customer.objects.filter(merged_into__isnull=True).select_related("owner__user")
    if viewer.can("customers.view_all"):
        return queryset
    if viewer.can("customers.view_own"):
        return queryset.filter(owner=viewer)
    return queryset.none()


_PLATE_SHAPE = re.compile(r"^[\u4e00-\u9fff][A-Za-z][·.\s-]?[A-Za-z0-9]{5,6}$")
_TAIL = re.compile(r"^[A-Za-z0-9]+$")
PLATE_TAIL_MIN, PLATE_TAIL_MAX = 3, 7  # "U92" … "BZRU92D": the plate's characters after the province
VIN_TAIL_MIN = 6
DIGITS_MIN = 4


def customer_search_ids(*, query: str) -> QuerySet[Any] | None:
    """Ids of customers matching `query`, chosen by its shape so that each search uses an index
    (docs/customers.md#search states the rules exactly). None when the query is empty."""
    query = unicodedata.normalize("NFKC", query).strip()  # full-width ＺＲＵ９２ is ZRU92
    if not query:
        return None
    if _PLATE_SHAPE.match(query):
        with contextlib.suppress(ValidationError):
            return Vehicle.objects.filter(plate=normalize_plate(query)).values("customer_id")
    compact = re.sub(r"[\s·.\-]", "", query)
    if len(compact) == 17 and compact.isalnum() and compact.isascii():
        return Vehicle.objects.filter(vin=compact.upper()).values("customer_id")
    digits = compact.removeprefix("+86")
    if digits.isdigit() and digits.isascii() and len(digits) >= DIGITS_MIN:
        by_mobile = Customer.objects.filter(mobile_reversed__prefix=digits[::-1]).values("pk")
        if len(digits) >= 11:
            return by_mobile
        # "…5678" may end a mobile, a VIN (车架号后六位 are usually digits) or a plate: each by its index
        if len(digits) <= PLATE_TAIL_MAX:
            return by_mobile.union(_by_vin_tail(digits), _by_plate_tail(digits))
        return by_mobile.union(_by_vin_tail(digits))
    if _TAIL.match(compact) and any(c.isdigit() for c in compact) and any(c.isalpha() for c in compact):
        if len(compact) < PLATE_TAIL_MIN:
            return _by_name(query)
        tails = []
        if len(compact) <= PLATE_TAIL_MAX:
            tails.append(_by_plate_tail(compact))
        if len(compact) >= VIN_TAIL_MIN:
            tails.append(_by_vin_tail(compact))
        return tails[0].union(*tails[1:]) if len(tails) > 1 else tails[0]
    return _by_name(query).union(Customer.objects.filter(external_id=query).values("pk"))


def _by_name(query: str) -> QuerySet[Any]:
    """Names containing the query (NFKC, spaces ignored, A-Z in any case), or whose pinyin initials
    start with it: a prefix search over CustomerSearchTerm (every suffix of each name, every variant
    of its initials)."""
    return CustomerSearchTerm.objects.filter(term__prefix=search_text(query)).values("customer_id")


def _by_vin_tail(tail: str) -> QuerySet[Any]:
    return Vehicle.objects.filter(vin_reversed__prefix=tail.upper()[::-1]).values("customer_id")


def _by_plate_tail(tail: str) -> QuerySet[Any]:
    return Vehicle.objects.filter(plate_reversed__prefix=tail.upper()[::-1]).values("customer_id")


# Up to this many matches, a search hands the list query the ids themselves (see customer_search).
SEARCH_IDS_INLINE = 2000


def customer_search(queryset: QuerySet[Customer], *, query: str) -> QuerySet[Customer]:
    ids = customer_search_ids(query=query)
    if ids is None:
        return queryset
    # With the matches as a subquery, PostgreSQL may answer "newest 26 of them" by walking the
    # dealership's newest-first index and probing each row, when it overestimates how many match:
    # a second for a rare name among a million customers. Fetch the ids first (one index scan);
    # only a very common prefix (then the walk finds 26 quickly) keeps the subquery.
    found = [next(iter(row.values())) for row in ids[: SEARCH_IDS_INLINE + 1]]
    return queryset.filter(pk__in=found if len(found) <= SEARCH_IDS_INLINE else ids)


SORTS = {
    "newest": ("-created_at", "-id"),
    "name": ("name", "id"),
    "last_visit": ("-last_visit_on", "-id"),
    "stale": ("last_visit_on", "id"),
}


@dataclass(frozen=True)
class CustomerFilters:
    """The list filters shared by the customer page, its export and the API."""

    q: str = ""
    lifecycle_stage: str = ""
    relationship_class: str = ""
    owner: int | None = None
    tag: str = ""
    list_flag: str = ""
    consent: str = ""  # call / sms / wechat / email: only customers who allow that channel
    last_visit_from: date | None = None
    last_visit_to: date | None = None
    sort: str = "newest"
    ids: tuple[int, ...] = ()  # a selection of the list (bulk export): only these customers


def customer_list(*, viewer: Membership, filters: CustomerFilters) -> QuerySet[Customer]:
    queryset = customer_search(customer_visible_to(viewer=viewer), query=filters.q)
    if filters.lifecycle_stage:
        queryset = queryset.filter(lifecycle_stage=filters.lifecycle_stage)
    if filters.relationship_class:
        queryset = queryset.filter(relationship_class=filters.relationship_class)
    if filters.owner:
        queryset = queryset.filter(owner_id=filters.owner)
    if filters.tag:
        queryset = queryset.filter(tags__contains=[filters.tag])
    if filters.list_flag:
        queryset = queryset.filter(list_flag=filters.list_flag)
    if filters.consent in CONSENT_FIELDS:
        queryset = queryset.filter(**{CONSENT_FIELDS[filters.consent]: True})
    if filters.last_visit_from:
        queryset = queryset.filter(last_visit_on__gte=filters.last_visit_from)
    if filters.last_visit_to:
        queryset = queryset.filter(last_visit_on__lte=filters.last_visit_to)
    if filters.ids:
        queryset = queryset.filter(pk__in=filters.ids)
    return queryset.order_by(*SORTS.get(filters.sort, SORTS["newest"]))


def customer_get_visible(*, viewer: Membership, customer_id: int) -> Customer:
    """One customer, or Customer.DoesNotExist (a 404) when the viewer may not see it."""
    return customer_visible_to(viewer=viewer).get(pk=customer_id)


def customer_consent_history(*, customer: Customer) -> QuerySet[ConsentChange]:
    """Every change of the customer's consent, newest first (the customer is already visible)."""
    return customer.consent_changes.select_related("set_by").order_by("-recorded_at", "-id")


def consent_set_by_name(change: ConsentChange) -> str | None:
    """Who recorded a consent change, as staff names are shown (family name first)."""
    user = change.set_by
    if user is None:
        return None
    return f"{user.last_name}{user.first_name}".strip() or user.get_username()


def customer_shows_full_pii(*, viewer: Membership, customer: Customer) -> bool:
    """Numbers are shown in full only to the customer's owner (and to integrations by role)."""
    return customer.owner_id == viewer.pk or viewer.can("customers.unmasked_bulk")


def customer_masked_value(*, viewer: Membership, customer: Customer, field: str) -> str:
    value: str = getattr(customer, field)
    if customer_shows_full_pii(viewer=viewer, customer=customer):
        return value
    if field in ("mobile", "mobile_secondary"):
        return mask_mobile(value)
    if field == "id_number":
        return mask_id_number(value)
    if field == "email":
        return mask_email(value)
    raise NotAllowed(f"{field} is not a masked field")


def customer_count_owned_by(*, membership: Membership) -> int:
    return Customer.objects.filter(owner=membership).count()


def customer_home_card(*, viewer: Membership) -> dict[str, Any] | None:
    """The home page's customer count: the dealership's or the viewer's own book, by role."""
    if not (viewer.can("customers.view_all") or viewer.can("customers.view_own")):
        return None
    return {"customer_count": customer_visible_to(viewer=viewer).count()}


def customer_find_duplicates(*, mobile: str = "", vin: str = "", exclude_id: int | None = None) -> list[Customer]:
    """Possible duplicates of a new or edited record: same mobile, or owns the same VIN."""
    condition = Q()
    if mobile:
        condition |= Q(mobile=mobile) | Q(mobile_secondary=mobile)
    if vin:
        condition |= Q(pk__in=Vehicle.objects.filter(vin=vin.strip().upper()).values("customer_id"))
    if not condition:
        return []
    queryset = Customer.objects.filter(condition, merged_into__isnull=True)
    if exclude_id:
        queryset = queryset.exclude(pk=exclude_id)
    return list(queryset.select_related("owner__user")[:10])
