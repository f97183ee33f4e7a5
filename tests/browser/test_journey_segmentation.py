"""Journey: a manager reads the value tiers, drills into the heat map and the tier migration, changes
a setting and recomputes; a consultant sees a customer's tier and its strategy."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from crm.tenancy.context import tenant_context
from crm.tenancy.models import Membership, Tenant
from segmentation.models import CustomerValue, SegmentationRun
from tests.browser.conftest import shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_manager_reads_tiers_drills_down_and_recomputes(page):
    with open("/dev/null", "w") as sink:
        call_command("seed_demo", customers=80, stdout=sink)
    tenant = Tenant.objects.get(code="sz-yuetong")

    sign_in(page, "manager@sz-yuetong.demo.crm")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="价值分层").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("价值分层与客户细分")
    key_card = page.get_by_test_id("tier-key")
    expect(key_card).to_contain_text("重点")
    expect(key_card).to_contain_text("专人服务")  # the tier's strategy, in Chinese
    shot(page, "segmentation-overview")

    # the heat map: the R5/F1 … cells link to their customers
    cell = page.get_by_test_id("rf-grid").locator("td a").first
    count = int(cell.inner_text().split()[0])
    cell.click()
    expect(page.get_by_test_id("value-table").locator("tbody tr")).to_have_count(min(count, 50))

    # the tier migration between the first and the last run, then one cell's customers
    page.goto("/segmentation/migration/")
    matrix = page.get_by_test_id("migration-matrix")
    expect(matrix).to_be_visible()
    moved = matrix.locator("td:not(.diagonal) a").first
    expect(moved).to_be_visible()
    movers = int(moved.inner_text())
    shot(page, "segmentation-migration")
    moved.click()
    expect(page.get_by_test_id("migration-filter")).to_be_visible()
    expect(page.get_by_test_id("value-table").locator("tbody tr")).to_have_count(min(movers, 50))

    # settings: a wrong sum is refused with the field named, then a valid change is saved
    page.goto("/segmentation/settings/")
    page.get_by_label("重点层比例（%）").fill("30")
    page.get_by_test_id("save-settings").click()
    expect(page.locator(".field-error")).to_contain_text("四个比例之和必须为 100")
    page.get_by_label("巩固层比例（%）").fill("20")
    page.get_by_test_id("save-settings").click()
    expect(page.locator(".messages")).to_contain_text("已保存")

    # recompute now: the run applies the new shares at once (tasks run in-process in tests)
    with tenant_context(tenant.pk):
        runs_before = SegmentationRun.objects.count()
    page.goto("/segmentation/")
    page.get_by_test_id("recompute-now").click()
    expect(page.locator(".messages")).to_contain_text("已排队重新计算")
    with tenant_context(tenant.pk):
        assert SegmentationRun.objects.count() == runs_before + 1
        scored = CustomerValue.objects.exclude(tier="").count()
        key = CustomerValue.objects.filter(tier="key").count()
    assert abs(key / scored - 0.30) < 0.05
    expect(page.get_by_test_id("run-status")).to_contain_text(re.compile(r"上次计算于"))


def test_a_consultant_sees_the_tier_and_its_strategy_on_a_customer(page):
    with open("/dev/null", "w") as sink:
        call_command("seed_demo", customers=60, stdout=sink)
    tenant = Tenant.objects.get(code="sz-yuetong")
    with tenant_context(tenant.pk):
        sales1 = Membership.objects.get(user__email="sales1@sz-yuetong.demo.crm")
        value = (
            CustomerValue.objects.select_related("customer")
            .filter(customer__owner=sales1, tier="key")
            .order_by("customer_id")
            .first()
        )
        assert value is not None
    sign_in(page, "sales1@sz-yuetong.demo.crm")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="价值分层").click()
    page.get_by_label("价值分层").select_option("key")
    page.get_by_role("button", name="筛选").click()
    expect(page.get_by_test_id("tier-strategy")).to_contain_text("专人服务")
    page.get_by_test_id("value-table").get_by_role("link", name=value.customer.name).click()
    panel = page.get_by_test_id("value-panel")
    expect(panel.get_by_test_id("tier")).to_have_text("重点")
    expect(panel).to_contain_text(f"RFM {value.rfm_code}")
    expect(page.get_by_test_id("tier-history")).to_be_visible()
    shot(page, "segmentation-customer-panel")
