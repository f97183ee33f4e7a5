"""The demo data: deterministic, realistic and valid, and its sign-ins work."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from itertools import pairwise

import pytest
from django.core.management import call_command
from django.db import models
from django.db.models import Max, Sum
from django.utils import timezone

from complaints.models import Ticket
from config.demo import DEALERSHIPS, demo_exists, seed_demo
from crm.core.period import Period, month_ends_before
from crm.tenancy.context import tenant_context
from crm.tenancy.models import Membership, Tenant
from crm.tenancy.roles import Role
from customers.models import Customer, Order, Vehicle
from customers.validators import normalize_cn_mobile, normalize_plate, validate_id_number, validate_vin
from dashboards.models import CustomerStateDay
from dashboards.selectors import DashboardFilters, base_figures, followup_figures, previous_period
from followups.models import Attempt, Followup
from loyalty.models import LedgerEntry, Member
from segmentation.models import CustomerValue, SegmentationRun
from segmentation.selectors import tier_migration
from surveys.models import Invitation
from surveys.models import Response as SurveyResponse

pytestmark = pytest.mark.django_db


def _snapshot() -> list[tuple]:  # type: ignore[type-arg]
    rows = []
    for tenant in Tenant.objects.order_by("code"):
        with tenant_context(tenant.pk):
            rows.append(
                (
                    tenant.code,
                    list(
                        Customer.objects.order_by("external_id", "mobile").values_list("name", "mobile", "birthday")[
                            :50
                        ]
                    ),
                )
            )
            rows.append((tenant.code, list(Vehicle.objects.order_by("vin").values_list("vin", "plate")[:50])))
            rows.append((tenant.code, Order.objects.count(), str(sum(o.amount for o in Order.objects.all()))))
            from sales.models import Lead

            rows.append(
                (tenant.code, sorted(Lead.objects.values_list("name", "stage", "owner__user__email", "source")))
            )
    return rows


def test_the_demo_is_valid_and_has_every_role(settings):
    result = seed_demo(customers_per_dealership=150, seed=7, today=date(2026, 11, 23), progress=lambda _m: None)
    assert result.customers == 300 and result.orders > result.vehicles > 0
    for dealer in DEALERSHIPS:
        tenant = Tenant.objects.get(code=dealer.code)
        with tenant_context(tenant.pk):
            roles = set(Membership.objects.values_list("role", flat=True))
            assert roles == set(Role.values)
            for mobile, id_number in Customer.objects.values_list("mobile", "id_number"):
                assert normalize_cn_mobile(mobile) == mobile
                if id_number:
                    validate_id_number(id_number)
            for vin, plate in Vehicle.objects.values_list("vin", "plate"):
                validate_vin(vin)
                assert normalize_plate(plate) == plate and plate.startswith(dealer.plate_prefix)
            oldest = Order.objects.order_by("ordered_on").values_list("ordered_on", flat=True).first()
            assert (date(2026, 11, 23) - oldest).days > 2 * 365
            assert not Customer.objects.filter(owner__isnull=True).exists()
            # found by pinyin initials like any customer written through the services
            assert not Customer.objects.filter(name_initials__isnull=True).exists()
            # segmentation ran at the last 12 month ends and today: tiers, stages and a migration to show
            runs = list(SegmentationRun.objects.order_by("run_date").values_list("run_date", flat=True))
            assert runs == [*month_ends_before(date(2026, 11, 23), 12), date(2026, 11, 23)]
            assert CustomerValue.objects.exclude(tier="").count() > 60  # of 150: the rest are prospects
            assert set(Customer.objects.values_list("lifecycle_stage", flat=True)) >= {"prospect", "retained"}
            statuses = set(Ticket.objects.values_list("status", flat=True))
            assert Ticket.objects.count() == 8 and {"greet", "handle", "closed", "followed_up"} <= statuses
            assert SurveyResponse.objects.count() >= 5 and Invitation.objects.filter(status="sent").exists()
            # two months of follow-ups: worked, retried, expired, and today's queue still open
            followup_statuses = set(Followup.objects.values_list("status", flat=True))
            assert {"done", "expired"} <= followup_statuses
            assert Attempt.objects.filter(disposition="no_answer").exists()
            assert Followup.objects.filter(
                status__in=["open", "no_answer"], scheduled_on__lte=date(2026, 11, 23)
            ).exists()
            assert Attempt.objects.count() >= Followup.objects.filter(status="done").count() > 0
            migration = tier_migration(from_date=runs[0], to_date=runs[-1])
            assert migration.moved_up + migration.moved_down > 0


def test_the_same_seed_gives_the_same_data():
    from django.db import transaction

    snapshots = []
    for _run in range(2):
        with transaction.atomic():
            seed_demo(customers_per_dealership=60, seed=11, today=date(2026, 11, 23), progress=lambda _m: None)
            snapshots.append(_snapshot())
            transaction.set_rollback(True)  # start the second run from the same empty database
    assert snapshots[0] == snapshots[1]
    assert not demo_exists()


def test_the_demo_sign_ins_work(client, settings):
    call_command("seed_demo", customers=40, stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert client.login(username="manager@sz-yuetong.demo.crm", password=settings.CRM_DEMO_PASSWORD)
    assert client.get("/customers/").status_code == 200
    assert client.login(username="group.manager@demo.crm", password=settings.CRM_DEMO_PASSWORD)
    # a second run does nothing
    call_command("seed_demo", customers=40, stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Tenant.objects.count() == 2


# --- the story a manager reads: dates, the ladder, the previous period, the points -----------------

STORY_DAY = date(2026, 11, 23)  # late in the month: the default comparison reaches back to 9 October
STAGES_EVERY_MONTH = {"prospect", "new", "satisfied", "retained", "loyal", "dormant"}


def _outstanding_at(day: date) -> int:
    """Points outstanding at the end of `day`, from the ledger (the members' balances are its sum)."""
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=timezone.get_current_timezone())
    return LedgerEntry.objects.filter(occurred_at__lt=end).aggregate(s=Sum("points"))["s"] or 0


def _finished_in(period: Period) -> tuple[int, int, int]:
    """(done, unreachable, expired) as docs/followups.md counts them: done and unreachable on the
    day of the call that finished them (their last attempt), expired on the day after their last day."""
    zone = timezone.get_current_timezone()
    done = unreachable = 0
    for followup in Followup.objects.filter(status__in=["done", "unreachable"]):
        last = Attempt.objects.filter(followup=followup).order_by("-occurred_at").first()
        if last is not None and period.start <= timezone.localtime(last.occurred_at, zone).date() <= period.end:
            done += followup.status == "done"
            unreachable += followup.status == "unreachable"
    expired = sum(
        1
        for due_until in Followup.objects.filter(status="expired").values_list("due_until", flat=True)
        if period.start <= due_until + timedelta(days=1) <= period.end
    )
    return done, unreachable, expired


def test_the_demo_tells_a_story_a_manager_believes():
    """One seed, every claim checked; the message lists each claim that does not hold."""
    seed_demo(customers_per_dealership=300, seed=5, today=STORY_DAY, progress=lambda _m: None)
    period = Period(STORY_DAY.replace(day=1), STORY_DAY)  # the dashboard's default period
    compare = previous_period(period)
    zone = timezone.get_current_timezone()
    broken: list[str] = []
    for dealer in DEALERSHIPS:
        with tenant_context(Tenant.objects.get(code=dealer.code).pk):
            # every month end of the last year is on the ladder, with every stage, and no month jumps
            totals = []
            for day in month_ends_before(STORY_DAY, 12):
                stages = dict(
                    CustomerStateDay.objects.filter(day=day).values_list("stage").annotate(n=Sum("customers"))
                )
                if missing := STAGES_EVERY_MONTH - {s for s, n in stages.items() if n}:
                    broken.append(f"{dealer.code} ladder {day}: no {sorted(missing)} in {stages}")
                totals.append(sum(stages.values()))
            if any(not 0.9 * before <= after <= 1.1 * before + 10 for before, after in pairwise(totals)):
                broken.append(f"{dealer.code} ladder totals jump: {totals}")

            # satisfied customers exist: their latest survey says so and they have not come back
            satisfied = list(Customer.objects.filter(lifecycle_stage="satisfied").values_list("pk", flat=True))
            if len(satisfied) < 5:
                broken.append(f"{dealer.code}: {len(satisfied)} satisfied customers")
            for pk in satisfied:
                latest = SurveyResponse.objects.filter(customer_id=pk).order_by("-submitted_at").first()
                days = Order.objects.filter(customer_id=pk).exclude(status="reversed").values("ordered_on")
                if latest is None or (latest.overall or 0) < 4 or days.distinct().count() != 1:
                    broken.append(f"{dealer.code}: customer {pk} is satisfied without the rule")

            # follow-up completion in the period and the one before it, as counted from the calls
            for span in (period, compare):
                counted = _finished_in(span)
                figures = followup_figures(span, zone, DashboardFilters())
                if (figures["done"], figures["unreachable"], figures["expired"]) != counted:
                    broken.append(f"{dealer.code} follow-ups {span}: figure {figures}, calls {counted}")
                if not counted[0] or not 50 <= (figures["completion"] or 0) <= 97:
                    broken.append(f"{dealer.code} follow-up completion {span}: {figures}")

            # points outstanding move by a few percent a week, never by half a year's expiries at once
            if LedgerEntry.objects.aggregate(s=Sum("points"))["s"] != sum(
                Member.objects.values_list("points_balance", flat=True)
            ):
                broken.append(f"{dealer.code}: the balances are not the ledger's sum")
            weeks = [_outstanding_at(STORY_DAY - timedelta(days=7 * n)) for n in range(52, -1, -1)]
            for n, (before, after) in enumerate(pairwise(weeks)):
                if abs(after - before) > 0.05 * before:
                    broken.append(f"{dealer.code} points week {n - 51}: {before} -> {after}")
            now, then = base_figures(period.end, DashboardFilters()), base_figures(compare.end, DashboardFilters())
            if abs(now["points"] - then["points"]) > 0.08 * then["points"]:
                broken.append(f"{dealer.code} dashboard points: {then['points']} -> {now['points']}")
    assert not broken, "\n".join(broken)


# Fields that hold a moment still to come by their nature (a deadline, an expiry, a plan).
FORWARD_FIELDS = {
    "expires_at",
    "expires_on",
    "warranty_end",
    "due_from",
    "due_until",
    "scheduled_on",
    "callback_on",
    "send_after",
    "send_at",
    "valid_to",
}


def test_the_demo_dates_nothing_after_its_present_moment():
    from django.apps import apps

    today = timezone.localdate()
    started = timezone.now()
    seed_demo(customers_per_dealership=60, seed=3, today=today, progress=lambda _m: None)
    latest_allowed = timezone.now()
    ours = {"customers", "complaints", "surveys", "followups", "loyalty", "segmentation", "dashboards", "core"}
    checked = 0
    broken: list[str] = []
    for dealer in DEALERSHIPS:
        with tenant_context(Tenant.objects.get(code=dealer.code).pk):
            for model in apps.get_models():
                if model._meta.app_label not in ours:
                    continue
                for field in model._meta.concrete_fields:
                    if not isinstance(field, models.DateField) or field.name in FORWARD_FIELDS:
                        continue
                    deadline = field.name.endswith(("_due_at", "_due_on", "_warn_at", "_until", "_end"))
                    if deadline or field.name == "birthday":
                        continue
                    latest = model._base_manager.aggregate(m=Max(field.name))["m"]
                    checked += 1
                    if latest is None:
                        continue
                    if latest > (latest_allowed if isinstance(field, models.DateTimeField) else today):
                        broken.append(f"{dealer.code} {model.__name__}.{field.name}: {latest} (seeded at {started})")
    assert checked > 40
    assert not broken, "\n".join(broken)
