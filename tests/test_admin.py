"""The Django admin for platform operators: tenants in full, tenant rows only inside their own
active dealership, and service-owned rows read-only."""

from __future__ import annotations

from crm.tenancy.middleware import SESSION_TENANT_KEY
from crm.tenancy.models import Membership, Tenant
from tests.factories import UserFactory


def _operator(client, membership: Membership | None = None):  # type: ignore[no-untyped-def]
    user = membership.user if membership else UserFactory(email="ops@platform.test")
    user.is_staff = user.is_superuser = True
    user.save()
    client.force_login(user)
    if membership:
        session = client.session
        session[SESSION_TENANT_KEY] = membership.tenant_id
        session.save()
    return client


def test_an_operator_creates_a_dealership_and_invites_its_first_admin(
    db, client, mailoutbox, django_capture_on_commit_callbacks
):
    admin = _operator(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            "/admin/tenancy/tenant/add/",
            {
                "name": "佛山新店",
                "code": "fs-new",
                "time_zone": "Asia/Shanghai",
                "locale": "zh-hans",
                "currency": "CNY",
                "first_admin_email": "boss@fs.test",
                "first_admin_name": "梁老板",
            },
        )
    assert response.status_code == 302
    tenant = Tenant.objects.get(code="fs-new")
    assert mailoutbox[0].to == ["boss@fs.test"] and tenant.name in mailoutbox[0].subject


def test_an_operator_without_a_dealership_sees_no_tenant_rows(dealer_a, client):
    admin = _operator(client)
    index = admin.get("/admin/").content.decode()
    assert "/admin/tenancy/tenant/" in index
    assert "/admin/customers/customer/" not in index and "/admin/tenancy/auditevent/" not in index
    assert admin.get("/admin/customers/customer/").status_code == 403


def test_an_operator_sees_only_the_rows_of_their_active_dealership(dealer_a, dealer_b, client):
    admin = _operator(client, dealer_b.manager)
    listing = admin.get("/admin/customers/customer/").content.decode()
    assert dealer_b.objects["customer"].name in listing
    assert dealer_a.objects["customer"].name not in listing
    response = admin.get(f"/admin/customers/customer/{dealer_a.objects['customer'].pk}/change/")
    assert response.status_code == 302  # "does not exist" redirect: A's row is invisible
    assert dealer_a.objects["customer"].name not in admin.get(response["Location"]).content.decode()


def test_memberships_and_the_audit_log_are_read_only_in_the_admin(dealer_b, client):
    admin = _operator(client, dealer_b.admin)
    url = f"/admin/tenancy/membership/{dealer_b.consultant.pk}/change/"
    assert admin.get(url).status_code == 200  # viewable
    admin.post(url, {"role": "manager", "is_active": "on"})
    dealer_b.consultant.refresh_from_db()
    assert dealer_b.consultant.role == "sales_consultant"
    assert admin.get("/admin/tenancy/auditevent/add/").status_code == 403


def test_an_operator_s_edit_of_a_dealership_is_in_its_audit_log(dealer_b, client):
    """Issue 23 item 17: edits in the admin (code, currency, active, settings) were not audited."""
    import json

    from crm.tenancy.context import tenant_context
    from crm.tenancy.models import AuditEvent

    admin = _operator(client)
    tenant = Tenant.objects.get(pk=dealer_b.tenant.pk)
    url = f"/admin/tenancy/tenant/{tenant.pk}/change/"
    form = {
        "name": tenant.name,
        "code": tenant.code,
        "time_zone": tenant.time_zone,
        "locale": tenant.locale,
        "currency": tenant.currency,
        "business_hours": json.dumps(tenant.business_hours),
        "country": tenant.country,
        "holidays": json.dumps(tenant.holidays),
        "makeup_workdays": json.dumps(tenant.makeup_workdays),
        "settings": json.dumps(tenant.settings),
        "is_active": "on",
    }
    assert admin.post(url, form).status_code == 302
    with tenant_context(tenant.pk):
        assert not AuditEvent.objects.filter(action="tenant_settings_changed").exists()  # nothing changed
    assert admin.post(url, {**form, "currency": "HKD", "is_active": ""}).status_code == 302
    with tenant_context(tenant.pk):
        event = AuditEvent.objects.get(action="tenant_settings_changed")
    assert event.actor.email == "ops@platform.test" and event.summary.endswith("currency, is_active")
    assert event.data == {"currency": {"from": "CNY", "to": "HKD"}, "is_active": {"from": True, "to": False}}
