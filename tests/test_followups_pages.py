"""Follow-up pages: my queue today and the pool, one follow-up with its outcome, hand-over and
cancel forms, the calendar, the list, the team figures, planning by hand and the rules.

One small dealership per test: a manager, two consultants (Alice and Bob, each with a customer),
a customer-relations agent, an auditor and a tenant admin (who has no follow-up capability)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone

from crm.tenancy.context import tenant_context
from crm.tenancy.models import Membership, Tenant
from crm.tenancy.roles import Role
from customers.models import Customer, Touchpoint, Vehicle
from followups.models import Attempt, Followup, FollowupSettings, Reason, Status
from tests.factories import CustomerFactory, MembershipFactory, TenantFactory, VehicleFactory

pytestmark = pytest.mark.django_db

_keys = itertools.count(1)


@dataclass
class Shop:
    tenant: Tenant
    manager: Membership
    alice: Membership
    bob: Membership
    agent: Membership
    auditor: Membership
    admin: Membership
    alices_customer: Customer
    bobs_customer: Customer
    vehicle: Vehicle


@pytest.fixture
def shop(db) -> Shop:  # type: ignore[no-untyped-def]
    tenant = TenantFactory(name="回访测试店", code="followup-shop")
    with tenant_context(tenant.pk):
        people = {
            name: MembershipFactory(user__email=f"{name}@followup-shop.test", user__first_name=name, role=role)
            for name, role in [
                ("manager", Role.MANAGER),
                ("alice", Role.SALES_CONSULTANT),
                ("bob", Role.SALES_CONSULTANT),
                ("agent", Role.CR_AGENT),
                ("auditor", Role.AUDITOR),
                ("admin", Role.TENANT_ADMIN),
            ]
        }
        alices = CustomerFactory(name="张三丰", mobile="+8613912345678", owner=people["alice"])
        bobs = CustomerFactory(name="李四海", mobile="+8613887654321", owner=people["bob"])
        vehicle = VehicleFactory(customer=alices, plate="粤B·12345")
    return Shop(tenant=tenant, **people, alices_customer=alices, bobs_customer=bobs, vehicle=vehicle)


def _today() -> date:
    return timezone.localdate()  # Asia/Shanghai, as the dealership's pages see it


def _followup(shop: Shop, customer: Customer, assignee: Membership | None, **fields: Any) -> Followup:
    on = _today()
    values: dict[str, Any] = {
        "reason": Reason.MANUAL,
        "due_from": on,
        "due_until": on + timedelta(days=4),
        "scheduled_on": on,
        "priority": 5,
        **fields,
    }
    with tenant_context(shop.tenant.pk):
        return Followup.objects.create(customer=customer, assignee=assignee, source_key=f"test:{next(_keys)}", **values)


def _reload(shop: Shop, followup: Followup) -> Followup:
    with tenant_context(shop.tenant.pk):
        return Followup.objects.get(pk=followup.pk)


def _counts(shop: Shop) -> tuple[int, int]:
    with tenant_context(shop.tenant.pk):
        return Attempt.objects.count(), Touchpoint.objects.count()


# --- who may open what ------------------------------------------------------------------------------

PAGES = ["/followups/", "/followups/all/", "/followups/calendar/", "/followups/team/", "/followups/settings/"]


def test_anonymous_visitors_are_sent_to_sign_in(shop, client):
    followup = _followup(shop, shop.alices_customer, shop.alice)
    for path in [*PAGES, f"/followups/{followup.pk}/", f"/followups/plan/?customer={shop.alices_customer.pk}"]:
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/sign-in/"), path


def test_each_role_reaches_only_the_pages_its_capabilities_allow(shop, web):
    followup = _followup(shop, shop.alices_customer, shop.alice)
    detail = f"/followups/{followup.pk}/"
    expected = {
        shop.admin: {"/followups/": 403, "/followups/all/": 403, "/followups/calendar/": 403, "/followups/team/": 403,
                     "/followups/settings/": 403, detail: 403},
        shop.alice: {"/followups/": 200, "/followups/all/": 200, "/followups/calendar/": 200, "/followups/team/": 403,
                     "/followups/settings/": 403, detail: 200},
        shop.agent: {"/followups/": 200, "/followups/all/": 200, "/followups/calendar/": 200, "/followups/team/": 200,
                     "/followups/settings/": 403, detail: 200},
        shop.auditor: {"/followups/": 200, "/followups/all/": 200, "/followups/calendar/": 200, "/followups/team/": 200,
                       "/followups/settings/": 403, detail: 200},
        shop.manager: {"/followups/": 200, "/followups/all/": 200, "/followups/calendar/": 200, "/followups/team/": 200,
                       "/followups/settings/": 200, detail: 200},
    }  # fmt: skip
    for member, pages in expected.items():
        client = web(member)
        got = {path: client.get(path).status_code for path in pages}
        assert got == pages, member.role
    # the auditor sees everything but works nothing
    auditor = web(shop.auditor)
    assert auditor.post(f"/followups/{followup.pk}/outcome/", {"disposition": "satisfied"}).status_code == 403
    assert auditor.get(f"/followups/plan/?customer={shop.alices_customer.pk}").status_code == 403
    assert _counts(shop) == (0, 0)
    assert _reload(shop, followup).status == Status.OPEN


def test_the_nav_shows_follow_ups_to_those_who_work_them(shop, web):
    assert 'data-testid="nav-followups"' in web(shop.alice).get("/").content.decode()
    assert 'data-testid="nav-followups"' not in web(shop.admin).get("/").content.decode()
    manager_home = web(shop.manager).get("/").content.decode()
    assert "/followups/team/" in manager_home and "/followups/settings/" in manager_home


# --- my queue today ---------------------------------------------------------------------------------


def test_my_queue_lists_overdue_work_first_with_masked_numbers_of_others_customers(shop, web):
    on = _today()
    key_customer_today = _followup(shop, shop.alices_customer, shop.alice, priority=1, vehicle=shop.vehicle)
    late = _followup(
        shop,
        shop.bobs_customer,
        shop.alice,
        reason=Reason.SERVICE,
        priority=5,
        due_from=on - timedelta(days=6),
        due_until=on - timedelta(days=1),
        scheduled_on=on - timedelta(days=6),
        note="问问上次保养的体验",
    )
    _followup(shop, shop.alices_customer, shop.alice, reason=Reason.BIRTHDAY, scheduled_on=on + timedelta(days=2),
              due_from=on + timedelta(days=2), due_until=on + timedelta(days=5))  # fmt: skip
    _followup(shop, shop.bobs_customer, shop.bob)  # Bob's
    response = web(shop.alice).get("/followups/")
    assert response.status_code == 200
    assert [f.pk for f, _mobile in response.context["rows"]] == [late.pk, key_customer_today.pk]
    mobiles = {f.pk: mobile for f, mobile in response.context["rows"]}
    assert mobiles[key_customer_today.pk] == "+8613912345678"  # her own customer
    assert mobiles[late.pk] == "138****4321"  # Bob's customer, held by her: masked
    html = response.content.decode()
    assert "+8613887654321" not in html
    assert html.index("李四海") < html.index("张三丰")
    assert 'data-testid="overdue"' in html and "粤B·12345" in html and "问问上次保养的体验" in html
    assert html.count('data-testid="quick-outcome"') == 2


def test_a_manager_opens_a_colleagues_queue_and_a_consultant_cannot(shop, web):
    alices = _followup(shop, shop.alices_customer, shop.alice)
    bobs = _followup(shop, shop.bobs_customer, shop.bob)
    manager = web(shop.manager).get(f"/followups/?assignee={shop.alice.pk}")
    assert [f.pk for f, _m in manager.context["rows"]] == [alices.pk]
    bob = web(shop.bob).get(f"/followups/?assignee={shop.alice.pk}")
    assert bob.status_code == 200 and [f.pk for f, _m in bob.context["rows"]] == [bobs.pk]
    assert "张三丰" not in bob.content.decode()


def test_the_pool_is_shown_to_those_who_see_everything_and_taking_one_makes_it_mine(shop, web):
    pooled = _followup(shop, shop.bobs_customer, None, reason=Reason.CADENCE)
    agent = web(shop.agent)
    pool = agent.get("/followups/?tab=pool")
    assert [f.pk for f, _m in pool.context["rows"]] == [pooled.pk]
    assert pool.context["pool_count"] == 1
    taken = agent.post(f"/followups/{pooled.pk}/take/", {"next": "/followups/?tab=pool"})
    assert taken.status_code == 302 and taken["Location"] == "/followups/?tab=pool"
    assert _reload(shop, pooled).assignee_id == shop.agent.pk
    assert [f.pk for f, _m in agent.get("/followups/").context["rows"]] == [pooled.pk]
    # a consultant has no pool tab: the request shows her own queue
    assert web(shop.alice).get("/followups/?tab=pool").context["tab"] == "mine"


# --- logging outcomes -------------------------------------------------------------------------------


def test_one_click_no_answer_retries_tomorrow_and_records_the_contact(shop, web):
    followup = _followup(shop, shop.alices_customer, shop.alice)
    client = web(shop.alice)
    response = client.post(f"/followups/{followup.pk}/outcome/", {"disposition": "no_answer", "next": "/followups/"})
    assert response.status_code == 302 and response["Location"] == "/followups/"
    followup = _reload(shop, followup)
    assert followup.status == Status.NO_ANSWER and followup.attempts == 1
    assert followup.scheduled_on == _today() + timedelta(days=1)
    with tenant_context(shop.tenant.pk):
        attempt = Attempt.objects.get(followup=followup)
        assert attempt.disposition == "no_answer" and attempt.staff_id == shop.alice.pk
        assert Touchpoint.objects.filter(customer=shop.alices_customer, outcome="no_answer").count() == 1
    assert client.get("/followups/").context["rows"] == []  # it comes back tomorrow


def test_one_click_reached_satisfied_finishes_the_follow_up(shop, web):
    followup = _followup(shop, shop.alices_customer, shop.alice)
    client = web(shop.alice)
    response = client.post(f"/followups/{followup.pk}/outcome/", {"disposition": "satisfied", "next": "/followups/"})
    assert response.status_code == 302
    followup = _reload(shop, followup)
    assert followup.status == Status.DONE and followup.completed_by_id == shop.alice.pk
    assert _counts(shop) == (1, 1)
    page = client.get(f"/followups/{followup.pk}/").content.decode()
    assert 'data-testid="outcome-form"' not in page and 'data-testid="attempt-table"' in page


def test_a_callback_needs_a_day_after_today_and_a_refused_one_changes_nothing(shop, web):
    followup = _followup(shop, shop.alices_customer, shop.alice)
    client = web(shop.alice)
    for day in [str(_today() - timedelta(days=1)), ""]:
        refused = client.post(
            f"/followups/{followup.pk}/outcome/", {"disposition": "callback", "notes": "客户在开会", "callback_on": day}
        )
        assert refused.status_code == 400
        assert "callback_on" in refused.context["outcome_form"].errors
        assert 'class="field field-error"' in refused.content.decode()
        assert refused.context["outcome_form"]["notes"].value() == "客户在开会"
    junk = client.post(f"/followups/{followup.pk}/outcome/", {"disposition": "callback", "callback_on": "13/45/2026"})
    assert junk.status_code == 400 and "callback_on" in junk.context["outcome_form"].errors
    assert _counts(shop) == (0, 0)
    unchanged = _reload(shop, followup)
    assert (unchanged.status, unchanged.attempts, unchanged.scheduled_on) == (Status.OPEN, 0, _today())
    later = _today() + timedelta(days=3)
    assert (
        client.post(
            f"/followups/{followup.pk}/outcome/", {"disposition": "callback", "callback_on": str(later)}
        ).status_code
        == 302
    )
    moved = _reload(shop, followup)
    assert (moved.status, moved.scheduled_on) == (Status.OPEN, later)


def test_feedback_needs_notes_and_only_a_local_next_is_followed(shop, web):
    followup = _followup(shop, shop.alices_customer, shop.alice)
    client = web(shop.alice)
    refused = client.post(f"/followups/{followup.pk}/outcome/", {"disposition": "feedback"})
    assert refused.status_code == 400 and "notes" in refused.context["outcome_form"].errors
    bad = client.post(f"/followups/{followup.pk}/outcome/", {"disposition": "bogus"})
    assert bad.status_code == 400 and "disposition" in bad.context["outcome_form"].errors
    done = client.post(
        f"/followups/{followup.pk}/outcome/",
        {"disposition": "feedback", "notes": "空调有异味", "next": "https://evil.example/steal"},
    )
    assert done.status_code == 302 and done["Location"] == f"/followups/{followup.pk}/"
    again = client.post(f"/followups/{followup.pk}/outcome/", {"disposition": "satisfied"})
    assert again.status_code == 400  # finished already: said on the page, nothing recorded
    assert _counts(shop) == (1, 1)


def test_a_consultant_cannot_see_or_work_a_colleagues_follow_up(shop, web):
    alices = _followup(shop, shop.alices_customer, shop.alice, note="爱丽的机密备注")
    bob = web(shop.bob)
    assert bob.get(f"/followups/{alices.pk}/").status_code == 404
    assert bob.post(f"/followups/{alices.pk}/outcome/", {"disposition": "satisfied"}).status_code == 404
    assert bob.post(f"/followups/{alices.pk}/take/").status_code == 404
    listing = bob.get("/followups/all/").content.decode()
    assert "爱丽的机密备注" not in listing and "张三丰" not in listing
    assert _counts(shop) == (0, 0)
    assert _reload(shop, alices).status == Status.OPEN
    # but the customer's owner sees a follow-up of her customer that someone else holds
    held_by_agent = _followup(shop, shop.alices_customer, shop.agent, reason=Reason.SERVICE)
    assert web(shop.alice).get(f"/followups/{held_by_agent.pk}/").status_code == 200


# --- hand-over and cancel ---------------------------------------------------------------------------


def test_a_manager_hands_one_over_and_cancels_another_with_a_reason(shop, web):
    first = _followup(shop, shop.alices_customer, shop.alice)
    second = _followup(shop, shop.bobs_customer, shop.bob)
    manager = web(shop.manager)
    assert manager.post(f"/followups/{first.pk}/assign/", {"assignee": shop.bob.pk}).status_code == 302
    assert _reload(shop, first).assignee_id == shop.bob.pk
    wrong = manager.post(f"/followups/{first.pk}/assign/", {"assignee": shop.auditor.pk})
    assert wrong.status_code == 400 and "assignee" in wrong.context["assign_form"].errors
    refused = manager.post(f"/followups/{second.pk}/cancel/", {"note": ""})
    assert refused.status_code == 400 and "note" in refused.context["cancel_form"].errors
    assert _reload(shop, second).status == Status.OPEN
    assert manager.post(f"/followups/{second.pk}/cancel/", {"note": "客户已搬走"}).status_code == 302
    cancelled = _reload(shop, second)
    assert cancelled.status == Status.CANCELLED and cancelled.outcome_notes == "客户已搬走"
    # consultants may neither hand over nor cancel
    alice = web(shop.alice)
    third = _followup(shop, shop.alices_customer, shop.alice, reason=Reason.SERVICE)
    assert alice.post(f"/followups/{third.pk}/assign/", {"assignee": shop.bob.pk}).status_code == 403
    assert alice.post(f"/followups/{third.pk}/cancel/", {"note": "x"}).status_code == 403
    assert _reload(shop, third).assignee_id == shop.alice.pk


def test_a_manager_hands_over_everything_open_from_one_person_to_another(shop, web):
    open_ones = [
        _followup(shop, shop.alices_customer, shop.alice),
        _followup(shop, shop.bobs_customer, shop.alice, reason=Reason.SERVICE),
    ]
    done = _followup(shop, shop.alices_customer, shop.alice, reason=Reason.BIRTHDAY, status=Status.DONE)
    manager = web(shop.manager)
    same = manager.post("/followups/team/hand-over/", {"from_member": shop.alice.pk, "to_member": shop.alice.pk})
    assert same.status_code == 400 and "to_member" in same.context["hand_over_form"].errors
    moved = manager.post("/followups/team/hand-over/", {"from_member": shop.alice.pk, "to_member": shop.agent.pk})
    assert moved.status_code == 302
    assert [_reload(shop, f).assignee_id for f in open_ones] == [shop.agent.pk, shop.agent.pk]
    assert _reload(shop, done).assignee_id == shop.alice.pk
    assert web(shop.agent).post("/followups/team/hand-over/", {"from_member": shop.agent.pk}).status_code == 403


# --- calendar, list and team figures ----------------------------------------------------------------


def test_the_calendar_counts_open_overdue_and_done_work_per_day(shop, web):
    month = (_today().replace(day=1) - timedelta(days=1)).replace(day=1)  # last month: all of it is past
    day = month.replace(day=10)
    for customer in (shop.alices_customer, shop.bobs_customer):
        _followup(shop, customer, shop.alice, due_from=day, due_until=day + timedelta(days=2), scheduled_on=day)
    finished_at = timezone.make_aware(datetime.combine(day + timedelta(days=1), time(10, 0)))
    _followup(shop, shop.alices_customer, shop.alice, reason=Reason.SERVICE, due_from=day, due_until=day,
              scheduled_on=day, status=Status.DONE, completed_at=finished_at, completed_by=shop.alice)  # fmt: skip
    _followup(shop, shop.bobs_customer, shop.bob, reason=Reason.SERVICE, due_from=day, due_until=day,
              scheduled_on=day)  # Bob's: not in Alice's calendar  # fmt: skip
    response = web(shop.alice).get(f"/followups/calendar/?month={month:%Y-%m}")
    assert response.status_code == 200
    cells = {d.day: d for week in response.context["cal"].weeks for d in week}
    assert (cells[day].active, cells[day].overdue, cells[day].done) == (2, 2, 0)
    assert cells[day + timedelta(days=1)].done == 1
    html = response.content.decode()
    assert f"scheduled_from={day:%Y-%m-%d}&amp;scheduled_to={day:%Y-%m-%d}" in html
    team = web(shop.manager).get(f"/followups/calendar/?month={month:%Y-%m}&assignee=team").context["cal"]
    assert {d.day: d for week in team.weeks for d in week}[day].active == 3
    bobs = web(shop.manager).get(f"/followups/calendar/?month={month:%Y-%m}&assignee={shop.bob.pk}").context["cal"]
    assert {d.day: d for week in bobs.weeks for d in week}[day].active == 1
    # the day's link lists what was scheduled that day
    listed = web(shop.alice).get(f"/followups/all/?scheduled_from={day}&scheduled_to={day}&assignee={shop.alice.pk}")
    assert len(listed.context["rows"]) == 3


def test_the_list_filters_by_status_reason_holder_and_overdue(shop, web):
    on = _today()
    late = _followup(shop, shop.alices_customer, shop.alice, due_from=on - timedelta(days=5),
                     due_until=on - timedelta(days=1), scheduled_on=on - timedelta(days=5))  # fmt: skip
    pooled = _followup(shop, shop.bobs_customer, None, reason=Reason.CADENCE)
    done = _followup(shop, shop.bobs_customer, shop.bob, reason=Reason.SERVICE, status=Status.DONE)
    manager = web(shop.manager)

    def listed(query: str) -> set[int]:
        response = manager.get(f"/followups/all/{query}")
        assert response.status_code == 200, query
        return {f.pk for f, _m in response.context["rows"]}

    assert listed("") == {late.pk, pooled.pk, done.pk}
    assert listed("?status=active") == {late.pk, pooled.pk}
    assert listed("?status=done") == {done.pk}
    assert listed("?reason=cadence") == {pooled.pk}
    assert listed("?assignee=pool") == {pooled.pk}
    assert listed(f"?assignee={shop.alice.pk}") == {late.pk}
    assert listed("?overdue=on") == {late.pk}
    assert listed(f"?customer={shop.bobs_customer.pk}") == {pooled.pk, done.pk}
    # Alice sees what she holds and her own customer's follow-ups
    assert {f.pk for f, _m in web(shop.alice).get("/followups/all/").context["rows"]} == {late.pk}


def test_the_list_sorts_by_its_scheduled_and_window_headers(shop, web):
    on = _today()
    a = _followup(
        shop, shop.alices_customer, shop.alice, scheduled_on=on - timedelta(days=2), due_until=on + timedelta(days=9)
    )
    b = _followup(shop, shop.bobs_customer, shop.bob, reason=Reason.CADENCE, due_until=on + timedelta(days=1))
    manager = web(shop.manager)

    def order(sort: str) -> list[int]:
        response = manager.get("/followups/all/", {"sort": sort} if sort else {})
        assert response.status_code == 200, sort
        return [f.pk for f, _m in response.context["rows"]]

    assert order("") == order("scheduled") == [a.pk, b.pk]
    assert order("-scheduled") == [b.pk, a.pk]
    assert order("due") == [b.pk, a.pk] and order("-due") == [a.pk, b.pk]
    assert manager.get("/followups/all/", {"sort": "customer__name"}).status_code == 400  # not a key of the list
    page = manager.get("/followups/all/", {"sort": "due", "status": "active"}).content.decode()
    assert 'aria-sort="ascending"' in page and "sort=-due" in page and "status=active" in page


def test_the_team_page_shows_figures_that_match_the_data(shop, web):
    on = _today()
    now = timezone.now()
    _followup(shop, shop.alices_customer, shop.alice)  # due today
    _followup(shop, shop.bobs_customer, shop.alice, reason=Reason.SERVICE, due_from=on - timedelta(days=5),
              due_until=on - timedelta(days=1), scheduled_on=on - timedelta(days=5))  # overdue  # fmt: skip
    _followup(shop, shop.bobs_customer, shop.bob, scheduled_on=on + timedelta(days=2),
              due_until=on + timedelta(days=4))  # upcoming  # fmt: skip
    _followup(shop, shop.alices_customer, None, reason=Reason.CADENCE)  # in the pool, due today
    _followup(shop, shop.alices_customer, shop.alice, reason=Reason.BIRTHDAY, status=Status.DONE,
              completed_at=now, completed_by=shop.alice)  # fmt: skip
    _followup(shop, shop.bobs_customer, shop.bob, reason=Reason.BIRTHDAY, status=Status.UNREACHABLE,
              completed_at=now, completed_by=shop.bob)  # fmt: skip
    response = web(shop.manager).get("/followups/team/")
    assert response.status_code == 200
    figures = response.context["figures"]
    people = {p.member.pk if p.member else None: p for p in figures.people}
    alice, bob = people[shop.alice.pk], people[shop.bob.pk]
    assert (alice.due_today, alice.overdue, alice.upcoming, alice.done, alice.completion_rate) == (1, 1, 0, 1, 100.0)
    assert (bob.due_today, bob.upcoming, bob.unreachable, bob.completion_rate) == (0, 1, 1, 0.0)
    assert (figures.totals.overdue, figures.totals.due_today) == (1, 2)
    assert response.context["pool_open"] == 1
    html = response.content.decode()
    assert 'data-testid="completion-rate">50.0%<' in html
    assert 'data-testid="total-overdue">1<' in html and 'data-testid="pool-count">1<' in html
    reasons = {row["reason"]: row for row in response.context["by_reason"]}
    assert (reasons["birthday"]["done"], reasons["birthday"]["unreachable"]) == (1, 1)
    assert 'data-testid="hand-over-form"' in html
    # the agent sees the figures but not the hand-over form
    agent_page = web(shop.agent).get("/followups/team/").content.decode()
    assert 'data-testid="team-table"' in agent_page and 'data-testid="hand-over-form"' not in agent_page
    bad = web(shop.manager).get("/followups/team/?start=2026-05-01&end=2026-04-01")
    assert bad.status_code == 400 and "end" in bad.context["form"].errors


# --- planning by hand -------------------------------------------------------------------------------


def test_a_consultant_plans_a_follow_up_for_her_own_customer(shop, web):
    alice = web(shop.alice)
    path = f"/followups/plan/?customer={shop.alices_customer.pk}"
    form = alice.get(path)
    assert form.status_code == 200 and "assignee" not in form.context["form"].fields
    day = _today() + timedelta(days=2)
    created = alice.post(
        path,
        {"reason": "manual", "due_from": str(day), "channel": "call", "vehicle": shop.vehicle.pk, "note": "试驾反馈"},
    )
    assert created.status_code == 302
    with tenant_context(shop.tenant.pk):
        followup = Followup.objects.get(customer=shop.alices_customer)
    assert (followup.assignee_id, followup.scheduled_on, followup.vehicle_id) == (shop.alice.pk, day, shop.vehicle.pk)
    assert created["Location"] == f"/followups/{followup.pk}/"
    # the same reason again: refused on the field, nothing added
    twice = alice.post(path, {"reason": "manual", "due_from": str(day), "channel": "call"})
    assert twice.status_code == 400 and "reason" in twice.context["form"].errors
    # someone else's vehicle, or a channel without consent
    with tenant_context(shop.tenant.pk):
        other_vehicle = VehicleFactory(customer=shop.bobs_customer)
        Customer.objects.filter(pk=shop.alices_customer.pk).update(consent_sms=False)
    wrong = alice.post(path, {"reason": "service", "due_from": str(day), "channel": "sms", "vehicle": other_vehicle.pk})
    assert wrong.status_code == 400 and "vehicle" in wrong.context["form"].errors
    no_consent = alice.post(path, {"reason": "service", "due_from": str(day), "channel": "sms"})
    assert no_consent.status_code == 400 and "channel" in no_consent.context["form"].errors
    with tenant_context(shop.tenant.pk):
        assert Followup.objects.count() == 1
    # not her customer: not found
    assert alice.get(f"/followups/plan/?customer={shop.bobs_customer.pk}").status_code == 404
    assert alice.post(f"/followups/plan/?customer={shop.bobs_customer.pk}", {"due_from": str(day)}).status_code == 404


def test_an_agent_plans_a_follow_up_for_a_colleague(shop, web):
    agent = web(shop.agent)
    path = f"/followups/plan/?customer={shop.bobs_customer.pk}"
    assert "assignee" in agent.get(path).context["form"].fields
    response = agent.post(
        path, {"reason": "manual", "due_from": str(_today()), "channel": "visit", "assignee": shop.bob.pk}
    )
    assert response.status_code == 302
    with tenant_context(shop.tenant.pk):
        assert Followup.objects.get(customer=shop.bobs_customer).assignee_id == shop.bob.pk


def test_the_customer_page_shows_the_follow_up_panel(shop, web):
    _followup(shop, shop.alices_customer, shop.alice, reason=Reason.SERVICE)
    _followup(shop, shop.alices_customer, shop.alice, reason=Reason.BIRTHDAY, status=Status.DONE,
              disposition="satisfied", completed_at=timezone.now())  # fmt: skip
    html = web(shop.alice).get(f"/customers/{shop.alices_customer.pk}/").content.decode()
    assert 'data-testid="followup-panel"' in html and 'data-testid="followups-open"' in html
    assert 'data-testid="followups-done"' in html
    assert f"/followups/plan/?customer={shop.alices_customer.pk}" in html
    auditor = web(shop.auditor).get(f"/customers/{shop.alices_customer.pk}/").content.decode()
    assert 'data-testid="followup-panel"' in auditor and 'data-testid="plan-followup"' not in auditor


# --- the rules --------------------------------------------------------------------------------------


def _settings_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "delivery_enabled": "on",
        "delivery_days": "1,7,30",
        "delivery_channel": "call",
        "maintenance_enabled": "on",
        "maintenance_months": 6,
        "maintenance_km": 10000,
        "maintenance_lead_days": 7,
        "maintenance_channel": "call",
        "service_enabled": "on",
        "service_after_days": 2,
        "service_channel": "call",
        "warranty_enabled": "on",
        "warranty_lead_days": 30,
        "insurance_enabled": "on",
        "insurance_lead_days": 30,
        "expiry_channel": "call",
        "birthday_enabled": "on",
        "birthday_lead_days": 0,
        "birthday_channel": "wechat",
        "cadence_enabled": "on",
        "cadence_key_days": 30,
        "cadence_consolidate_days": 91,
        "cadence_maintain_days": 182,
        "cadence_exit_days": 0,
        "cadence_channel": "call",
        "win_back_enabled": "on",
        "win_back_months": 9,
        "complaint_enabled": "on",
        "window_days": 5,
        "max_attempts": 3,
        "retry_after_days": 1,
        "daily_cap": 40,
        "owner_calls": "on",
    }
    data.update(changes)
    return data


def test_the_rules_page_shows_errors_on_the_field_and_saves_valid_rules(shop, web):
    manager = web(shop.manager)
    page = manager.get("/followups/settings/")
    assert page.status_code == 200 and "<fieldset" in page.content.decode()
    assert page.context["form"]["delivery_days"].value() in ("1,7,30", [1, 7, 30])
    with tenant_context(shop.tenant.pk):
        assert FollowupSettings.objects.count() == 0  # showing the rules wrote nothing
    refused = manager.post("/followups/settings/", _settings_data(max_attempts=0, delivery_days="1,x"))
    assert refused.status_code == 400
    errors = refused.context["form"].errors
    assert {"max_attempts", "delivery_days"} <= set(errors)
    html = refused.content.decode()
    assert html.count('class="field field-error"') == 2
    with tenant_context(shop.tenant.pk):
        assert FollowupSettings.objects.count() == 0
    saved = manager.post("/followups/settings/", _settings_data(delivery_days="30，7, 1", max_attempts=4))
    assert saved.status_code == 302, saved.context["form"].errors
    with tenant_context(shop.tenant.pk):
        rules = FollowupSettings.objects.get()
    assert (rules.delivery_days, rules.max_attempts) == ([1, 7, 30], 4)


# --- bad input never breaks a page ------------------------------------------------------------------


def test_junk_query_parameters_answer_200_or_400_never_500(shop, web):
    followup = _followup(shop, shop.alices_customer, shop.alice)
    junk = [
        "/followups/?assignee=abc&tab=zzz",
        "/followups/?assignee=99999999999999999999",
        "/followups/calendar/?month=2026-13",
        "/followups/calendar/?month=9999-12",
        "/followups/calendar/?month=0000-01&assignee=nobody",
        "/followups/calendar/?month=%00",
        "/followups/all/?status=nope&reason=?&assignee=x&scheduled_from=2026-02-30&overdue=maybe&page=-1",
        "/followups/all/?customer=abc",
        "/followups/all/?customer=99999999999999999999999",
        "/followups/all/?scheduled_from=2026-05-02&scheduled_to=2026-05-01",
        "/followups/team/?start=x&end=2026-13-01",
        "/followups/plan/",
        "/followups/plan/?customer=abc",
        "/followups/plan/?customer=99999999999999999999999",
        f"/followups/{followup.pk}/?next=javascript:alert(1)",
    ]
    for who in (shop.manager, shop.alice, shop.auditor):
        client = web(who)
        for path in junk:
            status = client.get(path).status_code
            assert status in (200, 400, 403, 404), (who.role, path, status)
    manager = web(shop.manager)
    assert manager.get("/followups/calendar/?month=2026-13").status_code == 200
    assert manager.get("/followups/all/?status=nope").status_code == 400
    for path, data in [
        (
            f"/followups/{followup.pk}/outcome/",
            {"disposition": "callback", "callback_on": "x" * 50, "notes": "x" * 5000},
        ),
        (f"/followups/{followup.pk}/assign/", {"assignee": "abc"}),
        (f"/followups/{followup.pk}/cancel/", {"note": "x" * 5000}),
        ("/followups/team/hand-over/", {"from_member": "x", "to_member": "y"}),
        (f"/followups/plan/?customer={shop.alices_customer.pk}", {"due_from": "2026-99-99", "channel": "fax"}),
        ("/followups/settings/", {"delivery_days": ",,,", "max_attempts": "many"}),
    ]:
        assert manager.post(path, data).status_code == 400, path
    assert _counts(shop) == (0, 0)
    assert _reload(shop, followup).status == Status.OPEN
