from django.contrib import admin

from crm.core.models import NightlyRun
from crm.tenancy.admin import ReadOnlyTenantAdmin


@admin.register(NightlyRun)
class NightlyRunAdmin(ReadOnlyTenantAdmin):
    list_display = ["step", "run_date", "trigger", "status", "rows", "duration_ms", "started_at"]
    list_filter = ["status", "step"]
    readonly_fields = [
        "step",
        "run_date",
        "trigger",
        "status",
        "started_at",
        "finished_at",
        "rows",
        "duration_ms",
        "error",
    ]
