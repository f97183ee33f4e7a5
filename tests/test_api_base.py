"""The API base: one error shape, schema and docs served locally, pagination, filters."""

from __future__ import annotations

import re

import pytest


def _assert_error_shape(body: dict, code: str | None = None) -> None:  # type: ignore[type-arg]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert isinstance(body["error"]["fields"], dict) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code


def test_unauthenticated_requests_get_401_in_the_error_shape(db, api):
    response = api().get("/api/v1/customers/")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    _assert_error_shape(response.json(), "not_authenticated")


def test_not_found_uses_the_error_shape(dealer_a, api):
    response = api(dealer_a.manager).get("/api/v1/customers/999999999/")
    assert response.status_code == 404
    _assert_error_shape(response.json(), "not_found")


def test_validation_errors_name_each_field(dealer_a, api):
    response = api(dealer_a.admin).post(
        "/api/v1/memberships/", {"email": "not-an-email", "role": "wizard"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    _assert_error_shape(body, "validation_error")
    assert set(body["error"]["fields"]) == {"email", "role"}


def test_a_business_rule_error_uses_the_same_shape(dealer_a, api):
    response = api(dealer_a.admin).post(f"/api/v1/memberships/{dealer_a.admin.pk}/deactivate/", {}, format="json")
    assert response.status_code == 400
    _assert_error_shape(response.json(), "self_deactivation")


def test_malformed_json_is_a_400_not_a_500(dealer_a, api):
    client = api(dealer_a.admin)
    response = client.post("/api/v1/memberships/", data="{not json", content_type="application/json")
    assert response.status_code == 400
    _assert_error_shape(response.json())


def test_the_schema_is_openapi_3_and_covers_every_api_route(db, client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    assert {
        "/api/v1/customers/",
        "/api/v1/customers/{id}/reveal/",
        "/api/v1/memberships/",
        "/api/v1/credentials/",
        "/api/v1/me/",
    } <= paths
    assert "bearerAuth" in schema["components"]["securitySchemes"]


def test_the_docs_page_loads_its_assets_from_this_server(db, client):
    page = client.get("/api/v1/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets, "the docs page references no assets"
    assert all(a.startswith("/") for a in assets), f"external assets: {[a for a in assets if not a.startswith('/')]}"
    assert any("swagger-ui" in a for a in assets)


def test_customer_list_uses_cursor_pagination_and_filters(dealer_a, api, in_tenant):
    from tests.factories import CustomerFactory

    with in_tenant(dealer_a):
        for i in range(120):
            CustomerFactory(name=f"客户{i:03d}", owner=dealer_a.consultant, lifecycle_stage="dormant")
    client = api(dealer_a.manager)
    first = client.get("/api/v1/customers/", {"lifecycle_stage": "dormant"}).json()
    assert len(first["results"]) == 100 and first["next"] and "cursor=" in first["next"]
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 20 and second["next"] is None
    names = {r["name"] for r in first["results"]} | {r["name"] for r in second["results"]}
    assert len(names) == 120
    assert client.get("/api/v1/customers/", {"search": "客户007"}).json()["results"][0]["name"] == "客户007"
    bad = client.get("/api/v1/customers/", {"lifecycle_stage": "zombie"})
    assert bad.status_code == 400 and "lifecycle_stage" in bad.json()["error"]["fields"]


@pytest.mark.parametrize("role", ["consultant", "advisor", "agent", "auditor"])
def test_roles_without_staff_rights_cannot_list_staff_or_the_audit_log(role, dealer_a, api):
    client = api(getattr(dealer_a, role))
    if role != "auditor":
        assert client.get("/api/v1/audit-events/").status_code == 403
    assert client.get("/api/v1/memberships/").status_code == 403


def test_the_audit_log_api_filters_by_action(dealer_a, api):
    rows = api(dealer_a.auditor).get("/api/v1/audit-events/", {"action": "credential_created"}).json()["results"]
    assert rows and {r["action"] for r in rows} == {"credential_created"}


def test_health_check_reports_the_database(db, client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok"
