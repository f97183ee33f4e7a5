"""Platform operators see follow-ups inside their active dealership. The rules may be corrected here;
a follow-up's planning (days, holder, channel, priority) too, but never its outcome: status, attempts
and what came of them move only through followups.services. Attempts are read-only (append-only)."""

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from crm.tenancy.admin import ReadOnlyTenantAdmin, TenantScopedAdmin
from followups.models import Attempt, Followup, FollowupSettings


def _fields(model: type) -> list[str]:
    return [f.name for f in model._meta.fields]  # type: ignore[attr-defined]


@admin.register(FollowupSettings)
class FollowupSettingsAdmin(TenantScopedAdmin):
    list_display = ["__str__", "tenant", "window_days", "max_attempts", "daily_cap", "owner_calls"]
    readonly_fields = ["tenant"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one row per dealership, made with the defaults on first use

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FollowupAdminForm(forms.ModelForm):
    """The admin builds the Meta (fields built at import would query a tenant-owned table)."""

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        vehicle, assignee = data.get("vehicle"), data.get("assignee")
        if vehicle is not None and vehicle.customer_id != self.instance.customer_id:
            self.add_error("vehicle", "Not a vehicle of this customer.")
        if assignee is not None and not (assignee.is_active and assignee.can("followups.work")):
            self.add_error("assignee", "Not an active colleague who works follow-ups.")
        return data


@admin.register(Followup)
class FollowupAdmin(TenantScopedAdmin):
    form = FollowupAdminForm
    list_display = ["scheduled_on", "customer", "reason", "status", "assignee", "channel", "priority", "attempts"]
    list_filter = ["status", "reason", "channel", "priority", "scheduled_on"]
    search_fields = ["customer__name"]
    raw_id_fields = ["vehicle", "assignee"]
    date_hierarchy = "scheduled_on"
    readonly_fields = [
        "customer",
        "reason",
        "source_key",
        "ticket",
        "status",
        "attempts",
        "disposition",
        "outcome_notes",
        "completed_at",
        "completed_by",
        "created_by",
        "created_on",
        "created_at",
        "updated_at",
    ]
    list_select_related = ["customer", "assignee__user"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # planned by the nightly rules or followups.services.followup_create

    def save_model(self, request: HttpRequest, obj: Followup, form: Any, change: bool) -> None:
        obj.updated_at = timezone.now()  # incremental API pulls (updated_since) see the change
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # attempts and contacts hang off it; cancel it instead


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyTenantAdmin):
    list_display = ["occurred_at", "followup", "disposition", "staff", "callback_on"]
    list_filter = ["disposition"]
    search_fields = ["followup__customer__name", "=idempotency_key"]
    readonly_fields = _fields(Attempt)
