from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from crm.accounts.models import SecurityEvent, User


@admin.register(User)
class CrmUserAdmin(UserAdmin):  # type: ignore[type-arg]
    fieldsets = (*UserAdmin.fieldsets, ("CRM", {"fields": ("preferred_language",)}))  # type: ignore[misc]


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["created_at", "kind", "username", "ip_address"]
    list_filter = ["kind"]
    search_fields = ["username"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
