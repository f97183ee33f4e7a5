"""The manager dashboard (四度): its figures against independent counts of the base tables, the
nightly pre-aggregation (idempotent, the first run's 12 month ends, later runs keep earlier days),
the filters, who may open it, bad input, the XLSX downloads, the drill-down lists and the API.

One small dealership with fixed data ("the books"), June 2026 beside May 2026:

| customer | owner   | vehicles / orders                                                      | stage at 30 June |
| A1 甲一  | Alice   | bought 2025-03 (sale), serviced June; insurance June; service w/o car  | retained         |
| A2 甲二  | Alice   | bought 2023-11, serviced 2025-02; a reversed repair, parts in June     | retained         |
| A3 甲三  | Alice   | nothing                                                                | prospect         |
| B1 乙一  | Bob     | created 15 May, bought 20 May                                          | new              |
| B2 乙二  | Bob     | two cars (2025-08, 2025-09), the first serviced in June                | loyal            |
| B3 乙三  | Bob     | old car serviced 2025-03                                               | dormant          |
| N1 丙一  | nobody  | old car serviced 2023-12                                               | lost             |
| M1 丁一  | manager | nothing                                                                | prospect         |
| X1 戊一  | Alice   | merged into A1 (a tombstone with a car bought 2025-10): counted nowhere | —                |

Segmentation runs on 20 March, 15 April, 25 May and 30 June with the orders known by then, so the
value history has a ladder that moves. The expected numbers are computed here from the base tables
(customers, vehicles, orders, value history, survey responses, tickets, follow-ups, members and their
ledger) in Python, never with the dashboard's code.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db.models import F, Q
from django.utils import timezone
from openpyxl import load_workbook
from rest_framework.renderers import JSONRenderer

from crm.core.period import Period
from crm.tenancy.context import tenant_context
from crm.tenancy.models import ApiCredential, AuditAction, AuditEvent, Membership, Tenant
from crm.tenancy.roles import Role
from crm.tenancy.services import credential_create
from customers.models import Customer, Order, Vehicle
from customers.validators import mask_mobile
from dashboards import presenters
from dashboards.aggregates import dashboard_figures_refresh
from dashboards.models import CustomerStateDay, RevenueDay
from dashboards.selectors import DashboardFilters, dashboard_figures, previous_period
from followups.models import Followup
from loyalty import services as loyalty_services
from loyalty.models import LedgerEntry, Member
from segmentation.engine import segmentation_recompute
from segmentation.models import CustomerValue, SegmentationSettings, ValueHistory
from surveys import services as survey_services
from surveys.models import Invitation, Response
from tests.factories import CustomerFactory, MembershipFactory, TenantFactory, VehicleFactory

pytestmark = pytest.mark.django_db

ZONE = ZoneInfo("Asia/Shanghai")
RUN = date(2026, 6, 30)  # the night the dashboard is aggregated
JUNE = Period(date(2026, 6, 1), RUN)
MAY = Period(date(2026, 5, 2), date(2026, 5, 31))  # the 30 days just before June
CHECKPOINTS = [date(2026, 3, 20), date(2026, 4, 15), date(2026, 5, 25), RUN]  # segmentation runs
PAGE = "/dashboards/"
DRILL = "/dashboards/customers/"
API = "/api/v1/dashboards/figures/"
API_DRILL = "/api/v1/dashboards/customers/"
JUNE_QUERY = {"start": "2026-06-01", "end": "2026-06-30"}

_keys = itertools.count(1)


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE)


def day_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZONE)


# --- the dealership --------------------------------------------------------------------------------


@dataclass
class Shop:
    tenant: Tenant
    manager: Membership
    admin: Membership
    auditor: Membership
    alice: Membership
    bob: Membership
    advisor: Membership
    agent: Membership
    c: dict[str, Customer] = field(default_factory=dict)
    v: dict[str, Vehicle] = field(default_factory=dict)

    def ids(self, *names: str) -> set[int]:
        return {self.c[n].pk for n in names}


@pytest.fixture
def shop(db) -> Shop:  # type: ignore[no-untyped-def]
    """Staff only: one member per role."""
    tenant = TenantFactory(name="四度测试店", code="dash-shop")
    with tenant_context(tenant.pk):
        people = {
            name: MembershipFactory(user__email=f"{name}@dash-shop.test", user__first_name=name, role=role)
            for name, role in [
                ("manager", Role.MANAGER),
                ("admin", Role.TENANT_ADMIN),
                ("auditor", Role.AUDITOR),
                ("alice", Role.SALES_CONSULTANT),
                ("bob", Role.SALES_CONSULTANT),
                ("advisor", Role.SERVICE_ADVISOR),
                ("agent", Role.CR_AGENT),
            ]
        }
    return Shop(tenant=tenant, **people)


def _survey(shop: Shop, who: str, *, overall: int | None, nps: int | None, staff: Membership | None, at_: datetime):
    version = {t.code: t for t in survey_services.templates_ensure()}["service"].current_version
    customer = shop.c[who]
    invitation = Invitation.objects.create(
        customer=customer,
        version=version,
        trigger=Invitation.Trigger.MANUAL,
        staff=staff,
        channel="sms",
        address=customer.mobile,
        status=Invitation.Status.ANSWERED,
        nonce=f"dash{next(_keys):020d}",
        send_after=at_ - timedelta(hours=2),
        expires_at=at_ + timedelta(days=7),
        answered_at=at_,
    )
    return Response.objects.create(
        invitation=invitation,
        version=version,
        customer=customer,
        staff=staff,
        submitted_at=at_,
        overall=overall,
        nps=nps,
        low_score=(overall is not None and overall <= 2) or (nps is not None and nps <= 6),
    )


def _ticket(shop: Shop, who: str | None, opened: datetime, **times: Any) -> Any:
    from complaints import services as complaint_services

    customer = shop.c[who] if who else None
    ticket = complaint_services.ticket_open(
        actor=shop.agent,
        data=complaint_services.TicketInput(
            contact_name=customer.name if customer else "路人",
            contact_mobile=customer.mobile if customer else "+8613700000000",
            channel="phone",
            category=complaint_services.categories_ensure()[0],
            subject="测试投诉",
            description="测试",
            customer=customer,
        ),
    )
    type(ticket).objects.filter(pk=ticket.pk).update(opened_at=opened, **times)
    return ticket


def _followup(shop: Shop, who: str, status: str, due: tuple[date, date], assignee: Membership, **extra: Any):
    return Followup.objects.create(
        customer=shop.c[who],
        reason="manual",
        source_key=f"test:dash:{next(_keys)}",
        due_from=due[0],
        due_until=due[1],
        scheduled_on=due[0],
        assignee=assignee,
        status=status,
        **extra,
    )


def populate(shop: Shop) -> None:
    """Write the books (inside the shop's tenant_context); see the module's docstring."""
    c, v = shop.c, shop.v
    people = [  # name, owner, mobile, created, vehicles (name, purchase date)
        ("A1", shop.alice, "0001", date(2024, 1, 1), [("A1", date(2025, 3, 10))]),
        ("A2", shop.alice, "0002", date(2024, 1, 1), [("A2", date(2023, 11, 5))]),
        ("A3", shop.alice, "0003", date(2024, 1, 1), []),
        ("B1", shop.bob, "0004", date(2026, 5, 15), [("B1", date(2026, 5, 20))]),
        ("B2", shop.bob, "0005", date(2024, 1, 1), [("B2a", date(2025, 8, 1)), ("B2b", date(2025, 9, 1))]),
        ("B3", shop.bob, "0006", date(2024, 1, 1), [("B3", date(2019, 5, 1))]),
        ("N1", None, "0007", date(2024, 1, 1), [("N1", date(2020, 1, 1))]),
        ("M1", shop.manager, "0008", date(2024, 1, 1), []),
        ("X1", shop.alice, "0009", date(2024, 1, 1), [("X1", date(2025, 10, 1))]),
    ]
    sale, maintenance, repair = Order.Kind.VEHICLE_SALE, Order.Kind.MAINTENANCE, Order.Kind.REPAIR
    parts, accessories, insurance = Order.Kind.PARTS, Order.Kind.ACCESSORIES, Order.Kind.INSURANCE
    advisor, alice, bob = shop.advisor, shop.alice, shop.bob
    orders = [  # customer, kind, date, amount, handled by, vehicle, status
        ("A1", sale, date(2025, 3, 10), "195000.00", alice, "A1", "completed"),
        ("A1", maintenance, date(2026, 1, 15), "400.00", advisor, None, "completed"),  # no vehicle on the order
        ("A1", parts, date(2026, 5, 1), "250.00", advisor, None, "completed"),  # the day before May's comparison
        ("A1", maintenance, date(2026, 6, 10), "800.00", advisor, "A1", "completed"),
        ("A1", insurance, date(2026, 6, 10), "4500.00", alice, "A1", "completed"),
        ("A2", sale, date(2023, 11, 5), "168000.00", alice, "A2", "completed"),
        ("A2", maintenance, date(2025, 2, 1), "600.00", advisor, "A2", "completed"),
        ("A2", accessories, date(2026, 5, 10), "1200.00", alice, None, "completed"),
        ("A2", repair, date(2026, 6, 5), "5200.00", advisor, "A2", "reversed"),
        ("A2", parts, date(2026, 6, 12), "300.00", advisor, None, "completed"),
        ("B1", sale, date(2026, 5, 20), "182000.00", bob, "B1", "completed"),
        ("B2", sale, date(2025, 8, 1), "210000.00", bob, "B2a", "completed"),
        ("B2", sale, date(2025, 9, 1), "150000.00", bob, "B2b", "completed"),
        ("B2", maintenance, date(2026, 6, 20), "900.00", advisor, "B2a", "completed"),
        ("B3", maintenance, date(2025, 3, 1), "650.00", advisor, "B3", "completed"),
        ("N1", maintenance, date(2023, 12, 1), "500.00", advisor, "N1", "completed"),
    ]
    # Customers join and orders arrive as the months go by, with a segmentation run at each checkpoint.
    SegmentationSettings.objects.get_or_create()
    written: list[tuple[Any, ...]] = []
    for checkpoint in CHECKPOINTS:
        for name, owner, tail, created, vehicles in people:
            if name not in c and created <= checkpoint:
                c[name] = CustomerFactory(name=f"四度{name}", mobile=f"+86139{tail}{tail}", owner=owner)
                Customer.objects.filter(pk=c[name].pk).update(created_at=at(created))
                for vehicle, bought in vehicles:
                    v[vehicle] = VehicleFactory(customer=c[name], purchase_date=bought)
        due = [o for o in orders if o[2] <= checkpoint and o not in written]
        written.extend(due)
        Order.objects.bulk_create(
            Order(
                customer=c[who],
                kind=kind,
                ordered_on=on,
                amount=Decimal(amount),
                staff=staff,
                vehicle=v[vehicle] if vehicle else None,
                status=status,
            )
            for who, kind, on, amount, staff, vehicle, status in due
        )
        for who in {o[0] for o in due}:
            last = max(o[2] for o in orders if o[0] == who and o[2] <= checkpoint)
            Customer.objects.filter(pk=c[who].pk).update(last_visit_on=last)
        segmentation_recompute(run_date=checkpoint)
    assert Order.objects.count() == len(orders)
    # merged away after the last run (as a merge does between two nights)
    Customer.objects.filter(pk=c["X1"].pk).update(merged_into=c["A1"])

    # data quality, as the nightly step leaves it
    for name, score in {"A1": 100, "A2": 80, "B1": 100, "B2": 60, "B3": 100, "N1": 90, "M1": 100, "X1": 50}.items():
        Customer.objects.filter(pk=c[name].pk).update(quality_score=score)

    # survey responses
    _survey(shop, "A1", overall=5, nps=10, staff=shop.advisor, at_=at(date(2026, 6, 11)))
    _survey(shop, "A2", overall=4, nps=8, staff=shop.alice, at_=at(date(2026, 6, 13)))
    _survey(shop, "B2", overall=2, nps=3, staff=shop.advisor, at_=at(date(2026, 6, 21)))
    _survey(shop, "B1", overall=None, nps=6, staff=None, at_=at(date(2026, 6, 2)))
    _survey(shop, "A1", overall=3, nps=9, staff=shop.advisor, at_=at(date(2026, 6, 15)))
    _survey(shop, "A2", overall=5, nps=10, staff=shop.alice, at_=at(date(2026, 7, 1), 0, 5))  # July in Shanghai
    _survey(shop, "B3", overall=1, nps=0, staff=shop.advisor, at_=at(date(2026, 6, 1), 0, 10))  # June, 31 May UTC
    _survey(shop, "B2", overall=5, nps=10, staff=shop.advisor, at_=at(date(2026, 5, 15)))
    _survey(shop, "N1", overall=4, nps=7, staff=None, at_=at(date(2026, 5, 20)))

    # complaint tickets
    d = date
    _ticket(
        shop,
        "A2",
        at(d(2026, 6, 5), 10),
        response_due_at=at(d(2026, 6, 5), 12),
        first_response_at=at(d(2026, 6, 5), 11),
        resolution_due_at=at(d(2026, 6, 7), 18),
        resolved_at=at(d(2026, 6, 6), 9),
    )
    _ticket(
        shop,
        "B2",
        at(d(2026, 6, 10), 9),
        response_due_at=at(d(2026, 6, 10), 11),
        first_response_at=at(d(2026, 6, 10), 14),
        resolution_due_at=at(d(2026, 6, 12), 18),
        resolved_at=at(d(2026, 6, 15), 9),
    )
    _ticket(
        shop,
        "A1",
        at(d(2026, 6, 20), 9),
        response_due_at=at(d(2026, 6, 20), 11),
        resolution_due_at=at(d(2026, 6, 25), 18),
    )
    _ticket(
        shop,
        None,
        at(d(2026, 6, 21), 9),
        response_due_at=at(d(2026, 6, 21), 12),
        first_response_at=at(d(2026, 6, 21), 10),
        resolution_due_at=at(d(2026, 6, 24), 18),
        resolved_at=at(d(2026, 6, 23), 9),
        resolution_failed=True,
    )
    _ticket(
        shop,
        "B1",
        at(d(2026, 6, 28), 9),
        response_due_at=at(d(2026, 6, 28), 11),
        resolution_due_at=at(d(2026, 7, 5), 18),
        paused_at=at(d(2026, 6, 28), 10),
    )
    _ticket(
        shop,
        "A2",
        at(d(2026, 5, 10), 9),
        response_due_at=at(d(2026, 5, 10), 11),
        first_response_at=at(d(2026, 5, 10), 10),
        resolution_due_at=at(d(2026, 5, 12), 18),
        resolved_at=at(d(2026, 5, 11), 9),
    )

    # follow-ups
    done, unreachable, expired = "done", "unreachable", "expired"
    _followup(
        shop,
        "A1",
        done,
        (d(2026, 6, 1), d(2026, 6, 5)),
        shop.advisor,
        completed_at=at(d(2026, 6, 3)),
        completed_by=shop.advisor,
        disposition="satisfied",
    )
    _followup(
        shop,
        "A2",
        unreachable,
        (d(2026, 6, 6), d(2026, 7, 5)),
        shop.alice,
        completed_at=at(d(2026, 6, 8), 15),
        completed_by=shop.alice,
        attempts=3,
    )
    _followup(shop, "B2", expired, (d(2026, 6, 10), d(2026, 6, 14)), shop.advisor)
    _followup(shop, "B1", expired, (d(2026, 5, 25), d(2026, 5, 31)), shop.bob)  # expires on 1 June
    _followup(shop, "A3", expired, (d(2026, 6, 25), d(2026, 6, 30)), shop.alice)  # expires on 1 July
    _followup(
        shop,
        "A2",
        done,
        (d(2026, 5, 18), d(2026, 5, 22)),
        shop.alice,
        completed_at=at(d(2026, 5, 20)),
        completed_by=shop.alice,
        disposition="satisfied",
    )
    _followup(shop, "B3", "open", (d(2026, 6, 28), d(2026, 7, 5)), shop.advisor)
    _followup(shop, "N1", "cancelled", (d(2026, 6, 10), d(2026, 6, 20)), shop.advisor, completed_at=at(d(2026, 6, 15)))

    # loyalty members and their points: entries dated when they happened (the ledger is append-only,
    # so they are written as the loyalty services write them: the entry, then the balance)
    def member(who: str, *moves: tuple[int, date]) -> None:
        m = loyalty_services.member_enrol(actor=shop.manager, customer=c[who])
        for points, on in moves:
            LedgerEntry.objects.create(
                member=m,
                kind=LedgerEntry.Kind.ADJUST,
                points=points,
                occurred_at=at(on),
                reason="测试",
                source=LedgerEntry.Source.STAFF,
                actor=shop.manager,
            )
            Member.objects.filter(pk=m.pk).update(points_balance=F("points_balance") + points)

    member("A1", (500, d(2026, 4, 10)))
    member("B2", (300, d(2026, 6, 5)))
    member("A2", (200, d(2026, 5, 5)), (-200, d(2026, 5, 6)))


@pytest.fixture
def books(shop) -> Shop:  # type: ignore[no-untyped-def]
    """The shop with its data, aggregated on the night of 30 June (the first run)."""
    with tenant_context(shop.tenant.pk):
        populate(shop)
        dashboard_figures_refresh(run_date=RUN)
    return shop


# --- independent counts -----------------------------------------------------------------------------


def live_customers(day: date, owner: Membership | None = None) -> list[Customer]:
    """Customers not merged away that existed at the end of `day`: created by then, or with a value
    history period covering the day (a record imported later with its history)."""
    rows = Customer.objects.filter(merged_into__isnull=True)
    if owner is not None:
        rows = rows.filter(owner=owner)
    had_history = state_then(day)
    return [c for c in rows if c.created_at < day_end(day) or c.pk in had_history]


def state_then(day: date) -> dict[int, tuple[str, str]]:
    """(tier, stage) of each customer on `day`, from the value history."""
    rows = ValueHistory.objects.filter(valid_from__lte=day).filter(Q(valid_to__isnull=True) | Q(valid_to__gt=day))
    return {h.customer_id: (h.tier, h.lifecycle_stage) for h in rows}


def state_now() -> dict[int, tuple[str, str]]:
    """(tier, stage) of each customer as the last segmentation run left them."""
    tiers = dict(CustomerValue.objects.values_list("customer_id", "tier"))
    return {c.pk: (tiers.get(c.pk, ""), c.lifecycle_stage) for c in Customer.objects.all()}


def months_earlier(day: date, months: int) -> date:
    """The same date `months` calendar months before `day` (the month's last day when it is shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def service_base(vehicle: Vehicle, day: date) -> tuple[bool, bool]:
    """(in the service base on `day`, came back) as docs/dashboards.md defines them: bought (purchase
    date, or a completed vehicle-sale order linked to it) or serviced (a completed maintenance or repair
    order linked to it) after the same date 24 calendar months earlier and up to `day`; came back:
    serviced after the same date 12 calendar months earlier. Open and reversed orders count for neither."""
    since, back = months_earlier(day, 24), months_earlier(day, 12)
    completed = [o for o in Order.objects.filter(vehicle=vehicle, status="completed") if since < o.ordered_on <= day]
    serviced = [o.ordered_on for o in completed if o.kind in ("maintenance", "repair")]
    sold = any(o.kind == "vehicle_sale" for o in completed)
    bought = sold or (vehicle.purchase_date is not None and since < vehicle.purchase_date <= day)
    return bool(bought or serviced), any(on > back for on in serviced)


def fleet(day: date, customers: list[Customer]) -> tuple[int, int]:
    """(vehicles in the service base on `day`, those that came back): see `service_base`."""
    base = returned = 0
    for vehicle in Vehicle.objects.filter(customer__in=customers):
        counted, came = service_base(vehicle, day)
        base += counted
        returned += counted and came
    return base, returned


def pct(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def expected_base(day: date, *, tonight: bool, owner: Membership | None = None) -> dict[str, Any]:
    """The customer base at the end of `day`: `tonight` = the night's own count (stages as the last
    segmentation left them, today's scores and balances); else a past month end (value history, ledger)."""
    customers = live_customers(day, owner)
    state = state_now() if tonight else state_then(day)
    tiers: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    for customer in customers:
        tier, stage = state.get(customer.pk, ("", "prospect"))
        tiers[tier] += 1
        stages[stage] += 1
    vehicles, returned = fleet(day, customers)
    if tonight:
        scored = sum(1 for x in customers if x.quality_score is not None)
        accurate = sum(1 for x in customers if x.quality_score == 100)
        points = sum(m.points_balance for m in Member.objects.filter(customer__in=customers))
    else:
        scored = accurate = 0
        points = sum(
            e.points for e in LedgerEntry.objects.filter(member__customer__in=customers, occurred_at__lt=day_end(day))
        )
    engaged = len(customers) - stages["prospect"]
    loyal = stages["retained"] + stages["loyal"]
    return {
        "customers": len(customers),
        "by_tier": dict(tiers),
        "by_stage": dict(stages),
        "loyalty": pct(loyal, engaged),
        "loyal_customers": loyal,
        "engaged_customers": engaged,
        "dependency": pct(returned, vehicles),
        "vehicles": vehicles,
        "vehicles_returned": returned,
        "accuracy": pct(accurate, scored),
        "scored": scored,
        "accurate": accurate,
        "points": points,
    }


def expected_revenue(period: Period, *, owner: Membership | None = None, staff: Membership | None = None):
    orders = Order.objects.filter(ordered_on__gte=period.start, ordered_on__lte=period.end).exclude(status="reversed")
    if owner is not None:
        orders = orders.filter(customer__owner=owner)
    if staff is not None:
        orders = orders.filter(staff=staff)
    by_kind = {kind: {"orders": 0, "amount": Decimal(0)} for kind in Order.Kind.values}
    for o in orders:
        by_kind[o.kind]["orders"] += 1
        by_kind[o.kind]["amount"] += o.amount
    return {
        "amount": sum((o.amount for o in orders), Decimal(0)),
        "orders": len(orders),
        "by_kind": by_kind,
    }


def expected_surveys(period: Period, *, owner: Membership | None = None, staff: Membership | None = None):
    start, end = period.bounds(ZONE)
    rows = Response.objects.filter(submitted_at__gte=start, submitted_at__lt=end)
    if owner is not None:
        rows = rows.filter(customer__owner=owner)
    if staff is not None:
        rows = rows.filter(staff=staff)
    rows = list(rows)
    rated = [r.overall for r in rows if r.overall is not None]
    answers = [r.nps for r in rows if r.nps is not None]
    promoters = sum(1 for n in answers if n >= 9)
    detractors = sum(1 for n in answers if n <= 6)
    return {
        "responses": len(rows),
        "csat": pct(sum(1 for o in rated if o >= 4), len(rated)),
        "nps": round(100 * (promoters - detractors) / len(answers), 1) if answers else None,
        "promoters": promoters,
        "detractors": detractors,
        "nps_answers": len(answers),
    }


def expected_complaints(period: Period, now: datetime, *, owner: Membership | None = None):
    from complaints.models import Ticket

    start, end = period.bounds(ZONE)
    tickets = Ticket.objects.filter(opened_at__gte=start, opened_at__lt=end)
    if owner is not None:
        tickets = tickets.filter(customer__owner=owner)
    response: list[bool] = []
    resolution: list[bool] = []
    for t in tickets:
        if t.first_response_at is not None:
            response.append(t.first_response_at <= t.response_due_at)
        elif now > t.response_due_at and t.paused_at is None:
            response.append(False)
        if t.resolved_at is not None:
            resolution.append(t.resolved_at <= t.resolution_due_at and not t.resolution_failed)
        elif now > t.resolution_due_at and t.paused_at is None:
            resolution.append(False)
    return {
        "tickets": len(tickets),
        "closed": sum(1 for t in tickets if t.resolved_at is not None),
        "response_compliance": pct(sum(response), len(response)),
        "resolution_compliance": pct(sum(resolution), len(resolution)),
    }


def finished_followups(period: Period, *, owner: Membership | None = None, staff: Membership | None = None):
    """Follow-ups finished in the period: done or unreachable when marked so, expired on the day after
    their last day."""
    start, end = period.bounds(ZONE)
    rows = Followup.objects.all()
    if owner is not None:
        rows = rows.filter(customer__owner=owner)
    if staff is not None:
        rows = rows.filter(assignee=staff)
    finished = []
    for f in rows:
        marked = f.status in ("done", "unreachable") and f.completed_at and start <= f.completed_at < end
        expired = f.status == "expired" and period.start <= f.due_until + timedelta(days=1) <= period.end
        if marked or expired:
            finished.append(f)
    return finished


def expected_followups(period: Period, **narrow: Any) -> dict[str, Any]:
    counts = Counter(f.status for f in finished_followups(period, **narrow))
    done, unreachable, expired = counts["done"], counts["unreachable"], counts["expired"]
    return {
        "done": done,
        "unreachable": unreachable,
        "expired": expired,
        "completion": pct(done, done + unreachable + expired),
    }


def figures_of(shop: Shop, period: Period = JUNE, compare: Period = MAY, **filters: Any) -> dict[str, Any]:
    with tenant_context(shop.tenant.pk):
        return dashboard_figures(
            period=period, compare=compare, zone=ZONE, filters=DashboardFilters(**filters), now=timezone.now()
        )


def base_of(figures: dict[str, Any], which: str) -> dict[str, Any]:
    return {k: v for k, v in figures["base"][which].items() if k != "as_of"}


# --- the figures -----------------------------------------------------------------------------------


def test_every_figure_agrees_with_the_base_tables(books):
    shop = books
    figures = figures_of(shop)
    now = timezone.now()
    with tenant_context(shop.tenant.pk):
        base_now = expected_base(RUN, tonight=True)
        base_may = expected_base(MAY.end, tonight=False)
        assert base_of(figures, "now") == base_now
        assert base_of(figures, "before") == base_may
        assert figures["revenue"]["now"] == expected_revenue(JUNE)
        assert figures["revenue"]["before"] == expected_revenue(MAY)
        assert figures["surveys"]["now"] == expected_surveys(JUNE)
        assert figures["surveys"]["before"] == expected_surveys(MAY)
        assert figures["complaints"]["now"] == expected_complaints(JUNE, now)
        assert figures["complaints"]["before"] == expected_complaints(MAY, now)
        assert figures["followups"]["now"] == expected_followups(JUNE)
        assert figures["followups"]["before"] == expected_followups(MAY)
        current = state_now()
        live = live_customers(RUN)
        june = expected_revenue(JUNE)
    assert figures["period"] == {"start": JUNE.start, "end": RUN, "as_of": RUN}
    assert figures["compare"] == {"start": MAY.start, "end": MAY.end, "as_of": MAY.end}
    points = figures["points"]
    assert (points["now"], points["before"]) == (base_now["points"], base_may["points"])
    assert points["liability"] == (base_now["points"] * points["point_value"]).quantize(Decimal("0.01"))
    assert points["liability_before"] == (base_may["points"] * points["point_value"]).quantize(Decimal("0.01"))
    # the stages as the customers' records say, and the tiers as their values say
    assert base_now["by_stage"] == dict(Counter(current[x.pk][1] for x in live))
    tiers = {t["tier"]: t["customers"] for t in figures["tiers"]}
    assert tiers == {
        t: Counter(current[x.pk][0] for x in live).get(t, 0) for t in ["key", "consolidate", "maintain", "exit", ""]
    }
    headline = {h["key"]: h for h in figures["headline"]}
    assert headline["satisfaction"]["value"] == figures["surveys"]["now"]["csat"]
    assert headline["contribution"]["value"] == june["amount"]
    assert headline["loyalty"]["value"] == base_now["loyalty"]
    assert headline["dependency"]["value"] == base_now["dependency"]
    assert headline["accuracy"]["value"] == base_now["accuracy"]
    assert headline["accuracy"]["previous"] is None  # month ends before the first run have no scores

    # The data is what the docstring says, so the comparisons above are not between empty sets.
    assert base_now["by_stage"] == {"retained": 2, "prospect": 2, "new": 1, "loyal": 1, "dormant": 1, "lost": 1}
    assert base_now["customers"] == 8 and base_may["customers"] == 8
    assert (base_now["vehicles"], base_now["vehicles_returned"]) == (6, 2)  # A1 A2 B1 B2a B2b B3; A1, B2a
    assert base_now["loyalty"] == 50.0 and base_now["dependency"] == 33.3
    assert (base_now["scored"], base_now["accurate"], base_now["accuracy"]) == (7, 4, 57.1)
    assert figures["revenue"]["now"]["amount"] == Decimal("6500.00")  # the reversed repair of 5,200 left out
    assert figures["revenue"]["before"]["amount"] == Decimal("183200.00")  # 1 May is not in the comparison
    assert (figures["surveys"]["now"]["csat"], figures["surveys"]["now"]["nps"]) == (40.0, -16.7)
    assert figures["complaints"]["now"] == {
        "tickets": 5,
        "closed": 3,
        "response_compliance": 50.0,
        "resolution_compliance": 25.0,
    }
    assert figures["followups"]["now"] == {"done": 1, "unreachable": 1, "expired": 2, "completion": 25.0}
    assert (points["now"], points["before"], points["liability"]) == (800, 500, Decimal("8.00"))
    # the changes: points for shares, percent for spend
    assert headline["satisfaction"]["change"] == round(40.0 - figures["surveys"]["before"]["csat"], 1)
    assert headline["contribution"]["change"] == round(100 * (6500 - 183200) / 183200, 1)


def test_the_consultant_filter_narrows_everything_to_that_owners_customers(books):
    shop = books
    now = timezone.now()
    for consultant in (shop.alice, shop.bob):
        figures = figures_of(shop, consultant=consultant)
        with tenant_context(shop.tenant.pk):
            assert base_of(figures, "now") == expected_base(RUN, tonight=True, owner=consultant)
            assert base_of(figures, "before") == expected_base(MAY.end, tonight=False, owner=consultant)
            assert figures["revenue"]["now"] == expected_revenue(JUNE, owner=consultant)
            assert figures["revenue"]["before"] == expected_revenue(MAY, owner=consultant)
            assert figures["surveys"]["now"] == expected_surveys(JUNE, owner=consultant)
            assert figures["complaints"]["now"] == expected_complaints(JUNE, now, owner=consultant)
            assert figures["followups"]["now"] == expected_followups(JUNE, owner=consultant)
        assert figures["filters"] == {"consultant": consultant.pk, "advisor": None}
    alices = figures_of(shop, consultant=shop.alice)
    assert alices["base"]["now"]["customers"] == 3  # A1 A2 A3 (X1 was merged away)
    assert alices["revenue"]["now"]["amount"] == Decimal("5600.00")
    assert alices["complaints"]["now"]["tickets"] == 2
    assert alices["followups"]["now"] == {"done": 1, "unreachable": 1, "expired": 0, "completion": 50.0}


def test_the_advisor_filter_narrows_spend_surveys_and_follow_ups_to_their_work(books):
    shop = books
    everyone = figures_of(shop)
    figures = figures_of(shop, advisor=shop.advisor)
    with tenant_context(shop.tenant.pk):
        assert figures["revenue"]["now"] == expected_revenue(JUNE, staff=shop.advisor)
        assert figures["revenue"]["before"] == expected_revenue(MAY, staff=shop.advisor)
        assert figures["surveys"]["now"] == expected_surveys(JUNE, staff=shop.advisor)
        assert figures["followups"]["now"] == expected_followups(JUNE, staff=shop.advisor)
    assert figures["revenue"]["now"]["amount"] == Decimal("2000.00")  # 800 + 300 + 900, not Alice's insurance
    assert figures["followups"]["now"] == {"done": 1, "unreachable": 0, "expired": 1, "completion": 50.0}
    # the customer base and complaints are not the advisor's
    assert figures["base"] == everyone["base"]
    assert figures["complaints"] == everyone["complaints"]
    assert figures["tiers"] == everyone["tiers"]


def test_the_ladder_counts_each_month_end_from_the_value_history(books):
    shop = books
    figures = figures_of(shop)
    ladder = figures["ladder"]
    months = [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31), RUN]
    assert ladder["months"] == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    assert ladder["as_of"] == months
    stages = ["prospect", "new", "satisfied", "retained", "loyal", "dormant", "lost"]
    with tenant_context(shop.tenant.pk):
        expected = {s: [expected_base(m, tonight=(m == RUN))["by_stage"].get(s, 0) for m in months] for s in stages}
    assert ladder["series"] == expected
    assert [m["stage"] for m in ladder["movement"]] == stages
    for move in ladder["movement"]:
        series = expected[move["stage"]]
        assert (move["now"], move["month_before"], move["change"]) == (series[-1], series[-2], series[-1] - series[-2])
    # before the first segmentation run everyone was a prospect; the ladder moved since
    assert expected["prospect"][:2] == [7, 7] and expected["prospect"][-1] == 2
    assert expected["new"][-2:] == [1, 1]  # B1 bought on 20 May
    assert sum(s[3] for s in expected.values()) == 7  # B1 was created on 15 May


# --- the nightly pre-aggregation --------------------------------------------------------------------


def _sorted(rows: Any) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda row: [str(value) for value in row])


def _rows() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every aggregated row, without ids."""
    state = CustomerStateDay.objects.values_list(
        "day", "owner_id", "tier", "stage", "customers", "scored", "accurate", "vehicles", "vehicles_returned", "points"
    )
    revenue = RevenueDay.objects.values_list("day", "owner_id", "staff_id", "kind", "orders", "amount")
    return _sorted(state), _sorted(revenue)


def test_the_first_run_backfills_twelve_month_ends_and_a_second_run_changes_nothing(books):
    shop = books
    with tenant_context(shop.tenant.pk):
        days = sorted(set(CustomerStateDay.objects.values_list("day", flat=True)))
        assert len(days) == 13
        assert days == [
            date(2025, 6, 30),
            date(2025, 7, 31),
            date(2025, 8, 31),
            date(2025, 9, 30),
            date(2025, 10, 31),
            date(2025, 11, 30),
            date(2025, 12, 31),
            date(2026, 1, 31),
            date(2026, 2, 28),
            date(2026, 3, 31),
            date(2026, 4, 30),
            date(2026, 5, 31),
            RUN,
        ]
        # one row per day × owner × tier × stage
        keys = list(CustomerStateDay.objects.values_list("day", "owner_id", "tier", "stage"))
        assert len(keys) == len(set(keys))
        revenue_keys = list(RevenueDay.objects.values_list("day", "owner_id", "staff_id", "kind"))
        assert len(revenue_keys) == len(set(revenue_keys))
        # the first run counts spend of all days, the reversed order left out
        kept = Order.objects.exclude(status="reversed")
        assert sum(r.amount for r in RevenueDay.objects.all()) == sum(o.amount for o in kept)
        assert sum(r.orders for r in RevenueDay.objects.all()) == kept.count()
        before = _rows()
        dashboard_figures_refresh(run_date=RUN)
        assert _rows() == before
        dashboard_figures_refresh(run_date=RUN)
        assert _rows() == before


def test_a_later_night_keeps_the_earlier_days_and_picks_up_late_changes(books):
    shop = books
    later = date(2026, 7, 31)
    with tenant_context(shop.tenant.pk):
        state_before, _revenue_before = _rows()
        # a late DMS import for June, a reversal of a June order, a new order in July
        Order.objects.create(
            customer=shop.c["B3"],
            kind="parts",
            ordered_on=date(2026, 6, 25),
            amount=Decimal("120.00"),
            staff=shop.advisor,
        )
        Order.objects.filter(customer=shop.c["A1"], kind="insurance").update(status="reversed")
        Order.objects.create(
            customer=shop.c["B2"],
            kind="maintenance",
            ordered_on=date(2026, 7, 10),
            amount=Decimal("700.00"),
            staff=shop.advisor,
            vehicle=shop.v["B2b"],
        )
        dashboard_figures_refresh(run_date=later)
        state_after, _revenue_after = _rows()
        days = sorted(set(CustomerStateDay.objects.values_list("day", flat=True)))
        assert len(days) == 14 and days[-1] == later  # no second backfill
        assert [r for r in state_after if r[0] != later] == state_before  # earlier days untouched
        assert sum(r[4] for r in state_after if r[0] == later) == len(live_customers(later))
        for period in (JUNE, Period(date(2026, 7, 1), later)):
            got = RevenueDay.objects.filter(day__gte=period.start, day__lte=period.end)
            expected = expected_revenue(period)
            assert sum(r.amount for r in got) == expected["amount"]
            assert sum(r.orders for r in got) == expected["orders"]
        assert expected_revenue(JUNE)["amount"] == Decimal("6500.00") + Decimal("120.00") - Decimal("4500.00")
    july = figures_of(shop, Period(date(2026, 7, 1), later), JUNE)
    assert july["period"]["as_of"] == later and july["compare"]["as_of"] == RUN
    assert july["revenue"]["now"]["amount"] == Decimal("700.00")
    assert july["base"]["now"]["vehicles_returned"] == 3  # B2's second car came back in July


def test_re_running_an_earlier_night_keeps_the_spend_of_later_days(books):
    """`run_nightly --date` may repeat a past night: the days after it keep their spend."""
    shop = books
    later = date(2026, 7, 31)
    with tenant_context(shop.tenant.pk):
        Order.objects.create(
            customer=shop.c["B2"],
            kind="maintenance",
            ordered_on=date(2026, 7, 10),
            amount=Decimal("700.00"),
            staff=shop.advisor,
            vehicle=shop.v["B2b"],
        )
        dashboard_figures_refresh(run_date=later)
        july_rows = sorted(RevenueDay.objects.filter(day__gt=RUN).values_list("day", "kind", "orders", "amount"))
        assert july_rows == [(date(2026, 7, 10), "maintenance", 1, Decimal("700.00"))]
        dashboard_figures_refresh(run_date=RUN)  # the night of 30 June again
        assert (
            sorted(RevenueDay.objects.filter(day__gt=RUN).values_list("day", "kind", "orders", "amount")) == july_rows
        )


def test_the_nightly_pipeline_runs_the_dashboard_step_last(books):
    from crm.core.nightly import nightly_run_tenant, nightly_steps

    names = [s.name for s in nightly_steps.contributions()]
    assert names[-1] == "dashboards.figures"
    assert names.index("segmentation.rfm") < names.index("customers.data_quality") < names.index("dashboards.figures")
    shop = books
    runs = nightly_run_tenant(
        tenant_id=shop.tenant.pk, trigger="command", run_date=date(2026, 7, 1), only=["dashboards.figures"]
    )
    assert [(r.step, r.status) for r in runs] == [("dashboards.figures", "succeeded")]
    assert runs[0].rows > 0
    with tenant_context(shop.tenant.pk):
        assert CustomerStateDay.objects.filter(day=date(2026, 7, 1)).exists()


def test_the_night_ends_at_midnight_in_the_dealerships_own_time_zone(db):
    """A dealership in Los Angeles: its night of 30 June ends at midnight there, whatever zone the
    worker runs in. A customer created at 20:00 on 30 June (local) is in that night's count, and
    points earned at 20:00 on 31 May (local) are in the 31 May month end."""
    from crm.core.nightly import nightly_run_tenant

    tenant = TenantFactory(name="洛杉矶店", code="dash-la", time_zone="America/Los_Angeles")
    la = ZoneInfo("America/Los_Angeles")
    with tenant_context(tenant.pk):
        manager = MembershipFactory(user__email="manager@dash-la.test", role=Role.MANAGER)
        early = CustomerFactory(name="早客户")
        late = CustomerFactory(name="晚客户")
        Customer.objects.filter(pk=early.pk).update(created_at=datetime(2026, 1, 5, 9, tzinfo=la))
        Customer.objects.filter(pk=late.pk).update(created_at=datetime(2026, 6, 30, 20, tzinfo=la))
        member = loyalty_services.member_enrol(actor=manager, customer=early)
        LedgerEntry.objects.create(
            member=member,
            kind=LedgerEntry.Kind.ADJUST,
            points=100,
            reason="测试",
            occurred_at=datetime(2026, 5, 31, 20, tzinfo=la),
            source=LedgerEntry.Source.STAFF,
        )
        Member.objects.filter(pk=member.pk).update(points_balance=F("points_balance") + 100)
    runs = nightly_run_tenant(tenant_id=tenant.pk, trigger="command", run_date=RUN, only=["dashboards.figures"])
    assert runs[0].status == "succeeded", runs[0].error
    with tenant_context(tenant.pk):
        counted = {
            day: (sum(r.customers for r in rows), sum(r.points for r in rows))
            for day in (date(2026, 5, 31), RUN)
            for rows in [list(CustomerStateDay.objects.filter(day=day))]
        }
    assert counted == {date(2026, 5, 31): (1, 100), RUN: (2, 100)}


def test_dependency_counts_cars_sold_here_without_a_purchase_date_over_24_calendar_months(shop, web):
    """The DMS import shape: vehicles without a purchase date, bought here by a completed sale order.
    They are in the service base (docs/dashboards.md); the base is the 24 calendar months up to the day
    (30 June 2026: 1 July 2024 … 30 June 2026, not 730 days back to 30 June 2024), came back is the 12
    calendar months (30 June 2024: 1 July 2023 …, not 365 days back to 1 July 2023 across 29 February);
    open and reversed orders count for neither."""
    sale, maintenance, repair = Order.Kind.VEHICLE_SALE, Order.Kind.MAINTENANCE, Order.Kind.REPAIR
    d = date
    cars = {  # name: (purchase date, [(kind, date, status)])
        "S1": (None, [(sale, d(2025, 1, 10), "completed"), (maintenance, d(2026, 3, 1), "completed")]),
        "S2": (None, [(sale, d(2025, 2, 1), "completed")]),  # sold here, never back: the overstated case
        "S3": (None, [(sale, d(2024, 7, 1), "completed")]),  # the first day of the 24 months
        "S4": (None, [(sale, d(2024, 6, 30), "completed")]),  # the same date 24 months before: out on 30 June
        "P5": (d(2024, 6, 30), []),  # likewise by the purchase date (730 days would count it)
        "S5": (None, [(sale, d(2026, 1, 10), "reversed")]),
        "S6": (None, [(sale, d(2026, 6, 1), "open")]),  # a deposit, not delivered
        "W1": (None, [(sale, d(2025, 3, 1), "completed"), (repair, d(2026, 6, 25), "open")]),  # in the workshop
        "W2": (d(2023, 1, 1), [(maintenance, d(2025, 6, 30), "completed")]),  # 12 months to the day: not back
        "W3": (d(2023, 1, 1), [(maintenance, d(2025, 7, 1), "completed")]),
        "R1": (d(2025, 5, 1), [(repair, d(2026, 5, 1), "reversed")]),
        "L1": (None, [(maintenance, d(2023, 7, 1), "completed")]),  # back within 12 months of 30 June 2024
    }
    earlier = d(2024, 6, 30)
    with tenant_context(shop.tenant.pk):
        for name, (bought, orders) in cars.items():
            customer = CustomerFactory(name=f"回厂{name}", owner=shop.alice)
            Customer.objects.filter(pk=customer.pk).update(created_at=at(d(2020, 1, 1)))
            shop.c[name] = customer
            vehicle = VehicleFactory(customer=customer, purchase_date=bought)
            for kind, on, status in orders:
                Order.objects.create(
                    customer=customer, vehicle=vehicle, kind=kind, ordered_on=on, status=status, amount=Decimal("100")
                )
        dashboard_figures_refresh(run_date=RUN)
        dashboard_figures_refresh(run_date=earlier)
        live = live_customers(RUN)
        expected_now, expected_then = fleet(RUN, live), fleet(earlier, live)
    now = figures_of(shop)["base"]["now"]
    then = figures_of(shop, Period(d(2024, 6, 1), earlier), Period(d(2024, 5, 1), d(2024, 5, 31)))["base"]["now"]
    assert (now["vehicles"], now["vehicles_returned"]) == expected_now == (7, 2)  # S1 S2 S3 W1 W2 W3 R1; S1 W3
    assert now["dependency"] == 28.6
    assert (then["vehicles"], then["vehicles_returned"]) == expected_then == (5, 1)  # S4 P5 W2 W3 L1; L1
    assert then["dependency"] == 20.0
    # the drill-down lists the same base less what came back
    listed = _listed(web(shop.manager).get(DRILL, {**JUNE_QUERY, "figure": "not_returned"}))
    assert sorted(listed) == sorted(shop.ids("S2", "S3", "W1", "W2", "R1"))


def test_a_dealership_never_counted_shows_no_base_and_no_spend(shop):
    figures = figures_of(shop)
    assert figures["period"]["as_of"] is None and figures["base"]["now"]["customers"] == 0
    assert figures["revenue"]["now"]["amount"] == 0
    assert all(h["value"] is None for h in figures["headline"] if h["key"] != "contribution")


# --- the page: who, bad input, downloads ------------------------------------------------------------


def test_managers_admins_and_auditors_open_the_dashboard_others_do_not(shop, web, client):
    for member, status in [
        (shop.manager, 200),
        (shop.admin, 200),
        (shop.auditor, 200),
        (shop.alice, 403),
        (shop.advisor, 403),
        (shop.agent, 403),
    ]:
        browser = web(member)
        assert browser.get(PAGE).status_code == status, member.role
        assert browser.get(DRILL, {**JUNE_QUERY, "figure": "points"}).status_code == status, member.role
        browser.logout()
    anonymous = client.get(PAGE)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/sign-in/")


def test_the_page_defaults_to_this_month_beside_the_days_just_before(shop, web):
    response = web(shop.manager).get(PAGE)
    assert response.status_code == 200
    today = timezone.localdate()
    figures = response.context["figures"]
    assert figures["period"]["start"] == today.replace(day=1) and figures["period"]["end"] == today
    length = (today - today.replace(day=1)).days + 1
    assert figures["compare"]["end"] == today.replace(day=1) - timedelta(days=1)
    assert figures["compare"]["start"] == today.replace(day=1) - timedelta(days=length)
    assert previous_period(JUNE) == MAY


def test_the_period_fields_show_the_default_period_as_a_date_input_reads_it(shop, web):
    """<input type="date"> takes its value as YYYY-MM-DD; in any other shape the browser shows an empty
    field, and pressing "Show" without touching it submits no period."""
    html = web(shop.manager).get(PAGE).content.decode()
    today = timezone.localdate()
    values = dict(re.findall(r'<input type="date" name="(start|end)" value="([^"]*)"', html))
    assert values == {"start": today.replace(day=1).isoformat(), "end": today.isoformat()}


def test_the_page_shows_the_figures_and_every_table_with_the_same_numbers_as_the_selector(books, web):
    shop = books
    response = web(shop.manager).get(PAGE, JUNE_QUERY)
    assert response.status_code == 200
    figures = figures_of(shop)
    assert response.context["figures"]["base"] == figures["base"]
    assert response.context["figures"]["compare"]["start"] == MAY.start  # the default comparison
    tables = response.context["tables"]
    assert tables == presenters.tables(figures)
    assert [t["key"] for t in tables] == ["headline", "tiers", "ladder", "revenue", "service"]
    html = response.content.decode()
    for key in ("satisfaction", "contribution", "loyalty", "dependency", "accuracy", "points"):
        assert f'data-testid="headline-{key}"' in html
    assert "40.0%" in html and "33.3%" in html and "57.1%" in html
    for chart in ("tiers", "funnel", "ladder", "revenue", "service"):
        assert f'data-testid="chart-{chart}"' in html
    charts = response.context["charts"]
    assert charts["tiers"]["now"] == [t["customers"] for t in figures["tiers"]]
    assert charts["funnel"]["now"] == [2, 1, 0, 2, 1]  # prospect, new, satisfied, retained, loyal
    assert charts["revenue"]["now"] == [float(r["amount"]) for r in figures["revenue"]["now"]["by_kind"].values()]


def test_the_points_card_shows_the_liability_at_the_programmes_point_value(books, web):
    """800 outstanding points at 0.01 CNY a point (the programme's default) are a liability of ¥8."""
    shop = books
    with tenant_context(shop.tenant.pk):
        from loyalty.models import Programme

        assert Programme.objects.get().point_value == Decimal("0.0100")
    html = web(shop.manager).get(PAGE, JUNE_QUERY).content.decode()
    card = html[html.index('data-testid="headline-points"') :]
    card = card[: card.index("</a>")]
    assert ">800<" in card
    assert "¥8.00 " in card  # money: two decimals (docs/ui.md)


def _workbook(response) -> Any:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"] and ".xlsx" in response["Content-Disposition"]
    return load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)


def test_the_xlsx_download_has_one_sheet_per_table_with_the_pages_numbers(books, web):
    shop = books
    client = web(shop.manager)
    page = client.get(PAGE, JUNE_QUERY)
    tables = page.context["tables"]
    book = _workbook(client.get(PAGE, {**JUNE_QUERY, "format": "xlsx"}))
    assert book.sheetnames == [t["title"][:31] for t in tables]
    for table in tables:
        rows = [list(r) for r in book[table["title"][:31]].iter_rows(values_only=True)]
        assert [str(h) for h in rows[0]] == [str(h) for h in table["headers"]]
        expected = [[str(v) if isinstance(v, str) else v for v in row] for row in table["rows"]]
        assert rows[1:] == expected, table["key"]
    # the spend sheet holds the independent spend of June and May
    with tenant_context(shop.tenant.pk):
        june, may = expected_revenue(JUNE), expected_revenue(MAY)
    revenue = [list(r) for r in book[tables[3]["title"][:31]].iter_rows(values_only=True)][1:]
    assert [row[2] for row in revenue] == [float(june["by_kind"][k]["amount"]) for k in Order.Kind.values]
    assert [row[4] for row in revenue] == [float(may["by_kind"][k]["amount"]) for k in Order.Kind.values]


BAD_INPUT = [
    ({"start": "2026-06-30", "end": "2026-06-01"}, "end"),
    ({"start": "2026-06-01", "end": "2026-06-30", "compare_start": "2026-05-01"}, "compare_end"),
    ({"start": "2026-06-01", "end": "2026-06-30", "compare_end": "2026-05-31"}, "compare_start"),
    (
        {"start": "2026-06-01", "end": "2026-06-30", "compare_start": "2026-05-31", "compare_end": "2026-05-01"},
        "compare_end",
    ),
    ({"start": "2026-13-45", "end": "2026-06-30"}, "start"),
    ({"start": "yesterday", "end": "2026-06-30"}, "start"),
    ({"start": "2026-06-01"}, "end"),
    ({"start": "2023-06-01", "end": "2026-06-30"}, "start"),
    (
        {"start": "2026-06-01", "end": "2026-06-30", "compare_start": "2020-01-01", "compare_end": "2026-05-31"},
        "compare_start",
    ),
    ({**JUNE_QUERY, "consultant": "abc"}, "consultant"),
    ({**JUNE_QUERY, "consultant": "99999999999999999999"}, "consultant"),
    ({**JUNE_QUERY, "advisor": "-1"}, "advisor"),
]


@pytest.fixture
def other_dealership(db) -> Membership:  # type: ignore[no-untyped-def]
    tenant = TenantFactory(name="别家店", code="dash-other")
    with tenant_context(tenant.pk):
        return MembershipFactory(user__email="carol@dash-other.test", role=Role.SALES_CONSULTANT)


def _bad_inputs(shop: Shop, other: Membership) -> list[tuple[dict[str, str], str]]:
    return [
        *BAD_INPUT,
        ({**JUNE_QUERY, "consultant": str(other.pk)}, "consultant"),  # another dealership's consultant
        ({**JUNE_QUERY, "consultant": str(shop.advisor.pk)}, "consultant"),  # not a consultant
        ({**JUNE_QUERY, "advisor": str(shop.alice.pk)}, "advisor"),  # not an advisor
    ]


def test_bad_input_on_the_page_is_a_400_naming_the_field_never_a_500(shop, other_dealership, web):
    client = web(shop.manager)
    for query, field_name in _bad_inputs(shop, other_dealership):
        for extra in ({}, {"format": "xlsx"}):
            response = client.get(PAGE, {**query, **extra})
            assert response.status_code == 400, query
            errors = response.context["form"].errors
            assert field_name in errors, (query, errors)
            html = response.content.decode()
            for message in errors[field_name]:
                assert str(message).replace("'", "&#x27;") in html or str(message) in html, (query, message)
            assert "figures" not in response.context or not response.context.get("figures")


def test_bad_input_on_the_drill_down_is_a_400_never_a_500(books, other_dealership, web):
    shop = books
    client = web(shop.manager)
    for query, field_name in _bad_inputs(shop, other_dealership):
        response = client.get(DRILL, {**query, "figure": "points"})
        assert response.status_code == 400, query
        assert field_name in response.context["form"].errors, query
    for figure, value in [
        ("bogus", ""),
        ("tier", "gold"),
        ("stage", ""),
        ("stage", "vip"),
        ("points", "x"),
        ("spenders", "cars"),
        ("not_returned", "1"),
        ("", ""),
    ]:
        response = client.get(DRILL, {**JUNE_QUERY, "figure": figure, "value": value})
        assert response.status_code == 400, (figure, value)
        assert response.context["form"].errors, (figure, value)
        assert 'data-testid="drill-errors"' in response.content.decode()
        assert client.get(DRILL, {**JUNE_QUERY, "figure": figure, "value": value, "format": "xlsx"}).status_code == 400
    with tenant_context(shop.tenant.pk):
        assert not AuditEvent.objects.filter(action=AuditAction.CUSTOMERS_EXPORTED).exists()


@pytest.mark.parametrize(
    "query",
    [
        {"start": "0001-01-01", "end": "0001-01-31"},
        {"start": "9999-12-01", "end": "9999-12-31"},
        {"start": "2026-06-01", "end": "2026-06-30", "compare_start": "0001-01-01", "compare_end": "0001-01-02"},
    ],
    ids=["year-1", "year-9999", "compare-year-1"],
)
def test_dates_at_the_ends_of_the_calendar_are_never_a_500(shop, web, api, query):
    """A date field takes years 1 to 9999; the day before the first or after the last does not exist."""
    client = web(shop.manager)
    client.raise_request_exception = False
    rest = api(shop.manager)
    rest.raise_request_exception = False
    drill = {**query, "figure": "detractors"}
    statuses = {
        "page": client.get(PAGE, query).status_code,
        "xlsx": client.get(PAGE, {**query, "format": "xlsx"}).status_code,
        "drill": client.get(DRILL, drill).status_code,
        "api": rest.get(API, query).status_code,
        "api drill": rest.get(API_DRILL, drill).status_code,
    }
    assert all(status in (200, 400) for status in statuses.values()), statuses


# --- the drill-down ---------------------------------------------------------------------------------


def _listed(response) -> list[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content.decode()[:500]
    return [customer.pk for customer, _mobile in response.context["rows"]]


def expected_drill(shop: Shop, figure: str, value: str = "", period: Period = JUNE) -> set[int]:
    """The customers behind a figure, from the base tables (as they stand now)."""
    live = Customer.objects.filter(merged_into__isnull=True)
    start, end = period.bounds(ZONE)
    if figure == "tier":
        tiers = dict(CustomerValue.objects.values_list("customer_id", "tier"))
        return {c.pk for c in live if tiers.get(c.pk, "") == value}
    if figure == "stage":
        return {c.pk for c in live if c.lifecycle_stage == value}
    if figure == "spenders":
        orders = Order.objects.filter(ordered_on__gte=period.start, ordered_on__lte=period.end).exclude(
            status="reversed"
        )
        return {o.customer_id for o in orders if not value or o.kind == value}
    if figure == "not_returned":
        found = set()
        for vehicle in Vehicle.objects.filter(customer__in=live):
            counted, came = service_base(vehicle, period.end)
            if counted and not came:
                found.add(vehicle.customer_id)
        return found
    if figure == "inaccurate":
        return {c.pk for c in live if c.quality_score is not None and c.quality_score < 100}
    if figure == "detractors":
        rows = Response.objects.filter(submitted_at__gte=start, submitted_at__lt=end, nps__lte=6)
        return {r.customer_id for r in rows}
    if figure == "complaints":
        from complaints.models import Ticket

        tickets = Ticket.objects.filter(opened_at__gte=start, opened_at__lt=end, customer__isnull=False)
        return {t.customer_id for t in tickets}
    if figure == "followups_missed":
        return {f.customer_id for f in finished_followups(period) if f.status in ("unreachable", "expired")}
    if figure == "points":
        return {m.customer_id for m in Member.objects.filter(points_balance__gt=0)}
    raise AssertionError(figure)


DRILLS = [
    ("tier", "key"),
    ("tier", "consolidate"),
    ("tier", "maintain"),
    ("tier", "exit"),
    ("tier", ""),
    ("stage", "prospect"),
    ("stage", "new"),
    ("stage", "retained"),
    ("stage", "loyal"),
    ("stage", "dormant"),
    ("stage", "lost"),
    ("spenders", ""),
    ("spenders", "maintenance"),
    ("spenders", "insurance"),
    ("spenders", "repair"),
    ("inaccurate", ""),
    ("detractors", ""),
    ("complaints", ""),
    ("points", ""),
]


def test_each_drill_down_lists_exactly_the_customers_behind_the_figure(books, web):
    shop = books
    client = web(shop.manager)
    got = {(f, v): _listed(client.get(DRILL, {**JUNE_QUERY, "figure": f, "value": v})) for f, v in DRILLS}
    with tenant_context(shop.tenant.pk):
        expected = {(f, v): expected_drill(shop, f, v) for f, v in DRILLS}
    for key in DRILLS:
        assert sorted(got[key]) == sorted(expected[key]), key
        assert len(got[key]) == len(set(got[key])), key  # no customer twice
    # the data behind them is as the module's docstring says
    assert expected[("spenders", "")] == shop.ids("A1", "A2", "B2")
    assert expected[("spenders", "repair")] == set()  # the only repair was reversed
    assert expected[("inaccurate", "")] == shop.ids("A2", "B2", "N1")
    assert expected[("detractors", "")] == shop.ids("B1", "B2", "B3")
    assert expected[("complaints", "")] == shop.ids("A1", "A2", "B1", "B2")
    assert expected[("stage", "dormant")] == shop.ids("B3")
    # the tier counts of the page match the lists
    figures = figures_of(shop)
    for row in figures["tiers"]:
        assert row["customers"] == len(got[("tier", row["tier"])]), row
    # spenders and members with points: most first
    assert got[("points", "")] == [shop.c["A1"].pk, shop.c["B2"].pk]
    assert got[("spenders", "")] == [shop.c[n].pk for n in ("A1", "B2", "A2")]  # 5,300; 900; 300


def test_the_not_returned_list_names_each_customer_with_a_recent_car_that_did_not_come_back(books, web):
    """B1's car, bought in May, has not been serviced; of B2's two cars one came back in June and the
    other never did: B2 is behind the dependency figure as much as B1. A1's car came back. A2's and
    B3's cars were bought long ago but serviced in 2025 and not since: they are in the dependency
    figure's base (bought or serviced in the last 24 months) and did not come back in 12."""
    shop = books
    listed = _listed(web(shop.manager).get(DRILL, {**JUNE_QUERY, "figure": "not_returned"}))
    with tenant_context(shop.tenant.pk):
        expected = expected_drill(shop, "not_returned")
    assert expected == shop.ids("A2", "B1", "B2", "B3")
    assert sorted(listed) == sorted(expected)


def test_each_bar_and_card_links_to_as_many_customers_as_it_counts(books, web):
    """On the night the base was counted, the tier and ladder bars count the customers their links
    list; the links keep the filters."""
    shop = books
    client = web(shop.manager)
    for query in (JUNE_QUERY, {**JUNE_QUERY, "consultant": str(shop.alice.pk)}):
        page = client.get(PAGE, query)
        charts = page.context["charts"]
        for chart in ("tiers", "funnel"):
            for count, link in zip(charts[chart]["now"], charts[chart]["links"], strict=True):
                assert ("consultant=" in link) == ("consultant" in query), link
                assert len(_listed(client.get(link))) == count, (query, link)
        for link in charts["revenue"]["links"] + charts["service"]["links"]:
            assert client.get(link).status_code == 200, link
        for card in page.context["headline"]:
            assert client.get(card["link"]).status_code == 200, card["key"]
        dormant = next(h for h in page.context["headline"] if h["key"] == "loyalty")["link"]
        assert "figure=stage" in dormant and "value=dormant" in dormant


def test_the_follow_ups_missed_list_is_the_customers_behind_the_missed_figure(books, web):
    """The service table's "follow-ups missed" counts those marked unreachable in the period and those
    that expired in it (the day after their last day); the list behind it names those customers."""
    shop = books
    listed = _listed(web(shop.manager).get(DRILL, {**JUNE_QUERY, "figure": "followups_missed"}))
    figures = figures_of(shop)
    missed = figures["followups"]["now"]["unreachable"] + figures["followups"]["now"]["expired"]
    with tenant_context(shop.tenant.pk):
        expected = expected_drill(shop, "followups_missed")
    assert missed == 3 and expected == shop.ids("A2", "B2", "B1")
    assert sorted(listed) == sorted(expected)


def test_the_drill_down_narrows_to_the_consultants_customers_and_the_advisors_orders(books, web):
    shop = books
    client = web(shop.manager)
    alices = _listed(
        client.get(DRILL, {**JUNE_QUERY, "figure": "stage", "value": "prospect", "consultant": shop.alice.pk})
    )
    assert alices == [shop.c["A3"].pk]
    bobs = _listed(client.get(DRILL, {**JUNE_QUERY, "figure": "spenders", "consultant": shop.bob.pk}))
    assert bobs == [shop.c["B2"].pk]
    advisors = _listed(client.get(DRILL, {**JUNE_QUERY, "figure": "spenders", "advisor": shop.advisor.pk}))
    assert advisors == [shop.c[n].pk for n in ("B2", "A1", "A2")]  # 900; 800; 300 handled by the advisor


def test_the_drill_down_masks_numbers_and_shows_only_what_the_viewer_may_see(books, web):
    shop = books
    query = {**JUNE_QUERY, "figure": "stage", "value": "prospect"}
    manager = web(shop.manager).get(DRILL, query)
    rows = {customer.pk: mobile for customer, mobile in manager.context["rows"]}
    a3, m1 = shop.c["A3"], shop.c["M1"]
    assert rows == {a3.pk: mask_mobile(a3.mobile), m1.pk: m1.mobile}  # the manager owns M1
    html = manager.content.decode()
    assert a3.mobile not in html and mask_mobile(a3.mobile) in html and a3.name in html
    # the same masking as the customer list
    listing = web(shop.manager).get("/customers/", {"q": a3.name}).content.decode()
    assert mask_mobile(a3.mobile) in listing and a3.mobile not in listing
    auditor = web(shop.auditor).get(DRILL, query)
    assert {c.pk: m for c, m in auditor.context["rows"]} == {
        a3.pk: mask_mobile(a3.mobile),
        m1.pk: mask_mobile(m1.mobile),
    }
    # the tenant admin sees the dashboard's counts but no customer
    admin = web(shop.admin).get(DRILL, query)
    assert admin.status_code == 200 and admin.context["rows"] == []
    assert a3.name not in admin.content.decode()


def test_the_drill_down_xlsx_is_masked_and_recorded_as_a_customer_export(books, web):
    shop = books
    query = {**JUNE_QUERY, "figure": "inaccurate", "consultant": shop.bob.pk}
    client = web(shop.manager)
    book = _workbook(client.get(DRILL, {**query, "format": "xlsx"}))
    rows = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    assert len(rows[0]) == 6
    assert [r[0] for r in rows[1:]] == [shop.c["B2"].pk]
    assert rows[1][1] == shop.c["B2"].name and rows[1][2] == mask_mobile(shop.c["B2"].mobile)
    with tenant_context(shop.tenant.pk):
        event = AuditEvent.objects.get(action=AuditAction.CUSTOMERS_EXPORTED)
    assert event.actor_id == shop.manager.user_id
    assert event.data["figure"] == "inaccurate" and event.data["format"] == "xlsx"
    assert event.data["filters"]["consultant"] == shop.bob.pk
    # the page itself records nothing
    client.get(DRILL, query)
    with tenant_context(shop.tenant.pk):
        assert AuditEvent.objects.filter(action=AuditAction.CUSTOMERS_EXPORTED).count() == 1


# --- the API ----------------------------------------------------------------------------------------


def _key(shop: Shop, actor: Membership, scopes: list[str], kind: str = ApiCredential.Kind.PERSONAL) -> str:
    with tenant_context(shop.tenant.pk):
        return credential_create(actor=actor, kind=kind, name=f"test {scopes}", scopes=scopes)[1]


def _as_json(value: Any) -> Any:
    return json.loads(JSONRenderer().render(value))


def test_the_figures_api_gives_the_selectors_numbers(books, api):
    shop = books
    response = api(shop.manager).get(API, {**JUNE_QUERY, "consultant": shop.alice.pk})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["points"]["point_value"] in (0.01, "0.0100")
    labels = [h.pop("label") for h in body["headline"]]
    assert len(labels) == 5 and all(labels)
    assert body == _as_json(figures_of(shop, consultant=shop.alice))
    everyone = api(shop.manager).get(API, JUNE_QUERY).json()
    assert everyone["compare"] == {"start": "2026-05-02", "end": "2026-05-31", "as_of": "2026-05-31"}
    assert Decimal(everyone["revenue"]["now"]["amount"]) == Decimal("6500.00")
    assert everyone["base"]["now"]["by_stage"]["retained"] == 2
    chosen = api(shop.manager).get(API, {**JUNE_QUERY, "compare_start": "2025-06-01", "compare_end": "2025-06-30"})
    assert chosen.json()["compare"] == {"start": "2025-06-01", "end": "2025-06-30", "as_of": "2025-06-30"}


def test_the_customers_api_pages_the_drill_down(books, api):
    shop = books
    client = api(shop.manager)
    first = client.get(API_DRILL, {**JUNE_QUERY, "figure": "tier", "value": "", "page_size": 1})
    assert first.status_code == 200, first.json()
    body = first.json()
    with tenant_context(shop.tenant.pk):
        expected = expected_drill(shop, "tier", "")
    assert body["count"] == len(expected) == 2 and len(body["results"]) == 1 and body["next"]
    second = client.get(body["next"]).json()
    assert {body["results"][0]["id"], second["results"][0]["id"]} == expected
    row = next(r for r in [body["results"][0], second["results"][0]] if r["id"] == shop.c["A3"].pk)
    assert row["mobile"] == mask_mobile(shop.c["A3"].mobile)
    assert row["owner"] == shop.alice.pk and row["lifecycle_stage"] == "prospect"
    assert set(row) == {"id", "name", "mobile", "owner", "lifecycle_stage", "last_visit_on"}
    points = client.get(API_DRILL, {**JUNE_QUERY, "figure": "points"}).json()
    assert [r["id"] for r in points["results"]] == [shop.c["A1"].pk, shop.c["B2"].pk]


def test_the_api_refuses_bad_input_with_the_fields_named(shop, other_dealership, api):
    client = api(shop.manager)
    for query, field_name in _bad_inputs(shop, other_dealership):
        for url, extra in ((API, {}), (API_DRILL, {"figure": "points"})):
            response = client.get(url, {**query, **extra})
            assert response.status_code == 400, (url, query)
            error = response.json()["error"]
            assert error["code"] == "validation_error" and field_name in error["fields"], (url, query, error)
    unknown = client.get(API_DRILL, {**JUNE_QUERY, "figure": "bogus"})
    assert unknown.status_code == 400 and "figure" in unknown.json()["error"]["fields"]
    wrong = client.get(API_DRILL, {**JUNE_QUERY, "figure": "tier", "value": "gold"})
    assert wrong.status_code == 400 and "value" in wrong.json()["error"]["fields"]


def test_the_api_is_for_those_who_see_dashboards_with_the_dashboards_scope(shop, api):
    assert api(shop.alice).get(API, JUNE_QUERY).status_code == 403
    assert api(shop.advisor).get(API_DRILL, {**JUNE_QUERY, "figure": "points"}).status_code == 403
    assert api(shop.auditor).get(API, JUNE_QUERY).status_code == 200
    assert api(shop.admin).get(API, JUNE_QUERY).status_code == 200
    assert api().get(API, JUNE_QUERY).status_code in (401, 403)
    # a personal token: the scope decides
    with_scope = api(key=_key(shop, shop.manager, ["dashboards:read"]))
    assert with_scope.get(API, JUNE_QUERY).status_code == 200
    assert with_scope.get(API_DRILL, {**JUNE_QUERY, "figure": "points"}).status_code == 200
    without = api(key=_key(shop, shop.manager, ["customers:read", "followups:read"])).get(API, JUNE_QUERY)
    assert without.status_code == 403 and "dashboards:read" in without.json()["error"]["message"]
    # a consultant's token with the scope is still a consultant's
    assert api(key=_key(shop, shop.alice, ["dashboards:read"])).get(API, JUNE_QUERY).status_code == 403
    # an integration key without the scope is refused for the scope
    integration = _key(shop, shop.admin, ["customers:read"], kind=ApiCredential.Kind.INTEGRATION)
    refused = api(key=integration).get(API, JUNE_QUERY)
    assert refused.status_code == 403 and "dashboards:read" in refused.json()["error"]["message"]
    # with the scope, an integration (BI, group reporting) pulls the same numbers as the page
    scoped = api(key=_key(shop, shop.admin, ["dashboards:read"], kind=ApiCredential.Kind.INTEGRATION))
    assert scoped.get(API, JUNE_QUERY).json() == api(shop.manager).get(API, JUNE_QUERY).json()
