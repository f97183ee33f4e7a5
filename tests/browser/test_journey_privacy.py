"""Journey: a customer-relations agent finds a customer by plate, sees the number masked, and
reveals it; the reveal lands in the audit log the manager reads."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from crm.tenancy.context import tenant_context
from crm.tenancy.models import Tenant
from customers.models import Vehicle
from customers.validators import mask_mobile
from tests.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_reveals_a_masked_number_and_the_manager_sees_it_audited(page):
    with open("/dev/null", "w") as sink:
        call_command("seed_demo", customers=40, stdout=sink)
    tenant = Tenant.objects.get(code="sz-yuetong")
    with tenant_context(tenant.pk):
        vehicle = Vehicle.objects.select_related("customer").order_by("pk").first()
        customer, plate = vehicle.customer, vehicle.plate

    page.goto("/accounts/sign-in/")
    page.get_by_label("邮箱或用户名").fill("cr1@sz-yuetong.demo.crm")
    page.get_by_label("密码").fill(settings.CRM_DEMO_PASSWORD)
    page.get_by_test_id("sign-in").click()
    page.get_by_role("link", name="客户", exact=True).click()
    page.get_by_test_id("customer-search").fill(plate.replace("·", ""))
    row_link = page.get_by_test_id("customer-table").get_by_role("link", name=customer.name)
    expect(row_link).to_be_visible()
    row_link.click()

    expect(page.get_by_test_id("mobile")).to_have_text(mask_mobile(customer.mobile))
    page.get_by_test_id("reveal-mobile").click()
    expect(page.get_by_test_id("revealed")).to_have_text(customer.mobile)
    shot(page, "customer-revealed")

    page.get_by_test_id("sign-out").click()
    page.get_by_label("邮箱或用户名").fill("manager@sz-yuetong.demo.crm")
    page.get_by_label("密码").fill(settings.CRM_DEMO_PASSWORD)
    page.get_by_test_id("sign-in").click()
    page.goto("/settings/audit/")
    expect(page.get_by_test_id("audit-table")).to_contain_text(f"{customer.name}: mobile")
