"""Platform operators see complaint data read-only; dealerships work tickets in the app."""

from django.contrib import admin

from complaints.models import ComplaintCategory, SlaPolicy, Ticket, TicketEvent
from crm.tenancy.admin import ReadOnlyTenantAdmin


@admin.register(Ticket)
class TicketAdmin(ReadOnlyTenantAdmin):
    list_display = ["number", "subject", "status", "severity", "category", "assignee", "opened_at", "resolution_due_at"]
    list_filter = ["status", "severity"]
    search_fields = ["=number"]
    readonly_fields = [f.name for f in Ticket._meta.fields]


@admin.register(TicketEvent)
class TicketEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["ticket", "kind", "from_status", "to_status", "actor", "created_at"]
    list_filter = ["kind"]
    readonly_fields = [f.name for f in TicketEvent._meta.fields]


@admin.register(ComplaintCategory)
class ComplaintCategoryAdmin(ReadOnlyTenantAdmin):
    list_display = ["tenant", "code", "name", "is_active"]
    readonly_fields = [f.name for f in ComplaintCategory._meta.fields]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(ReadOnlyTenantAdmin):
    list_display = ["tenant", "severity", "category", "first_response_minutes", "resolution_minutes"]
    readonly_fields = [f.name for f in SlaPolicy._meta.fields]
