"""Tenant admin: invite, change roles, deactivate with hand-over, reactivate."""

from __future__ import annotations

import re
from datetime import UTC

import pytest
from django.core import mail

from crm.core.errors import ApplicationError, NotAllowed
from crm.tenancy import services
from crm.tenancy.models import ApiCredential, AuditEvent, Membership
from customers.models import Customer


def test_an_invitation_creates_the_account_and_mails_a_working_set_password_link(
    dealer_a, web, client, in_tenant, django_capture_on_commit_callbacks
):
    admin_client = web(dealer_a.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/settings/staff/", {"email": "New.Hire@Example.com", "full_name": "孙新人", "role": "service_advisor"}
        )
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.hire@example.com"]
    link = re.search(r"https?://\S+/accounts/set-password/\S+/", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[1]
    client.logout()
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    done = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else path,
        {"new_password1": "Brand-new-pass-2026", "new_password2": "Brand-new-pass-2026"},
    )
    assert done.status_code == 302
    assert client.login(username="new.hire@example.com", password="Brand-new-pass-2026")
    with in_tenant(dealer_a):
        membership = Membership.objects.get(user__email="new.hire@example.com")
        assert (membership.role, membership.user.last_name, membership.user.first_name) == (
            "service_advisor",
            "孙",
            "新人",
        )
        assert AuditEvent.objects.filter(action="member_invited", target_id=str(membership.pk)).exists()
    # the link is single-use
    client.logout()
    again = client.get(path, follow=True)
    assert "no longer valid" in again.content.decode() or "已失效" in again.content.decode()


def test_inviting_an_existing_member_is_a_field_error(dealer_a, web):
    response = web(dealer_a.admin).post(
        "/settings/staff/", {"email": dealer_a.consultant.user.email, "full_name": "", "role": "manager"}
    )
    assert response.status_code == 200
    assert response.context["invite_form"].errors["email"]


def test_a_person_may_belong_to_two_dealerships(dealer_a, dealer_b, in_tenant):
    with in_tenant(dealer_b):
        membership = services.member_invite(
            actor=dealer_b.admin, email=dealer_a.manager.user.email, full_name="", role="manager", site_url="http://x"
        )
    assert membership.user_id == dealer_a.manager.user_id
    from crm.tenancy.selectors import user_tenants

    assert {t.tenant_id for t in user_tenants(user_id=dealer_a.manager.user_id)} == {
        dealer_a.tenant.pk,
        dealer_b.tenant.pk,
    }


def test_only_tenant_admins_manage_staff(dealer_a, in_tenant, api):
    with in_tenant(dealer_a), pytest.raises(NotAllowed):
        services.member_change_role(actor=dealer_a.manager, membership=dealer_a.consultant, role="manager")
    response = api(dealer_a.manager).patch(
        f"/api/v1/memberships/{dealer_a.consultant.pk}/", {"role": "manager"}, format="json"
    )
    assert response.status_code == 403
    assert api(dealer_a.manager).get("/api/v1/memberships/").status_code == 200  # managers may look


def test_role_changes_are_audited(dealer_a, api, in_tenant):
    response = api(dealer_a.admin).patch(
        f"/api/v1/memberships/{dealer_a.consultant.pk}/", {"role": "manager"}, format="json"
    )
    assert response.status_code == 200 and response.json()["role"] == "manager"
    with in_tenant(dealer_a):
        event = AuditEvent.objects.get(action="member_role_changed")
        assert event.data == {"from": "sales_consultant", "to": "manager"}


def test_the_last_tenant_admin_cannot_be_demoted_or_deactivated(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        other_admin = services.member_invite(
            actor=dealer_a.admin, email="second@x.test", full_name="", role="tenant_admin", site_url=""
        )
        services.member_change_role(actor=other_admin, membership=dealer_a.admin, role="manager")
        with pytest.raises(ApplicationError) as error:
            services.member_deactivate(actor=other_admin, membership=other_admin)
        assert error.value.code == "self_deactivation"
        dealer_a.admin.refresh_from_db()
        with pytest.raises((ApplicationError, NotAllowed)):
            services.member_change_role(actor=dealer_a.admin, membership=other_admin, role="manager")


def test_deactivating_a_consultant_hands_over_customers_and_revokes_tokens_in_one_step(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        services.credential_create(actor=dealer_a.consultant, kind="personal", name="phone", scopes=["customers:read"])
    response = web(dealer_a.admin).post(
        f"/settings/staff/{dealer_a.consultant.pk}/", {"action": "deactivate", "hand_over_to": dealer_a.consultant2.pk}
    )
    assert response.status_code == 302
    with in_tenant(dealer_a):
        leaving = Membership.objects.get(pk=dealer_a.consultant.pk)
        assert not leaving.is_active and leaving.deactivated_at is not None
        assert Customer.objects.get().owner_id == dealer_a.consultant2.pk
        assert not ApiCredential.objects.filter(membership=leaving, revoked_at__isnull=True).exists()
        assert AuditEvent.objects.filter(action="customers_reassigned").get().data["count"] == 1
        assert AuditEvent.objects.filter(action="member_deactivated").exists()


def test_a_deactivated_member_loses_access_at_once(dealer_a, web):
    client = web(dealer_a.consultant)
    assert client.get("/customers/").status_code == 200
    web(dealer_a.admin).post(f"/settings/staff/{dealer_a.consultant.pk}/", {"action": "deactivate"})
    client.force_login(dealer_a.consultant.user)
    response = client.get("/customers/")
    assert response.status_code == 403
    assert "No dealership access" in response.content.decode() or "门店" in response.content.decode()


def test_customers_cannot_be_handed_to_an_inactive_or_non_owning_role(dealer_a, in_tenant, api):
    response = api(dealer_a.admin).post(
        "/api/v1/customers/reassign/",
        {"from_membership": dealer_a.consultant.pk, "to_membership": dealer_a.auditor.pk},
        format="json",
    )
    assert response.status_code == 400
    assert "to_member" in response.json()["error"]["fields"]
    with in_tenant(dealer_a):
        assert Customer.objects.get().owner_id == dealer_a.consultant.pk


def test_reactivation_restores_access(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        services.member_deactivate(actor=dealer_a.admin, membership=dealer_a.advisor)
        services.member_reactivate(actor=dealer_a.admin, membership=dealer_a.advisor)
        assert Membership.objects.get(pk=dealer_a.advisor.pk).is_active


def test_a_pending_invitation_can_be_sent_again_with_a_fresh_link(dealer_a, api, django_capture_on_commit_callbacks):
    client = api(dealer_a.admin)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/v1/memberships/", {"email": "late@x.test", "role": "cr_agent"}, format="json")
        again = client.post(f"/api/v1/memberships/{created.json()['id']}/resend-invitation/")
    assert again.status_code == 200
    assert len(mail.outbox) == 2 and "/accounts/set-password/" in mail.outbox[1].body
    # someone who already chose a password is told to use the reset instead
    refused = client.post(f"/api/v1/memberships/{dealer_a.manager.pk}/resend-invitation/")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "not_pending"


def test_times_show_in_the_dealerships_time_zone(dealer_a, web, in_tenant):
    from datetime import datetime

    dealer_a.tenant.time_zone = "Asia/Urumqi"
    dealer_a.tenant.save()
    with in_tenant(dealer_a):
        ApiCredential.objects.update(last_used_at=datetime(2026, 1, 1, 0, 0, tzinfo=UTC))
    page = web(dealer_a.admin).get("/settings/api-keys/").content.decode()
    assert "2026-01-01 06:00" in page  # UTC+6
