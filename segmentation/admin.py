"""Platform operators see segmentation results read-only; dealerships change settings in the app."""

from django.contrib import admin

from crm.tenancy.admin import ReadOnlyTenantAdmin
from segmentation.models import CustomerValue, SegmentationRun, SegmentationSettings, ValueHistory


@admin.register(SegmentationSettings)
class SegmentationSettingsAdmin(ReadOnlyTenantAdmin):
    list_display = ["tenant", "scoring_mode", "window_months", "share_key", "share_consolidate", "updated_at"]
    readonly_fields = [f.name for f in SegmentationSettings._meta.fields]


@admin.register(CustomerValue)
class CustomerValueAdmin(ReadOnlyTenantAdmin):
    list_display = ["customer", "tier", "segment", "rfm_code", "frequency", "monetary", "scored_on"]
    list_filter = ["tier", "segment"]
    raw_id_fields = ["customer"]
    readonly_fields = [f.name for f in CustomerValue._meta.fields]


@admin.register(ValueHistory)
class ValueHistoryAdmin(ReadOnlyTenantAdmin):
    list_display = ["customer", "tier", "segment", "rfm_code", "lifecycle_stage", "valid_from", "valid_to"]
    list_filter = ["tier"]
    raw_id_fields = ["customer"]
    readonly_fields = [f.name for f in ValueHistory._meta.fields]


@admin.register(SegmentationRun)
class SegmentationRunAdmin(ReadOnlyTenantAdmin):
    list_display = ["run_date", "trigger", "customers", "scored", "rows_changed", "duration_ms", "finished_at"]
    readonly_fields = [f.name for f in SegmentationRun._meta.fields]
