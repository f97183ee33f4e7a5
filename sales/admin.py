"""Platform operators see sales inside their active dealership. The rules, the defeat reasons and
the demo vehicles may be corrected here; leads, test drives and quotes are read-only (they move only
through sales.services, which keeps their history), and the lead history is append-only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from crm.tenancy.admin import ReadOnlyTenantAdmin, TenantScopedAdmin
from sales.models import (
    Conflict,
    ConsultantDuty,
    DefeatReason,
    DemoVehicle,
    Lead,
    LeadEvent,
    Quote,
    SalesSettings,
    ShowroomVisit,
    TestDrive,
)


@admin.register(SalesSettings)
class SalesSettingsAdmin(TenantScopedAdmin):
    list_display = ["__str__", "tenant", "response_minutes", "reclaim_hours", "protection_days", "auto_assign"]
    readonly_fields = ["tenant"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one row per dealership, made with the defaults on first use

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DefeatReason)
class DefeatReasonAdmin(TenantScopedAdmin):
    list_display = ["label", "code", "needs_competitor", "is_active", "position"]
    readonly_fields = ["tenant"]


@admin.register(DemoVehicle)
class DemoVehicleAdmin(TenantScopedAdmin):
    list_display = ["__str__", "plate", "vin", "is_active"]
    readonly_fields = ["tenant"]


@admin.register(ConsultantDuty)
class ConsultantDutyAdmin(TenantScopedAdmin):
    list_display = ["member", "on_duty", "brands", "last_assigned_at"]
    readonly_fields = ["tenant", "member", "last_assigned_at"]


@admin.register(Lead)
class LeadAdmin(ReadOnlyTenantAdmin):
    list_display = ["name", "stage", "level", "source", "owner", "created_at", "next_followup_on"]
    list_filter = ["stage", "level", "source"]
    search_fields = ["name", "external_id"]


@admin.register(LeadEvent)
class LeadEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["lead", "kind", "at", "actor", "summary"]
    list_filter = ["kind"]


@admin.register(Conflict)
class ConflictAdmin(ReadOnlyTenantAdmin):
    list_display = ["lead", "claimant", "owner", "status", "created_at"]


@admin.register(ShowroomVisit)
class ShowroomVisitAdmin(ReadOnlyTenantAdmin):
    list_display = ["arrived_at", "left_at", "party_size", "first_visit", "consultant", "lead"]


@admin.register(TestDrive)
class TestDriveAdmin(ReadOnlyTenantAdmin):
    list_display = ["vehicle", "starts_at", "ends_at", "status", "lead"]
    list_filter = ["status"]


@admin.register(Quote)
class QuoteAdmin(ReadOnlyTenantAdmin):
    list_display = ["lead", "version", "brand", "series", "total", "created_at"]
