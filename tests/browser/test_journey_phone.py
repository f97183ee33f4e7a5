"""Journey on a consultant's phone (390 × 844): the follow-up queue, a customer's page and a
complaint ticket fit the screen. Every staff table becomes one card per row under the narrow-list
breakpoint (docs/ui.md), so nothing reaches past the right edge, no cell is squeezed to a character
per line, and the queue's outcome buttons are on screen and work."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone
from playwright.sync_api import expect

from complaints.models import Ticket
from crm.tenancy.context import tenant_context
from crm.tenancy.models import Membership, Tenant
from customers.models import Customer
from followups.models import Followup, Reason, Status
from tests.browser.conftest import PHONE, layout_problems, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CODE = "sz-yuetong"


def _fits_the_phone(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_load_state("networkidle")
    shot(page, name)
    assert layout_problems(page) == [], name


def _seed() -> Tenant:
    with open("/dev/null", "w") as sink:
        call_command("seed_demo", customers=60, stdout=sink)
    return Tenant.objects.get(code=CODE)


def test_a_consultant_works_the_follow_up_queue_and_opens_a_customer_on_her_phone(phone_page):
    page = phone_page
    tenant = _seed()
    with tenant_context(tenant.pk):
        today = timezone.localdate()
        customer = (
            Customer.objects.filter(owner__role="sales_consultant")
            .annotate(v=Count("vehicles", distinct=True), o=Count("orders", distinct=True))
            .filter(v__gt=0, o__gt=0)
            .order_by("-o", "pk")
            .first()
        )
        assert customer is not None, "the demo gives consultants customers with vehicles and orders"
        consultant = Membership.objects.select_related("user").get(pk=customer.owner_id)
        # three reasons the demo has not left open for this customer (one open follow-up per reason)
        taken = set(
            customer.followups.filter(status__in=[Status.OPEN, Status.NO_ANSWER]).values_list("reason", flat=True)
        )
        free = [
            r
            for r in (
                Reason.POST_DELIVERY,
                Reason.MAINTENANCE,
                Reason.SERVICE,
                Reason.WARRANTY,
                Reason.INSURANCE,
                Reason.BIRTHDAY,
                Reason.CADENCE,
            )
            if r not in taken
        ][:3]
        for n, reason in enumerate(free):
            Followup.objects.create(
                customer=customer,
                vehicle=customer.vehicles.first(),
                reason=reason,
                source_key=f"phone:{n}",
                note="问问新车用得怎么样，保养提醒到期了没有",
                due_from=today - timedelta(days=n),
                due_until=today + timedelta(days=4),
                scheduled_on=today,
                assignee=consultant,
                priority=n + 1,
            )
        assert customer is not None

    sign_in(page, consultant.user.email)
    page.goto("/followups/")
    rows = page.get_by_test_id("followup-row")
    expect(rows.first).to_be_visible()
    _fits_the_phone(page, "phone-followup-queue")
    buttons = rows.first.get_by_test_id("quick-outcome").get_by_role("button")
    assert buttons.count() >= 2
    for i in range(buttons.count()):
        box = buttons.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    first = rows.first.get_attribute("data-followup")
    rows.first.get_by_test_id("outcome-no_answer").tap()
    expect(page.locator(".message-success")).to_be_visible()
    with tenant_context(tenant.pk):
        assert Followup.objects.get(pk=first).status == Status.NO_ANSWER

    page.goto(f"/customers/{customer.pk}/")
    expect(page.get_by_test_id("vehicle-table")).to_be_visible()
    _fits_the_phone(page, "phone-customer-page")


def test_an_agent_reads_a_complaint_ticket_on_her_phone(phone_page):
    page = phone_page
    tenant = _seed()
    with tenant_context(tenant.pk):
        ticket = Ticket.objects.exclude(assignee=None).order_by("-opened_at").first()
        assert ticket is not None
        agent = Membership.objects.select_related("user").get(pk=ticket.assignee_id)
    sign_in(page, agent.user.email)
    page.goto(f"/complaints/{ticket.pk}/")
    expect(page.get_by_test_id("ticket-number")).to_be_visible()
    _fits_the_phone(page, "phone-complaint-ticket")
    page.goto("/complaints/")
    _fits_the_phone(page, "phone-complaint-queue")
