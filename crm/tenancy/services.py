"""Every write to tenants, memberships and API credentials."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError
from crm.tenancy.access import require
from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.context import tenant_context
from crm.tenancy.credentials import display_prefix, generate_raw_key, hash_key, parse_raw_key
from crm.tenancy.handover import member_handovers
from crm.tenancy.models import ApiCredential, AuditAction, Membership, Tenant
from crm.tenancy.roles import API_SCOPES, Role
from crm.tenancy.selectors import tenant_admin_count

User = get_user_model()


# --- Tenants ------------------------------------------------------------------------------------


@transaction.atomic
def tenant_create(
    *,
    name: str,
    code: str,
    time_zone: str = "Asia/Shanghai",
    locale: str = "zh-hans",
    first_admin_email: str | None = None,
    first_admin_name: str = "",
    site_url: str = "",
) -> Tenant:
    """Create a dealership and, optionally, invite its first tenant admin."""
    tenant = Tenant(name=name, code=code, time_zone=time_zone, locale=locale)
    tenant.full_clean()
    tenant.save()
    if first_admin_email:
        with tenant_context(tenant.pk):
            _invite(
                tenant=tenant,
                email=first_admin_email,
                full_name=first_admin_name,
                role=Role.TENANT_ADMIN,
                invited_by=None,
                site_url=site_url,
                meta=None,
            )
    return tenant


# --- Memberships ----------------------------------------------------------------------------------


def _split_name(full_name: str) -> tuple[str, str]:
    """Chinese names: the first character is the family name (复姓 are rare enough here)."""
    full_name = full_name.strip()
    if not full_name:
        return "", ""
    if " " in full_name:  # "Wei Zhang" style: given name first
        first, _sep, last = full_name.rpartition(" ")
        return first, last
    return full_name[1:], full_name[:1]


def _invite(
    *,
    tenant: Tenant,
    email: str,
    full_name: str,
    role: str,
    invited_by: Membership | None,
    site_url: str,
    meta: RequestMeta | None,
) -> Membership:
    email = User.objects.normalize_email(email).lower()
    if role not in Role.values or role == Role.INTEGRATION:
        raise ApplicationError(_("Choose a staff role."), fields={"role": [_("Not a staff role.")]})
    user = User.objects.filter(email__iexact=email).first()
    created_user = user is None
    if user is None:
        first_name, last_name = _split_name(full_name)
        user = User(username=email, email=email, first_name=first_name, last_name=last_name)
        user.set_unusable_password()
        user.full_clean()
        user.save()
    elif Membership.objects.filter(user=user).exists():
        raise ApplicationError(
            _("%(email)s already belongs to this dealership.") % {"email": email},
            fields={"email": [_("Already a member; reactivate or change the role instead.")]},
            code="duplicate",
        )
    membership = Membership(user=user, role=role)
    membership.full_clean(exclude=["tenant"])
    membership.save()
    audit_record(
        action=AuditAction.MEMBER_INVITED,
        actor=invited_by.user if invited_by else None,
        target=membership,
        summary=f"{email} · {membership.get_role_display()}",
        data={"role": role, "new_user": created_user},
        meta=meta,
    )
    _send_invitation(tenant=tenant, membership=membership, site_url=site_url)
    return membership


def _send_invitation(*, tenant: Tenant, membership: Membership, site_url: str) -> None:
    """Mail the invitation after commit; with a set-password link while the user has no password."""
    user = membership.user
    link = ""
    if not user.has_usable_password():
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        token = default_token_generator.make_token(user)
        link = site_url.rstrip("/") + reverse("accounts:set_password", kwargs={"uidb64": uid, "token": token})
    body = _("You have been invited to %(tenant)s on the dealership CRM as %(role)s.") % {
        "tenant": tenant.name,
        "role": membership.get_role_display(),
    }
    if link:
        body += "\n\n" + _("Choose your password here: %(link)s") % {"link": link}
    subject = _("Invitation to %(tenant)s") % {"tenant": tenant.name}
    transaction.on_commit(lambda: send_mail(subject, body, None, [user.email], fail_silently=False))


@transaction.atomic
def member_invite(
    *, actor: Membership, email: str, full_name: str, role: str, site_url: str, meta: RequestMeta | None = None
) -> Membership:
    require(actor, "users.manage")
    return _invite(
        tenant=actor.tenant, email=email, full_name=full_name, role=role, invited_by=actor, site_url=site_url, meta=meta
    )


@transaction.atomic
def member_resend_invitation(
    *, actor: Membership, membership: Membership, site_url: str, meta: RequestMeta | None = None
) -> None:
    """Send a fresh set-password link to someone who has not chosen a password yet."""
    require(actor, "users.manage")
    user = membership.user
    if not membership.is_active or membership.is_service_account:
        raise ApplicationError(_("Reactivate this person before inviting them again."), code="inactive")
    if user.has_usable_password():
        raise ApplicationError(
            _("This person has already chosen a password; they can use 'Forgot your password?'."), code="not_pending"
        )
    _send_invitation(tenant=actor.tenant, membership=membership, site_url=site_url)
    audit_record(
        action=AuditAction.MEMBER_INVITED,
        actor=actor.user,
        target=membership,
        summary=f"{user.email} (again)",
        data={"resent": True},
        meta=meta,
    )


def _guard_last_admin(membership: Membership, *, losing_admin: bool) -> None:
    if losing_admin and membership.role == Role.TENANT_ADMIN and membership.is_active and tenant_admin_count() <= 1:
        raise ApplicationError(_("A dealership needs at least one active tenant admin."), code="last_admin")


@transaction.atomic
def member_change_role(
    *, actor: Membership, membership: Membership, role: str, meta: RequestMeta | None = None
) -> Membership:
    require(actor, "users.manage")
    if membership.pk == actor.pk:
        raise ApplicationError(
            _("You cannot change your own role."), fields={"role": [_("Ask another admin.")]}, code="own_role"
        )
    if membership.is_service_account or role == Role.INTEGRATION or role not in Role.values:
        raise ApplicationError(_("Choose a staff role."), fields={"role": [_("Not a staff role.")]})
    if membership.role == role:
        return membership
    _guard_last_admin(membership, losing_admin=True)
    old_role = membership.role
    membership.role = role
    membership.full_clean(exclude=["tenant"])
    membership.save(update_fields=["role"])
    audit_record(
        action=AuditAction.MEMBER_ROLE_CHANGED,
        actor=actor.user,
        target=membership,
        summary=f"{membership.display_name}: {Role(old_role).label} → {Role(role).label}",
        data={"from": old_role, "to": role},
        meta=meta,
    )
    return membership


@transaction.atomic
def member_deactivate(
    *,
    actor: Membership,
    membership: Membership,
    hand_over_to: Membership | None = None,
    meta: RequestMeta | None = None,
) -> dict[str, int]:
    """Deactivate a staff member, revoke their tokens, and optionally hand what they hold (every
    `member_handovers` contribution: their customers, …) to a colleague.

    Returns how many records each contribution handed over, by its name.
    """
    require(actor, "users.manage")
    if membership.pk == actor.pk:
        raise ApplicationError(_("You cannot deactivate yourself."), code="self_deactivation")
    if not membership.is_active:
        raise ApplicationError(_("Already deactivated."), code="already_inactive")
    _guard_last_admin(membership, losing_admin=True)
    moved: dict[str, int] = {}
    if hand_over_to is not None:
        for handover in member_handovers.contributions():
            moved[handover.name] = handover.hand_over(
                actor=actor, from_member=membership, to_member=hand_over_to, meta=meta
            )
    membership.is_active = False
    membership.deactivated_at = timezone.now()
    membership.save(update_fields=["is_active", "deactivated_at"])
    ApiCredential.objects.filter(membership=membership, revoked_at__isnull=True).update(revoked_at=timezone.now())
    audit_record(
        action=AuditAction.MEMBER_DEACTIVATED,
        actor=actor.user,
        target=membership,
        summary=membership.display_name,
        data={"handed_over": moved, "to_membership": hand_over_to.pk if hand_over_to else None},
        meta=meta,
    )
    return moved


@transaction.atomic
def member_reactivate(*, actor: Membership, membership: Membership, meta: RequestMeta | None = None) -> Membership:
    require(actor, "users.manage")
    if membership.is_active:
        return membership
    membership.is_active = True
    membership.deactivated_at = None
    membership.save(update_fields=["is_active", "deactivated_at"])
    audit_record(
        action=AuditAction.MEMBER_REACTIVATED,
        actor=actor.user,
        target=membership,
        summary=membership.display_name,
        meta=meta,
    )
    return membership


# --- API credentials --------------------------------------------------------------------------------


def _validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if unknown or not scopes:
        raise ApplicationError(
            _("Choose at least one scope."),
            fields={"scopes": [_("Unknown scope: %s") % s for s in unknown] or [_("Required.")]},
        )
    return sorted(set(scopes))


@transaction.atomic
def credential_create(
    *,
    actor: Membership,
    kind: str,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    meta: RequestMeta | None = None,
) -> tuple[ApiCredential, str]:
    """Create a credential and return it with the raw key, which is never shown again."""
    scopes = _validate_scopes(scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError(_("The expiry must be in the future."), fields={"expires_at": [_("In the past.")]})
    if kind == ApiCredential.Kind.INTEGRATION:
        require(actor, "api_keys.manage")
        service_user = User(username=f"svc-{actor.tenant.code}-{secrets.token_hex(4)}", first_name=name[:150])
        service_user.set_unusable_password()
        service_user.save()
        acting_as = Membership(user=service_user, role=Role.INTEGRATION, is_service_account=True)
        acting_as.save()
    elif kind == ApiCredential.Kind.PERSONAL:
        require(actor, "tokens.personal")
        acting_as = actor
    else:
        raise ApplicationError(_("Unknown credential kind."), fields={"kind": [_("Choose integration or personal.")]})
    raw_key = generate_raw_key(kind=kind, tenant_id=actor.tenant_id)
    credential = ApiCredential(
        kind=kind,
        name=name,
        membership=acting_as,
        key_prefix=display_prefix(raw_key),
        key_hash=hash_key(raw_key),
        scopes=scopes,
        created_by=actor.user,
        expires_at=expires_at,
    )
    credential.full_clean(exclude=["tenant"])
    credential.save()
    audit_record(
        action=AuditAction.CREDENTIAL_CREATED,
        actor=actor.user,
        target=credential,
        summary=f"{credential.get_kind_display()}: {name}",
        data={"scopes": scopes, "kind": kind},
        meta=meta,
    )
    return credential, raw_key


@transaction.atomic
def credential_revoke(
    *, actor: Membership, credential: ApiCredential, meta: RequestMeta | None = None
) -> ApiCredential:
    own_token = credential.kind == ApiCredential.Kind.PERSONAL and credential.membership_id == actor.pk
    if not own_token:
        require(actor, "api_keys.manage")
    if credential.revoked_at is not None:
        return credential
    credential.revoked_at = timezone.now()
    credential.save(update_fields=["revoked_at"])
    if credential.kind == ApiCredential.Kind.INTEGRATION:
        service = credential.membership
        service.is_active = False
        service.deactivated_at = credential.revoked_at
        service.save(update_fields=["is_active", "deactivated_at"])
    audit_record(
        action=AuditAction.CREDENTIAL_REVOKED, actor=actor.user, target=credential, summary=credential.name, meta=meta
    )
    return credential


LAST_USED_RESOLUTION_SECONDS = 60


def credential_authenticate(*, raw_key: str) -> ApiCredential | None:
    """Find the live credential for a raw key inside the active tenant (the caller activated it).

    Records last use at most once a minute, so busy integrations do not write on every call.
    """
    if parse_raw_key(raw_key) is None:
        return None
    credential = (
        ApiCredential.objects.select_related("membership__user", "membership__tenant")
        .filter(key_hash=hash_key(raw_key))
        .first()
    )
    if credential is None or not credential.is_usable or not credential.membership.is_active:
        return None
    now = timezone.now()
    if (
        credential.last_used_at is None
        or (now - credential.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
    ):
        ApiCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        credential.last_used_at = now
    return credential


def tenant_admin_changes_record(
    *, operator: Any, tenant: Tenant, before: dict[str, Any], meta: RequestMeta | None = None
) -> None:
    """A platform operator's edit of a dealership in the Django admin (code, currency, `settings`,
    `is_active` and the fields the settings page has too) goes to that dealership's audit log as
    `tenant_settings_changed`, with each changed field's value before and after."""
    changed = {
        field: {"from": _plain(old), "to": _plain(getattr(tenant, field))}
        for field, old in before.items()
        if old != getattr(tenant, field)
    }
    if not changed:
        return
    with tenant_context(tenant.pk):
        audit_record(
            action=AuditAction.TENANT_SETTINGS_CHANGED,
            actor=operator,
            target=tenant,
            summary=_("Django admin: %(fields)s") % {"fields": ", ".join(sorted(changed))},
            data=changed,
            meta=meta,
        )


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | list | dict) or value is None else str(value)


def tenant_settings_update(
    *, actor: Membership, tenant: Tenant, changes: dict[str, object], meta: RequestMeta | None = None
) -> Tenant:
    require(actor, "settings.manage")
    allowed = {"name", "time_zone", "locale", "country", "business_hours", "holidays", "makeup_workdays"}
    with transaction.atomic():
        changed = {}
        for field, value in changes.items():
            if field not in allowed:
                raise ApplicationError(_("%(field)s cannot be changed here.") % {"field": field})
            if getattr(tenant, field) != value:
                changed[field] = value
                setattr(tenant, field, value)
        if not changed:
            return tenant
        tenant.full_clean()
        tenant.save(update_fields=sorted(changed))
        audit_record(
            action=AuditAction.TENANT_SETTINGS_CHANGED,
            actor=actor.user,
            target=tenant,
            summary=", ".join(sorted(changed)),
            data=changed,
            meta=meta,
        )
    return tenant
