"""The manager dashboard's figures: the four degrees (四度), customer information accuracy, the tier
distribution, the customer ladder and its month-on-month movement, complaint SLA compliance, CSAT
and NPS, follow-up completion and the points liability, for a period beside a comparison period.

Where a figure comes from:
- the customer base (tiers, ladder, loyalty, dependency, accuracy, points) from the nightly
  `CustomerStateDay` rows of the last aggregated day up to the period's end ("as of" that day);
- spend from the nightly `RevenueDay` rows of the period's days;
- satisfaction, complaints and follow-ups live from their own (small) tables.

Filters: `consultant` narrows everything to the customers that person owns; `advisor` narrows the
work that person did: orders they handled (spend), survey responses about them, follow-ups they
held. Figures of the customer base and complaints are not narrowed by the advisor (the page says so).
Definitions (also shown on hover, and in docs/dashboards.md) are in `DEFINITIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils.translation import gettext_lazy as _

from crm.core.period import Period, month_ends_before
from crm.tenancy.models import Membership
from customers.models import Customer, LifecycleStage, Order, Vehicle
from dashboards.aggregates import service_base_since
from dashboards.models import CustomerStateDay, RevenueDay, RevenueDayTotal
from followups.models import Followup
from loyalty.models import Member
from segmentation.models import TIER_ORDER, CustomerValue, Tier
from surveys.models import Response

LADDER = [
    LifecycleStage.PROSPECT,
    LifecycleStage.NEW,
    LifecycleStage.SATISFIED,
    LifecycleStage.RETAINED,
    LifecycleStage.LOYAL,
]
OFF_LADDER = [LifecycleStage.DORMANT, LifecycleStage.LOST]
LADDER_MONTHS = 6

DEFINITIONS: dict[str, Any] = {
    "satisfaction": _(
        "Satisfaction (满意度): the share of survey responses submitted in the period that rate us 4 or 5 "
        "out of 5 overall (CSAT)."
    ),
    "contribution": _(
        "Contribution (贡献度): net spend of the period's orders (reversed orders excluded), in CNY; "
        "below it, per customer in the base."
    ),
    "loyalty": _(
        "Loyalty (忠诚度): of the customers who have bought or been served (prospects excluded), the share "
        "that are retained or loyal on the ladder at the end of the period."
    ),
    "dependency": _(
        "Dependency (依存度): of the vehicles bought or serviced here in the last 24 months, the share that "
        "came to our workshop in the last 12 months (回厂率), at the end of the period."
    ),
    "accuracy": _(
        "Customer information accuracy (客户信息准确率): the share of scored customer records without any "
        "data-quality issue, at the end of the period."
    ),
}


@dataclass(frozen=True)
class DashboardFilters:
    consultant: Membership | None = None
    advisor: Membership | None = None


def _pct(part: float | int | Decimal | None, whole: float | int | Decimal | None) -> float | None:
    if not whole:
        return None
    return round(100 * float(part or 0) / float(whole), 1)


def state_day(on: date) -> date | None:
    """The last aggregated day up to `on` (the base "as of" which a period's end is shown)."""
    return CustomerStateDay.objects.filter(day__lte=on).aggregate(d=Max("day"))["d"]


def _state_rows(day: date | None, filters: DashboardFilters) -> QuerySet[CustomerStateDay]:
    rows = CustomerStateDay.objects.filter(day=day) if day else CustomerStateDay.objects.none()
    if filters.consultant is not None:
        rows = rows.filter(owner=filters.consultant)
    return rows


def base_figures(on: date, filters: DashboardFilters) -> dict[str, Any]:
    """The customer base at the end of `on` (its last aggregated day)."""
    day = state_day(on)
    rows = list(
        _state_rows(day, filters)
        .values("tier", "stage")
        .annotate(
            n=Sum("customers"),
            scored=Sum("scored"),
            accurate=Sum("accurate"),
            vehicles=Sum("vehicles"),
            returned=Sum("vehicles_returned"),
            points=Sum("points"),
        )
    )
    by_tier: dict[str, int] = {}
    by_stage: dict[str, int] = {}
    totals = dict.fromkeys(("n", "scored", "accurate", "vehicles", "returned", "points"), 0)
    for row in rows:
        by_tier[row["tier"]] = by_tier.get(row["tier"], 0) + row["n"]
        by_stage[row["stage"]] = by_stage.get(row["stage"], 0) + row["n"]
        for name in totals:
            totals[name] += row[name] or 0
    engaged = totals["n"] - by_stage.get(LifecycleStage.PROSPECT, 0)
    loyal = by_stage.get(LifecycleStage.RETAINED, 0) + by_stage.get(LifecycleStage.LOYAL, 0)
    return {
        "as_of": day,
        "customers": totals["n"],
        "by_tier": by_tier,
        "by_stage": by_stage,
        "loyalty": _pct(loyal, engaged),
        "loyal_customers": loyal,
        "engaged_customers": engaged,
        "dependency": _pct(totals["returned"], totals["vehicles"]),
        "vehicles": totals["vehicles"],
        "vehicles_returned": totals["returned"],
        "accuracy": _pct(totals["accurate"], totals["scored"]),
        "scored": totals["scored"],
        "accurate": totals["accurate"],
        "points": totals["points"],
    }


def revenue_figures(period: Period, filters: DashboardFilters) -> dict[str, Any]:
    # unfiltered: the day totals (6 rows a day); filtered: the rows per owner and handler
    filtered = filters.consultant is not None or filters.advisor is not None
    model = RevenueDay if filtered else RevenueDayTotal
    rows = model.objects.filter(day__gte=period.start, day__lte=period.end)
    if filters.consultant is not None:
        rows = rows.filter(owner=filters.consultant)  # type: ignore[misc]  # the per-person table has it
    if filters.advisor is not None:
        rows = rows.filter(staff=filters.advisor)  # type: ignore[misc]
    by_kind = {r["kind"]: r for r in rows.values("kind").annotate(orders=Sum("orders"), amount=Sum("amount"))}
    amount = sum((r["amount"] for r in by_kind.values()), Decimal(0))
    return {
        "amount": amount,
        "orders": sum(r["orders"] for r in by_kind.values()),
        "by_kind": {
            kind: {
                "orders": by_kind[kind]["orders"] if kind in by_kind else 0,
                "amount": by_kind[kind]["amount"] if kind in by_kind else Decimal(0),
            }
            for kind in Order.Kind.values
        },
    }


def _customer_filter(alias: str, filters: DashboardFilters) -> tuple[str, dict[str, Any]]:
    if filters.consultant is None:
        return "", {}
    return f" AND {alias}.owner_id = %(consultant)s", {"consultant": filters.consultant.pk}


def survey_figures(period: Period, zone: Any, filters: DashboardFilters) -> dict[str, Any]:
    start, end = period.bounds(zone)
    where, params = _customer_filter("c", filters)
    join = "JOIN customers_customer c ON c.id = r.customer_id" if where else ""  # only to filter by owner
    if filters.advisor is not None:
        where += " AND r.staff_id = %(advisor)s"
        params["advisor"] = filters.advisor.pk
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*), count(r.overall), count(*) FILTER (WHERE r.overall >= 4),
                       count(r.nps), count(*) FILTER (WHERE r.nps >= 9), count(*) FILTER (WHERE r.nps <= 6)
                  FROM surveys_response r {join}
                 WHERE r.submitted_at >= %(start)s AND r.submitted_at < %(end)s{where}""",
            {"start": start, "end": end, **params},
        )
        responses, rated, satisfied, nps_answers, promoters, detractors = cursor.fetchone()
    return {
        "responses": responses,
        "csat": _pct(satisfied, rated),
        "nps": round(100 * (promoters - detractors) / nps_answers, 1) if nps_answers else None,
        "promoters": promoters,
        "detractors": detractors,
        "nps_answers": nps_answers,
    }


def complaint_figures(period: Period, zone: Any, filters: DashboardFilters, now: Any) -> dict[str, Any]:
    """SLA compliance over the tickets opened in the period whose target is decided (met or missed),
    as on the complaint metrics page."""
    start, end = period.bounds(zone)
    where, params = _customer_filter("c", filters)
    join = "JOIN customers_customer c ON c.id = t.customer_id" if where else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*),
                       count(*) FILTER (WHERE t.resolved_at IS NOT NULL),
                       avg(CASE WHEN t.first_response_at IS NOT NULL
                                THEN (t.first_response_at <= t.response_due_at)::int
                                WHEN %(now)s > t.response_due_at AND t.paused_at IS NULL THEN 0 END),
                       avg(CASE WHEN t.resolved_at IS NOT NULL
                                THEN (t.resolved_at <= t.resolution_due_at AND NOT t.resolution_failed)::int
                                WHEN %(now)s > t.resolution_due_at AND t.paused_at IS NULL THEN 0 END)
                  FROM complaints_ticket t {join}
                 WHERE t.opened_at >= %(start)s AND t.opened_at < %(end)s{where}""",
            {"start": start, "end": end, "now": now, **params},
        )
        tickets, closed, response, resolution = cursor.fetchone()
    return {
        "tickets": tickets,
        "closed": closed,
        "response_compliance": round(100 * float(response), 1) if response is not None else None,
        "resolution_compliance": round(100 * float(resolution), 1) if resolution is not None else None,
    }


def followup_figures(period: Period, zone: Any, filters: DashboardFilters) -> dict[str, Any]:
    """Completion = done ÷ (done + unreachable + expired) over the follow-ups finished in the period
    (expired ones count on the day after their last day), as on the follow-up team page."""
    start, end = period.bounds(zone)
    where, params = _customer_filter("c", filters)
    join = "JOIN customers_customer c ON c.id = f.customer_id" if where else ""
    if filters.advisor is not None:
        where += " AND f.assignee_id = %(advisor)s"
        params["advisor"] = filters.advisor.pk
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*) FILTER (WHERE f.status = 'done' AND f.completed_at >= %(start)s
                                              AND f.completed_at < %(end)s),
                       count(*) FILTER (WHERE f.status = 'unreachable' AND f.completed_at >= %(start)s
                                              AND f.completed_at < %(end)s),
                       count(*) FILTER (WHERE f.status = 'expired' AND f.due_until >= %(first)s::date - 1
                                              AND f.due_until < %(last)s)
                  FROM followups_followup f {join}
                 WHERE f.status IN ('done', 'unreachable', 'expired')
                   AND (f.completed_at >= %(start)s AND f.completed_at < %(end)s
                        OR f.status = 'expired' AND f.due_until >= %(first)s::date - 1 AND f.due_until < %(last)s)
                   {where}""",
            {"start": start, "end": end, "first": period.start, "last": period.end, **params},
        )
        done, unreachable, expired = cursor.fetchone()
    return {
        "done": done,
        "unreachable": unreachable,
        "expired": expired,
        "completion": _pct(done, done + unreachable + expired),
    }


def _change(now: float | Decimal | None, then: float | Decimal | None) -> float | None:
    """Percentage points for shares, percent change for amounts: the caller picks which."""
    if now is None or then is None:
        return None
    return round(float(now) - float(then), 1)


def _growth(now: Decimal | float, then: Decimal | float) -> float | None:
    return round(100 * (float(now) - float(then)) / float(then), 1) if then else None


def ladder_months(on: date, filters: DashboardFilters, months: int = LADDER_MONTHS) -> dict[str, Any]:
    """Customers per ladder stage at the end of each of the last `months` months up to `on` (the last
    one is `on` itself), with each stage's movement against the month before."""
    ends = [*month_ends_before(on, months - 1), on]
    days = {end: state_day(end) for end in ends}
    wanted = [d for d in days.values() if d is not None]
    rows = CustomerStateDay.objects.filter(day__in=wanted)
    if filters.consultant is not None:
        rows = rows.filter(owner=filters.consultant)
    counts: dict[tuple[date | None, str], int] = {}
    for row in rows.values("day", "stage").annotate(n=Sum("customers")):
        counts[(row["day"], row["stage"])] = row["n"]
    stages = [str(s) for s in LADDER + OFF_LADDER]
    series = {stage: [counts.get((days[end], stage), 0) if days[end] else None for end in ends] for stage in stages}
    movement = []
    for stage in stages:
        this, last = series[stage][-1], series[stage][-2] if len(ends) > 1 else None
        movement.append(
            {
                "stage": stage,
                "now": this,
                "month_before": last,
                "change": (this - last) if this is not None and last is not None else None,
            }
        )
    return {
        "months": [end.isoformat()[:7] for end in ends],
        "as_of": [days[e] for e in ends],
        "series": series,
        "movement": movement,
    }


def dashboard_figures(
    *, period: Period, compare: Period, zone: Any, filters: DashboardFilters, now: Any
) -> dict[str, Any]:
    """Every figure of the manager dashboard for `period`, each beside `compare`."""
    base, base_before = base_figures(period.end, filters), base_figures(compare.end, filters)
    revenue, revenue_before = revenue_figures(period, filters), revenue_figures(compare, filters)
    surveys, surveys_before = survey_figures(period, zone, filters), survey_figures(compare, zone, filters)
    complaints = complaint_figures(period, zone, filters, now)
    complaints_before = complaint_figures(compare, zone, filters, now)
    followups, followups_before = followup_figures(period, zone, filters), followup_figures(compare, zone, filters)
    per_customer = (revenue["amount"] / base["customers"]).quantize(Decimal("0.01")) if base["customers"] else None
    headline = [
        {
            "key": "satisfaction",
            "value": surveys["csat"],
            "previous": surveys_before["csat"],
            "unit": "%",
            "change": _change(surveys["csat"], surveys_before["csat"]),
            "detail": surveys["responses"],
        },
        {
            "key": "contribution",
            "value": revenue["amount"],
            "previous": revenue_before["amount"],
            "unit": "CNY",
            "change": _growth(revenue["amount"], revenue_before["amount"]),
            "detail": per_customer,
        },
        {
            "key": "loyalty",
            "value": base["loyalty"],
            "previous": base_before["loyalty"],
            "unit": "%",
            "change": _change(base["loyalty"], base_before["loyalty"]),
            "detail": base["loyal_customers"],
        },
        {
            "key": "dependency",
            "value": base["dependency"],
            "previous": base_before["dependency"],
            "unit": "%",
            "change": _change(base["dependency"], base_before["dependency"]),
            "detail": base["vehicles_returned"],
        },
        {
            "key": "accuracy",
            "value": base["accuracy"],
            "previous": base_before["accuracy"],
            "unit": "%",
            "change": _change(base["accuracy"], base_before["accuracy"]),
            "detail": base["accurate"],
        },
    ]
    for figure in headline:
        figure["definition"] = str(DEFINITIONS[figure["key"]])
    tiers = [str(t) for t in TIER_ORDER] + [""]
    return {
        "period": {"start": period.start, "end": period.end, "as_of": base["as_of"]},
        "compare": {"start": compare.start, "end": compare.end, "as_of": base_before["as_of"]},
        "filters": {
            "consultant": filters.consultant.pk if filters.consultant else None,
            "advisor": filters.advisor.pk if filters.advisor else None,
        },
        "headline": headline,
        "base": {"now": base, "before": base_before},
        "tiers": [
            {"tier": t, "customers": base["by_tier"].get(t, 0), "previous": base_before["by_tier"].get(t, 0)}
            for t in tiers
        ],
        "ladder": ladder_months(period.end, filters),
        "revenue": {"now": revenue, "before": revenue_before},
        "surveys": {"now": surveys, "before": surveys_before},
        "complaints": {"now": complaints, "before": complaints_before},
        "followups": {"now": followups, "before": followups_before},
        "points": {
            "now": base["points"],
            "before": base_before["points"],
            "point_value": point_value(),
            "liability": (Decimal(base["points"]) * point_value()).quantize(Decimal("0.01")),
            "liability_before": (Decimal(base_before["points"]) * point_value()).quantize(Decimal("0.01")),
        },
    }


def previous_period(period: Period) -> Period:
    """The same number of days just before `period` (the default comparison)."""
    days = (period.end - period.start).days + 1
    return Period(period.start - timedelta(days=days), period.start - timedelta(days=1))


TIER_CHOICES = dict(Tier.choices)
STAGE_CHOICES = dict(LifecycleStage.choices)


def drill_customers(
    *, viewer: Membership, figure: str, value: str, filters: DashboardFilters, period: Period, zone: Any
) -> QuerySet[Customer]:
    """The customers behind a chart's bar or a figure (as they stand now), visible to the viewer."""
    from customers.selectors import customer_visible_to

    customers = customer_visible_to(viewer=viewer).filter(merged_into__isnull=True)
    if filters.consultant is not None:
        customers = customers.filter(owner=filters.consultant)
    start, end = period.bounds(zone)
    if figure == "tier":
        tiered = CustomerValue.objects.exclude(tier="")
        customers = (
            customers.filter(pk__in=tiered.filter(tier=value).values("customer_id"))
            if value
            else customers.exclude(pk__in=tiered.values("customer_id"))
        )
    elif figure == "stage":
        customers = customers.filter(lifecycle_stage=value)
    elif figure == "not_returned":
        # the dependency figure's base (bought or serviced in 24 months) less what came back in 12,
        # by the same rule as the nightly count (dashboards.aggregates)
        base_since, return_since = service_base_since(period.end)
        completed = Order.objects.filter(
            vehicle__isnull=False, status="completed", ordered_on__gt=base_since, ordered_on__lte=period.end
        )
        service = completed.filter(kind__in=["maintenance", "repair"])
        base = Vehicle.objects.filter(
            Q(purchase_date__gt=base_since, purchase_date__lte=period.end)
            | Q(pk__in=completed.filter(kind="vehicle_sale").values("vehicle_id"))
            | Q(pk__in=service.values("vehicle_id"))
        ).exclude(pk__in=service.filter(ordered_on__gt=return_since).values("vehicle_id"))
        customers = customers.filter(pk__in=base.values("customer_id"))
    elif figure == "spenders":
        orders = Order.objects.exclude(status="reversed").filter(
            ordered_on__gte=period.start, ordered_on__lte=period.end
        )
        if value:
            orders = orders.filter(kind=value)
        if filters.advisor is not None:
            orders = orders.filter(staff=filters.advisor)
        spend = orders.filter(customer_id=OuterRef("pk")).values("customer_id").annotate(s=Sum("amount")).values("s")
        customers = (
            customers.filter(pk__in=orders.values("customer_id"))
            .annotate(spend=Subquery(spend))
            .order_by("-spend", "pk")
        )
    elif figure == "inaccurate":
        customers = customers.filter(quality_score__lt=100)
    elif figure == "detractors":
        responses = Response.objects.filter(submitted_at__gte=start, submitted_at__lt=end, nps__lte=6)
        if filters.advisor is not None:
            responses = responses.filter(staff=filters.advisor)
        customers = customers.filter(pk__in=responses.values("customer_id"))
    elif figure == "complaints":
        customers = customers.filter(tickets__opened_at__gte=start, tickets__opened_at__lt=end).distinct()
    elif figure == "followups_missed":
        # as the completion figure counts them: unreachable when marked, expired the day after its last day
        missed = Followup.objects.filter(
            Q(status="unreachable", completed_at__gte=start, completed_at__lt=end)
            | Q(status="expired", due_until__gte=period.start - timedelta(days=1), due_until__lt=period.end)
        )
        if filters.advisor is not None:
            missed = missed.filter(assignee=filters.advisor)
        customers = customers.filter(pk__in=missed.values("customer_id"))
    elif figure == "points":
        members = Member.objects.filter(points_balance__gt=0)
        customers = (
            customers.filter(pk__in=members.values("customer_id"))
            .annotate(points=Subquery(members.filter(customer_id=OuterRef("pk")).values("points_balance")[:1]))
            .order_by("-points", "pk")
        )
    if not customers.query.order_by:
        customers = customers.order_by("pk")  # stable pages
    return customers


DRILLS: dict[str, Any] = {
    "tier": _("Customers in a value tier"),
    "stage": _("Customers at a ladder stage"),
    "not_returned": _("Vehicles bought in the last 24 months that did not come back in the last 12"),
    "spenders": _("Customers who bought in the period, most spent first"),
    "inaccurate": _("Customer records with data-quality issues"),
    "detractors": _("Detractors (recommendation 0–6) in the period"),
    "complaints": _("Customers who complained in the period"),
    "followups_missed": _("Follow-ups missed (unreachable or expired) in the period"),
    "points": _("Members with outstanding points, most first"),
}


def drill_value_valid(figure: str, value: str) -> bool:
    if figure == "tier":
        return value in [*Tier.values, ""]
    if figure == "stage":
        return value in LifecycleStage.values
    if figure == "spenders":
        return value in [*Order.Kind.values, ""]
    return figure in DRILLS and value == ""


def drill_title(figure: str, value: str) -> str:
    if figure == "tier":
        return f"{DRILLS[figure]}: {TIER_CHOICES.get(value, _('Not tiered'))}"
    if figure == "stage":
        return f"{DRILLS[figure]}: {STAGE_CHOICES[value]}"
    if figure == "spenders" and value:
        return f"{DRILLS[figure]}: {dict(Order.Kind.choices)[value]}"
    return str(DRILLS[figure])


def point_value() -> Decimal:
    """What one point is worth (CNY); reading it never creates the programme."""
    from loyalty.models import Programme

    prog = Programme.objects.first()
    return Decimal(prog.point_value) if prog else Decimal(Programme._meta.get_field("point_value").default)
