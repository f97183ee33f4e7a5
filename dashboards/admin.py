"""Platform operators see the dashboard's pre-aggregates read-only: the nightly step writes them."""

from django.contrib import admin

from crm.tenancy.admin import ReadOnlyTenantAdmin
from dashboards.models import CustomerStateDay, RevenueDay, RevenueDayTotal


@admin.register(CustomerStateDay)
class CustomerStateDayAdmin(ReadOnlyTenantAdmin):
    list_display = ["day", "owner", "tier", "stage", "customers", "accurate", "vehicles", "vehicles_returned", "points"]
    list_filter = ["day", "tier", "stage"]
    readonly_fields = [f.name for f in CustomerStateDay._meta.fields]


@admin.register(RevenueDay)
class RevenueDayAdmin(ReadOnlyTenantAdmin):
    list_display = ["day", "owner", "staff", "kind", "orders", "amount"]
    list_filter = ["day", "kind"]
    readonly_fields = [f.name for f in RevenueDay._meta.fields]


@admin.register(RevenueDayTotal)
class RevenueDayTotalAdmin(ReadOnlyTenantAdmin):
    list_display = ["day", "kind", "orders", "amount"]
    list_filter = ["day", "kind"]
    readonly_fields = [f.name for f in RevenueDayTotal._meta.fields]
