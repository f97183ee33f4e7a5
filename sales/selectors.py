"""Reads of sales: who sees which lead, "my leads today", the lead list, the pool, the funnel.

Visibility (the product's privacy rule): who holds `sales.view_all` sees the dealership's leads;
a consultant (`sales.work` only) sees their own leads and the pool, not a colleague's lead, not
even by URL or through the API. Mobiles are shown in full only to the lead's own consultant.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Case, Count, Q, QuerySet, When
from django.urls import reverse
from django.utils import timezone

from crm.core.period import Period
from crm.tenancy.models import Membership
from customers.validators import mask_mobile
from sales.models import (
    ONLINE_SOURCES,
    OPEN_STAGES,
    STAGE_ORDER,
    Conflict,
    DefeatStatus,
    DemoVehicle,
    Lead,
    LeadEvent,
    Quote,
    SalesSettings,
    ShowroomVisit,
    Stage,
    TestDrive,
)

# H before A before B before C (the letters do not sort that way)
LEVEL_RANK = Case(When(level="H", then=1), When(level="A", then=2), When(level="B", then=3), default=4).asc()


def lead_visible_to(*, viewer: Membership) -> QuerySet[Lead]:
    leads = Lead.objects.select_related("owner__user", "customer")
    if viewer.can("sales.view_all"):
        return leads
    if viewer.can("sales.work"):
        return leads.filter(Q(owner=viewer) | Q(owner__isnull=True, stage__in=OPEN_STAGES))
    return leads.none()


def lead_get_visible(*, viewer: Membership, lead_id: int) -> Lead:
    return lead_visible_to(viewer=viewer).get(pk=lead_id)


def lead_mobile_shown(*, viewer: Membership, lead: Lead) -> str:
    """In full to the lead's consultant and to integrations; masked (138****8000) to everyone else."""
    if lead.owner_id == viewer.pk or viewer.can("customers.unmasked_bulk"):
        return lead.mobile
    return mask_mobile(lead.mobile)


def leads_today(*, viewer: Membership, on: date | None = None) -> QuerySet[Lead]:
    """ "My leads today": the viewer's open, awake leads whose next follow-up is today or earlier,
    the most overdue first, then H before A before B before C, then the oldest."""
    on = on or timezone.localdate()
    return (
        Lead.objects.filter(owner=viewer, stage__in=OPEN_STAGES, next_followup_on__lte=on, dormant_since__isnull=True)
        .select_related("customer")
        .order_by("next_followup_on", LEVEL_RANK, "created_at", "id")
    )


def lead_pool(*, viewer: Membership) -> QuerySet[Lead]:
    return (
        lead_visible_to(viewer=viewer).filter(owner__isnull=True, stage__in=OPEN_STAGES).order_by("-created_at", "-id")
    )


# The list's sort keys; the default is the first.
LEAD_SORTS = {
    "-created": ("-created_at", "-id"),
    "created": ("created_at", "id"),
    "next": ("next_followup_on", "id"),
    "-next": ("-next_followup_on", "-id"),
    "level": (LEVEL_RANK, "-created_at", "-id"),
}

# "reached" filter: a lead has reached a stage when it reached it or any later one (the funnel's rule)
REACHED_FIELD = {
    Stage.NEW: None,
    Stage.CONTACTED: "first_contact_at",
    Stage.INVITED: "invited_at",
    Stage.VISITED: "visited_at",
    Stage.TEST_DRIVE: "test_drive_at",
    Stage.NEGOTIATION: "quoted_at",
    Stage.ORDERED: "ordered_at",
    Stage.DELIVERED: "delivered_at",
}


def reached(stage: str) -> Q:
    """Leads that reached `stage` or any stage after it (docs/sales.md#funnel)."""
    index = STAGE_ORDER.index(Stage(stage))
    condition = Q()
    for later in STAGE_ORDER[index:]:
        name = REACHED_FIELD[later]
        if name is None:
            return Q()  # every lead reached "new"
        condition |= Q(**{f"{name}__isnull": False})
    return condition


@dataclass(frozen=True)
class LeadFilters:
    q: str = ""  # name, or the mobile's digits (at least 4)
    stage: str = ""  # a stage, "open" or "closed"
    level: str = ""
    source: str = ""
    owner: Membership | None = None
    pool: bool = False
    series: str = ""
    created_from: date | None = None
    created_to: date | None = None
    reached: str = ""  # leads that reached this stage (or a later one)
    defeat: str = ""  # "pending": defeats waiting for approval
    due: bool = False  # next follow-up today or earlier
    dormant: bool | None = None
    customer_id: int | None = None
    updated_since: datetime | None = None
    sort: str = "-created"
    ids: tuple[int, ...] = field(default=())


def lead_list(*, viewer: Membership, filters: LeadFilters) -> QuerySet[Lead]:
    leads = lead_visible_to(viewer=viewer)
    f = filters
    if f.q:
        digits = "".join(ch for ch in f.q if ch.isdigit())
        if len(digits) >= 4 and len(digits) == len(f.q.strip().lstrip("+")):
            leads = leads.filter(mobile__contains=digits)
        else:
            leads = leads.filter(name__icontains=f.q.strip())
    if f.stage == "open":
        leads = leads.filter(stage__in=OPEN_STAGES)
    elif f.stage == "closed":
        leads = leads.exclude(stage__in=OPEN_STAGES)
    elif f.stage:
        leads = leads.filter(stage=f.stage)
    if f.level:
        leads = leads.filter(level=f.level)
    if f.source:
        leads = leads.filter(source=f.source)
    if f.owner is not None:
        leads = leads.filter(owner=f.owner)
    if f.pool:
        leads = leads.filter(owner__isnull=True)
    if f.series:
        leads = leads.filter(series=f.series)
    if f.created_from:
        leads = leads.filter(created_at__date__gte=f.created_from)
    if f.created_to:
        leads = leads.filter(created_at__date__lte=f.created_to)
    if f.reached:
        leads = leads.filter(reached(f.reached))
    if f.defeat == "pending":
        leads = leads.filter(defeat_status=DefeatStatus.PENDING)
    elif f.defeat == "approved":
        leads = leads.filter(stage=Stage.DEFEATED)
    if f.due:  # what is in someone's "my leads today": held, open, awake, due today or earlier
        leads = leads.filter(
            stage__in=OPEN_STAGES,
            owner__isnull=False,
            dormant_since__isnull=True,
            next_followup_on__lte=timezone.localdate(),
        )
    if f.dormant is not None:
        leads = leads.filter(dormant_since__isnull=not f.dormant)
    if f.customer_id:
        leads = leads.filter(customer_id=f.customer_id)
    if f.updated_since:
        leads = leads.filter(updated_at__gte=f.updated_since)
    if f.ids:
        leads = leads.filter(pk__in=f.ids)
    return leads.order_by(*LEAD_SORTS.get(f.sort, LEAD_SORTS["-created"]))


def lead_history(*, lead: Lead) -> QuerySet[LeadEvent]:
    return LeadEvent.objects.filter(lead=lead).select_related("actor__user", "from_owner__user", "to_owner__user")


def lead_quotes(*, lead: Lead) -> QuerySet[Quote]:
    return Quote.objects.filter(lead=lead).order_by("-version")


def lead_test_drives(*, lead: Lead) -> QuerySet[TestDrive]:
    return TestDrive.objects.filter(lead=lead).select_related("vehicle").order_by("-starts_at")


def pending_conflicts(*, viewer: Membership) -> QuerySet[Conflict]:
    if not viewer.can("sales.manage"):
        return Conflict.objects.none()
    return Conflict.objects.filter(status=Conflict.Status.PENDING).select_related(
        "lead", "claimant__user", "owner__user"
    )


def showroom_visits(*, viewer: Membership, on: date | None = None) -> QuerySet[ShowroomVisit]:
    visits = ShowroomVisit.objects.select_related("lead", "consultant__user").order_by("-arrived_at", "-id")
    if on is not None:
        visits = visits.filter(arrived_at__date=on)
    if viewer.can("sales.view_all"):
        return visits
    if viewer.can("sales.work"):
        return visits.filter(Q(consultant=viewer) | Q(lead__owner=viewer))
    return visits.none()


def demo_vehicles(*, active: bool = True) -> QuerySet[DemoVehicle]:
    vehicles = DemoVehicle.objects.all()
    return vehicles.filter(is_active=True) if active else vehicles


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    ends_at: datetime
    free: bool


def test_drive_slots(*, vehicle: DemoVehicle, on: date, minutes: int = 60) -> list[Slot]:
    """The day's bookable slots of a demo vehicle within the dealership's business hours, each
    `minutes` long, and whether it is free (no booked or driven test drive overlaps it)."""
    from crm.core.business_time import BusinessCalendar
    from crm.tenancy.context import require_tenant_id
    from crm.tenancy.models import Tenant

    calendar = BusinessCalendar.for_tenant(Tenant.objects.get(pk=require_tenant_id()))
    taken = list(
        TestDrive.objects.filter(
            vehicle=vehicle,
            status__in=[TestDrive.Status.BOOKED, TestDrive.Status.DONE],
            starts_at__date__lte=on + timedelta(days=1),
            ends_at__date__gte=on - timedelta(days=1),
        ).values_list("starts_at", "ends_at")
    )
    slots = []
    step = timedelta(minutes=minutes)
    for span_start, span_end in calendar.spans_on(on):
        start = span_start
        while start + step <= span_end:
            end = start + step
            slots.append(Slot(start, end, not any(s < end and start < e for s, e in taken)))
            start = end
    return slots


# --- the funnel -------------------------------------------------------------------------------------

FUNNEL_STEPS = (
    Stage.NEW,
    Stage.CONTACTED,
    Stage.INVITED,
    Stage.VISITED,
    Stage.TEST_DRIVE,
    Stage.ORDERED,
    Stage.DELIVERED,
)
AGE_BUCKETS = ((0, 7), (8, 30), (31, 90), (91, None))


def _rate(part: int, whole: int) -> Decimal | None:
    """part ÷ whole as a percentage to one decimal, halves rounded up; None when whole is 0."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def _median(values: list[int]) -> Decimal | None:
    if not values:
        return None
    return Decimal(str(statistics.median(values))).quantize(Decimal("0.1"), ROUND_HALF_UP)


@dataclass(frozen=True)
class FunnelFilters:
    period: Period
    source: str = ""
    owner: Membership | None = None
    series: str = ""


def _cohort(viewer: Membership, filters: FunnelFilters) -> QuerySet[Lead]:
    leads = lead_visible_to(viewer=viewer).filter(
        created_at__date__gte=filters.period.start, created_at__date__lte=filters.period.end
    )
    if filters.source:
        leads = leads.filter(source=filters.source)
    if filters.owner is not None:
        leads = leads.filter(owner=filters.owner)
    if filters.series:
        leads = leads.filter(series=filters.series)
    return leads


def _step_counts(leads: QuerySet[Lead]) -> dict[str, int]:
    aggregates = {
        step.value: Count("id", filter=reached(step)) if step != Stage.NEW else Count("id") for step in FUNNEL_STEPS
    }
    return leads.aggregate(**aggregates)


def _rates(counts: dict[str, int]) -> dict[str, Decimal | None]:
    return {
        "visit_rate": _rate(counts[Stage.VISITED], counts[Stage.NEW]),
        "test_drive_rate": _rate(counts[Stage.TEST_DRIVE], counts[Stage.VISITED]),
        "close_rate": _rate(counts[Stage.ORDERED], counts[Stage.VISITED]),
        "lead_close_rate": _rate(counts[Stage.ORDERED], counts[Stage.NEW]),
    }


def funnel(*, viewer: Membership, filters: FunnelFilters, now: datetime | None = None) -> dict[str, Any]:
    """The sales funnel for the leads captured in the period (docs/sales.md#funnel states each figure)."""
    now = now or timezone.now()
    leads = _cohort(viewer, filters)
    counts = _step_counts(leads)
    settings = SalesSettings.objects.first()
    limit = settings.response_minutes if settings else 30
    online = leads.filter(source__in=ONLINE_SOURCES, assigned_at__isnull=False)
    responses = [
        minutes
        for minutes in online.filter(response_minutes__isnull=False).values_list("response_minutes", flat=True)
        if minutes is not None
    ]
    within = sum(1 for minutes in responses if minutes <= limit)
    overdue_unanswered = online.filter(response_minutes__isnull=True, response_due_at__lt=now).count()
    judged = len(responses) + overdue_unanswered
    today = timezone.localdate(now)
    open_leads = leads.filter(stage__in=OPEN_STAGES)
    ageing = []
    for low, high in AGE_BUCKETS:
        bucket = open_leads.filter(created_at__date__lte=today - timedelta(days=low))
        if high is not None:
            bucket = bucket.filter(created_at__date__gte=today - timedelta(days=high))
        ageing.append({"from_days": low, "to_days": high, "leads": bucket.count()})
    defeats = list(
        leads.filter(stage=Stage.DEFEATED)
        .values("defeat_reason__code", "defeat_reason__label")
        .annotate(leads=Count("id"))
        .order_by("-leads", "defeat_reason__label")
    )
    competitors = list(
        leads.filter(stage=Stage.DEFEATED)
        .exclude(competitor_brand="")
        .values("competitor_brand", "competitor_model")
        .annotate(leads=Count("id"))
        .order_by("-leads", "competitor_brand", "competitor_model")[:10]
    )
    return {
        "period": filters.period,
        "steps": [
            {"stage": step.value, "label": str(step.label), "leads": counts[step.value]} for step in FUNNEL_STEPS
        ],
        **_rates(counts),
        "response": {
            "limit_minutes": limit,
            "median_minutes": _median(responses),
            "responded": len(responses),
            "within_limit": within,
            "overdue_unanswered": overdue_unanswered,
            "within_share": _rate(within, judged),
        },
        "ageing": ageing,
        "defeats": [
            {"reason": row["defeat_reason__code"], "label": row["defeat_reason__label"], "leads": row["leads"]}
            for row in defeats
        ],
        "competitors": competitors,
        "pending_defeats": leads.filter(defeat_status=DefeatStatus.PENDING).count(),
        "pool": lead_visible_to(viewer=viewer).filter(owner__isnull=True, stage__in=OPEN_STAGES).count(),
    }


def funnel_breakdown(*, viewer: Membership, filters: FunnelFilters, by: str) -> list[dict[str, Any]]:
    """The funnel's steps and rates per source, consultant (owner) or model (series) — one row each,
    the largest first."""
    column = {"source": "source", "owner": "owner", "series": "series"}[by]
    leads = _cohort(viewer, filters)
    aggregates = {
        step.value: Count("id", filter=reached(step)) if step != Stage.NEW else Count("id") for step in FUNNEL_STEPS
    }
    rows = leads.values(column).annotate(**aggregates).order_by(f"-{Stage.NEW.value}", column)
    owners = {}
    if by == "owner":
        ids = [row["owner"] for row in rows if row["owner"]]
        owners = {m.pk: m.display_name for m in Membership.objects.filter(pk__in=ids).select_related("user")}
    result = []
    for row in rows:
        key = row[column]
        label = owners.get(key, "") if by == "owner" else key
        result.append(
            {"key": key, "label": label, "steps": {s.value: row[s.value] for s in FUNNEL_STEPS}, **_rates(row)}
        )
    return result


def sales_home_card(*, viewer: Membership) -> dict[str, Any] | None:
    if not viewer.can("sales.work"):
        return None
    return {
        "due_today": leads_today(viewer=viewer).count(),
        "pool": lead_pool(viewer=viewer).count(),
        "url": reverse("sales:today"),
    }


def customer_sales_panel(*, customer: Any, viewer: Membership, **_: Any) -> dict[str, Any] | None:
    """The customer page's sales panel: the person's leads the viewer may see."""
    if not (viewer.can("sales.view_all") or viewer.can("sales.work")):
        return None
    leads = list(lead_visible_to(viewer=viewer).filter(customer=customer).order_by("-created_at")[:10])
    if not leads:
        return None
    return {"leads": leads}


def lead_count_owned_by(*, membership: Membership) -> int:
    return Lead.objects.filter(owner=membership, stage__in=OPEN_STAGES).count()
