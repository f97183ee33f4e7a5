"""Journey: a sales consultant signs in and opens "my follow-ups today". The overdue call (a service
satisfaction call whose window closed yesterday) is listed first, before today's key-customer call.
She logs "no answer" on the overdue one — it leaves today's list, to be tried again tomorrow — and
"reached: satisfied" on the other. On that customer's page the call is in the timeline and in the
follow-up panel.

Driven by data-testid and form field names; labels are read from the same catalogue the server
renders with, so the journey does not hang on translation wording."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation
from playwright.sync_api import expect

from crm.tenancy.context import tenant_context
from crm.tenancy.roles import Role
from customers.models import Touchpoint
from followups.models import Attempt, Disposition, Followup, Reason, Status
from tests.browser.conftest import shot, sign_in
from tests.factories import PASSWORD, CustomerFactory, MembershipFactory, TenantFactory, VehicleFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONSULTANT = "xiaoming@sz-followup.test"


def _zh(text: object) -> str:
    with translation.override("zh-hans"):
        return str(text)


def test_a_consultant_works_her_follow_ups_of_the_day(page):
    tenant = TenantFactory(name="深圳回访演示店", code="sz-followup")
    with tenant_context(tenant.pk):
        today = timezone.localdate()
        consultant = MembershipFactory(
            user__email=CONSULTANT, user__last_name="王", user__first_name="小明", role=Role.SALES_CONSULTANT
        )
        buyer = CustomerFactory(name="张建国", mobile="+8613911112222", owner=consultant)
        serviced = CustomerFactory(name="刘秀英", mobile="+8613833334444", owner=consultant)
        vehicle = VehicleFactory(customer=buyer, plate="粤B·D1234")
        delivery_call = Followup.objects.create(
            customer=buyer,
            vehicle=vehicle,
            reason=Reason.POST_DELIVERY,
            source_key="delivery:journey:7",
            note="问问新车用得怎么样",
            due_from=today,
            due_until=today + timedelta(days=4),
            scheduled_on=today,
            assignee=consultant,
            priority=1,  # a key customer
        )
        late_call = Followup.objects.create(
            customer=serviced,
            reason=Reason.SERVICE,
            source_key="service:journey:1",
            due_from=today - timedelta(days=5),
            due_until=today - timedelta(days=1),
            scheduled_on=today - timedelta(days=5),
            assignee=consultant,
            priority=5,
        )

    sign_in(page, CONSULTANT, PASSWORD)
    page.get_by_test_id("nav-followups").click()
    queue = page.get_by_test_id("followup-queue")
    rows = queue.get_by_test_id("followup-row")
    expect(rows).to_have_count(2)
    # overdue first, though the other is a key customer's
    expect(rows.nth(0)).to_have_attribute("data-followup", str(late_call.pk))
    expect(rows.nth(0)).to_contain_text("刘秀英")
    expect(rows.nth(0).get_by_test_id("overdue")).to_be_visible()
    expect(rows.nth(1)).to_contain_text("张建国")
    expect(rows.nth(1)).to_contain_text("粤B·D1234")
    expect(rows.nth(1).get_by_test_id("overdue")).to_have_count(0)
    shot(page, "followups-today")

    # no answer: it leaves today's list, to be tried tomorrow
    rows.nth(0).get_by_test_id("outcome-no_answer").click()
    expect(page.locator(".message-success")).to_be_visible()
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_have_attribute("data-followup", str(delivery_call.pk))

    # reached, satisfied: done
    rows.nth(0).get_by_test_id("outcome-satisfied").click()
    expect(page.locator(".message-success")).to_contain_text("张建国")
    expect(rows).to_have_count(0)
    shot(page, "followups-today-done")

    with tenant_context(tenant.pk):
        late_call.refresh_from_db()
        delivery_call.refresh_from_db()
        assert (late_call.status, late_call.attempts) == (Status.NO_ANSWER, 1)
        assert late_call.scheduled_on == today + timedelta(days=1)
        assert (delivery_call.status, delivery_call.completed_by_id) == (Status.DONE, consultant.pk)
        assert Attempt.objects.filter(followup=delivery_call, disposition=Disposition.SATISFIED).count() == 1
        assert Touchpoint.objects.filter(customer=buyer, outcome="reached", staff=consultant).count() == 1
        assert Touchpoint.objects.filter(customer=serviced, outcome="no_answer").count() == 1

    # the customer's page: the call in the timeline and in the follow-up panel
    page.goto(f"/customers/{buyer.pk}/")
    expected = f"{_zh(Reason.POST_DELIVERY.label)}: {_zh(Disposition.SATISFIED.label)}"
    expect(page.get_by_test_id("timeline")).to_contain_text(expected)
    panel = page.get_by_test_id("followup-panel")
    expect(panel.get_by_test_id("followups-done")).to_contain_text(_zh(Disposition.SATISFIED.label))
    expect(panel.get_by_test_id("plan-followup")).to_be_visible()
    shot(page, "followups-customer-page")
