"""Every bad input and every outage is answered in the API's one error shape, never a 500."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _shape(response, code: str) -> dict:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]


def test_a_document_nested_a_hundred_thousand_deep_is_a_parse_error(dealer_a, api):
    client = api(key=dealer_a.raw_key)
    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/api/v1/customers/", "/api/v1/orders/bulk-upsert/", "/api/v1/touchpoints/"):
        response = client.generic("POST", path, deep, content_type="application/json")
        assert response.status_code == 400, (path, response.status_code)
        assert "nested too deeply" in _shape(response, "parse_error")["message"]


@pytest.mark.parametrize(
    "path", ["/api/v1/surveys/results/", "/api/v1/complaints/metrics/", "/api/v1/loyalty/summary/"]
)
def test_a_period_beyond_the_calendar_is_a_field_error(dealer_a, api, path):
    client = api(dealer_a.manager)
    response = client.get(path, {"start": "0001-01-01", "end": "9999-12-31"})
    assert response.status_code == 400
    assert set(_shape(response, "validation_error")["fields"]) == {"start", "end"}
    # and a period that is fine still answers
    assert client.get(path, {"start": "2026-01-01", "end": "2026-01-31"}).status_code == 200


def test_the_period_of_a_report_page_has_the_same_rule(dealer_a, web):
    page = web(dealer_a.manager).get("/complaints/metrics/", {"start": "0001-01-01", "end": "9999-12-31"})
    assert page.status_code == 200
    assert page.context["form"].errors.keys() == {"start", "end"}


def test_a_mangled_cursor_is_bad_input_not_a_missing_page(dealer_a, api):
    response = api(key=dealer_a.raw_key).get("/api/v1/customers/", {"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert set(_shape(response, "validation_error")["fields"]) == {"cursor"}


def test_a_body_over_the_upload_limit_is_413_in_the_error_shape(dealer_a, api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = api(key=dealer_a.raw_key)
    response = client.post("/api/v1/customers/", {"name": "x" * 5000}, format="json")
    assert response.status_code == 413
    _shape(response, "request_too_large")


def test_an_unknown_api_path_answers_in_the_error_shape(dealer_a, api):
    response = api(key=dealer_a.raw_key).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    _shape(response, "not_found")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server_without_database():  # type: ignore[no-untyped-def]
    """The product served by a real process whose database does not answer (nothing listens on its port)."""
    port, dead = _free_port(), _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://crm_app@127.0.0.1:{dead}/crm",
        "REDIS_URL": "",
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urlopen(url, timeout=10) as response:  # noqa: S310 - a local test server
            return response.status, dict(response.headers), response.read()
    except HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_with_the_database_down_the_api_says_503_and_when_to_retry(server_without_database):
    import json

    status, headers, body = _get(f"{server_without_database}/healthz")
    assert (status, json.loads(body)) == (503, {"status": "unavailable", "database": "unavailable"})
    assert headers["Retry-After"] == "30"
    status, headers, body = _get(f"{server_without_database}/api/v1/me/")
    assert status == 503 and headers["Retry-After"] == "30"
    assert json.loads(body)["error"]["code"] == "service_unavailable"
    status, headers, body = _get(f"{server_without_database}/accounts/sign-in/")
    assert status == 503 and "Back in a moment" in body.decode()


@pytest.mark.parametrize("name", ["\u200b\u200b  ", "\u2060\ufeff", "\u200e\u00ad\u3000"])
def test_a_name_of_invisible_characters_is_refused(dealer_a, api, name):
    response = api(key=dealer_a.raw_key).post(
        "/api/v1/customers/", {"name": name, "mobile": "13900002222"}, format="json"
    )
    assert response.status_code == 400
    assert "name" in _shape(response, "validation_error")["fields"]


def test_a_name_is_stored_as_people_read_it(dealer_a, api, in_tenant):
    from customers.models import Customer

    response = api(key=dealer_a.raw_key).post(
        "/api/v1/customers/", {"name": " ＷＡＮＧ\u200b  小\u00ad明 ", "mobile": "13900003333"}, format="json"
    )
    assert response.status_code == 201, response.json()
    with in_tenant(dealer_a):
        assert Customer.objects.get(pk=response.json()["id"]).name == "WANG 小明"


def test_a_complaint_contact_of_invisible_characters_is_refused(dealer_a, client):
    from complaints.models import ComplaintCategory, Ticket
    from crm.tenancy.context import tenant_context

    assert client.get(f"/c/{dealer_a.tenant.code}/").status_code == 200
    with tenant_context(dealer_a.tenant.pk):
        category = ComplaintCategory.objects.order_by("pk").first()
    data = {"contact_name": "\u200b\u200b", "contact_mobile": "13900004444", "subject": "噪音"}
    data.update(description="发动机有异响", category=str(category.pk))
    response = client.post(f"/c/{dealer_a.tenant.code}/", data)
    assert response.status_code == 200 and "contact_name" in response.context["form"].errors
    with tenant_context(dealer_a.tenant.pk):
        assert not Ticket.objects.filter(contact_mobile__endswith="13900004444").exists()


def test_a_field_that_cannot_be_written_is_refused_not_dropped(dealer_a, dealer_b, api, in_tenant):
    from customers.models import Vehicle

    client = api(key=dealer_a.raw_key)
    vehicle = dealer_a.objects["vehicle"]
    other = client.post("/api/v1/customers/", {"name": "另一位", "mobile": "13900005555"}, format="json").json()["id"]
    response = client.patch(f"/api/v1/vehicles/{vehicle.pk}/", {"customer": other, "color": "白"}, format="json")
    assert response.status_code == 400
    fields = _shape(response, "validation_error")["fields"]
    assert fields == {"customer": ["This field cannot be written here."]} or "customer" in fields
    with in_tenant(dealer_a):
        assert Vehicle.objects.get(pk=vehicle.pk).customer_id == vehicle.customer_id  # nothing changed
    unknown = client.post("/api/v1/customers/", {"name": "王五", "mobile": "13900006666", "vip": True}, format="json")
    assert unknown.status_code == 400 and "vip" in _shape(unknown, "validation_error")["fields"]
    rows = client.post(
        "/api/v1/orders/bulk-upsert/",
        {
            "items": [
                {
                    "external_id": "X-1",
                    "customer_external_id": dealer_a.objects["customer"].external_id,
                    "kind": "maintenance",
                    "ordered_on": "2026-11-01",
                    "amount": "100.00",
                    "discount": "5",
                }
            ]
        },
        format="json",
    )
    results = rows.json()["results"] if isinstance(rows.json(), dict) else rows.json()
    assert [(r["status"], list(r["errors"])) for r in results] == [("error", ["discount"])]
    # the row says which key it could not write, and nothing is written


def test_an_import_row_with_an_invisible_name_is_a_row_error():
    from django.core.exceptions import ValidationError

    from customers.imports.kinds import import_kind

    parse = {field.name: field.parse for field in import_kind("customers").fields}["name"]
    assert parse(" ＷＡＮＧ\u200b 小明 ") == "WANG 小明"
    # nothing visible: the cell counts as empty, so the row fails on the required name
    assert parse("\u200b\u200b") is None
    with pytest.raises(ValidationError):
        parse("\u200b\u2060x\u200b".replace("x", "\u00ad"))
