from django.contrib import admin

from dashboards.models import CustomerStateDay, RevenueDay


@admin.register(CustomerStateDay)
class CustomerStateDayAdmin(admin.ModelAdmin):
    """Read-only: written by the nightly step `dashboards.figures`."""

    list_display = ("tenant", "day", "owner", "tier", "stage", "customers", "vehicles", "vehicles_returned", "points")
    list_filter = ("day", "tier", "stage")
    search_fields = ("tenant__name",)

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(RevenueDay)
class RevenueDayAdmin(admin.ModelAdmin):
    """Read-only: written by the nightly step `dashboards.figures`."""

    list_display = ("tenant", "day", "owner", "staff", "kind", "orders", "amount")
    list_filter = ("day", "kind")
    search_fields = ("tenant__name",)

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
