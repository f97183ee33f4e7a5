"""Reads about tenants, memberships, credentials and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection
from django.db.models import QuerySet

from crm.core.business_time import public_calendar
from crm.tenancy.models import ApiCredential, AuditEvent, Membership, Tenant


@dataclass(frozen=True)
class UserTenant:
    tenant_id: int
    tenant_name: str
    tenant_code: str
    role: str


def user_tenants(*, user_id: int) -> list[UserTenant]:
    """Every active dealership the user belongs to, across tenants.

    Memberships sit behind RLS, so this is the one cross-tenant read, done by the
    SECURITY DEFINER function crm_user_memberships() (migration tenancy 0002), which returns
    only the user's own rows.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT tenant_id, role FROM crm_user_memberships(%s)", [user_id])
        rows = cursor.fetchall()
    if not rows:
        return []
    tenants = {t.pk: t for t in Tenant.objects.filter(pk__in=[r[0] for r in rows], is_active=True)}
    result = [
        UserTenant(tenant_id=tid, tenant_name=tenants[tid].name, tenant_code=tenants[tid].code, role=role)
        for tid, role in rows
        if tid in tenants
    ]
    return sorted(result, key=lambda ut: ut.tenant_name)


def membership_for_user(*, user_id: int) -> Membership | None:
    """The user's active membership in the active tenant (RLS and the manager scope it)."""
    return (
        Membership.objects.select_related("user", "tenant")
        .filter(user_id=user_id, is_active=True, tenant__is_active=True)
        .first()
    )


def membership_list(*, include_inactive: bool = True) -> QuerySet[Membership]:
    queryset = Membership.objects.select_related("user").filter(is_service_account=False)
    if not include_inactive:
        queryset = queryset.filter(is_active=True)
    return queryset.order_by("-is_active", "role", "user__last_name", "user__first_name")


def members_who_can(capability: str) -> QuerySet[Membership]:
    """Active staff (no integration accounts) whose role holds `capability`, by name: the choices of
    every person picker (assignee, hand-over)."""
    from crm.tenancy.roles import CAPABILITIES

    roles = CAPABILITIES[capability][1]
    return (
        Membership.objects.filter(is_active=True, is_service_account=False, role__in=list(roles))
        .select_related("user")
        .order_by("user__last_name", "user__first_name")
    )


def tenant_admin_count() -> int:
    return Membership.objects.filter(role="tenant_admin", is_active=True).count()


def credential_list(*, viewer: Membership) -> QuerySet[ApiCredential]:
    """Integration keys for those who manage them, plus the viewer's own personal tokens."""
    queryset = ApiCredential.objects.select_related("membership__user", "created_by").order_by("-created_at")
    if viewer.can("api_keys.manage"):
        from django.db.models import Q

        return queryset.filter(Q(kind="integration") | Q(kind="personal", membership=viewer))
    return queryset.filter(kind="personal", membership=viewer)


def audit_event_list() -> QuerySet[AuditEvent]:
    return AuditEvent.objects.select_related("actor").order_by("-created_at", "-id")


@dataclass(frozen=True)
class PublicHolidays:
    """What the settings page says about the dealership's country's public holidays."""

    year: int  # the dealership's current year
    package: str  # "chinesecalendar 1.11.0"; "" when none ships for the country
    first_year: int | None
    last_year: int | None
    uncovered_year: int | None  # the current or the coming year, if the calendar lacks it
    holidays: list[tuple[date, date]]  # this year's days off, as runs of consecutive days
    makeup_days: list[date]  # this year's make-up working days


def _runs(days: list[date]) -> list[tuple[date, date]]:
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def public_holidays_for(*, tenant: Tenant, today: date) -> PublicHolidays:
    """The country's calendar as it stands for `today` (the dealership's local date): its years, this
    year's days, and the first of this year and the coming one that it does not cover."""
    calendar = public_calendar(tenant.country)
    if calendar is None:
        return PublicHolidays(today.year, "", None, None, None, [], [])
    uncovered = next((y for y in (today.year, today.year + 1) if not calendar.covers(y)), None)
    return PublicHolidays(
        year=today.year,
        package=calendar.package,
        first_year=calendar.first_year,
        last_year=calendar.last_year,
        uncovered_year=uncovered,
        holidays=_runs([d for d in calendar.holidays if d.year == today.year]),
        makeup_days=sorted(d for d in calendar.makeup_days if d.year == today.year),
    )
