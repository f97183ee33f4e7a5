"""Journey: the printed demo sign-ins work; the shell speaks Chinese, then English; phone layout."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from crm.tenancy.context import tenant_context
from crm.tenancy.models import Tenant
from customers.models import Customer
from tests.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo() -> None:
    with open("/dev/null", "w") as sink:
        call_command("seed_demo", customers=60, stdout=sink)


def _sign_in(page, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/sign-in/"))
    expect(page.get_by_test_id("page-title")).to_have_text("登录")
    page.get_by_label("邮箱或用户名").fill(email)
    page.get_by_label("密码").fill(settings.CRM_DEMO_PASSWORD)
    page.get_by_test_id("sign-in").click()


def test_a_demo_manager_signs_in_sees_chinese_and_switches_to_english(demo, page):
    _sign_in(page, "manager@sz-yuetong.demo.crm")
    expect(page.get_by_test_id("tenant-name")).to_have_text("深圳粤通一汽-大众4S店")
    nav = page.get_by_role("navigation", name="主导航")
    expect(nav.get_by_role("link", name="客户", exact=True)).to_be_visible()
    expect(page.get_by_test_id("sign-out")).to_have_text("退出登录")
    # the 60 customers seeded, and the prospects the demo's sales leads brought in
    with tenant_context(Tenant.objects.get(code="sz-yuetong").pk):
        customers = Customer.objects.filter(merged_into__isnull=True).count()
    assert customers > 60
    expect(page.get_by_test_id("customer-count")).to_have_text(str(customers))
    shot(page, "shell-zh")

    page.get_by_test_id("language-en").click()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Customers", exact=True)).to_be_visible()
    expect(page.get_by_test_id("sign-out")).to_have_text("Sign out")
    expect(page.get_by_test_id("page-title")).to_contain_text("Welcome")
    shot(page, "shell-en")

    # and back: the choice sticks across pages
    page.get_by_role("link", name="Customers", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Customers")


def test_the_shell_works_on_a_phone(demo, browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    _sign_in(page, "sales1@sz-yuetong.demo.crm")
    nav = page.locator("#sidenav")
    expect(nav).to_be_hidden()
    page.get_by_role("button", name="菜单").click()
    expect(nav).to_be_visible()
    nav.get_by_role("link", name="客户", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的客户")
    shot(page, "phone-customers")
    context.close()


def test_a_manager_working_in_two_dealerships_switches_between_them(demo, page):
    _sign_in(page, "group.manager@demo.crm")
    first = page.get_by_test_id("tenant-name").inner_text()
    page.get_by_label("门店").select_option(
        label=next(n for n in ("深圳粤通一汽-大众4S店", "广州华南之星广汽丰田4S店") if n != first)
    )
    expect(page.get_by_test_id("tenant-name")).not_to_have_text(first)


def test_each_language_is_offered_in_its_own_name(demo, page):
    _sign_in(page, "auditor@sz-yuetong.demo.crm")
    expect(page.get_by_test_id("language-en")).to_have_text("English")
    page.get_by_test_id("language-en").click()
    expect(page.get_by_test_id("language-zh-hans")).to_have_text("简体中文")
