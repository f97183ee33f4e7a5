"""Reads of follow-ups: a person's queue, the pool, the calendar, the team figures.

Visibility: who sees every follow-up (`followups.view_all`) sees the dealership's; everyone else
sees what they hold and what concerns their own customers.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import BooleanField, Case, Count, Q, QuerySet, Value, When
from django.utils import timezone

from crm.core.period import Period
from crm.tenancy.models import Membership
from followups.models import ACTIVE_STATUSES, Attempt, Followup, FollowupSettings, Status


def followup_visible_to(*, viewer: Membership) -> QuerySet[Followup]:
    followups = Followup.objects.filter(customer__merged_into__isnull=True).select_related(
        "customer", "vehicle", "assignee__user"
    )
    if viewer.can("followups.view_all"):
        return followups
    if viewer.can("followups.work"):
        return followups.filter(Q(assignee=viewer) | Q(customer__owner=viewer))
    return followups.none()


def queue_order(followups: QuerySet[Followup], on: date) -> QuerySet[Followup]:
    """Overdue first, then by tier priority, then the oldest scheduled."""
    return followups.annotate(
        overdue=Case(When(due_until__lt=on, then=Value(True)), default=Value(False), output_field=BooleanField())
    ).order_by("-overdue", "priority", "scheduled_on", "due_until", "id")


def followup_queue(
    *, viewer: Membership, on: date | None = None, assignee: Membership | None = None
) -> QuerySet[Followup]:
    """What is to be done on `on` (today by default): open or to-retry follow-ups scheduled for that
    day or earlier, held by `assignee` (the viewer by default)."""
    on = on or timezone.localdate()
    holder = assignee or viewer
    followups = followup_visible_to(viewer=viewer).filter(
        assignee=holder, status__in=ACTIVE_STATUSES, scheduled_on__lte=on
    )
    return queue_order(followups, on)


def followup_pool(*, viewer: Membership, on: date | None = None) -> QuerySet[Followup]:
    """Follow-ups nobody holds yet (no agent had room for them, or their holder left)."""
    on = on or timezone.localdate()
    if not viewer.can("followups.view_all"):
        return Followup.objects.none()
    followups = followup_visible_to(viewer=viewer).filter(
        assignee__isnull=True, status__in=ACTIVE_STATUSES, scheduled_on__lte=on
    )
    return queue_order(followups, on)


# The list's sort keys (its Scheduled for and Window headers); the default is the first.
FOLLOWUP_SORTS = {
    "scheduled": ("scheduled_on", "priority", "id"),
    "-scheduled": ("-scheduled_on", "priority", "-id"),
    "due": ("due_until", "priority", "id"),
    "-due": ("-due_until", "priority", "-id"),
}


@dataclass(frozen=True)
class FollowupFilters:
    status: str = ""  # a status, or "active" (open or to retry)
    reason: str = ""
    assignee: Membership | None = None
    pool: bool = False  # nobody holds it
    customer_id: int | None = None
    scheduled_from: date | None = None
    scheduled_to: date | None = None
    overdue: bool = False
    on: date | None = None  # what "overdue" is counted from (today by default)
    sort: str = "scheduled"  # a key of FOLLOWUP_SORTS


def followup_list(*, viewer: Membership, filters: FollowupFilters) -> QuerySet[Followup]:
    followups = followup_visible_to(viewer=viewer)
    if filters.status == "active":
        followups = followups.filter(status__in=ACTIVE_STATUSES)
    elif filters.status:
        followups = followups.filter(status=filters.status)
    if filters.reason:
        followups = followups.filter(reason=filters.reason)
    if filters.assignee is not None:
        followups = followups.filter(assignee=filters.assignee)
    if filters.pool:
        followups = followups.filter(assignee__isnull=True)
    if filters.customer_id:
        followups = followups.filter(customer_id=filters.customer_id)
    if filters.scheduled_from:
        followups = followups.filter(scheduled_on__gte=filters.scheduled_from)
    if filters.scheduled_to:
        followups = followups.filter(scheduled_on__lte=filters.scheduled_to)
    on = filters.on or timezone.localdate()
    if filters.overdue:
        followups = followups.filter(status__in=ACTIVE_STATUSES, due_until__lt=on)
    return followups.order_by(*FOLLOWUP_SORTS.get(filters.sort, FOLLOWUP_SORTS["scheduled"]))


def followup_get_visible(*, viewer: Membership, followup_id: int) -> Followup:
    return followup_visible_to(viewer=viewer).get(pk=followup_id)


def followup_attempts(*, followup: Followup) -> QuerySet[Attempt]:
    return Attempt.objects.filter(followup=followup).select_related("staff__user").order_by("occurred_at", "id")


def customer_followups(*, viewer: Membership, customer_id: int, limit: int = 10) -> list[Followup]:
    return list(
        followup_visible_to(viewer=viewer).filter(customer_id=customer_id).order_by("-scheduled_on", "-id")[:limit]
    )


# --- Calendar ----------------------------------------------------------------------------------------


@dataclass
class CalendarDay:
    day: date
    in_month: bool
    active: int = 0  # open or to retry, scheduled for that day
    done: int = 0  # finished that day
    overdue: int = 0  # active, scheduled that day, window over before today

    @property
    def total(self) -> int:
        return self.active + self.done


@dataclass
class CalendarMonth:
    month: date  # the 1st
    weeks: list[list[CalendarDay]] = field(default_factory=list)
    previous: date | None = None
    following: date | None = None


def followup_calendar(*, viewer: Membership, month: date, assignee: Membership | None = None) -> CalendarMonth:
    """A month of work by day (Monday first): what is scheduled and what was finished. `assignee`
    None means the viewer's own; managers may pass anyone (or see the whole team with `team`)."""
    first = month.replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    grid_start = first - timedelta(days=first.weekday())
    grid_end = last + timedelta(days=6 - last.weekday())
    today = timezone.localdate()
    followups = followup_visible_to(viewer=viewer)
    if assignee is not None:
        followups = followups.filter(assignee=assignee)
    active = (
        followups.filter(status__in=ACTIVE_STATUSES, scheduled_on__range=(grid_start, grid_end))
        .values("scheduled_on")
        .annotate(n=Count("id"), late=Count("id", filter=Q(due_until__lt=today)))
    )
    zone = timezone.get_current_timezone()
    start, end = Period(grid_start, grid_end).bounds(zone)
    done = (
        followups.filter(status=Status.DONE, completed_at__gte=start, completed_at__lt=end)
        .values_list("completed_at", flat=True)
        .iterator()
    )
    days = {
        grid_start + timedelta(days=i): CalendarDay(grid_start + timedelta(days=i), False)
        for i in range((grid_end - grid_start).days + 1)
    }
    for cell in days.values():
        cell.in_month = cell.day.month == first.month
    for row in active:
        days[row["scheduled_on"]].active = row["n"]
        days[row["scheduled_on"]].overdue = row["late"]
    for finished in done:
        local = timezone.localtime(finished, zone).date()
        if local in days:
            days[local].done += 1
    ordered = [days[d] for d in sorted(days)]
    return CalendarMonth(
        month=first,
        weeks=[ordered[i : i + 7] for i in range(0, len(ordered), 7)],
        previous=(first - timedelta(days=1)).replace(day=1),
        following=last + timedelta(days=1),
    )


# --- The manager's figures ---------------------------------------------------------------------------


@dataclass
class PersonLoad:
    member: Membership | None  # None: the pool
    due_today: int = 0
    overdue: int = 0
    upcoming: int = 0  # scheduled after today
    done: int = 0  # in the period
    unreachable: int = 0
    expired: int = 0

    @property
    def finished(self) -> int:
        return self.done + self.unreachable + self.expired

    @property
    def completion_rate(self) -> float | None:
        return round(100 * self.done / self.finished, 1) if self.finished else None


@dataclass
class TeamFigures:
    period: Period
    on: date
    people: list[PersonLoad]
    totals: PersonLoad
    by_reason: list[dict[str, Any]]


def followup_team_figures(*, viewer: Membership, period: Period, on: date | None = None) -> TeamFigures:
    """Completion rate (done ÷ finished: done, unreachable or expired) over the period, overdue work
    and each person's load today. Only for those who see every follow-up."""
    on = on or timezone.localdate()
    followups = followup_visible_to(viewer=viewer) if viewer.can("followups.view_all") else Followup.objects.none()
    zone = timezone.get_current_timezone()
    start, end = period.bounds(zone)
    load = (
        followups.filter(status__in=ACTIVE_STATUSES)
        .values("assignee")
        .annotate(
            due_today=Count("id", filter=Q(scheduled_on__lte=on, due_until__gte=on)),
            overdue=Count("id", filter=Q(due_until__lt=on)),
            upcoming=Count("id", filter=Q(scheduled_on__gt=on)),
        )
    )
    finished = (
        followups.filter(completed_at__gte=start, completed_at__lt=end)
        .values("completed_by")
        .annotate(
            done=Count("id", filter=Q(status=Status.DONE)),
            unreachable=Count("id", filter=Q(status=Status.UNREACHABLE)),
        )
    )
    # expired follow-ups have no one who finished them: they count against whoever held them
    expired = (
        followups.filter(
            status=Status.EXPIRED, due_until__gte=period.start - timedelta(days=1), due_until__lt=period.end
        )
        .values("assignee")
        .annotate(n=Count("id"))
    )
    people: dict[int | None, PersonLoad] = {}
    members = {
        m.pk: m
        for m in Membership.objects.filter(is_active=True, is_service_account=False).select_related("user")
        if m.can("followups.work")
    }
    for pk, member in members.items():
        people[pk] = PersonLoad(member=member)

    def person(pk: int | None) -> PersonLoad:
        if pk not in people:
            member = members.get(pk) if pk is not None else None
            if pk is not None and member is None:
                member = Membership.objects.select_related("user").filter(pk=pk).first()
            people[pk] = PersonLoad(member=member)
        return people[pk]

    for row in load:
        p = person(row["assignee"])
        p.due_today, p.overdue, p.upcoming = row["due_today"], row["overdue"], row["upcoming"]
    for row in finished:
        p = person(row["completed_by"])
        p.done += row["done"]
        p.unreachable += row["unreachable"]
    for row in expired:
        person(row["assignee"]).expired += row["n"]
    totals = PersonLoad(member=None)
    for p in people.values():
        for name in ("due_today", "overdue", "upcoming", "done", "unreachable", "expired"):
            setattr(totals, name, getattr(totals, name) + getattr(p, name))
    by_reason = list(
        followups.filter(Q(status__in=ACTIVE_STATUSES) | Q(completed_at__gte=start, completed_at__lt=end))
        .values("reason")
        .annotate(
            active=Count("id", filter=Q(status__in=ACTIVE_STATUSES)),
            done=Count("id", filter=Q(status=Status.DONE)),
            unreachable=Count("id", filter=Q(status=Status.UNREACHABLE)),
        )
        .order_by("reason")
    )
    ordered = sorted(
        people.values(),
        key=lambda p: (p.member is None, -(p.due_today + p.overdue), p.member.display_name if p.member else ""),
    )
    return TeamFigures(period=period, on=on, people=ordered, totals=totals, by_reason=by_reason)


def customer_followup_panel(*, customer: Any, viewer: Membership) -> dict[str, Any] | None:
    """The customer page's follow-up card: what is open and the last few done, with a "plan a call" link."""
    if not (viewer.can("followups.work") or viewer.can("followups.view_all")):
        return None
    followups = customer_followups(viewer=viewer, customer_id=customer.pk)
    return {
        "followups": followups,
        "open": [f for f in followups if f.is_active],
        "can_plan": viewer.can("followups.work"),
    }


def followup_settings_current() -> FollowupSettings:
    """The dealership's rules for reading: the saved row, or the defaults unsaved (a page that only
    shows them must not write; services.followup_settings() saves them on first change)."""
    return FollowupSettings.objects.first() or FollowupSettings()
