"""Journey: a customer-relations agent sends a service survey from a customer's page; the customer
opens the signed link on a phone (not signed in), answers part of it, saves, comes back to find the
answers kept, finishes and submits, and sees the thank-you page; the link is then closed. The manager
finds the response counted on the results page and reads it from the latest answers.

Driven by data-testid and form field names, so the journey does not hang on translation wording."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from crm.tenancy.context import tenant_context
from crm.tenancy.models import Tenant
from customers.models import Customer
from surveys import selectors, services
from surveys.models import Invitation, Response, SurveyTemplate
from tests.browser.conftest import shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CODE = "sz-yuetong"
AGENT = f"cr1@{CODE}.demo.crm"
MANAGER = f"manager@{CODE}.demo.crm"
COMMENT = "师傅很专业，休息区可以再安静一点。"


def _rate(page, key: str, value: int) -> None:  # type: ignore[no-untyped-def]
    """Tap a score: the label around the (visually hidden) radio button."""
    question = page.locator(f"fieldset[data-question='{key}']")
    question.locator("label", has=page.locator(f"input[value='{value}']")).click()
    expect(question.locator(f"input[value='{value}']")).to_be_checked()


def _phone(browser, live_server):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(15_000)
    return context


def test_a_customer_answers_on_a_phone_and_the_manager_sees_it(page, browser, live_server):
    with open("/dev/null", "w") as sink:
        call_command("seed_demo", customers=60, stdout=sink)
    tenant = Tenant.objects.get(code=CODE)
    with tenant_context(tenant.pk):
        template = SurveyTemplate.objects.get(code="service")
        recently = Invitation.objects.values("customer_id")  # the demo's surveys are dated in the past
        customer = (
            Customer.objects.filter(merged_into__isnull=True, consent_sms=True, list_flag="")
            .exclude(mobile="")
            .exclude(pk__in=recently)
            .order_by("pk")
            .first()
        )
        assert customer is not None

    # --- the agent sends a survey from the customer's page ------------------------------------------
    sign_in(page, AGENT)
    page.goto(f"/customers/{customer.pk}/")
    panel = page.get_by_test_id("survey-panel")
    panel.locator("select[name=template]").select_option(str(template.pk))
    panel.get_by_test_id("send-survey").click()
    expect(page.locator(".message-success")).to_be_visible()
    with tenant_context(tenant.pk):
        invitation = Invitation.objects.get(customer=customer)
        assert (invitation.trigger, invitation.channel, invitation.status) == ("manual", "sms", "scheduled")
        assert invitation.version_id == template.current_version_id
        path = services.link_url(invitation).removeprefix(settings.CRM_SITE_URL)
    expect(page.get_by_test_id("survey-panel")).to_contain_text(template.name)

    # --- the customer, on a phone, not signed in ---------------------------------------------------------
    phone_context = _phone(browser, live_server)
    phone = phone_context.new_page()
    try:
        phone.goto(path)
        expect(phone.get_by_test_id("survey-form")).to_be_visible()
        expect(phone.locator("html")).to_have_attribute("lang", "zh-hans")
        expect(phone.locator("main")).to_contain_text(customer.name)
        widths = phone.evaluate(
            "({scroll: document.documentElement.scrollWidth, screen: document.documentElement.clientWidth})"
        )
        assert widths["scroll"] <= widths["screen"] == 390, widths

        _rate(phone, "reception", 5)
        _rate(phone, "repair_quality", 4)
        _rate(phone, "nps", 9)
        phone.locator("fieldset[data-question='improve'] input[value='休息区']").check()
        phone.locator("textarea[name=comment]").fill(COMMENT)
        shot(phone, "survey-phone-partly-answered")
        phone.get_by_test_id("save-survey").click()
        expect(phone.get_by_test_id("saved")).to_be_visible()

        # she comes back later: what she answered is still there
        phone.goto(path)
        expect(phone.get_by_test_id("saved")).to_have_count(0)
        expect(phone.locator("fieldset[data-question='reception'] input[value='5']")).to_be_checked()
        expect(phone.locator("fieldset[data-question='repair_quality'] input[value='4']")).to_be_checked()
        expect(phone.locator("fieldset[data-question='nps'] input[value='9']")).to_be_checked()
        expect(phone.locator("fieldset[data-question='improve'] input[value='休息区']")).to_be_checked()
        expect(phone.locator("textarea[name=comment]")).to_have_value(COMMENT)

        # sending with questions left open: they are pointed at, nothing is stored
        phone.get_by_test_id("submit-survey").click()
        expect(phone.locator("fieldset.field-error")).to_have_count(4)
        expect(phone.locator("fieldset[data-question='timeliness']")).to_have_class("question field-error")
        with tenant_context(tenant.pk):
            assert not Response.objects.filter(invitation=invitation).exists()

        for key, value in (("timeliness", 5), ("price", 4), ("cleanliness", 5), ("overall", 5)):
            _rate(phone, key, value)
        shot(phone, "survey-phone-finished")
        phone.get_by_test_id("submit-survey").click()
        expect(phone.get_by_test_id("survey-thanks")).to_be_visible()
        shot(phone, "survey-phone-thanks")

        # the link is single-use
        phone.goto(path)
        expect(phone.get_by_test_id("link-answered")).to_be_visible()
    finally:
        phone_context.close()

    with tenant_context(tenant.pk):
        response = Response.objects.get(invitation=invitation)
        assert (response.overall, response.nps, response.low_score) == (5, 9, False)
        today = timezone.localdate(timezone=tenant.zone)
        figures = selectors.survey_results(period=selectors.Period(today - timedelta(days=89), today), zone=tenant.zone)
        responses = figures["overall"]["responses"]
        assert responses >= 1

    # --- the manager reads it --------------------------------------------------------------------------------
    manager_context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 1280, "height": 860}
    )
    manager_context.set_default_timeout(15_000)
    desk = manager_context.new_page()
    try:
        sign_in(desk, MANAGER)
        desk.goto("/surveys/")
        expect(desk.get_by_test_id("survey-responses")).to_have_text(str(responses))
        latest = desk.get_by_test_id("survey-recent").locator("tbody tr").first
        expect(latest).to_contain_text(customer.name)
        expect(latest).to_contain_text(template.name)
        shot(desk, "survey-results")
        latest.locator("a").first.click()
        answers = desk.get_by_test_id("response-answers")
        expect(answers).to_contain_text(COMMENT)
        expect(answers.locator("tr", has_text="5 / 5").first).to_be_visible()
        expect(answers).to_contain_text("9 / 10")
        expect(answers).to_contain_text("休息区")
        expect(desk.locator("h1")).to_contain_text(customer.name)
        shot(desk, "survey-response")
    finally:
        manager_context.close()
