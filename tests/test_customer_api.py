"""The customer API: create/update with field errors, visibility on every resource, bulk upsert, timeline."""

from __future__ import annotations

from customers.models import Customer
from tests.factories import CustomerFactory, VehicleFactory


def test_create_and_update_a_customer(dealer_a, api, in_tenant):
    client = api(dealer_a.consultant)
    created = client.post(
        "/api/v1/customers/", {"name": "钱多多", "mobile": "13900009999", "consent_email": True}, format="json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["mobile"] == "+8613900009999" and body["owner"] == dealer_a.consultant.pk
    patched = client.patch(f"/api/v1/customers/{body['id']}/", {"city": "深圳市", "tags": ["VIP"]}, format="json")
    assert patched.status_code == 200 and patched.json()["tags"] == ["VIP"]


def test_bad_fields_come_back_by_name(dealer_a, api):
    response = api(dealer_a.manager).post(
        "/api/v1/customers/", {"name": "", "mobile": "123", "birthday": "yesterday"}, format="json"
    )
    assert response.status_code == 400
    assert {"name", "birthday"} <= set(response.json()["error"]["fields"])
    bad_mobile = api(dealer_a.manager).post("/api/v1/customers/", {"name": "x", "mobile": "123"}, format="json")
    assert bad_mobile.status_code == 400 and "mobile" in bad_mobile.json()["error"]["fields"]


def test_duplicate_dms_id_is_a_clear_400(dealer_a, api):
    response = api(dealer_a.manager).post(
        "/api/v1/customers/", {"name": "x", "external_id": dealer_a.objects["customer"].external_id}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] or response.json()["error"]["code"] == "duplicate"


def test_consultants_see_only_their_books_vehicles_orders_and_contacts(dealer_a, api, in_tenant):
    with in_tenant(dealer_a):
        bob_customer = CustomerFactory(owner=dealer_a.consultant2)
        VehicleFactory(customer=bob_customer)
    alice = api(dealer_a.consultant)
    assert [v["id"] for v in alice.get("/api/v1/vehicles/").json()["results"]] == [dealer_a.objects["vehicle"].pk]
    assert [o["id"] for o in alice.get("/api/v1/orders/").json()["results"]] == [dealer_a.objects["order"].pk]
    refused = alice.post(
        "/api/v1/touchpoints/", {"customer": bob_customer.pk, "channel": "call", "outcome": "reached"}, format="json"
    )
    assert refused.status_code == 400 and "customer" in refused.json()["error"]["fields"]
    logged = alice.post(
        "/api/v1/touchpoints/",
        {"customer": dealer_a.objects["customer"].pk, "channel": "call", "outcome": "appointment", "notes": "周六到店"},
        format="json",
    )
    assert logged.status_code == 201
    timeline = alice.get(f"/api/v1/customers/{dealer_a.objects['customer'].pk}/timeline/").json()
    assert timeline[0]["kind"] == "touchpoint" and timeline[0]["detail"] == "周六到店"


def test_dms_bulk_upsert_through_the_api_key(dealer_a, api):
    client = api(key=dealer_a.raw_key)
    payload = {
        "items": [
            {
                "external_id": "RO-77",
                "customer_external_id": dealer_a.objects["customer"].external_id,
                "kind": "maintenance",
                "ordered_on": "2026-02-02",
                "amount": "1280.50",
            },
            {
                "external_id": "RO-78",
                "customer_external_id": "missing",
                "kind": "repair",
                "ordered_on": "2026-02-02",
                "amount": "1",
            },
        ]
    }
    first = client.post("/api/v1/orders/bulk-upsert/", payload, format="json")
    assert first.status_code == 200
    assert [r["status"] for r in first.json()] == ["created", "error"]
    again = client.post("/api/v1/orders/bulk-upsert/", payload, format="json")
    assert [r["status"] for r in again.json()] == ["unchanged", "error"]
    too_many = client.post("/api/v1/orders/bulk-upsert/", {"items": payload["items"][:1] * 1001}, format="json")
    assert too_many.status_code == 400


def test_vehicle_transfer_and_mileage_through_the_api(dealer_a, api, in_tenant):
    client = api(dealer_a.manager)
    vehicle = dealer_a.objects["vehicle"]
    with in_tenant(dealer_a):
        new_owner = CustomerFactory()
    assert (
        client.post(
            f"/api/v1/vehicles/{vehicle.pk}/mileage/", {"read_on": "2026-01-01", "km": 30000}, format="json"
        ).status_code
        == 201
    )
    lower = client.post(f"/api/v1/vehicles/{vehicle.pk}/mileage/", {"read_on": "2026-02-01", "km": 100}, format="json")
    assert lower.status_code == 400 and "mileage_km" in lower.json()["error"]["fields"]
    moved = client.post(f"/api/v1/vehicles/{vehicle.pk}/transfer/", {"customer": new_owner.pk}, format="json")
    assert moved.status_code == 200 and moved.json()["customer"] == new_owner.pk


def test_roles_that_only_read_cannot_write(dealer_a, api):
    response = api(dealer_a.auditor).post("/api/v1/customers/", {"name": "x"}, format="json")
    assert response.status_code == 403
    with_read_key = api(dealer_a.auditor)
    assert with_read_key.get("/api/v1/customers/").status_code == 200


def test_customers_filter_by_last_visit_and_search(dealer_a, api, in_tenant):
    with in_tenant(dealer_a):
        Customer.objects.filter(pk=dealer_a.objects["customer"].pk).update(last_visit_on="2025-06-01")
    client = api(dealer_a.manager)
    rows = client.get("/api/v1/customers/", {"last_visit_from": "2025-01-01", "search": "粤B·A1234"}).json()["results"]
    assert [r["id"] for r in rows] == [dealer_a.objects["customer"].pk]
    assert client.get("/api/v1/customers/", {"last_visit_from": "2025-07-01"}).json()["results"] == []


def test_a_customer_created_through_the_api_without_consent_has_none_and_changes_are_listed(dealer_a, api):
    client = api(dealer_a.manager)
    created = client.post("/api/v1/customers/", {"name": "接口客户"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert [body[f"consent_{c}"] for c in ("call", "sms", "wechat", "email")] == [False, False, False, False]
    customer_id = body["id"]
    assert client.get(f"/api/v1/customers/{customer_id}/consent-history/").json() == []
    patched = client.patch(f"/api/v1/customers/{customer_id}/", {"consent_wechat": True}, format="json")
    assert patched.status_code == 200 and patched.json()["consent_wechat"] is True
    history = client.get(f"/api/v1/customers/{customer_id}/consent-history/").json()
    assert len(history) == 1
    assert history[0]["changed"] == ["wechat"] and history[0]["via"] == "api"
    assert history[0]["consent_wechat"] is True and history[0]["set_by"] == dealer_a.manager.user_id
    assert history[0]["set_by_name"] and history[0]["import_job"] is None


def test_a_consultant_cannot_read_the_consent_history_of_anothers_customer(dealer_a, api, in_tenant):
    with in_tenant(dealer_a):
        bobs = CustomerFactory(owner=dealer_a.consultant2)
    assert api(dealer_a.consultant).get(f"/api/v1/customers/{bobs.pk}/consent-history/").status_code == 404
