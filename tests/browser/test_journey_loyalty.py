"""Journey: a customer-relations agent opens a customer's page, sees the loyalty member card,
goes to the member's card, redeems a car wash, and gets a voucher code; the points leave the
balance through one ledger entry, shown in the member's ledger. The manager then opens the loyalty
figures.

Driven by data-testid and form field names, so the journey does not hang on translation wording."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from crm.core.formatting import number
from crm.tenancy.context import tenant_context
from crm.tenancy.models import Tenant
from loyalty.models import LedgerEntry, Member, Redemption, Reward
from tests.browser.conftest import shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CODE = "sz-yuetong"
AGENT = f"cr1@{CODE}.demo.crm"
MANAGER = f"manager@{CODE}.demo.crm"


def test_an_agent_redeems_a_reward_from_the_member_card(page):
    with open("/dev/null", "w") as sink:
        call_command("seed_demo", customers=60, stdout=sink)
    tenant = Tenant.objects.get(code=CODE)
    with tenant_context(tenant.pk):
        wash = Reward.objects.get(name__startswith="精洗一次")
        member = (
            Member.objects.filter(customer__merged_into__isnull=True, customer__list_flag="")
            .select_related("customer")
            .order_by("-points_balance", "pk")
            .first()
        )
        assert member is not None and member.points_balance >= wash.points_cost
        before = member.points_balance
        # the demo's members have redeemed before: count what this redemption adds
        redeemed_before = LedgerEntry.objects.filter(member=member, kind="redeem").count()
        known = set(Redemption.objects.filter(member=member).values_list("pk", flat=True))

    sign_in(page, AGENT)
    page.goto(f"/customers/{member.customer_id}/")
    card = page.get_by_test_id("member-card")
    expect(card.get_by_test_id("member-points")).to_have_text(number(before))
    card.get_by_test_id("open-member").click()
    expect(page.get_by_test_id("balance")).to_have_text(number(before))

    form = page.get_by_test_id("redeem-form")
    form.locator("select[name=reward]").select_option(str(wash.pk))
    form.locator("input[name=quantity]").fill("1")
    form.locator("input[name=note]").fill("保养后洗车")
    shot(page, "loyalty-redeem-form")
    form.get_by_test_id("redeem").click()
    expect(page.locator(".message-success")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text(number(before - wash.points_cost))
    with tenant_context(tenant.pk):
        redemption = Redemption.objects.exclude(pk__in=known).get(member=member, reward=wash)
        member.refresh_from_db()
        assert member.points_balance == before - wash.points_cost
        assert LedgerEntry.objects.filter(member=member, kind="redeem").count() == redeemed_before + 1
    expect(page.locator(".message-success")).to_contain_text(redemption.voucher_code)
    expect(page.get_by_test_id("redemption-table")).to_contain_text(redemption.voucher_code)
    expect(page.get_by_test_id("ledger-table")).to_contain_text(f"-{wash.points_cost}")
    shot(page, "loyalty-redeemed")

    # the manager sees it in the figures
    page.context.clear_cookies()
    sign_in(page, MANAGER)
    page.goto("/loyalty/report/")
    expect(page.get_by_test_id("loyalty-cards")).to_be_visible()
    expect(page.get_by_test_id("by-level")).to_be_visible()
    assert int(page.get_by_test_id("members").inner_text()) > 0
