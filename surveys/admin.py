"""Platform operators see surveys read-only."""

from django.contrib import admin

from crm.messaging.models import OutboxMessage
from crm.tenancy.admin import ReadOnlyTenantAdmin
from surveys.models import Invitation, Response, SurveyTemplate


@admin.register(SurveyTemplate)
class SurveyTemplateAdmin(ReadOnlyTenantAdmin):
    list_display = ["tenant", "code", "name", "moment", "is_active"]
    readonly_fields = [f.name for f in SurveyTemplate._meta.fields]


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyTenantAdmin):
    list_display = ["customer", "trigger", "channel", "status", "send_after", "answered_at"]
    list_filter = ["status", "trigger"]
    readonly_fields = [f.name for f in Invitation._meta.fields if f.name != "nonce"]
    exclude = ["nonce"]


@admin.register(Response)
class ResponseAdmin(ReadOnlyTenantAdmin):
    list_display = ["customer", "version", "submitted_at", "overall", "nps", "low_score"]
    readonly_fields = [f.name for f in Response._meta.fields]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyTenantAdmin):
    list_display = ["channel", "to", "purpose", "status", "attempts", "next_attempt_at", "sent_at"]
    list_filter = ["status", "channel"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
