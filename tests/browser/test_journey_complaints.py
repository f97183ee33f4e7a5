"""Journey: a customer files a complaint on the dealership's public form from a phone and gets an
acknowledgement number; a customer-relations agent takes the ticket from the unassigned queue and
works it through greet → listen → calm → handle → closed (closing is refused without a root cause);
the customer then sees it resolved on the public status page.

Complaint pages are driven by data-testid and form field names, and the step names are read from
the same catalogue the server renders with, so the journey does not hang on translation wording.
Two layout checks at the end keep the public form within a phone screen and the closing form within the page."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone, translation
from playwright.sync_api import expect

from complaints.models import CustomerState, Status, Ticket, TicketEvent
from crm.tenancy.context import tenant_context
from crm.tenancy.models import Membership, Tenant
from tests.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CODE = "sz-yuetong"
AGENT = f"cr1@{CODE}.demo.crm"
MOBILE = "139 2468 1357"  # typed the way people do; stored as +8613924681357
STEPS = [Status.LISTEN, Status.CALM, Status.HANDLE]


def _zh(text: str) -> str:
    with translation.override("zh-hans"):
        return str(translation.gettext(text))


def _label(status: Status | CustomerState) -> str:
    with translation.override("zh-hans"):
        return str(status.label)


def _phone(browser, live_server):  # type: ignore[no-untyped-def]
    """A customer's phone: a fresh, signed-out browser context with a phone-sized screen."""
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(15_000)
    return context


def _check_status(page, number: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/c/{CODE}/status/")
    form = page.get_by_test_id("public-status-form")
    form.locator("[name=number]").fill(number)
    form.locator("[name=mobile]").fill(MOBILE.replace(" ", ""))
    page.get_by_test_id("check-status").click()
    expect(page.get_by_test_id("public-status")).to_be_visible()


def test_a_customer_files_a_complaint_and_an_agent_works_it_to_closed(page, browser, live_server):
    with open("/dev/null", "w") as sink:
        call_command("seed_demo", customers=60, stdout=sink)
    tenant = Tenant.objects.get(code=CODE)
    with tenant_context(tenant.pk):
        agent = Membership.objects.get(user__email=AGENT)
        tickets_before = Ticket.objects.count()

    # --- the customer, on a phone, not signed in --------------------------------------------------
    phone_context = _phone(browser, live_server)
    phone = phone_context.new_page()
    try:
        phone.goto(f"/c/{CODE}/")
        expect(phone.get_by_test_id("dealership-name")).to_have_text(tenant.name)
        form = phone.get_by_test_id("public-complaint-form")
        expect(form).to_be_visible()
        form.locator("[name=contact_name]").fill("周晓梅")
        form.locator("[name=contact_mobile]").fill(MOBILE)
        category = form.locator("select[name=category]")
        category.select_option(index=1)  # the first real category, after the empty choice
        category_name = category.locator("option:checked").inner_text().strip()
        form.locator("[name=subject]").fill("保养后发动机故障灯亮")
        form.locator("[name=description]").fill("上周六做完保养，第二天发动机故障灯就亮了，打电话没人回。")
        shot(phone, "complaint-public-form")
        phone.get_by_test_id("submit-complaint").click()

        ack = phone.get_by_test_id("ack-number")
        expect(ack).to_have_text(re.compile(r"^\s*\d{10}\s*$"))
        number = ack.inner_text().strip()
        shot(phone, "complaint-ack")

        # the customer checks progress with the number and the mobile: received (never the staff's steps)
        _check_status(phone, number)
        status = phone.get_by_test_id("public-status")
        expect(status).to_contain_text(number)
        expect(status).to_contain_text("保养后发动机故障灯亮")
        expect(status.locator(".step-current")).to_have_text(_label(CustomerState.RECEIVED))
        expect(status).not_to_contain_text(_label(Status.GREET))
        expect(status).to_contain_text(_zh("We are working on it."))

        with tenant_context(tenant.pk):
            assert Ticket.objects.count() == tickets_before + 1
            ticket = Ticket.objects.get(number=number)
            assert ticket.source == Ticket.Source.PUBLIC_FORM
            assert ticket.assignee_id is None
            assert ticket.contact_mobile == "+86" + MOBILE.replace(" ", "")

        # --- the agent: queue → take → the steps → closed --------------------------------------------
        page.goto("/accounts/sign-in/")
        page.get_by_label("邮箱或用户名").fill(AGENT)
        page.get_by_label("密码").fill(settings.CRM_DEMO_PASSWORD)
        page.get_by_test_id("sign-in").click()
        page.get_by_role("navigation", name="主导航").locator("a[href='/complaints/']").click()
        page.get_by_test_id("queue-unassigned").click()
        expect(page).to_have_url(re.compile(r"queue=unassigned"))
        page.locator("#id_q").fill(number)
        page.locator("#id_q").press("Enter")
        table = page.get_by_test_id("ticket-table")
        expect(table.locator("tbody tr")).to_have_count(1)
        row = table.locator("tbody tr").first
        expect(row).to_contain_text("周晓梅")
        expect(row).to_contain_text(category_name)
        row.get_by_role("link", name=number).click()

        expect(page.get_by_test_id("ticket-number")).to_have_text(number)
        expect(page.get_by_test_id("ticket-status")).to_have_text(_label(Status.GREET))
        expect(page.get_by_test_id("assignee")).to_have_text("—")
        take = page.get_by_test_id("take")
        page.locator("details", has=take).locator("summary").click()
        take.click()
        expect(page.get_by_test_id("assignee")).to_have_text(agent.display_name)
        expect(page.get_by_test_id("take")).to_have_count(0)  # it is hers now

        advance = page.get_by_test_id("advance-form")
        notes = {
            Status.LISTEN: "已致电客户问候并致歉",
            Status.CALM: "耐心听取客户描述，记录故障现象",
            Status.HANDLE: "客户情绪平复，约好周一到店检测",
        }
        for step in STEPS:
            expect(advance.locator("[name=to_status]")).to_have_value(step.value)
            advance.locator("[name=note]").fill(notes[step])
            page.get_by_test_id("advance").click()
            expect(page.get_by_test_id("ticket-status")).to_have_text(_label(step))

        # closing without a root cause is refused, with the field named and the step unchanged
        expect(advance.locator("[name=to_status]")).to_have_value(Status.CLOSED.value)
        advance.locator("[name=resolution]").fill("免费更换氧传感器，故障灯熄灭")
        page.get_by_test_id("advance").click()
        root_cause_field = advance.locator(".field", has=page.locator("[name=root_cause]"))
        expect(root_cause_field).to_have_class(re.compile(r"\bfield-error\b"))
        expect(root_cause_field.locator(".error")).to_be_visible()
        expect(page.get_by_test_id("ticket-status")).to_have_text(_label(Status.HANDLE))
        expect(advance.locator("[name=resolution]")).to_have_value("免费更换氧传感器，故障灯熄灭")
        shot(page, "complaint-close-refused")

        advance.locator("[name=root_cause]").fill("保养时氧传感器插头未插紧")
        advance.locator("[name=compensation_points]").fill("800")
        advance.locator("[name=compensation_note]").fill("赠送 800 积分")
        advance.locator("[name=note]").fill("客户认可处理结果")
        page.get_by_test_id("advance").click()
        expect(page.get_by_test_id("ticket-status")).to_have_text(_label(Status.CLOSED))
        expect(page.locator(".steps .step-current")).to_have_text(_label(Status.CLOSED))
        expect(page.locator(".steps .step-done")).to_have_count(4)
        timeline = page.get_by_test_id("ticket-timeline")
        previous = Status.GREET
        for step in [*STEPS, Status.CLOSED]:
            entry = timeline.locator("li").filter(has_text=f"{_label(previous)} → {_label(step)}")
            expect(entry).to_have_count(1)
            expect(entry).to_contain_text(agent.display_name)
            previous = step
        expect(timeline).to_contain_text(notes[Status.CALM])
        expect(page.locator("dl.facts")).to_contain_text("保养时氧传感器插头未插紧")
        expect(page.locator("dl.facts")).to_contain_text("赠送 800 积分")
        shot(page, "complaint-ticket-closed")

        # --- what was stored -----------------------------------------------------------------------
        with tenant_context(tenant.pk):
            ticket = Ticket.objects.get(number=number)
            assert ticket.status == Status.CLOSED
            assert ticket.assignee_id == agent.pk
            assert ticket.root_cause == "保养时氧传感器插头未插紧"
            assert ticket.resolution == "免费更换氧传感器，故障灯熄灭"
            assert ticket.compensation_points == 800
            assert ticket.compensation_amount == 0
            assert ticket.compensation_note == "赠送 800 积分"
            assert ticket.first_response_at is not None
            assert ticket.resolved_at is not None
            assert ticket.follow_up_due_on is not None
            transitions = list(
                TicketEvent.objects.filter(ticket=ticket, kind=TicketEvent.Kind.TRANSITION).order_by("created_at", "pk")
            )
            assert [(e.from_status, e.to_status) for e in transitions] == [
                ("greet", "listen"),
                ("listen", "calm"),
                ("calm", "handle"),
                ("handle", "closed"),
            ]
            assert {e.actor_id for e in transitions} == {agent.pk}
            assert [e.note for e in transitions] == [*notes.values(), "客户认可处理结果"]
            opened = TicketEvent.objects.get(ticket=ticket, kind=TicketEvent.Kind.OPENED)
            assert opened.actor_id is None  # the customer, through the public form
            assert TicketEvent.objects.filter(ticket=ticket, kind=TicketEvent.Kind.ASSIGNED, actor=agent).count() == 1

        # --- back on the phone: resolved ------------------------------------------------------------
        _check_status(phone, number)
        status = phone.get_by_test_id("public-status")
        expect(status).to_contain_text(number)
        expect(status.locator(".step-current")).to_have_text(_label(CustomerState.RESOLVED))
        expect(status.locator(".step-done")).to_have_count(2)  # received, being handled
        resolved_on = timezone.localtime(ticket.resolved_at).strftime("%Y-%m-%d")
        expect(status).to_contain_text(_zh("Resolved on %(date)s.") % {"date": resolved_on})
        expect(status).not_to_contain_text(_zh("We are working on it."))
        shot(phone, "complaint-public-status-resolved")
    finally:
        phone_context.close()


def test_the_public_complaint_form_fits_a_phone_screen(browser, live_server):
    Tenant.objects.create(name="深圳粤通一汽-大众4S店", code=CODE)
    context = _phone(browser, live_server)
    try:
        phone = context.new_page()
        phone.goto(f"/c/{CODE}/")
        expect(phone.get_by_test_id("public-complaint-form")).to_be_visible()
        # on a phone the layout viewport grows with the content, so compare with the screen itself
        widths = phone.evaluate(
            "({scroll: document.documentElement.scrollWidth, screen: document.documentElement.clientWidth})"
        )
        assert widths["scroll"] <= widths["screen"] == 390, widths
    finally:
        context.close()


def test_the_closing_form_fits_the_ticket_page(page):
    with open("/dev/null", "w") as sink:
        call_command("seed_demo", customers=60, stdout=sink)
    tenant = Tenant.objects.get(code=CODE)
    with tenant_context(tenant.pk):
        ticket = Ticket.objects.filter(status=Status.HANDLE).select_related("assignee__user").order_by("pk").first()
        assert ticket is not None and ticket.assignee is not None
        email = ticket.assignee.user.email
    page.goto("/accounts/sign-in/")
    page.get_by_label("邮箱或用户名").fill(email)
    page.get_by_label("密码").fill(settings.CRM_DEMO_PASSWORD)
    page.get_by_test_id("sign-in").click()
    page.goto(f"/complaints/{ticket.pk}/")
    expect(page.get_by_test_id("advance-form").locator("[name=root_cause]")).to_be_visible()
    widths = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, screen: document.documentElement.clientWidth})"
    )
    assert widths["scroll"] <= widths["screen"], widths
