"""The tenant never outlives its request or task on a reused database connection.

These tests commit for real (transactional database), because a leak would live exactly in
what survives a COMMIT on a persistent connection.
"""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from crm.core.tasks import tenant_probe_task
from crm.tenancy.context import current_tenant_id
from crm.tenancy.middleware import SESSION_TENANT_KEY
from tests.conftest import build_dealership

pytestmark = pytest.mark.django_db(transaction=True)


def _guc() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(current_setting('app.tenant_id', true), '')")
        return str(cursor.fetchone()[0])


def _visible_customers_without_tenant() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers_customer")
        return int(cursor.fetchone()[0])


def _signed_in(membership) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_login(membership.user)
    session = client.session
    session[SESSION_TENANT_KEY] = membership.tenant_id
    session.save()
    return client


def test_consecutive_requests_on_one_connection_do_not_share_a_tenant():
    a = build_dealership("reuse-a", "A", variant=1)
    b = build_dealership("reuse-b", "B", variant=0)
    backend_pid = None
    for dealer, other in ((a, b), (b, a), (a, b)):
        response = _signed_in(dealer.manager).get("/api/v1/customers/")
        assert response.status_code == 200
        names = {c["name"] for c in response.json()["results"]}
        assert names == {dealer.objects["customer"].name}
        assert other.objects["customer"].name not in names
        # after the request: no tenant in Python, none in the database session, and raw SQL sees nothing
        assert current_tenant_id() is None
        assert _guc() == ""
        assert _visible_customers_without_tenant() == 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        backend_pid = backend_pid or pid
    assert backend_pid is not None


def test_a_failed_request_does_not_leave_its_tenant_behind():
    a = build_dealership("fail-a", "A", variant=1)
    response = _signed_in(a.manager).post(
        "/api/v1/customers/reassign/", {"from_membership": 0, "to_membership": 0}, format="json"
    )
    assert response.status_code == 400
    assert current_tenant_id() is None
    assert _guc() == ""


def test_consecutive_tasks_in_one_process_each_see_only_their_tenant():
    a = build_dealership("task-a", "A", variant=1)
    b = build_dealership("task-b", "B", variant=0)
    first = tenant_probe_task.delay(tenant_id=a.tenant.pk).get()
    second = tenant_probe_task.delay(tenant_id=b.tenant.pk).get()
    assert first["guc"] == str(a.tenant.pk) and second["guc"] == str(b.tenant.pk)
    # 8 memberships per dealership (7 staff + the integration key's service account)
    assert first["raw_sql_memberships"] == first["orm_memberships"] == 8
    assert second["raw_sql_memberships"] == 8
    assert current_tenant_id() is None
    assert _guc() == ""


def test_the_fan_out_runs_a_task_once_for_every_active_dealership():
    from crm.tenancy.models import Tenant
    from crm.tenancy.tasks import tenant_fan_out

    a = build_dealership("fan-a", "A", variant=1)
    b = build_dealership("fan-b", "B", variant=0)
    closed = build_dealership("fan-closed", "C", variant=0)
    Tenant.objects.filter(pk=closed.tenant.pk).update(is_active=False)
    seen: list[dict] = []  # type: ignore[type-arg]

    original = tenant_probe_task.delay

    def record(**kwargs):  # type: ignore[no-untyped-def]
        seen.append(original(**kwargs).get())

    tenant_probe_task.delay = record  # type: ignore[method-assign]
    try:
        queued = tenant_fan_out(tenant_probe_task)
    finally:
        tenant_probe_task.delay = original  # type: ignore[method-assign]
    assert queued == [a.tenant.pk, b.tenant.pk]
    assert [(s["tenant_id"], s["guc"], s["orm_memberships"]) for s in seen] == [
        (a.tenant.pk, str(a.tenant.pk), 8),
        (b.tenant.pk, str(b.tenant.pk), 8),
    ]
