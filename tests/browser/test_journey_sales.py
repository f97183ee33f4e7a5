"""Journey: a sales consultant, as a new user would, logs a walk-in who leaves a name and mobile,
books a demo car for a free slot and records the drive (licence, consent, rating), writes a quote
with an accessory, takes the order with a deposit and delivers the car; the customer page then
tells the lead's story in its timeline. A manager approves the defeat a colleague reported on
another lead.

Driven by data-testid and form field names; labels are read from the same catalogue the server
renders with, so the journey does not hang on translation wording."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation
from playwright.sync_api import expect

from crm.tenancy.context import tenant_context
from crm.tenancy.roles import Role
from customers.models import Order
from customers.validators import vin_check_digit
from sales import selectors, services
from sales.models import DefeatStatus, Lead, LeadEvent, Stage
from tests.browser.conftest import shot, sign_in
from tests.factories import PASSWORD, MembershipFactory, TenantFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONSULTANT = "xiaoli@sz-sales.test"
MANAGER = "manager@sz-sales.test"


def _zh(text: object) -> str:
    with translation.override("zh-hans"):
        return str(text)


def _vin(body: str = "LSVAX60E0N2000456") -> str:
    return body[:8] + vin_check_digit(body) + body[9:]


def test_a_consultant_sells_a_car_to_a_walk_in_and_a_manager_approves_a_defeat(page):
    tenant = TenantFactory(name="深圳销售演示店", code="sz-sales")
    with tenant_context(tenant.pk):
        consultant = MembershipFactory(
            user__email=CONSULTANT, user__last_name="李", user__first_name="小丽", role=Role.SALES_CONSULTANT
        )
        manager = MembershipFactory(
            user__email=MANAGER, user__last_name="林", user__first_name="经理", role=Role.MANAGER
        )
        colleague = MembershipFactory(
            user__email="bob@sz-sales.test", user__last_name="王", user__first_name="博", role=Role.SALES_CONSULTANT
        )
        car = services.demo_vehicle_save(
            actor=manager,
            data={"brand": "Tesla", "series": "Model Y", "plate": "粤B·S0001"},
        )
        # the first day ahead with a free slot in the dealership's business hours
        day, slot = next(
            (d, s)
            for d in (timezone.localdate() + timedelta(days=n) for n in range(1, 15))
            for s in selectors.test_drive_slots(vehicle=car, on=d)
            if s.free
        )
        lost = services.lead_capture(
            actor=colleague, data={"name": "周女士", "mobile": "13600007777", "source": "phone"}
        ).lead
        reason = next(r for r in services.defeat_reasons_ensure() if r.code == "price")
        services.lead_defeat(actor=colleague, lead=lost, reason=reason, note="预算不够")

    # --- the walk-in ------------------------------------------------------------------------------
    sign_in(page, CONSULTANT, PASSWORD)
    page.get_by_test_id("nav-showroom").click()
    walk_in = page.get_by_test_id("walk-in-form")
    walk_in.locator("[name=party_size]").fill("2")
    walk_in.locator("[name=series]").fill("Model Y")
    walk_in.locator("[name=name]").fill("陈建华")
    walk_in.locator("[name=mobile]").fill("13500006666")
    walk_in.get_by_test_id("log-walk-in").click()
    expect(page.locator(".message-success")).to_contain_text("陈建华")
    expect(page.get_by_test_id("visit-row")).to_have_count(1)
    shot(page, "sales-showroom")
    page.get_by_test_id("visit-lead").click()
    expect(page.get_by_test_id("lead-stage")).to_have_text(_zh(Stage.VISITED.label))
    expect(page.get_by_test_id("lead-mobile")).to_have_text("+8613500006666")  # her own lead: in full
    with tenant_context(tenant.pk):
        lead = Lead.objects.get(mobile="+8613500006666")
        assert lead.owner_id == consultant.pk

    # --- the test drive -----------------------------------------------------------------------------
    page.get_by_test_id("book-test-drive").click()
    page.locator("[name=day]").fill(day.isoformat())
    page.get_by_test_id("slot-day").get_by_role("button").click()
    slots = page.locator(f"[data-testid=vehicle-slots][data-vehicle='{car.pk}']").get_by_test_id("free-slot")
    slots.filter(has_text=f"{timezone.localtime(slot.starts_at):%H:%M}").first.click()
    expect(page.locator("[name=starts_at]")).to_have_value(f"{timezone.localtime(slot.starts_at):%Y-%m-%dT%H:%M}")
    page.get_by_test_id("book").click()
    expect(page.locator(".message-success")).to_be_visible()
    record = page.get_by_test_id("record-form")
    record.locator("[name=licence_number]").fill("440301199001011234")
    record.locator("[name=licence_expiry]").fill((timezone.localdate() + timedelta(days=2000)).isoformat())
    record.locator("[name=licence_consent]").check()
    record.locator("[name=rating]").select_option("5")
    record.locator("[name=feedback]").fill("加速很满意")
    record.get_by_test_id("record").click()
    expect(page.get_by_test_id("lead-stage")).to_have_text(_zh(Stage.TEST_DRIVE.label))
    expect(page.get_by_test_id("test-drive-table")).to_contain_text("5/5")

    # --- the quote ------------------------------------------------------------------------------------
    page.get_by_test_id("write-quote").click()
    quote = page.get_by_test_id("quote-form")
    expect(quote.locator("[name=series]")).to_have_value("Model Y")
    quote.locator("[name=brand]").fill("Tesla")
    quote.locator("[name=list_price]").fill("263900")
    quote.locator("[name=discount]").fill("10000")
    quote.locator("[name=acc-0-name]").fill("脚垫")
    quote.locator("[name=acc-0-price]").fill("800")
    quote.get_by_test_id("save-quote").click()
    expect(page.get_by_test_id("quote-total")).to_contain_text("254,700.00")
    shot(page, "sales-quote")
    page.goto(f"/sales/leads/{lead.pk}/")

    # --- the order and the delivery ----------------------------------------------------------------------
    order = page.get_by_test_id("order-form")
    page.locator("details", has=order).locator("summary").click()
    order.locator("[name=deposit]").fill("5000")
    order.get_by_test_id("take-order").click()
    expect(page.get_by_test_id("lead-stage")).to_have_text(_zh(Stage.ORDERED.label))
    deliver = page.get_by_test_id("deliver-form")
    deliver.locator("[name=vin]").fill(_vin())
    deliver.locator("[name=plate]").fill("粤B·D5678")
    deliver.get_by_test_id("deliver").click()
    expect(page.get_by_test_id("lead-stage")).to_have_text(_zh(Stage.DELIVERED.label))
    expect(page.get_by_test_id("lead-delivered")).to_be_visible()
    shot(page, "sales-lead-delivered")
    with tenant_context(tenant.pk):
        lead.refresh_from_db()
        assert lead.stage == Stage.DELIVERED and lead.deposit == 5000
        assert Order.objects.get(pk=lead.sale_order_id).kind == Order.Kind.VEHICLE_SALE

    # --- the customer page tells the story ----------------------------------------------------------------
    page.get_by_test_id("customer-link").click()
    timeline = page.get_by_test_id("timeline")
    for kind in (LeadEvent.Kind.CREATED, LeadEvent.Kind.TEST_DRIVE, LeadEvent.Kind.QUOTE, LeadEvent.Kind.DELIVERY):
        expect(timeline).to_contain_text(_zh(kind.label))
    expect(timeline).to_contain_text(_vin())
    expect(page.get_by_test_id("sales-panel")).to_contain_text(_zh(Stage.DELIVERED.label))
    shot(page, "sales-customer-page")

    # --- a manager approves a colleague's defeat -----------------------------------------------------------
    page.get_by_test_id("sign-out").click()
    sign_in(page, MANAGER, PASSWORD)
    page.goto("/sales/leads/?defeat=pending")
    page.get_by_test_id("lead-table").get_by_role("link", name="周女士").click()
    expect(page.get_by_test_id("defeat-pending")).to_be_visible()
    decide = page.get_by_test_id("decide-form")
    decide.locator("[name=approve]").select_option("yes")
    decide.get_by_test_id("decide-defeat").click()
    expect(page.get_by_test_id("lead-stage")).to_have_text(_zh(Stage.DEFEATED.label))
    with tenant_context(tenant.pk):
        lost.refresh_from_db()
        assert lost.stage == Stage.DEFEATED and lost.defeat_status == DefeatStatus.APPROVED
