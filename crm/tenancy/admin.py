"""Django admin for platform operators: tenants in full; tenant-owned rows only inside the
operator's active dealership (the scoped manager and RLS both apply to the admin too)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from crm.tenancy.audit import RequestMeta
from crm.tenancy.context import current_tenant_id
from crm.tenancy.models import ApiCredential, AuditEvent, Membership, Tenant
from crm.tenancy.services import tenant_admin_changes_record, tenant_create


class TenantScopedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Hidden unless the operator has an active dealership in this session; then scoped to it."""

    def _has_tenant(self) -> bool:
        return current_tenant_id() is not None

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._has_tenant() and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._has_tenant() and super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._has_tenant() and super().has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._has_tenant() and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._has_tenant() and super().has_delete_permission(request, obj)


class ReadOnlyTenantAdmin(TenantScopedAdmin):
    """For rows that only services may write (they send mail, guard invariants, audit)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TenantCreateForm(forms.ModelForm):  # type: ignore[type-arg]
    first_admin_email = forms.EmailField(
        required=False, help_text="Invite this person as the dealership's tenant admin."
    )
    first_admin_name = forms.CharField(required=False)

    class Meta:
        model = Tenant
        fields = ["name", "code", "time_zone", "locale", "currency"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "code", "time_zone", "locale", "is_active", "created_at"]
    list_filter = ["is_active", "locale"]
    search_fields = ["name", "code"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = TenantCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["name", "code", "time_zone", "locale", "currency", "first_admin_email", "first_admin_name"]
        return [
            "name",
            "code",
            "time_zone",
            "locale",
            "currency",
            "business_hours",
            "country",
            "holidays",
            "makeup_workdays",
            "settings",
            "is_active",
        ]

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if change:
            stored = Tenant.objects.get(pk=obj.pk)
            before = {field: getattr(stored, field) for field in form.changed_data if hasattr(stored, field)}
            super().save_model(request, obj, form, change)
            tenant_admin_changes_record(
                operator=request.user, tenant=obj, before=before, meta=RequestMeta.from_request(request)
            )
            return
        created = tenant_create(
            name=obj.name,
            code=obj.code,
            time_zone=obj.time_zone,
            locale=obj.locale,
            first_admin_email=form.cleaned_data.get("first_admin_email") or None,
            first_admin_name=form.cleaned_data.get("first_admin_name") or "",
            site_url=request.build_absolute_uri("/"),
        )
        obj.pk = created.pk


@admin.register(Membership)
class MembershipAdmin(ReadOnlyTenantAdmin):
    # Invitations, role changes and deactivation go through the staff pages.
    list_display = ["user", "role", "is_active", "is_service_account", "created_at"]
    list_filter = ["role", "is_active"]
    fields = ["user", "role", "is_active", "is_service_account", "created_at", "deactivated_at"]


@admin.register(ApiCredential)
class ApiCredentialAdmin(ReadOnlyTenantAdmin):
    list_display = ["name", "kind", "key_prefix", "last_used_at", "revoked_at"]
    readonly_fields = [
        "kind",
        "name",
        "membership",
        "key_prefix",
        "scopes",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "actor", "action", "summary", "ip_address"]
    list_filter = ["action"]
    search_fields = ["summary"]
