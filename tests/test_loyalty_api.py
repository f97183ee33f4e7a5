"""The loyalty API and staff pages: redemption with idempotency keys (201, replay 200, reused key
409, no key 400), each role's reach (consultants see only their own customers' members; adjusting
needs a manager), filters, the manager figures, the member card on the customer page, and the
pages' forms with field-level errors."""

from __future__ import annotations

import re

import pytest

from crm.tenancy.context import tenant_context
from loyalty import services
from loyalty.models import LedgerEntry, Member, Redemption, Reward
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(dealer_b):  # type: ignore[no-untyped-def]
    """B's manager funds a member of Alice (consultant) and one of Bob (consultant2); a reward."""
    with tenant_context(dealer_b.tenant.pk):
        alices = services.member_enrol(actor=dealer_b.agent, customer=CustomerFactory(owner=dealer_b.consultant))
        bobs = services.member_enrol(actor=dealer_b.agent, customer=CustomerFactory(owner=dealer_b.consultant2))
        for member in (alices, bobs):
            services.points_adjust(actor=dealer_b.manager, member=member, points=1000, note="开卡礼")
        reward = Reward.objects.create(name="四轮定位", points_cost=400, stock=5)
    return {"dealer": dealer_b, "alices": alices, "bobs": bobs, "reward": reward}


def test_redeeming_through_the_api_is_idempotent(shop, api):
    dealer, member, reward = shop["dealer"], shop["alices"], shop["reward"]
    alice = api(dealer.consultant)
    body = {"member": member.pk, "reward": reward.pk, "idempotency_key": "dms-order-7781"}
    first = alice.post("/api/v1/loyalty/redemptions/", body, format="json")
    assert first.status_code == 201, first.json()
    again = alice.post("/api/v1/loyalty/redemptions/", body, format="json")
    assert again.status_code == 200 and again.json() == first.json()
    reused = alice.post("/api/v1/loyalty/redemptions/", body | {"quantity": 2}, format="json")
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"
    keyless = alice.post("/api/v1/loyalty/redemptions/", {"member": member.pk, "reward": reward.pk}, format="json")
    assert keyless.status_code == 400 and "idempotency_key" in keyless.json()["error"]["fields"]
    by_header = alice.post(
        "/api/v1/loyalty/redemptions/",
        {"member": member.pk, "reward": reward.pk},
        format="json",
        HTTP_IDEMPOTENCY_KEY="header-key-0001",
    )
    assert by_header.status_code == 201
    poor = alice.post("/api/v1/loyalty/redemptions/", body | {"idempotency_key": "dms-order-7782"}, format="json")
    assert poor.status_code == 409 and poor.json()["error"]["code"] == "insufficient_points"
    with tenant_context(dealer.tenant.pk):
        member.refresh_from_db()
        assert member.points_balance == 200 and Redemption.objects.filter(member=member).count() == 2
    # Alice cannot redeem for Bob's customer: it does not exist for her
    bobs = alice.post(
        "/api/v1/loyalty/redemptions/",
        {"member": shop["bobs"].pk, "reward": reward.pk, "idempotency_key": "bobs-member-01"},
        format="json",
    )
    assert bobs.status_code == 400 and "member" in bobs.json()["error"]["fields"]


def test_each_role_reaches_only_what_it_may(shop, api):
    dealer, alices, bobs = shop["dealer"], shop["alices"], shop["bobs"]
    alice = api(dealer.consultant)
    listed = {row["id"] for row in alice.get("/api/v1/loyalty/members/").json()["results"]}
    assert alices.pk in listed and bobs.pk not in listed
    assert alice.get(f"/api/v1/loyalty/members/{bobs.pk}/").status_code == 404
    assert alice.get(f"/api/v1/loyalty/ledger/?member={bobs.pk}").json()["results"] == []
    refused = alice.post(f"/api/v1/loyalty/members/{alices.pk}/adjust/", {"points": 5, "note": "x"}, format="json")
    assert refused.status_code == 403
    manager = api(dealer.manager)
    assert {row["id"] for row in manager.get("/api/v1/loyalty/members/").json()["results"]} >= {alices.pk, bobs.pk}
    adjusted = manager.post(
        f"/api/v1/loyalty/members/{bobs.pk}/adjust/", {"points": -50, "note": "更正"}, format="json"
    )
    assert adjusted.status_code == 201 and adjusted.json()["source"] == "api"
    no_note = manager.post(f"/api/v1/loyalty/members/{bobs.pk}/adjust/", {"points": 5}, format="json")
    assert no_note.status_code == 400 and "note" in no_note.json()["error"]["fields"]
    # the auditor reads, never writes; the tenant admin sees no customers, so no members
    auditor = api(dealer.auditor)
    assert auditor.get("/api/v1/loyalty/members/").status_code == 200
    assert auditor.post("/api/v1/loyalty/members/", {"customer": alices.customer_id}, format="json").status_code == 403
    assert api(dealer.admin).get("/api/v1/loyalty/members/").status_code == 403
    assert alice.get("/api/v1/loyalty/summary/?start=2026-01-01&end=2026-12-31").status_code == 403


def test_filters_and_the_catalogue(shop, api):
    dealer = shop["dealer"]
    manager = api(dealer.manager)
    gold = manager.get("/api/v1/loyalty/members/?level=gold").json()["results"]
    assert [row["customer"] for row in gold] == [dealer.objects["customer"].pk]  # the fixture's gold member
    rich = manager.get("/api/v1/loyalty/members/?min_points=1000").json()["results"]
    assert {row["id"] for row in rich} == {shop["alices"].pk, shop["bobs"].pk}
    adjusts = manager.get(f"/api/v1/loyalty/ledger/?kind=adjust&member={shop['alices'].pk}").json()["results"]
    assert [row["points"] for row in adjusts] == [1000]
    assert manager.get("/api/v1/loyalty/ledger/?kind=nonsense").status_code == 400
    rewards = manager.get("/api/v1/loyalty/rewards/?max_points=400&in_stock=true").json()["results"]
    assert {r["name"] for r in rewards} >= {"四轮定位"}
    levels = manager.get("/api/v1/loyalty/levels/").json()["results"]
    assert [level["code"] for level in levels] == ["regular", "silver", "gold", "butler"]
    summary = manager.get("/api/v1/loyalty/summary/?start=2020-01-01&end=2030-12-31").json()
    assert summary["outstanding_points"] == 400 + 2000 and summary["members"] == 3
    assert summary["liability"] == "24.00" and summary["redemptions"] == 1
    assert manager.get("/api/v1/loyalty/summary/?start=2026-02-01&end=2026-01-01").status_code == 400


def test_enrolling_and_referring_through_the_api(shop, api):
    dealer = shop["dealer"]
    with tenant_context(dealer.tenant.pk):
        newcomer = CustomerFactory(owner=dealer.consultant)
        friend = CustomerFactory(owner=dealer.consultant)
    alice = api(dealer.consultant)
    enrolled = alice.post("/api/v1/loyalty/members/", {"customer": newcomer.pk}, format="json")
    assert enrolled.status_code == 201 and enrolled.json()["level"] == "regular"
    referral = alice.post("/api/v1/loyalty/referrals/", {"referrer": newcomer.pk, "referee": friend.pk}, format="json")
    assert referral.status_code == 201 and referral.json()["status"] == "pending"
    twice = alice.post("/api/v1/loyalty/referrals/", {"referrer": newcomer.pk, "referee": friend.pk}, format="json")
    assert twice.status_code == 400 and twice.json()["error"]["code"] == "referred_already"
    with tenant_context(dealer.tenant.pk):
        bobs_customer = shop["bobs"].customer_id
    hidden = alice.post(
        "/api/v1/loyalty/referrals/", {"referrer": newcomer.pk, "referee": bobs_customer}, format="json"
    )
    assert hidden.status_code == 400 and "referee" in hidden.json()["error"]["fields"]


def test_cancelling_a_redemption_through_the_api(shop, api):
    dealer = shop["dealer"]
    alice = api(dealer.consultant)
    made = alice.post(
        "/api/v1/loyalty/redemptions/",
        {"member": shop["alices"].pk, "reward": shop["reward"].pk, "idempotency_key": "cancel-me-0001"},
        format="json",
    ).json()
    assert alice.post(f"/api/v1/loyalty/redemptions/{made['id']}/cancel/", {"note": "x"}).status_code == 403
    manager = api(dealer.manager)
    cancelled = manager.post(f"/api/v1/loyalty/redemptions/{made['id']}/cancel/", {"note": "客户改约"}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    with tenant_context(dealer.tenant.pk):
        assert Member.objects.get(pk=shop["alices"].pk).points_balance == 1000


# --- Pages ---------------------------------------------------------------------------------------


def test_the_customer_page_shows_the_member_card_and_a_consultant_redeems_once(shop, web):
    dealer, member, reward = shop["dealer"], shop["alices"], shop["reward"]
    alice = web(dealer.consultant)
    page = alice.get(f"/customers/{member.customer_id}/").content.decode()
    assert 'data-testid="member-card"' in page and 'data-testid="member-points">1,000<' in page
    card = alice.get(f"/loyalty/members/{member.pk}/")
    html = card.content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', html).group(1)
    form = {"reward": reward.pk, "quantity": 1, "note": "", "idempotency_key": key}
    assert alice.post(f"/loyalty/members/{member.pk}/redeem/", form).status_code == 302
    assert alice.post(f"/loyalty/members/{member.pk}/redeem/", form).status_code == 302  # a double submit
    with tenant_context(dealer.tenant.pk):
        assert Redemption.objects.filter(member=member).count() == 1
        assert LedgerEntry.objects.filter(member=member, kind="redeem").count() == 1
    too_many = alice.post(f"/loyalty/members/{member.pk}/redeem/", form | {"idempotency_key": "x" * 20, "quantity": 9})
    assert too_many.status_code == 400 and "库存只剩 4 件。" in too_many.content.decode()  # zh-hans by default
    assert alice.get(f"/loyalty/members/{shop['bobs'].pk}/").status_code == 404
    assert alice.post(f"/loyalty/members/{member.pk}/adjust/", {"points": 5, "note": "x"}).status_code == 403
    assert alice.get("/loyalty/settings/").status_code == 403 and alice.get("/loyalty/report/").status_code == 403


def test_a_manager_adjusts_sets_up_the_programme_and_reads_the_figures(shop, web):
    dealer = shop["dealer"]
    manager = web(dealer.manager)
    bad = manager.post(f"/loyalty/members/{shop['bobs'].pk}/adjust/", {"points": 0, "note": ""})
    assert bad.status_code == 400 and bad.content.decode().count('class="error"') >= 2
    assert manager.post(f"/loyalty/members/{shop['bobs'].pk}/adjust/", {"points": 7, "note": "活动"}).status_code == 302
    settings_page = manager.get("/loyalty/settings/")
    assert settings_page.status_code == 200 and 'data-testid="level-table"' in settings_page.content.decode()
    refused = manager.post("/loyalty/settings/", {"name": "车主会", "starts_on": "2025-01-01", "channels": "fax"})
    assert refused.status_code == 400
    saved = manager.post(
        "/loyalty/rewards/new/",
        {"name": "免费洗车", "kind": "car_wash", "points_cost": 300, "stock": "", "is_active": "on"},
    )
    assert saved.status_code == 302
    with tenant_context(dealer.tenant.pk):
        assert Reward.objects.get(name="免费洗车").stock is None
    invalid = manager.post("/loyalty/rewards/new/", {"name": "", "kind": "car_wash", "points_cost": -1})
    assert invalid.status_code == 400
    report = manager.get("/loyalty/report/")
    assert report.status_code == 200 and 'data-testid="liability"' in report.content.decode()
    assert manager.get("/loyalty/report/?start=bad").status_code == 200  # the form shows the error
    for path in ("/loyalty/", "/loyalty/ledger/", "/loyalty/redemptions/", "/loyalty/referrals/", "/loyalty/rewards/"):
        assert manager.get(path).status_code == 200, path
    admin = web(dealer.admin)
    assert admin.get("/loyalty/settings/").status_code == 200  # programme settings, no customers
    assert admin.get("/loyalty/").status_code == 403


def test_the_members_page_sorts_by_its_points_and_member_since_headers(dealer_b, web):
    from datetime import date

    with tenant_context(dealer_b.tenant.pk):
        made = []
        for n, (points, joined) in enumerate(
            ((50, date(2025, 1, 1)), (900, date(2024, 6, 1)), (300, date(2026, 2, 1)))
        ):
            member = services.member_enrol(actor=dealer_b.agent, customer=CustomerFactory(name=f"排序会员{n}"))
            Member.objects.filter(pk=member.pk).update(points_balance=points, joined_on=joined)
            made.append(member.pk)
    client = web(dealer_b.manager)

    def order(sort: str) -> list[int]:
        rows = client.get("/loyalty/", {"q": "排序会员", **({"sort": sort} if sort else {})}).context["rows"]
        return [m.pk for m in rows]

    low, high, new = made
    assert order("") == order("-points") == [high, new, low] and order("points") == [low, new, high]
    assert order("-joined") == [new, low, high] and order("joined") == [high, low, new]
    page = client.get("/loyalty/", {"sort": "-points"}).content.decode()
    assert 'aria-sort="descending"' in page and "sort=points" in page
