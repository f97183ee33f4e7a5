"""The demo data: deterministic, realistic and valid, and its sign-ins work."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.management import call_command

from complaints.models import Ticket
from config.demo import DEALERSHIPS, demo_exists, seed_demo
from crm.tenancy.context import tenant_context
from crm.tenancy.models import Membership, Tenant
from crm.tenancy.roles import Role
from customers.models import Customer, Order, Vehicle
from customers.validators import normalize_cn_mobile, normalize_plate, validate_id_number, validate_vin
from followups.models import Attempt, Followup
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
                    list(Customer.objects.order_by("external_id").values_list("name", "mobile", "birthday")[:50]),
                )
            )
            rows.append((tenant.code, list(Vehicle.objects.order_by("vin").values_list("vin", "plate")[:50])))
            rows.append((tenant.code, Order.objects.count(), str(sum(o.amount for o in Order.objects.all()))))
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
            # segmentation ran at three earlier dates and today: tiers, stages and a migration to show
            runs = list(SegmentationRun.objects.order_by("run_date").values_list("run_date", flat=True))
            assert runs == [date(2026, 11, 23) - timedelta(days=d) for d in (90, 60, 30, 0)]
            assert CustomerValue.objects.exclude(tier="").count() > 60  # of 150: the rest are prospects
            assert set(Customer.objects.values_list("lifecycle_stage", flat=True)) >= {"prospect", "retained"}
            statuses = set(Ticket.objects.values_list("status", flat=True))
            assert Ticket.objects.count() == 8 and {"greet", "handle", "closed", "followed_up"} <= statuses
            assert SurveyResponse.objects.count() >= 5 and Invitation.objects.filter(status="sent").exists()
            # three weeks of follow-ups: worked, retried, expired, and today's queue still open
            followup_statuses = set(Followup.objects.values_list("status", flat=True))
            assert {"done", "expired"} <= followup_statuses
            assert Attempt.objects.filter(disposition="no_answer").exists()
            assert Followup.objects.filter(status="open", scheduled_on=date(2026, 11, 23)).exists()
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
