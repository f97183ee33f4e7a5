"""Sign-in: audit, lockout, password rules, choosing among dealerships."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from crm.accounts.models import SecurityEvent
from crm.tenancy.models import AuditEvent

PASSWORD = "Test-pass-2026!"


def _sign_in(client, username: str, password: str):  # type: ignore[no-untyped-def]
    return client.post("/accounts/sign-in/", {"username": username, "password": password})


def test_signing_in_by_email_lands_in_the_dealership_and_is_recorded(dealer_a, client, in_tenant):
    response = _sign_in(client, dealer_a.manager.user.email.upper(), PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    home = client.get("/")
    assert dealer_a.tenant.name in home.content.decode()
    assert SecurityEvent.objects.filter(kind="sign_in", user=dealer_a.manager.user).exists()
    with in_tenant(dealer_a):
        assert AuditEvent.objects.filter(action="signed_in", actor=dealer_a.manager.user).exists()


def test_a_wrong_password_is_refused_with_a_clear_message(dealer_a, client):
    response = _sign_in(client, dealer_a.manager.user.email, "nope")
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert SecurityEvent.objects.filter(kind="sign_in_failed").count() == 1


@override_settings(LOGIN_FAILURE_LIMIT=3, LOGIN_LOCKOUT_MINUTES=15)
def test_repeated_failures_lock_the_account_even_for_the_right_password(dealer_a, client):
    email = dealer_a.manager.user.email
    for _ in range(3):
        _sign_in(client, email, "wrong")
    locked = _sign_in(client, email, PASSWORD)
    assert locked.status_code == 200
    assert "locked" in str(locked.context["form"].non_field_errors()) or "锁定" in str(
        locked.context["form"].non_field_errors()
    )
    assert SecurityEvent.objects.filter(kind="locked_out").exists()
    # once the window has passed, the right password works again
    SecurityEvent.objects.update(created_at=timezone.now() - timedelta(minutes=16))
    assert _sign_in(client, email, PASSWORD).status_code == 302


@override_settings(LOGIN_FAILURE_LIMIT=3)
def test_a_success_resets_the_failure_count(dealer_a, client):
    email = dealer_a.manager.user.email
    _sign_in(client, email, "wrong")
    _sign_in(client, email, "wrong")
    assert _sign_in(client, email, PASSWORD).status_code == 302
    client.logout()
    _sign_in(client, email, "wrong")
    assert _sign_in(client, email, PASSWORD).status_code == 302


@pytest.mark.parametrize("password", ["short1!A", "alllowercaseletters", "1234567890123", "Password123"])
def test_weak_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        validate_password(password)


def test_a_strong_password_passes():
    validate_password("Brand-new-pass-2026")


def test_a_user_switches_only_between_their_own_dealerships(dealer_a, dealer_b, web, in_tenant):
    from crm.tenancy.services import member_invite

    with in_tenant(dealer_b):
        member_invite(
            actor=dealer_b.admin, email=dealer_a.manager.user.email, full_name="", role="manager", site_url=""
        )
    client = web(dealer_a.manager)
    assert client.post("/accounts/switch-dealership/", {"tenant": dealer_b.tenant.pk}).status_code == 302
    assert dealer_b.tenant.name in client.get("/").content.decode()
    client_bob = web(dealer_a.consultant2)
    client_bob.post("/accounts/switch-dealership/", {"tenant": dealer_b.tenant.pk})
    page = client_bob.get("/").content.decode()
    assert dealer_a.tenant.name in page and dealer_b.tenant.name not in page
    with in_tenant(dealer_b):
        assert AuditEvent.objects.filter(action="tenant_switched", actor=dealer_a.manager.user).exists()


def test_signing_out_needs_a_post_and_ends_the_session(dealer_a, web):
    client = web(dealer_a.manager)
    assert client.get("/accounts/sign-out/").status_code == 405
    assert client.post("/accounts/sign-out/").status_code == 302
    assert client.get("/").status_code == 302
    assert SecurityEvent.objects.filter(kind="sign_out").exists()


def test_a_user_without_any_membership_sees_a_clear_page(db, client):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(username="loner@x.test", email="loner@x.test", password=PASSWORD)
    client.login(username="loner@x.test", password=PASSWORD)
    response = client.get("/customers/")
    assert response.status_code == 403
    assert response.templates[0].name == "tenancy/no_membership.html"


def test_service_accounts_cannot_sign_in(dealer_a, client):
    service_user = dealer_a.objects["credential_membership"].user
    assert not service_user.has_usable_password()
    assert _sign_in(client, service_user.username, "").status_code == 200


@override_settings(LOGIN_FAILURE_LIMIT=2)
def test_the_admin_sign_in_shares_the_lockout(db, client):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser(username="ops", email="ops@x.test", password=PASSWORD)
    for _ in range(2):
        client.post("/admin/login/", {"username": "ops", "password": "wrong"})
    response = client.post("/admin/login/", {"username": "ops", "password": PASSWORD})
    assert response.status_code == 200  # still on the login page: locked
    assert SecurityEvent.objects.filter(kind="locked_out", username="ops").exists()


@override_settings(LOGIN_FAILURE_LIMIT=2)
def test_a_non_staff_user_trying_the_admin_is_not_counted_as_guessing(dealer_a, client):
    for _ in range(3):
        client.post("/admin/login/", {"username": dealer_a.manager.user.email, "password": PASSWORD})
    assert not SecurityEvent.objects.filter(kind="sign_in_failed").exists()
    assert _sign_in(client, dealer_a.manager.user.email, PASSWORD).status_code == 302
