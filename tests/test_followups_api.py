"""The follow-up API (回访) as a call-centre system and the staff use it: the queue and its filters
(due=today in queue order, the pool, overdue, incremental pulls), each caller's reach (a consultant's
token sees only their own), pushing outcomes with idempotency keys (retry, unreachable, replay 200,
reused key 409), planning, handing over, cancelling, the manager figures, the rules, and the admin."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from crm.tenancy.context import tenant_context
from crm.tenancy.models import ApiCredential
from crm.tenancy.services import credential_create
from customers.models import Touchpoint
from followups import services
from followups.models import Attempt, Followup, Status
from tests.factories import CustomerFactory, VehicleFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/followups/"


def _plan(key: str, customer: Any, *, assignee: Any, days: int, until: int = 4, priority: int = 5, **extra: Any):
    today = timezone.localdate()
    return Followup.objects.create(
        customer=customer,
        reason=extra.pop("reason", "cadence"),
        source_key=key,
        due_from=today + timedelta(days=min(days, 0)),
        due_until=today + timedelta(days=until),
        scheduled_on=today + timedelta(days=days),
        assignee=assignee,
        priority=priority,
        **extra,
    )


@pytest.fixture
def desk(dealer_b):  # type: ignore[no-untyped-def]
    """Alice (consultant) holds four active follow-ups and a done one; Bob's customer has one in the
    pool and one Bob holds."""
    dealer = dealer_b
    with tenant_context(dealer.tenant.pk):
        # whatever the shared fixture planned is set aside (cancelled long ago), so the counts here are exact
        baseline = set(Followup.objects.values_list("pk", flat=True))
        long_ago = timezone.now() - timedelta(days=3000)
        Followup.objects.filter(pk__in=baseline).update(status=Status.CANCELLED, completed_at=long_ago)
        alices = CustomerFactory(owner=dealer.consultant, name="王一")
        alices2 = CustomerFactory(owner=dealer.consultant, name="王二")
        bobs = CustomerFactory(owner=dealer.consultant2, name="李三")
        rows = {
            "overdue": _plan("t:overdue", alices, assignee=dealer.consultant, days=-6, until=-2, priority=3),
            "key": _plan("t:key", alices2, assignee=dealer.consultant, days=0, priority=1),
            "low": _plan("t:low", alices, assignee=dealer.consultant, days=-1, priority=5, reason="birthday"),
            "future": _plan("t:future", alices2, assignee=dealer.consultant, days=3, until=6, reason="birthday"),
            "pool": _plan("t:pool", bobs, assignee=None, days=0),
            "bobs": _plan("t:bobs", bobs, assignee=dealer.consultant2, days=0, reason="birthday"),
            "done": _plan(
                "t:done",
                alices,
                assignee=dealer.consultant,
                days=-3,
                reason="warranty",
                status=Status.DONE,
                disposition="satisfied",
                completed_at=timezone.now(),
                completed_by=dealer.consultant,
            ),
        }
    return {"dealer": dealer, "customers": (alices, alices2, bobs), "baseline": baseline, **rows}


def _key(dealer, membership, scopes: list[str], kind: str = ApiCredential.Kind.PERSONAL) -> str:  # type: ignore[no-untyped-def]
    with tenant_context(dealer.tenant.pk):
        return credential_create(actor=membership, kind=kind, name=f"test {scopes}", scopes=scopes)[1]


def _ids(response, desk) -> list[int]:  # type: ignore[no-untyped-def]
    """The ids listed, without the shared fixture's own follow-ups."""
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"] if row["id"] not in desk["baseline"]]


def test_the_queue_and_its_filters(desk, api):
    dealer = desk["dealer"]
    manager = api(dealer.manager)
    queue = manager.get(URL, {"due": "today", "assignee": dealer.consultant.pk})
    # overdue first, then by priority (1 before 5); the future one and the done one are not due
    assert _ids(queue, desk) == [desk["overdue"].pk, desk["key"].pk, desk["low"].pk]
    assert _ids(manager.get(URL, {"pool": "true"}), desk) == [desk["pool"].pk]
    assert _ids(manager.get(URL, {"overdue": "true"}), desk) == [desk["overdue"].pk]
    assert _ids(manager.get(URL, {"status": "done"}), desk) == [desk["done"].pk]
    active = _ids(manager.get(URL, {"status": "active", "reason": "birthday"}), desk)
    assert active == [desk["low"].pk, desk["bobs"].pk, desk["future"].pk]  # scheduled_on, priority, id
    today = timezone.localdate()
    window = manager.get(URL, {"scheduled_from": today.isoformat(), "scheduled_to": today.isoformat()})
    assert set(_ids(window, desk)) == {desk["key"].pk, desk["pool"].pk, desk["bobs"].pk}
    customer = desk["customers"][0]
    assert set(_ids(manager.get(URL, {"customer": customer.pk}), desk)) == {
        desk["overdue"].pk,
        desk["low"].pk,
        desk["done"].pk,
    }
    # the item's shape; the manager does not own the customer, so the mobile is masked
    row = next(r for r in manager.get(URL, {"customer": customer.pk}).json()["results"] if r["id"] == desk["low"].pk)
    assert row["customer"]["id"] == customer.pk and row["customer"]["name"] == "王一"
    assert "****" in row["customer"]["mobile"] and row["customer"]["mobile"][-4:] == customer.mobile[-4:]
    assert row["assignee"] == {"id": dealer.consultant.pk, "name": "王爱丽"}
    assert row["vehicle"] is None and row["ticket"] is None and row["status"] == "open"
    assert set(row) >= {"due_from", "due_until", "scheduled_on", "priority", "attempts", "updated_at", "created_on"}
    page = manager.get(URL, {"page_size": 2}).json()
    assert page["count"] == 7 + len(desk["baseline"]) and len(page["results"]) == 2 and page["next"]
    for junk in ({"status": "nonsense"}, {"due": "tomorrow"}, {"updated_since": "yesterday"}, {"assignee": "x"}):
        bad = manager.get(URL, junk)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error", junk


def test_an_incremental_pull_sees_only_what_changed(desk, api):
    dealer = desk["dealer"]
    key = _key(dealer, dealer.admin, ["followups:read", "followups:write"], kind=ApiCredential.Kind.INTEGRATION)
    centre = api(key=key)
    since = timezone.now()
    pushed = centre.post(
        f"{URL}{desk['key'].pk}/outcomes/", {"disposition": "satisfied", "idempotency_key": "cc-call-000001"}
    )
    assert pushed.status_code == 201, pushed.json()
    changed = centre.get(URL, {"updated_since": since.isoformat(), "ordering": "updated_at"})
    assert _ids(changed, desk) == [desk["key"].pk]
    # an integration receives full numbers, and each read is audited like the customer API's
    assert changed.json()["results"][0]["customer"]["mobile"].startswith("+86")
    with tenant_context(dealer.tenant.pk):
        from crm.tenancy.models import AuditEvent

        assert AuditEvent.objects.filter(action="customers_read_unmasked").exists()


def test_a_consultants_token_sees_only_their_own_follow_ups(desk, api):
    dealer = desk["dealer"]
    alice = api(key=_key(dealer, dealer.consultant, ["followups:read"]))
    mine = set(_ids(alice.get(URL), desk))
    assert mine == {desk[n].pk for n in ("overdue", "key", "low", "future", "done")}
    assert alice.get(f"{URL}{desk['bobs'].pk}/").status_code == 404
    assert alice.get(f"{URL}{desk['pool'].pk}/").status_code == 404
    assert _ids(alice.get(URL, {"pool": "true"}), desk) == []
    # her own customer's number in full
    detail = alice.get(f"{URL}{desk['low'].pk}/").json()
    assert detail["customer"]["mobile"] == desk["customers"][0].mobile and detail["attempt_log"] == []
    # the read-only token cannot push; the summary is for those who see everything
    refused = alice.post(f"{URL}{desk['low'].pk}/outcomes/", {"disposition": "satisfied", "idempotency_key": "x" * 8})
    assert refused.status_code == 403 and "followups:write" in refused.json()["error"]["message"]
    assert alice.get(f"{URL}summary/", {"start": "2026-01-01", "end": "2026-01-31"}).status_code == 403
    # a key without the followups scope reaches nothing here
    other = api(key=_key(dealer, dealer.consultant, ["customers:read"]))
    assert other.get(URL).status_code == 403
    # the tenant admin's role neither works nor sees follow-ups
    assert api(dealer.admin).get(URL).status_code == 403
    assert api(dealer.auditor).get(URL).status_code == 200


def test_pushing_outcomes_retries_then_gives_up_and_replays_change_nothing(desk, api):
    dealer, followup = desk["dealer"], desk["key"]
    key = _key(dealer, dealer.admin, ["followups:read", "followups:write"], kind=ApiCredential.Kind.INTEGRATION)
    centre = api(key=key)
    url = f"{URL}{followup.pk}/outcomes/"
    with tenant_context(dealer.tenant.pk):
        touchpoints_before = Touchpoint.objects.filter(customer=followup.customer_id).count()
    first = centre.post(url, {"disposition": "no_answer", "notes": "关机", "idempotency_key": "cc-000001"})
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["attempt"]["disposition"] == "no_answer" and body["attempt"]["notes"] == "关机"
    assert body["followup"]["status"] == "no_answer" and body["followup"]["attempts"] == 1
    assert body["followup"]["scheduled_on"] == (timezone.localdate() + timedelta(days=1)).isoformat()
    with tenant_context(dealer.tenant.pk):
        assert Attempt.objects.filter(followup=followup).count() == 1
        assert Touchpoint.objects.filter(customer=followup.customer_id).count() == touchpoints_before + 1
        touchpoint = Touchpoint.objects.get(pk=body["attempt"]["touchpoint"])
        assert touchpoint.outcome == "no_answer" and touchpoint.channel == "call"
    # a retry of the same push: 200, the same attempt, nothing recorded again
    again = centre.post(url, {"disposition": "no_answer", "notes": "关机", "idempotency_key": "cc-000001"})
    assert again.status_code == 200 and again.json()["attempt"] == body["attempt"]
    # the same key for another outcome
    reused = centre.post(url, {"disposition": "satisfied", "idempotency_key": "cc-000001"})
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "key_reused"
    with tenant_context(dealer.tenant.pk):
        assert Attempt.objects.filter(followup=followup).count() == 1
        assert Touchpoint.objects.filter(customer=followup.customer_id).count() == touchpoints_before + 1
    # the header works too; after max_attempts (3) it is unreachable
    second = centre.post(url, {"disposition": "no_answer"}, HTTP_IDEMPOTENCY_KEY="cc-000002")
    assert second.status_code == 201 and second.json()["followup"]["status"] == "no_answer"
    third = centre.post(url, {"disposition": "no_answer", "idempotency_key": "cc-000003"})
    assert third.status_code == 201
    assert third.json()["followup"]["status"] == "unreachable" and third.json()["followup"]["attempts"] == 3
    assert third.json()["followup"]["completed_at"]
    closed = centre.post(url, {"disposition": "satisfied", "idempotency_key": "cc-000004"})
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "not_open"
    detail = centre.get(f"{URL}{followup.pk}/").json()
    assert [a["idempotency_key"] for a in detail["attempt_log"]] == ["cc-000001", "cc-000002", "cc-000003"]
    keyless = centre.post(f"{URL}{desk['low'].pk}/outcomes/", {"disposition": "satisfied"})
    assert keyless.status_code == 400 and "idempotency_key" in keyless.json()["error"]["fields"]
    malformed = centre.post(f"{URL}{desk['low'].pk}/outcomes/", {"disposition": "satisfied", "idempotency_key": "a b"})
    assert malformed.status_code == 400 and "idempotency_key" in malformed.json()["error"]["fields"]


def test_a_call_back_needs_a_good_day(desk, api):
    dealer = desk["dealer"]
    alice = api(dealer.consultant)
    url = f"{URL}{desk['low'].pk}/outcomes/"
    base = {"disposition": "callback", "idempotency_key": "alice-cb-0001"}
    for bad in ("2026-13-01", "soon", (timezone.localdate() - timedelta(days=1)).isoformat(), None):
        response = alice.post(url, base | {"callback_on": bad}, format="json")
        assert response.status_code == 400, (bad, response.json())
        assert list(response.json()["error"]["fields"]) == ["callback_on"], bad
    for bad_body in ({"disposition": "shouted"}, {"disposition": "feedback", "idempotency_key": "alice-fb-0001"}):
        response = alice.post(url, bad_body, format="json")
        assert response.status_code == 400 and response.json()["error"]["fields"], bad_body
    later = (timezone.localdate() + timedelta(days=10)).isoformat()
    ok = alice.post(url, base | {"callback_on": later, "notes": "下周再打"}, format="json")
    assert ok.status_code == 201
    assert ok.json()["followup"]["status"] == "open" and ok.json()["followup"]["scheduled_on"] == later
    # someone else's follow-up does not exist for Alice
    hidden = alice.post(f"{URL}{desk['bobs'].pk}/outcomes/", base | {"idempotency_key": "alice-cb-0002"})
    assert hidden.status_code == 404


def test_planning_handing_over_and_cancelling(desk, api):
    dealer = desk["dealer"]
    alices, _alices2, bobs = desk["customers"]
    with tenant_context(dealer.tenant.pk):
        car = VehicleFactory(customer=alices)
        other_car = VehicleFactory(customer=bobs)
    alice = api(dealer.consultant)
    today = timezone.localdate()
    body = {"customer": alices.pk, "vehicle": car.pk, "due_from": today.isoformat(), "note": "问问新车感受"}
    planned = alice.post(URL, body, format="json")
    assert planned.status_code == 201, planned.json()
    made = planned.json()
    assert made["assignee"]["id"] == dealer.consultant.pk and made["reason"] == "manual"
    assert made["vehicle"]["id"] == car.pk and made["due_until"] == (today + timedelta(days=4)).isoformat()
    twice = alice.post(URL, body, format="json")
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "duplicate"
    assert alice.post(URL, body | {"customer": bobs.pk}, format="json").json()["error"]["fields"] == {
        "customer": ["No such customer."]
    }
    wrong_car = alice.post(URL, body | {"reason": "service", "vehicle": other_car.pk}, format="json")
    assert wrong_car.status_code == 400 and "vehicle" in wrong_car.json()["error"]["fields"]
    junk = alice.post(URL, {"customer": "x", "due_from": "2026-02-30", "channel": "fax"}, format="json")
    assert junk.status_code == 400 and set(junk.json()["error"]["fields"]) == {"customer", "due_from", "channel"}
    far = alice.post(URL, body | {"reason": "service", "due_from": "2999-01-01"}, format="json")
    assert far.status_code == 400 and "due_from" in far.json()["error"]["fields"]
    # handing over: not for a consultant; a manager gives the pool's to the agent, then back
    pool = desk["pool"].pk
    assert alice.post(f"{URL}{made['id']}/assign/", {"assignee": None}, format="json").status_code == 403
    manager = api(dealer.manager)
    given = manager.post(f"{URL}{pool}/assign/", {"assignee": dealer.agent.pk}, format="json")
    assert given.status_code == 200 and given.json()["assignee"]["id"] == dealer.agent.pk
    back = manager.post(f"{URL}{pool}/assign/", {"assignee": None}, format="json")
    assert back.status_code == 200 and back.json()["assignee"] is None
    auditor = manager.post(f"{URL}{pool}/assign/", {"assignee": dealer.auditor.pk}, format="json")
    assert auditor.status_code == 400 and "assignee" in auditor.json()["error"]["fields"]
    assert manager.post(f"{URL}{pool}/assign/", {}, format="json").status_code == 400
    # cancelling is for managers, with a reason
    assert alice.post(f"{URL}{made['id']}/cancel/", {"note": "不用了"}, format="json").status_code == 403
    no_note = manager.post(f"{URL}{made['id']}/cancel/", {}, format="json")
    assert no_note.status_code == 400 and "note" in no_note.json()["error"]["fields"]
    cancelled = manager.post(f"{URL}{made['id']}/cancel/", {"note": "客户已到店"}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = manager.post(f"{URL}{made['id']}/cancel/", {"note": "再来"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_open"


def test_the_summary_matches_the_data(desk, api):
    dealer = desk["dealer"]
    today = timezone.localdate().isoformat()
    manager = api(dealer.manager)
    response = manager.get(f"{URL}summary/", {"start": today, "end": today})
    assert response.status_code == 200, response.json()
    figures = response.json()
    assert figures["start"] == today and figures["on"] == today
    totals = figures["totals"]
    # due today: key, low, pool, bobs (overdue's window is over); upcoming: future; done: done
    assert (totals["due_today"], totals["overdue"], totals["upcoming"], totals["done"]) == (4, 1, 1, 1)
    people = {(p["member"] or {}).get("id"): p for p in figures["people"]}
    alice = people[dealer.consultant.pk]
    assert (alice["due_today"], alice["overdue"], alice["upcoming"], alice["done"]) == (2, 1, 1, 1)
    assert alice["completion_rate"] == 100.0 and alice["member"]["name"] == "王爱丽"
    assert people[None]["due_today"] == 1 and people[dealer.consultant2.pk]["due_today"] == 1
    reasons = {row["reason"]: row for row in figures["by_reason"]}
    assert reasons["birthday"]["active"] == 3 and reasons["warranty"]["done"] == 1
    assert api(dealer.auditor).get(f"{URL}summary/", {"start": today, "end": today}).status_code == 200
    backwards = manager.get(f"{URL}summary/", {"start": "2026-02-01", "end": "2026-01-01"})
    assert backwards.status_code == 400 and "end" in backwards.json()["error"]["fields"]
    assert manager.get(f"{URL}summary/").status_code == 400


def test_the_rules_read_by_workers_and_changed_by_managers(desk, api):
    dealer = desk["dealer"]
    alice = api(dealer.consultant)
    rules = alice.get(f"{URL}settings/")
    assert rules.status_code == 200 and rules.json()["max_attempts"] == 3
    assert rules.json()["delivery_days"] == [1, 7, 30]
    assert alice.patch(f"{URL}settings/", {"max_attempts": 2}, format="json").status_code == 403
    manager = api(dealer.manager)
    bad = manager.patch(
        f"{URL}settings/",
        {"max_attempts": 0, "daily_cap": "many", "delivery_days": [0, 7], "delivery_channel": "fax"},
        format="json",
    )
    assert bad.status_code == 400
    fields = bad.json()["error"]["fields"]
    assert {"max_attempts", "daily_cap", "delivery_channel"} <= set(fields)
    assert any(name.startswith("delivery_days") for name in fields)
    unknown = manager.patch(f"{URL}settings/", {"max_attempts": 2, "colour": "red"}, format="json")
    assert unknown.status_code == 400 and list(unknown.json()["error"]["fields"]) == ["colour"]
    assert manager.patch(f"{URL}settings/", ["max_attempts"], format="json").status_code == 400
    saved = manager.patch(f"{URL}settings/", {"max_attempts": 2, "delivery_days": [30, 1, 1]}, format="json")
    assert saved.status_code == 200, saved.json()
    assert saved.json()["max_attempts"] == 2 and saved.json()["delivery_days"] == [1, 30]
    with tenant_context(dealer.tenant.pk):
        assert services.followup_settings().max_attempts == 2


def test_the_admin_shows_follow_ups_and_keeps_attempts_read_only(desk, client):
    dealer = desk["dealer"]
    user = dealer.manager.user
    user.is_staff = user.is_superuser = True
    user.save()
    client.force_login(user)
    from crm.tenancy.middleware import SESSION_TENANT_KEY

    session = client.session
    session[SESSION_TENANT_KEY] = dealer.tenant.pk
    session.save()
    listing = client.get("/admin/followups/followup/", {"q": "王二"})
    assert listing.status_code == 200 and "王二" in listing.content.decode()
    assert client.get(f"/admin/followups/followup/{desk['key'].pk}/change/").status_code == 200
    assert client.get("/admin/followups/followup/add/").status_code == 403
    assert client.get("/admin/followups/followupsettings/").status_code == 200
    assert client.get("/admin/followups/attempt/add/").status_code == 403
    moved = client.post(
        f"/admin/followups/followup/{desk['key'].pk}/change/",
        {
            "note": "改期",
            "due_from": desk["key"].due_from.isoformat(),
            "due_until": desk["key"].due_until.isoformat(),
            "scheduled_on": desk["key"].scheduled_on.isoformat(),
            "assignee": dealer.auditor.pk,
            "channel": "call",
            "priority": 1,
        },
    )
    assert moved.status_code == 200  # the form again, with the error on the assignee
    with tenant_context(dealer.tenant.pk):
        assert Followup.objects.get(pk=desk["key"].pk).assignee_id == dealer.consultant.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("disposition", ["no_answer", "satisfied"])
def test_one_key_pushed_by_many_at_once_is_recorded_once(disposition):
    """A call-centre system retrying a push while the first is still running: every thread gets the
    one attempt back, whether the first left the follow-up open (no answer) or finished it."""
    import threading

    from django.db import connections

    from crm.core.errors import ApplicationError
    from crm.tenancy.models import Tenant
    from crm.tenancy.roles import Role
    from tests.factories import MembershipFactory

    threads_n = 12
    tenant = Tenant.objects.create(name="并发回访店", code="race-followups")
    with tenant_context(tenant.pk):
        agent = MembershipFactory(role=Role.CR_AGENT)
        followup = _plan("race:1", CustomerFactory(), assignee=agent, days=0)
    barrier = threading.Barrier(threads_n)
    outcomes: list[Any] = [None] * threads_n

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            with tenant_context(tenant.pk):
                attempt, created = services.followup_log_outcome(
                    actor=agent, followup=followup, disposition=disposition, idempotency_key="race-key-0001"
                )
                outcomes[i] = (attempt.pk, created)
        except ApplicationError as error:
            outcomes[i] = error.code
        except Exception as error:  # noqa: BLE001 - reported by the assertion
            outcomes[i] = repr(error)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    with tenant_context(tenant.pk):
        attempts = list(Attempt.objects.filter(followup=followup))
        touchpoints = Touchpoint.objects.filter(customer=followup.customer_id).count()
    assert len(attempts) == 1 and touchpoints == 1
    assert Counter(map(str, outcomes)) == {str((attempts[0].pk, True)): 1, str((attempts[0].pk, False)): threads_n - 1}


def test_reading_the_rules_writes_nothing(api, db):
    """A dealership that never saved its rules reads the defaults; nothing is stored until a change."""
    from crm.tenancy.models import Tenant
    from crm.tenancy.roles import Role
    from followups.models import FollowupSettings
    from tests.factories import MembershipFactory

    tenant = Tenant.objects.create(name="新店", code="fresh-rules")
    with tenant_context(tenant.pk):
        manager = MembershipFactory(role=Role.MANAGER)
    client = api(manager)
    read = client.get(f"{URL}settings/")
    assert read.status_code == 200 and read.json()["window_days"] == 5
    with tenant_context(tenant.pk):
        assert not FollowupSettings.objects.exists()
    assert client.patch(f"{URL}settings/", {"window_days": 7}, format="json").json()["window_days"] == 7
    with tenant_context(tenant.pk):
        assert FollowupSettings.objects.get().window_days == 7
