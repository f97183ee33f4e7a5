"""API shapes of complaint tickets: output (contact mobile masked unless allowed), inputs, metrics."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from complaints.models import Channel, Severity, Status, Ticket, TicketEvent
from complaints.selectors import ticket_contact_mobile
from crm.api.serializers import BlankChoices, DateRangeQuerySerializer, StrictInput


class TicketEventSerializer(BlankChoices, serializers.ModelSerializer[TicketEvent]):
    actor_name = serializers.SerializerMethodField()

    class Meta:
        model = TicketEvent
        fields = ["id", "kind", "from_status", "to_status", "actor", "actor_name", "note", "data", "created_at"]
        read_only_fields = fields

    def get_actor_name(self, event: TicketEvent) -> str:
        return event.actor.display_name if event.actor else ""


class RevealedMobileSerializer(serializers.Serializer[Any]):
    contact_mobile = serializers.CharField()


class TicketSerializer(BlankChoices, serializers.ModelSerializer[Ticket]):
    contact_mobile = serializers.SerializerMethodField()
    category_code = serializers.CharField(source="category.code", read_only=True)
    category_name = serializers.CharField(source="category.name", read_only=True)
    assignee_name = serializers.SerializerMethodField()
    paused_seconds = serializers.SerializerMethodField(
        help_text="Business time waited on the customer so far, in seconds, exact (not rounded)."
    )

    class Meta:
        model = Ticket
        fields = [
            "id",
            "number",
            "status",
            "customer",
            "vehicle",
            "contact_name",
            "contact_mobile",
            "channel",
            "category",
            "category_code",
            "category_name",
            "severity",
            "subject",
            "description",
            "source",
            "assignee",
            "assignee_name",
            "opened_at",
            "response_due_at",
            "resolution_due_at",
            "first_response_at",
            "resolved_at",
            "response_minutes",
            "resolution_minutes",
            "paused_at",
            "paused_seconds",
            "response_breached_at",
            "resolution_breached_at",
            "root_cause",
            "resolution",
            "compensation_amount",
            "compensation_points",
            "compensation_note",
            "follow_up_due_on",
            "followed_up_at",
            "reopen_count",
            "resolution_failed",
            "updated_at",
        ]
        read_only_fields = fields

    def get_contact_mobile(self, ticket: Ticket) -> str:
        return ticket_contact_mobile(viewer=self.context["membership"], ticket=ticket)

    def get_paused_seconds(self, ticket: Ticket) -> float:
        return ticket.paused_duration.total_seconds()

    def get_assignee_name(self, ticket: Ticket) -> str:
        return ticket.assignee.display_name if ticket.assignee else ""


class TicketCreateSerializer(StrictInput, serializers.Serializer[Any]):
    contact_name = serializers.CharField(max_length=100)
    contact_mobile = serializers.CharField(max_length=20)
    channel = serializers.ChoiceField(choices=Channel.choices)
    category = serializers.SlugField(help_text="Category code, e.g. repair_quality.")
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.NORMAL)
    subject = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=8000)
    customer = serializers.IntegerField(required=False, allow_null=True)
    vehicle = serializers.IntegerField(required=False, allow_null=True)
    assignee = serializers.IntegerField(required=False, allow_null=True, help_text="Membership id.")


class AdvanceSerializer(StrictInput, serializers.Serializer[Any]):
    to_status = serializers.ChoiceField(choices=Status.choices, help_text="The next step (steps cannot be skipped).")
    note = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
    root_cause = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
    resolution = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
    compensation_amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=Decimal("0"), required=False, default=Decimal("0")
    )
    compensation_points = serializers.IntegerField(min_value=0, required=False, default=0)
    compensation_note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class NoteSerializer(StrictInput, serializers.Serializer[Any]):
    note = serializers.CharField(max_length=4000)


class AssignSerializer(StrictInput, serializers.Serializer[Any]):
    assignee = serializers.IntegerField(help_text="Membership id.")


class AttachmentSerializer(serializers.Serializer[Any]):
    file = serializers.FileField()


class AttachmentOutSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    original_name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class MetricsQuerySerializer(DateRangeQuerySerializer):
    """?start=&end= of the complaint figures."""
