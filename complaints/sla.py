"""SLA clocks of complaint tickets, counted in the dealership's business hours.

Targets come from the most specific SlaPolicy (severity + category, else severity alone, else the
built-in defaults below). At opening a ticket gets its due moments and its 80% warning moments.
While it waits on the customer the clocks stop; resuming moves every pending moment later by the
business time spent waiting, exactly (never rounded to minutes). The periodic check
(tasks.sla_check_task) warns the assignee at 80% and escalates to managers at breach, each exactly
once per stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, Q

from complaints.models import ComplaintCategory, Severity, SlaPolicy
from crm.core.business_time import BusinessCalendar
from crm.tenancy.models import Tenant

WARN_AT = 0.8

# Business minutes: (first response, resolution). A working day here is 8 hours = 480 minutes.
DEFAULT_TARGETS: dict[str, tuple[int, int]] = {
    Severity.CRITICAL: (30, 480),
    Severity.HIGH: (60, 960),
    Severity.NORMAL: (240, 1440),
    Severity.LOW: (480, 2400),
}


@dataclass(frozen=True)
class Targets:
    response_minutes: int
    resolution_minutes: int


def targets_for(*, severity: str, category: ComplaintCategory | None) -> Targets:
    """The category's own policy for this severity, else the severity's, else the defaults."""
    policies = SlaPolicy.objects.filter(severity=severity)
    scope = Q(category__isnull=True) | (Q(category=category) if category else Q())
    policy = policies.filter(scope).order_by(F("category").asc(nulls_last=True)).first()
    if policy is not None:
        return Targets(policy.first_response_minutes, policy.resolution_minutes)
    response, resolution = DEFAULT_TARGETS[severity]
    return Targets(response, resolution)


def calendar_for(tenant: Tenant) -> BusinessCalendar:
    return BusinessCalendar.for_tenant(tenant)


@dataclass(frozen=True)
class Clock:
    due_at: datetime
    warn_at: datetime


def clock(calendar: BusinessCalendar, *, start: datetime, minutes: int) -> Clock:
    return Clock(
        due_at=calendar.add_minutes(start, minutes),
        warn_at=calendar.add_minutes(start, minutes * WARN_AT),
    )


def shift(calendar: BusinessCalendar, moment: datetime, *, by: timedelta) -> datetime:
    """A pending moment moved later by `by` of business time (after waiting on the customer)."""
    return calendar.add(moment, by) if by else moment
