"""The sales API as a lead portal, the brand's lead distribution and the staff use it: capture that
is idempotent (by external id and by Idempotency-Key), bulk intake with per-row results, the lead
list's filters, stage changes, each caller's reach (a consultant gets a 404 on a colleague's lead
and nothing changes), scopes, bad input of every JSON type (always a 400 with field errors, never a
500), and the funnel's numbers against direct counts."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Q
from django.utils import timezone

from crm.core.period import Period
from crm.tenancy.context import tenant_context
from crm.tenancy.models import ApiCredential
from crm.tenancy.services import credential_create
from sales import selectors, services
from sales.models import OPEN_STAGES, DemoVehicle, Lead, LeadEvent, Stage

pytestmark = pytest.mark.django_db

URL = "/api/v1/sales/leads/"


def _key(dealer: Any, scopes: list[str], kind: str = ApiCredential.Kind.INTEGRATION, member: Any = None) -> str:
    with tenant_context(dealer.tenant.pk):
        return credential_create(actor=member or dealer.admin, kind=kind, name=f"test {scopes}", scopes=scopes)[1]


@pytest.fixture
def portal(dealer_b, api):  # type: ignore[no-untyped-def]
    """A lead portal's integration key with the sales scopes."""
    return api(key=_key(dealer_b, ["sales:read", "sales:write"]))


def _lead(number: int, **extra: Any) -> dict[str, Any]:
    return {"name": "陈先生", "mobile": f"1370000{number:04d}", "source": "online", "series": "Model 3", **extra}


def _count(dealer: Any, **filters: Any) -> int:
    with tenant_context(dealer.tenant.pk):
        return Lead.objects.filter(**filters).count()


def _events(dealer: Any, lead_id: int) -> int:
    with tenant_context(dealer.tenant.pk):
        return LeadEvent.objects.filter(lead_id=lead_id).count()


def test_the_same_lead_posted_twice_by_external_id_is_one_lead(dealer_b, portal):
    body = _lead(1, source="brand", source_system="brand-dcc", external_id="DCC-0001")
    first = portal.post(URL, body, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["created"] is True and first.json()["notice"] == ""
    lead = first.json()["lead"]
    assert lead["mobile"] == "+8613700000001"  # an integration gets full numbers (and the read is audited)
    assert lead["source"] == "brand" and lead["external_id"] == "DCC-0001" and lead["stage"] == "new"
    events = _events(dealer_b, lead["id"])
    again = portal.post(URL, body, format="json")
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["lead"]["id"] == lead["id"]
    assert _count(dealer_b, external_id="DCC-0001") == 1
    assert _events(dealer_b, lead["id"]) == events  # the replay recorded nothing


def test_the_same_lead_posted_twice_with_an_idempotency_key_is_one_lead(dealer_b, portal):
    headers = {"HTTP_IDEMPOTENCY_KEY": "portal-req-000042"}
    first = portal.post(URL, _lead(2), format="json", **headers)
    assert first.status_code == 201, first.json()
    lead_id = first.json()["lead"]["id"]
    events = _events(dealer_b, lead_id)
    again = portal.post(URL, _lead(2), format="json", **headers)
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["lead"]["id"] == lead_id
    assert _count(dealer_b, mobile="+8613700000002") == 1 and _events(dealer_b, lead_id) == events
    # the key is the lead's external id, namespaced by the caller
    assert first.json()["lead"]["source_system"] == "idempotency-key"
    assert first.json()["lead"]["external_id"].endswith(":portal-req-000042")
    # a keyed enquiry that joined the person's open lead is not recorded again on a retry
    joined = portal.post(URL, _lead(2, source="online"), format="json", HTTP_IDEMPOTENCY_KEY="portal-req-000043")
    assert joined.status_code == 200 and joined.json()["lead"]["id"] == lead_id
    events = _events(dealer_b, lead_id)
    retry = portal.post(URL, _lead(2, source="online"), format="json", HTTP_IDEMPOTENCY_KEY="portal-req-000043")
    assert retry.status_code == 200 and retry.json()["lead"]["id"] == lead_id
    assert _events(dealer_b, lead_id) == events
    bad = portal.post(URL, _lead(3), format="json", HTTP_IDEMPOTENCY_KEY="short")
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["error"]["fields"]
    assert _count(dealer_b, mobile="+8613700000003") == 0


def test_a_consultant_posting_a_colleagues_person_gets_the_notice_not_the_lead(dealer_b, api):
    with tenant_context(dealer_b.tenant.pk):
        bobs = services.lead_capture(actor=dealer_b.consultant2, data=_lead(4, source="phone")).lead
    alice = api(dealer_b.consultant)
    response = alice.post(URL, _lead(4, source="walk_in"), format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["created"] is False and response.json()["lead"] is None
    assert response.json()["notice"]
    with tenant_context(dealer_b.tenant.pk):
        assert Lead.objects.get(pk=bobs.pk).owner == dealer_b.consultant2


def test_bulk_intake_reports_each_row(dealer_b, portal):
    with tenant_context(dealer_b.tenant.pk):
        services.lead_capture(actor=dealer_b.manager, data=_lead(10, source_system="autohome", external_id="AH-10"))
    rows = [
        _lead(11, source_system="autohome", external_id="AH-11"),
        _lead(10, source_system="autohome", external_id="AH-10"),  # captured before
        _lead(12, mobile="12345"),  # not a mobile
        "not an object",
        _lead(13, budget="lots"),  # not an amount
        _lead(14, source="referral"),  # a referral needs its referrer (the service says so)
    ]
    response = portal.post(f"{URL}bulk/", {"leads": rows}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["created"], body["existing"], body["errors"]) == (1, 1, 4)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(6))
    assert [r["status"] for r in results] == ["created", "existing", "error", "error", "error", "error"]
    assert results[0]["id"] and results[1]["id"] and results[2]["id"] is None
    assert "mobile" in results[2]["errors"] and "non_field_errors" in results[3]["errors"]
    assert "budget" in results[4]["errors"] and "referrer" in results[5]["errors"]
    assert _count(dealer_b, mobile__in=["+8613700000012", "+8613700000013", "+8613700000014"]) == 0
    # the same batch again with an Idempotency-Key: rows without an external id are keyed by key and index
    keyed = [_lead(15), _lead(16)]
    first = portal.post(f"{URL}bulk/", {"leads": keyed}, format="json", HTTP_IDEMPOTENCY_KEY="batch-0000001")
    again = portal.post(f"{URL}bulk/", {"leads": keyed}, format="json", HTTP_IDEMPOTENCY_KEY="batch-0000001")
    assert [r["status"] for r in first.json()["results"]] == ["created", "created"]
    assert [r["status"] for r in again.json()["results"]] == ["existing", "existing"]
    assert [r["id"] for r in first.json()["results"]] == [r["id"] for r in again.json()["results"]]
    too_many = portal.post(f"{URL}bulk/", {"leads": [_lead(1)] * 1001}, format="json")
    assert too_many.status_code == 413 and too_many.json()["error"]["code"] == "too_many_leads"
    for junk in ({"leads": []}, {"leads": "x"}, {"rows": []}, [], {"leads": [_lead(17)], "extra": 1}):
        bad = portal.post(f"{URL}bulk/", junk, format="json")
        assert bad.status_code == 400 and bad.json()["error"]["fields"], junk


def test_bulk_intake_speed(dealer_b, portal):
    """The issue asks for ≥ 300 leads/s in bulk; the figure is printed (run with -s to see it). 200 rows
    keep the test short; benchmarks/ is where the figure is measured at scale."""
    rows = [
        {**_lead(0), "mobile": f"1360{n:07d}", "source_system": "brand-dcc", "external_id": f"DCC-{n}"}
        for n in range(200)
    ]
    started = time.perf_counter()
    response = portal.post(f"{URL}bulk/", {"leads": rows}, format="json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200 and response.json()["created"] == 200, response.json()["results"][:3]
    print(f"\nbulk intake: 200 leads in {elapsed:.2f} s = {200 / elapsed:.0f} leads/s")


def test_the_list_and_its_filters(dealer_b, api):
    with tenant_context(dealer_b.tenant.pk):
        hot = services.lead_capture(actor=dealer_b.consultant, data=_lead(20, level="H", series="Model Y")).lead
        walk = services.lead_capture(actor=dealer_b.consultant2, data=_lead(21, source="walk_in")).lead
        pool = services.lead_capture(actor=dealer_b.manager, data={**_lead(22), "name": "池塘"}).lead
        services.lead_assign(actor=dealer_b.manager, lead=pool, to=None)
    manager = api(dealer_b.manager)

    def ids(**query: Any) -> list[int]:
        response = manager.get(URL, query)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert hot.pk in ids(level="H") and walk.pk not in ids(level="H")
    assert ids(source="walk_in", owner=dealer_b.consultant2.pk) == [walk.pk]
    assert pool.pk in ids(pool="true") and hot.pk not in ids(pool="true") and pool.pk not in ids(pool="false")
    assert walk.pk in ids(reached="visited") and hot.pk not in ids(reached="visited")
    assert ids(q="池塘") == [pool.pk] and ids(q="13700000020") == [hot.pk]
    assert hot.pk in ids(stage="open") and hot.pk not in ids(stage="closed") and walk.pk in ids(stage="visited")
    assert hot.pk in ids(series="Model Y") and walk.pk not in ids(series="Model Y")
    today = timezone.localdate().isoformat()
    assert {hot.pk, walk.pk, pool.pk} <= set(ids(created_from=today, created_to=today))
    assert ids(created_to="2001-01-01") == []
    assert ids(customer=hot.customer_id) == [hot.pk]
    assert ids(owner=999_999_999) == [] and ids(customer=10**30) == []
    newest = ids(ordering="-created")
    assert newest.index(pool.pk) < newest.index(hot.pk)
    assert ids(ordering="updated_at")[-1] == pool.pk
    since = ids(updated_since=(timezone.now() - timedelta(minutes=5)).isoformat())
    assert {hot.pk, walk.pk, pool.pk} <= set(since)
    # masked for the manager (not the lead's consultant), in full for the owner
    row = next(r for r in manager.get(URL, {"q": "13700000020"}).json()["results"])
    assert row["mobile"] == "137****0020" and row["owner"]["id"] == dealer_b.consultant.pk
    own = api(dealer_b.consultant).get(URL, {"q": "13700000020"}).json()["results"][0]
    assert own["mobile"] == "+8613700000020"
    # a consultant sees their own and the pool, not a colleague's
    alice_ids = [r["id"] for r in api(dealer_b.consultant).get(URL, {"page_size": 500}).json()["results"]]
    assert hot.pk in alice_ids and pool.pk in alice_ids and walk.pk not in alice_ids
    for junk in (
        {"stage": "nonsense"},
        {"level": "Z"},
        {"created_from": "yesterday"},
        {"updated_since": "2024-13-45"},
        {"owner": "x"},
        {"ordering": "name"},
        {"page_size": "0"},
        {"reached": "defeated"},
    ):
        bad = manager.get(URL, junk)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error", junk


def test_a_lead_moves_through_its_stages_over_the_api(dealer_b, api):
    alice = api(dealer_b.consultant)
    created = alice.post(URL, _lead(30, source="online"), format="json")
    assert created.status_code == 201, created.json()
    lead_id = created.json()["lead"]["id"]
    assert created.json()["lead"]["owner"]["id"] == dealer_b.consultant.pk  # her own capture is hers
    contact = alice.post(f"{URL}{lead_id}/contact/", {"disposition": "feedback", "notes": "wants red"}, format="json")
    assert contact.status_code == 200, contact.json()
    assert contact.json()["stage"] == "contacted" and contact.json()["first_contact_at"]
    when = (timezone.now() + timedelta(days=2)).isoformat()
    invited = alice.post(f"{URL}{lead_id}/invite/", {"appointment_at": when}, format="json")
    assert invited.status_code == 200 and invited.json()["stage"] == "invited"
    patched = alice.patch(f"{URL}{lead_id}/", {"level": "H", "budget": "250000.00"}, format="json")
    assert patched.status_code == 200 and patched.json()["level"] == "H" and patched.json()["budget"] == "250000.00"
    with tenant_context(dealer_b.tenant.pk):
        car = DemoVehicle.objects.create(brand="Tesla", series="Model 3")
    start = timezone.now() + timedelta(hours=1)
    booking = {
        "vehicle": car.pk,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(minutes=30)).isoformat(),
    }
    booked = alice.post(f"{URL}{lead_id}/test-drives/", booking, format="json")
    assert booked.status_code == 201, booked.json()
    clash = alice.post(f"{URL}{lead_id}/test-drives/", booking, format="json")
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "booked"
    recorded = alice.post(
        f"/api/v1/sales/test-drives/{booked.json()['id']}/record/",
        {
            "status": "done",
            "licence_number": "440301199001011234",
            "licence_expiry": "2099-01-01",
            "licence_consent": True,
            "rating": 4,
        },
        format="json",
    )
    assert recorded.status_code == 200, recorded.json()
    assert recorded.json()["status"] == "done" and recorded.json()["licence_recorded"] is True
    quote = alice.post(
        f"{URL}{lead_id}/quotes/", {"brand": "Tesla", "series": "Model 3", "list_price": "231900"}, format="json"
    )
    assert quote.status_code == 201 and quote.json()["total"] == "231900.00" and quote.json()["version"] == 1
    ordered = alice.post(f"{URL}{lead_id}/order/", {"quote": quote.json()["id"], "deposit": "5000"}, format="json")
    assert ordered.status_code == 200 and ordered.json()["stage"] == "ordered"
    detail = alice.get(f"{URL}{lead_id}/").json()
    kinds = [e["kind"] for e in detail["history"]]
    assert kinds[0] == "created" and {"contact", "stage", "test_drive", "quote", "order"} <= set(kinds)
    assert [q["version"] for q in detail["quotes"]] == [1] and detail["test_drives"][0]["status"] == "done"
    with tenant_context(dealer_b.tenant.pk):
        assert Lead.objects.get(pk=lead_id).stage == Stage.ORDERED


def test_a_defeat_is_reported_approved_and_reopened(dealer_b, api):
    with tenant_context(dealer_b.tenant.pk):
        lead = services.lead_capture(actor=dealer_b.consultant, data=_lead(31, source="phone")).lead
    alice, manager = api(dealer_b.consultant), api(dealer_b.manager)
    missing = alice.post(f"{URL}{lead.pk}/defeat/", {"reason": "competitor"}, format="json")
    assert missing.status_code == 400 and "competitor_brand" in missing.json()["error"]["fields"]
    unknown = alice.post(f"{URL}{lead.pk}/defeat/", {"reason": "no-such-reason"}, format="json")
    assert unknown.status_code == 400 and "reason" in unknown.json()["error"]["fields"]
    reported = alice.post(f"{URL}{lead.pk}/defeat/", {"reason": "price"}, format="json")
    assert reported.status_code == 200 and reported.json()["defeat_status"] == "pending"
    assert reported.json()["stage"] == "contacted"
    refused = alice.post(f"{URL}{lead.pk}/defeat-decision/", {"approve": True}, format="json")
    assert refused.status_code == 403
    approved = manager.post(f"{URL}{lead.pk}/defeat-decision/", {"approve": True}, format="json")
    assert approved.status_code == 200 and approved.json()["stage"] == "defeated"
    assert approved.json()["defeat_reason"]["code"] == "price"
    again = manager.post(f"{URL}{lead.pk}/defeat-decision/", {"approve": True}, format="json")
    assert again.status_code == 409
    reopened = manager.post(f"{URL}{lead.pk}/reopen/", {"note": "called back"}, format="json")
    assert reopened.status_code == 200 and reopened.json()["stage"] == "contacted"


def test_a_consultant_cannot_read_or_move_a_colleagues_lead(dealer_b, api):
    with tenant_context(dealer_b.tenant.pk):
        bobs = services.lead_capture(actor=dealer_b.consultant2, data=_lead(40, source="phone")).lead
        before = (Lead.objects.get(pk=bobs.pk).stage, LeadEvent.objects.filter(lead=bobs).count())
    alice = api(dealer_b.consultant)
    assert alice.get(f"{URL}{bobs.pk}/").status_code == 404
    assert alice.patch(f"{URL}{bobs.pk}/", {"level": "H"}, format="json").status_code == 404
    for step, body in (
        ("contact", {"disposition": "feedback"}),
        ("invite", {"appointment_at": (timezone.now() + timedelta(days=1)).isoformat()}),
        ("assign", {"to": dealer_b.consultant.pk}),
        ("defeat", {"reason": "price"}),
        ("quotes", {"brand": "Tesla", "series": "Model 3", "list_price": "1"}),
    ):
        response = alice.post(f"{URL}{bobs.pk}/{step}/", body, format="json")
        assert response.status_code == 404, (step, response.json())
        assert response.json()["error"]["code"] == "not_found"
    with tenant_context(dealer_b.tenant.pk):
        lead = Lead.objects.get(pk=bobs.pk)
        assert (lead.stage, LeadEvent.objects.filter(lead=bobs).count()) == before
        assert lead.owner == dealer_b.consultant2 and lead.level != "H"


def test_keys_need_the_sales_scopes_and_roles_need_sales(dealer_b, api):
    reader = api(key=_key(dealer_b, ["sales:read"]))
    assert reader.get(URL).status_code == 200
    refused = reader.post(URL, _lead(50), format="json")
    assert refused.status_code == 403 and "sales:write" in refused.json()["error"]["message"]
    assert _count(dealer_b, mobile="+8613700000050") == 0
    other_area = api(key=_key(dealer_b, ["customers:read", "customers:write"]))
    assert other_area.get(URL).status_code == 403
    assert other_area.get("/api/v1/sales/funnel/", {"start": "2026-01-01", "end": "2026-01-31"}).status_code == 403
    # a service advisor's role has nothing to do with sales
    assert api(dealer_b.advisor).get(URL).status_code == 403
    # the funnel is for those who see every lead
    assert (
        api(dealer_b.consultant).get("/api/v1/sales/funnel/", {"start": "2026-01-01", "end": "2026-01-31"}).status_code
        == 403
    )
    assert api().get(URL).status_code in (401, 403)


BAD_CAPTURES = [
    ({"mobile": "13700000060", "source": "online"}, "name"),
    ({**_lead(60), "mobile": ["13700000060"]}, "mobile"),
    ({**_lead(60), "mobile": None}, "mobile"),
    ({**_lead(60), "mobile": "hello"}, "mobile"),
    ({**_lead(60), "source": "fax"}, "source"),
    ({**_lead(60), "source": None}, "source"),
    ({**_lead(60), "budget": "lots"}, "budget"),
    ({**_lead(60), "budget": 10**40}, "budget"),
    ({**_lead(60), "budget": -5}, "budget"),
    ({**_lead(60), "budget": [1]}, "budget"),
    ({**_lead(60), "budget": True}, "budget"),
    ({**_lead(60), "level": "Z"}, "level"),
    ({**_lead(60), "level": 1}, "level"),
    ({**_lead(60), "timeframe": {"a": 1}}, "timeframe"),
    ({**_lead(60), "owner": "me"}, "owner"),
    ({**_lead(60), "owner": 10**30}, "owner"),
    ({**_lead(60), "owner": 999_999_999}, "owner"),
    ({**_lead(60), "owner": 1.5}, "owner"),
    ({**_lead(60), "referrer": -1}, "referrer"),
    ({**_lead(60), "appointment_at": "tomorrow"}, "appointment_at"),
    ({**_lead(60), "appointment_at": "2001-01-01T10:00:00+08:00"}, "appointment_at"),
    ({**_lead(60), "appointment_at": "9999-12-31T23:59:59-23:00"}, "appointment_at"),
    ({**_lead(60), "external_id": "X-1"}, "source_system"),
    ({**_lead(60), "external_id": "x" * 65, "source_system": "a"}, "external_id"),
    ({**_lead(60), "name": "x" * 101}, "name"),
    ({**_lead(60), "name": "\x00"}, "name"),
    ({**_lead(60), "unknown": 1}, "unknown"),
    ({**_lead(60), "stage": "ordered"}, "stage"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CAPTURES)
def test_bad_capture_input_is_a_400_on_its_field(dealer_b, portal, body, field):
    response = portal.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert _count(dealer_b, mobile="+8613700000060") == 0


def test_bad_input_elsewhere_is_a_400_never_a_500(dealer_b, api):
    with tenant_context(dealer_b.tenant.pk):
        lead = services.lead_capture(actor=dealer_b.consultant, data=_lead(61, source="phone")).lead
        car = DemoVehicle.objects.create(brand="Tesla", series="Model 3")
    alice = api(dealer_b.consultant)
    cases = [
        ("patch", f"{URL}{lead.pk}/", {"level": None}),
        ("patch", f"{URL}{lead.pk}/", {"next_followup_on": "2001-01-01"}),
        ("patch", f"{URL}{lead.pk}/", {"budget": "1e400"}),
        ("patch", f"{URL}{lead.pk}/", {"stage": "ordered"}),
        ("patch", f"{URL}{lead.pk}/", {"name": ["a"]}),
        ("post", f"{URL}{lead.pk}/contact/", {"disposition": "satisfied"}),
        ("post", f"{URL}{lead.pk}/contact/", {"disposition": "callback"}),
        ("post", f"{URL}{lead.pk}/contact/", {"disposition": "feedback", "occurred_at": "2999-01-01T00:00:00Z"}),
        ("post", f"{URL}{lead.pk}/invite/", {"appointment_at": "2001-01-01T10:00:00Z"}),
        ("post", f"{URL}{lead.pk}/invite/", {"appointment_at": 12}),
        ("post", f"{URL}{lead.pk}/assign/", {"to": "x"}),
        ("post", f"{URL}{lead.pk}/assign/", {"to": 10**30}),
        ("post", f"{URL}{lead.pk}/defeat/", {}),
        ("post", f"{URL}{lead.pk}/defeat/", {"reason": None}),
        ("post", f"{URL}{lead.pk}/quotes/", {"brand": "T", "series": "3", "list_price": "-1"}),
        ("post", f"{URL}{lead.pk}/quotes/", {"brand": "T", "series": "3", "list_price": "100", "discount": "200"}),
        (
            "post",
            f"{URL}{lead.pk}/quotes/",
            {"brand": "T", "series": "3", "list_price": "100", "trade_in_value": "500"},
        ),
        ("post", f"{URL}{lead.pk}/quotes/", {"brand": "T", "series": "3", "list_price": "1", "accessories": "mats"}),
        ("post", f"{URL}{lead.pk}/quotes/", {"brand": "T", "series": "3", "list_price": "1", "accessories": [{}]}),
        ("post", f"{URL}{lead.pk}/quotes/", {"brand": "T", "series": "3", "list_price": "1", "term_months": "ten"}),
        ("post", f"{URL}{lead.pk}/order/", {"quote": 10**30, "deposit": "1"}),
        ("post", f"{URL}{lead.pk}/order/", {"quote": 1, "deposit": "NaN"}),
        ("post", f"{URL}{lead.pk}/deliver/", {"vin": "short"}),
        (
            "post",
            f"{URL}{lead.pk}/test-drives/",
            {"vehicle": car.pk, "starts_at": "2001-01-01T10:00:00Z", "ends_at": "2001-01-01T11:00:00Z"},
        ),
        ("post", f"{URL}{lead.pk}/test-drives/", {"vehicle": "car", "starts_at": None, "ends_at": []}),
        (
            "post",
            f"{URL}{lead.pk}/test-drives/",
            {"vehicle": 999_999_999, "starts_at": timezone.now().isoformat(), "ends_at": timezone.now().isoformat()},
        ),
        ("post", "/api/v1/sales/showroom-visits/", {"arrived_at": "2999-01-01T00:00:00Z"}),
        ("post", "/api/v1/sales/showroom-visits/", {"arrived_at": timezone.now().isoformat(), "party_size": 0}),
        ("post", "/api/v1/sales/showroom-visits/", {"arrived_at": timezone.now().isoformat(), "name": "只有名字"}),
        ("post", "/api/v1/sales/showroom-visits/", {"arrived_at": timezone.now().isoformat(), "lead": 10**30}),
        ("get", "/api/v1/sales/showroom-visits/", {"on": "someday"}),
        ("get", "/api/v1/sales/test-drive-slots/", {"vehicle": car.pk, "date": "0001-01-01"}),
        ("get", "/api/v1/sales/test-drive-slots/", {"vehicle": car.pk, "date": "9999-12-31"}),
        ("get", "/api/v1/sales/test-drive-slots/", {"vehicle": "x", "date": "2026-01-01"}),
        ("get", "/api/v1/sales/test-drive-slots/", {"vehicle": 999_999_999, "date": "2026-01-01"}),
        ("get", "/api/v1/sales/test-drive-slots/", {"vehicle": car.pk, "date": "2026-01-01", "minutes": "5"}),
    ]
    for method, url, body in cases:
        response = alice.get(url, body) if method == "get" else getattr(alice, method)(url, body, format="json")
        assert response.status_code == 400, (url, body, response.status_code, response.content[:300])
        assert response.json()["error"]["fields"], (url, body, response.json())
    manager = api(dealer_b.manager)
    for query in (
        {},
        {"start": "2026-02-01", "end": "2026-01-01"},
        {"start": "0001-01-01", "end": "2026-01-01"},
        {"start": "2026-01-01", "end": "2026-01-31", "by": "weather"},
        {"start": "2026-01-01", "end": "2026-01-31", "owner": "x"},
        {"start": "2026-01-01", "end": "2026-01-31", "owner": 999_999_999},
        {"start": "2026-01-01", "end": "2026-01-31", "source": "fax"},
    ):
        response = manager.get("/api/v1/sales/funnel/", query)
        assert response.status_code == 400 and response.json()["error"]["fields"], query
    with tenant_context(dealer_b.tenant.pk):
        assert Lead.objects.get(pk=lead.pk).stage == Stage.CONTACTED


def test_slots_visits_and_demo_vehicles(dealer_b, api):
    with tenant_context(dealer_b.tenant.pk):
        car = DemoVehicle.objects.create(brand="Tesla", series="Model 3")
        lead = services.lead_capture(actor=dealer_b.consultant, data=_lead(70, source="phone")).lead
    alice = api(dealer_b.consultant)
    cars = alice.get("/api/v1/sales/demo-vehicles/").json()["results"]
    assert car.pk in [c["id"] for c in cars]
    day = timezone.localdate() + timedelta(days=1)
    slots = alice.get("/api/v1/sales/test-drive-slots/", {"vehicle": car.pk, "date": day.isoformat()})
    assert slots.status_code == 200, slots.json()
    assert all({"starts_at", "ends_at", "free"} == set(s) for s in slots.json())
    visit = alice.post(
        "/api/v1/sales/showroom-visits/",
        {"arrived_at": timezone.now().isoformat(), "party_size": 2, "lead": lead.pk},
        format="json",
    )
    assert visit.status_code == 201, visit.json()
    assert visit.json()["lead"] == lead.pk and visit.json()["party_size"] == 2
    walk_in = alice.post(
        "/api/v1/sales/showroom-visits/",
        {"arrived_at": timezone.now().isoformat(), "name": "刘女士", "mobile": "13700000071"},
        format="json",
    )
    assert walk_in.status_code == 201 and walk_in.json()["lead"]
    anonymous = alice.post("/api/v1/sales/showroom-visits/", {"arrived_at": timezone.now().isoformat()}, format="json")
    assert anonymous.status_code == 201 and anonymous.json()["lead"] is None
    listed = alice.get("/api/v1/sales/showroom-visits/", {"on": timezone.localdate().isoformat()}).json()["results"]
    assert {visit.json()["id"], walk_in.json()["id"], anonymous.json()["id"]} <= {v["id"] for v in listed}
    with tenant_context(dealer_b.tenant.pk):
        assert Lead.objects.get(pk=lead.pk).stage == Stage.VISITED


MILESTONES = (
    "first_contact_at",
    "invited_at",
    "visited_at",
    "test_drive_at",
    "quoted_at",
    "ordered_at",
    "delivered_at",
)


def test_the_funnel_numbers_equal_direct_counts(dealer_b, api):
    with tenant_context(dealer_b.tenant.pk):
        services.lead_capture(actor=dealer_b.consultant, data=_lead(80, source="walk_in", series="Model Y"))
        services.lead_capture(actor=dealer_b.consultant2, data=_lead(81, source="phone"))
        services.lead_capture(actor=dealer_b.manager, data=_lead(82, source="online"))
    today = timezone.localdate()
    manager = api(dealer_b.manager)
    response = manager.get("/api/v1/sales/funnel/", {"start": today.isoformat(), "end": today.isoformat()})
    assert response.status_code == 200, response.json()
    body = response.json()
    steps = {s["stage"]: s["leads"] for s in body["steps"]}
    with tenant_context(dealer_b.tenant.pk):
        cohort = Lead.objects.filter(created_at__date=today)
        assert steps["new"] == cohort.count()
        # a lead has reached a step when it reached it or any later one (docs/sales.md#funnel)
        for step, later in (
            ("contacted", MILESTONES),
            ("invited", MILESTONES[1:]),
            ("visited", MILESTONES[2:]),
            ("test_drive", MILESTONES[3:]),
            ("ordered", MILESTONES[5:]),
            ("delivered", MILESTONES[6:]),
        ):
            reached = Q()
            for milestone in later:
                reached |= Q(**{f"{milestone}__isnull": False})
            assert steps[step] == cohort.filter(reached).count(), step
        assert body["pool"] == Lead.objects.filter(owner__isnull=True, stage__in=OPEN_STAGES).count()
        direct = selectors.funnel(viewer=dealer_b.manager, filters=selectors.FunnelFilters(period=Period(today, today)))
        visited = cohort.filter(
            Q(visited_at__isnull=False)
            | Q(test_drive_at__isnull=False)
            | Q(quoted_at__isnull=False)
            | Q(ordered_at__isnull=False)
            | Q(delivered_at__isnull=False)
        ).count()
        new = cohort.count()
    assert body["visit_rate"] == float(direct["visit_rate"]) == round(visited * 100 / new, 1)
    assert body["start"] == body["end"] == today.isoformat() and body["by"] == "" and body["breakdown"] is None
    by_source = manager.get(
        "/api/v1/sales/funnel/", {"start": today.isoformat(), "end": today.isoformat(), "by": "source"}
    ).json()
    rows = {row["key"]: row["steps"]["new"] for row in by_source["breakdown"]}
    with tenant_context(dealer_b.tenant.pk):
        for source, leads in rows.items():
            assert leads == cohort.filter(source=source).count()
    by_owner = manager.get(
        "/api/v1/sales/funnel/", {"start": today.isoformat(), "end": today.isoformat(), "by": "owner"}
    ).json()["breakdown"]
    alice_row = next(row for row in by_owner if row["key"] == str(dealer_b.consultant.pk))
    with tenant_context(dealer_b.tenant.pk):
        assert alice_row["steps"]["new"] == cohort.filter(owner=dealer_b.consultant).count()
    only_walk_in = manager.get(
        "/api/v1/sales/funnel/", {"start": today.isoformat(), "end": today.isoformat(), "source": "walk_in"}
    ).json()
    with tenant_context(dealer_b.tenant.pk):
        assert only_walk_in["steps"][0]["leads"] == cohort.filter(source="walk_in").count()
