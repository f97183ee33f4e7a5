"""Reads of customer data, always through the viewer's visibility."""

from __future__ import annotations

import contextlib

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from crm.core.errors import NotAllowed
from crm.tenancy.models import Membership
from customers.models import Customer
from customers.validators import mask_id_number, mask_mobile, normalize_plate


def customer_visible_to(*, viewer: Membership) -> QuerySet[Customer]:
    """Customers the viewer may see: the whole dealership, or only their own book."""
    queryset = Customer.objects.select_related("owner__user")
    if viewer.can("customers.view_all"):
        return queryset
    if viewer.can("customers.view_own"):
        return queryset.filter(owner=viewer)
    return queryset.none()


def customer_search(queryset: QuerySet[Customer], *, query: str) -> QuerySet[Customer]:
    """Find by name prefix, DMS id, mobile (7+ digits, matched from the end), plate or VIN."""
    condition = Q(name__startswith=query) | Q(external_id=query)
    digits = "".join(ch for ch in query if ch.isdigit())
    if len(digits) >= 7:
        condition |= Q(mobile__endswith=digits)
    with contextlib.suppress(ValidationError):  # not a plate: search the other fields
        condition |= Q(vehicles__plate=normalize_plate(query))
    if len(query) == 17:
        condition |= Q(vehicles__vin=query.upper())
    return queryset.filter(condition).distinct()


def customer_get_visible(*, viewer: Membership, customer_id: int) -> Customer:
    """One customer, or Customer.DoesNotExist (a 404) when the viewer may not see it."""
    return customer_visible_to(viewer=viewer).get(pk=customer_id)


def customer_shows_full_pii(*, viewer: Membership, customer: Customer) -> bool:
    """Numbers are shown in full only to the customer's owner (and to integrations by role)."""
    return customer.owner_id == viewer.pk or viewer.can("customers.unmasked_bulk")


def customer_masked_value(*, viewer: Membership, customer: Customer, field: str) -> str:
    value: str = getattr(customer, field)
    if customer_shows_full_pii(viewer=viewer, customer=customer):
        return value
    if field == "mobile":
        return mask_mobile(value)
    if field == "id_number":
        return mask_id_number(value)
    raise NotAllowed(f"{field} is not a masked field")


def customer_count_owned_by(*, membership: Membership) -> int:
    return Customer.objects.filter(owner=membership).count()
