"""API credentials: hashed, shown once, scoped, revocable, expiring, rate-limited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.tenancy.credentials import hash_key
from crm.tenancy.models import ApiCredential, AuditEvent


def test_an_integration_key_is_shown_once_and_stored_only_as_a_hash(dealer_a, api, in_tenant):
    response = api(dealer_a.admin).post(
        "/api/v1/credentials/", {"kind": "integration", "name": "DMS", "scopes": ["customers:read"]}, format="json"
    )
    assert response.status_code == 201
    raw = response.json()["key"]
    assert raw.startswith(f"crmk_{dealer_a.tenant.pk}_")
    with in_tenant(dealer_a):
        credential = ApiCredential.objects.get(pk=response.json()["id"])
        assert credential.key_hash == hash_key(raw) and raw not in (credential.key_prefix, credential.key_hash)
        assert AuditEvent.objects.filter(action="credential_created", target_id=str(credential.pk)).exists()
    listed = api(dealer_a.admin).get(f"/api/v1/credentials/{credential.pk}/").json()
    assert "key" not in listed


def test_a_key_authenticates_as_its_dealership_and_records_last_use(dealer_a, api, in_tenant):
    response = api(key=dealer_a.raw_key).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["tenant"]["code"] == "dealer-a"
    assert response.json()["role"] == "integration"
    with in_tenant(dealer_a):
        assert ApiCredential.objects.get(pk=dealer_a.objects["credential"].pk).last_used_at is not None


@pytest.mark.parametrize(
    "header",
    ["Bearer crmk_1_notarealkeyatall-notarealkeyatall-notareal", "Bearer garbage", "Bearer", "Bearer a b"],
)
def test_bad_keys_get_401_in_the_error_shape(dealer_a, api, header):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/customers/")
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_a_key_naming_another_tenant_id_is_refused(dealer_a, dealer_b, api):
    # Same secret, tenant id swapped: the hash is not found inside dealership B.
    forged = dealer_a.raw_key.replace(f"crmk_{dealer_a.tenant.pk}_", f"crmk_{dealer_b.tenant.pk}_")
    assert api(key=forged).get("/api/v1/customers/").status_code == 401


def test_scopes_limit_what_a_key_may_do(dealer_a, api, in_tenant):
    from crm.tenancy.services import credential_create

    with in_tenant(dealer_a):
        _credential, raw = credential_create(
            actor=dealer_a.admin, kind="integration", name="ro", scopes=["customers:read"]
        )
    client = api(key=raw)
    assert client.get("/api/v1/customers/").status_code == 200
    assert client.get("/api/v1/memberships/").status_code == 403  # no admin:read
    reveal = client.post(
        f"/api/v1/customers/{dealer_a.objects['customer'].pk}/reveal/", {"field": "mobile"}, format="json"
    )
    assert reveal.status_code == 403  # a POST needs customers:write
    assert "customers:write" in reveal.json()["error"]["message"]


def test_revoked_and_expired_keys_stop_working(dealer_a, api, in_tenant):
    client = api(key=dealer_a.raw_key)
    assert client.get("/api/v1/me/").status_code == 200
    revoke = api(dealer_a.admin).post(f"/api/v1/credentials/{dealer_a.objects['credential'].pk}/revoke/")
    assert revoke.status_code == 200 and revoke.json()["revoked_at"]
    assert client.get("/api/v1/me/").status_code == 401

    from crm.tenancy.services import credential_create

    with in_tenant(dealer_a):
        credential, raw = credential_create(actor=dealer_a.admin, kind="integration", name="tmp", scopes=["admin:read"])
        ApiCredential.objects.filter(pk=credential.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api(key=raw).get("/api/v1/me/").status_code == 401


def test_staff_create_personal_tokens_but_not_integration_keys(dealer_a, api):
    client = api(dealer_a.consultant)
    refused = client.post(
        "/api/v1/credentials/", {"kind": "integration", "name": "x", "scopes": ["customers:read"]}, format="json"
    )
    assert refused.status_code == 403
    created = client.post(
        "/api/v1/credentials/", {"kind": "personal", "name": "my phone", "scopes": ["customers:read"]}, format="json"
    )
    assert created.status_code == 201 and created.json()["key"].startswith("crmt_")
    # the personal token sees exactly what its owner sees: only Alice's own customers
    rows = api(key=created.json()["key"]).get("/api/v1/customers/").json()["results"]
    assert [r["name"] for r in rows] == [dealer_a.objects["customer"].name]
    # and colleagues' tokens are invisible to her
    others = api(dealer_a.consultant2).get("/api/v1/credentials/").json()["results"]
    assert others == []


def test_invalid_scope_gets_a_field_error(dealer_a, api):
    response = api(dealer_a.admin).post(
        "/api/v1/credentials/", {"kind": "integration", "name": "x", "scopes": ["root"]}, format="json"
    )
    assert response.status_code == 400
    assert "scopes" in " ".join(response.json()["error"]["fields"])


def test_each_key_has_its_own_rate_limit(dealer_a, dealer_b, api, monkeypatch):
    from crm.tenancy.throttling import CredentialRateThrottle

    monkeypatch.setattr(CredentialRateThrottle, "THROTTLE_RATES", {"credential": "3/min"})
    client = api(key=dealer_a.raw_key)
    assert [client.get("/api/v1/me/").status_code for _ in range(5)] == [200, 200, 200, 429, 429]
    limited = client.get("/api/v1/me/")
    assert limited.json()["error"]["code"] == "throttled" and int(limited["Retry-After"]) > 0
    # another key is counted on its own
    assert api(key=dealer_b.raw_key).get("/api/v1/me/").status_code == 200


def test_personal_tokens_of_one_person_share_one_rate_limit(dealer_a, api, in_tenant, monkeypatch):
    from crm.tenancy.services import credential_create
    from crm.tenancy.throttling import CredentialRateThrottle

    monkeypatch.setattr(CredentialRateThrottle, "THROTTLE_RATES", {"credential": "3/min"})
    with in_tenant(dealer_a):
        raws = [
            credential_create(actor=dealer_a.manager, kind="personal", name=f"t{i}", scopes=["admin:read"])[1]
            for i in range(2)
        ]
    codes = [api(key=raws[i % 2]).get("/api/v1/me/").status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
