"""The main sales path through the services: capture → contact → invite → visit → test drive →
quote → order → delivery, with the funnel counting it, and a defeat approved."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from crm.tenancy.context import tenant_context
from customers.models import Order
from customers.validators import vin_check_digit
from followups.models import Followup, Reason, Status
from sales import selectors, services
from sales.models import DemoVehicle, Lead, Stage

pytestmark = pytest.mark.django_db


@pytest.fixture
def dealer(dealer_b) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    with tenant_context(dealer_b.tenant.pk):
        yield dealer_b


def test_walk_in_to_delivery(dealer: Any) -> None:
    alice = dealer.consultant
    captured = services.lead_capture(
        actor=alice,
        data={
            "name": "赵 先生",
            "mobile": "13700001234",
            "source": "phone",
            "series": "Model Y",
            "brand": "Tesla",
            "timeframe": "15d",
        },
    )
    lead = captured.lead
    assert captured.created and lead.owner == alice and lead.stage == Stage.CONTACTED and lead.level == "A"
    assert lead.customer.mobile == "+8613700001234" and lead.customer.owner == alice
    followup = Followup.objects.get(customer=lead.customer, reason=Reason.LEAD, status=Status.OPEN)
    assert followup.assignee == alice and followup.scheduled_on == timezone.localdate() + timedelta(days=3)
    again = services.lead_capture(
        actor=alice, data={"name": "赵先生", "mobile": "+86 137 0000 1234", "source": "online"}
    )
    assert not again.created and again.lead.pk == lead.pk
    lead = services.lead_contact_log(actor=alice, lead=lead, disposition="feedback", notes="wants white")
    assert Followup.objects.filter(customer=lead.customer, reason=Reason.LEAD, status=Status.OPEN).count() == 1
    lead = services.lead_invite(actor=alice, lead=lead, appointment_at=timezone.now() + timedelta(days=1))
    assert lead.stage == Stage.INVITED
    visit = services.showroom_visit_log(actor=alice, data={"arrived_at": timezone.now(), "party_size": 2}, lead=lead)
    assert visit.lead == lead
    car = DemoVehicle.objects.create(brand="Tesla", series="Model Y")
    start = timezone.now() + timedelta(minutes=5)
    drive = services.test_drive_book(
        actor=alice, lead=lead, vehicle=car, starts_at=start, ends_at=start + timedelta(minutes=30)
    )
    with pytest.raises(Exception) as clash:
        services.test_drive_book(
            actor=alice,
            lead=lead,
            vehicle=car,
            starts_at=start + timedelta(minutes=10),
            ends_at=start + timedelta(minutes=40),
        )
    assert clash.value.code == "booked" and "starts_at" in clash.value.fields  # type: ignore[attr-defined]
    services.test_drive_record(
        actor=alice,
        drive=drive,
        status="done",
        licence_number="440301199001011234",
        licence_expiry=timezone.localdate() + timedelta(days=365),
        licence_consent=True,
        rating=5,
    )
    quote = services.quote_create(
        actor=alice,
        lead=lead,
        data={
            "brand": "Tesla",
            "series": "Model Y",
            "list_price": "263900",
            "discount": "10000",
            "insurance": "5000",
            "accessories": [{"name": "mats", "price": "800"}],
            "trade_in_value": "0",
            "financed": True,
            "down_payment": "59740",
            "term_months": 36,
            "monthly_rate": "0.3",
        },
    )
    assert quote.total == Decimal("259700.00") and quote.loan_amount == Decimal("199960.00")
    lead = services.lead_order(actor=alice, lead=Lead.objects.get(pk=lead.pk), quote=quote, deposit="5000")
    body = "LSVAX60E0N2000123"
    vin = body[:8] + vin_check_digit(body) + body[9:]
    lead = services.lead_deliver(actor=alice, lead=lead, vin=vin, plate="粤B·D1234")
    assert lead.stage == Stage.DELIVERED
    assert Order.objects.get(pk=lead.sale_order_id).kind == "vehicle_sale"
    assert not Followup.objects.filter(customer=lead.customer, reason=Reason.LEAD, status=Status.OPEN).exists()
    from crm.core.period import Period

    today = timezone.localdate()
    figures = selectors.funnel(
        viewer=dealer.manager, filters=selectors.FunnelFilters(period=Period(today, today), source="phone")
    )
    steps = {s["stage"]: s["leads"] for s in figures["steps"]}
    assert steps == {
        "new": 1,
        "contacted": 1,
        "invited": 1,
        "visited": 1,
        "test_drive": 1,
        "ordered": 1,
        "delivered": 1,
    }


def test_defeat_needs_a_manager(dealer: Any) -> None:
    lead = services.lead_capture(
        actor=dealer.consultant, data={"name": "钱", "mobile": "13700005678", "source": "walk_in"}
    ).lead
    reasons = {r.code: r for r in services.defeat_reasons_ensure()}
    lead = services.lead_defeat(actor=dealer.consultant, lead=lead, reason=reasons["price"])
    assert lead.stage == Stage.VISITED and lead.defeat_status == "pending"
    lead = services.lead_defeat_decide(actor=dealer.manager, lead=lead, approve=True)
    assert lead.stage == Stage.DEFEATED
    lead = services.lead_reopen(actor=dealer.manager, lead=lead)
    assert lead.stage == Stage.VISITED
    assert not selectors.lead_visible_to(viewer=dealer.consultant2).filter(pk=lead.pk).exists()
