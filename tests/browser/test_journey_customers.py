"""Journey: a sales consultant finds a customer by plate, logs a call, and sees it on the timeline."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from crm.tenancy.context import tenant_context
from crm.tenancy.models import Membership, Tenant
from customers.models import Vehicle
from tests.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_consultant_finds_a_customer_by_plate_logs_a_call_and_sees_it(page):
    with open("/dev/null", "w") as sink:
        call_command("seed_demo", customers=60, stdout=sink)
    tenant = Tenant.objects.get(code="sz-yuetong")
    with tenant_context(tenant.pk):
        sales1 = Membership.objects.get(user__email="sales1@sz-yuetong.demo.crm")
        vehicle = Vehicle.objects.select_related("customer").filter(customer__owner=sales1).order_by("pk").first()
        customer, plate = vehicle.customer, vehicle.plate

    page.goto("/accounts/sign-in/")
    page.get_by_label("邮箱或用户名").fill("sales1@sz-yuetong.demo.crm")
    page.get_by_label("密码").fill(settings.CRM_DEMO_PASSWORD)
    page.get_by_test_id("sign-in").click()
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="客户", exact=True).click()

    # type the plate the way people do: lower case, no dot
    page.get_by_test_id("customer-search").fill(plate.replace("·", "").lower())
    link = page.get_by_test_id("customer-table").get_by_role("link", name=customer.name)
    expect(link).to_be_visible()
    expect(page.get_by_test_id("customer-table").locator("tbody tr")).to_have_count(1)
    link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(customer.name)
    expect(page.get_by_test_id("mobile")).to_have_text(customer.mobile)  # her own customer: full number

    page.get_by_label("渠道").select_option("call")
    page.get_by_label("结果").select_option("appointment")
    page.get_by_label("备注").fill("客户约周六上午来店保养")
    page.get_by_test_id("log-contact").click()
    first = page.get_by_test_id("timeline").locator("li").first
    expect(first).to_contain_text("客户约周六上午来店保养")
    expect(first).to_contain_text("电话")
    shot(page, "customer-timeline")

    page.reload()  # it is stored, not just drawn
    expect(page.get_by_test_id("timeline").locator("li").first).to_contain_text("客户约周六上午来店保养")
