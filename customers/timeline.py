"""The customer timeline: one list of everything that happened with a customer.

The extension point `timeline_sources` (see crm/core/extensions.py). An app adds its entries by
registering a source in its hooks.py:

    def complaint_entries(*, customer, viewer, limit):
        for ticket in Ticket.objects.filter(customer=customer).order_by("-opened_at")[:limit]:
            yield TimelineEntry(at=ticket.opened_at, kind="complaint", title=..., detail=..., url=...)

    timeline_sources.register(TimelineSource(name="complaints", entries=complaint_entries))

A source receives the customer (already checked as visible to `viewer`) and returns at most
`limit` of its newest entries; the timeline merges all sources newest first.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.extensions import Contribution, ExtensionPoint
from crm.core.formatting import money
from crm.tenancy.models import Membership


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # touchpoint, order, ownership, complaint, survey, followup, points …
    title: str
    detail: str = ""
    url: str | None = None
    staff: str = ""


@dataclass(frozen=True, kw_only=True)
class TimelineSource(Contribution):
    entries: Callable[..., Iterable[TimelineEntry]]


timeline_sources: ExtensionPoint[TimelineSource] = ExtensionPoint("customers.timeline_sources", TimelineSource)


def _at(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(12, 0)))


def customer_timeline(*, customer: Any, viewer: Membership, limit: int = 100) -> list[TimelineEntry]:
    streams = [
        list(source.entries(customer=customer, viewer=viewer, limit=limit))
        for source in timeline_sources.contributions()
    ]
    merged = heapq.merge(
        *[sorted(s, key=lambda e: e.at, reverse=True) for s in streams], key=lambda e: e.at, reverse=True
    )
    return list(merged)[:limit]


def touchpoint_entries(*, customer: Any, viewer: Membership, limit: int) -> Iterable[TimelineEntry]:
    for tp in customer.touchpoints.select_related("staff__user", "vehicle").order_by("-occurred_at")[:limit]:
        yield TimelineEntry(
            at=tp.occurred_at,
            kind="touchpoint",
            title=f"{tp.get_channel_display()} · {tp.get_direction_display()} · {tp.get_outcome_display()}",
            detail=tp.notes,
            staff=tp.staff.display_name if tp.staff else "",
        )


def order_entries(*, customer: Any, viewer: Membership, limit: int) -> Iterable[TimelineEntry]:
    for order in customer.orders.select_related("vehicle", "staff__user").order_by("-ordered_on", "-id")[:limit]:
        status = "" if order.status == order.Status.COMPLETED else f" ({order.get_status_display()})"
        yield TimelineEntry(
            at=_at(order.ordered_on),
            kind="order",
            title=f"{order.get_kind_display()} {money(order.amount)}{status}",
            detail=order.vehicle.plate if order.vehicle else "",
            staff=order.staff.display_name if order.staff else "",
        )


def ownership_entries(*, customer: Any, viewer: Membership, limit: int) -> Iterable[TimelineEntry]:
    for own in customer.vehicle_ownerships.select_related("vehicle").order_by("-started_on")[:limit]:
        yield TimelineEntry(
            at=_at(own.started_on),
            kind="ownership",
            title=_("Became owner of %(vehicle)s") % {"vehicle": own.vehicle.plate or own.vehicle.vin},
            url=reverse("customers:detail", args=[customer.pk]),
        )
