"""API shapes of follow-ups: the queue item (the customer's mobile masked unless the caller may see it
in full), its attempts, the inputs of planning, pushing an outcome, handing over and cancelling, the
rules and the manager figures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.api.serializers import BlankChoices, DateRangeQuerySerializer, StrictInput
from crm.tenancy.models import Membership
from customers.selectors import customer_masked_value
from followups.models import Attempt, Channel, Disposition, Followup, FollowupSettings, Reason
from followups.selectors import PersonLoad, TeamFigures, followup_attempts

KEY_HELP = (
    "8–80 of A-Z a-z 0-9 - _ : . — or send the Idempotency-Key header. A retry with the same key returns "
    "the attempt it recorded first (200) instead of recording it again."
)


class FollowupPersonSerializer(serializers.Serializer[Membership]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(source="display_name", read_only=True)


class FollowupCustomerSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    mobile = serializers.SerializerMethodField(help_text="Masked unless you own the customer (or are an integration).")

    def get_mobile(self, customer: Any) -> str:
        return customer_masked_value(viewer=self.context["membership"], customer=customer, field="mobile")


class FollowupVehicleSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    vin = serializers.CharField(read_only=True)
    plate = serializers.CharField(read_only=True)


class FollowupAttemptSerializer(BlankChoices, serializers.ModelSerializer[Attempt]):
    staff = FollowupPersonSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Attempt
        fields = [
            "id",
            "followup",
            "disposition",
            "notes",
            "callback_on",
            "occurred_at",
            "staff",
            "touchpoint",
            "idempotency_key",
        ]
        read_only_fields = fields


FOLLOWUP_FIELDS = [
    "id",
    "customer",
    "vehicle",
    "reason",
    "note",
    "due_from",
    "due_until",
    "scheduled_on",
    "assignee",
    "channel",
    "priority",
    "status",
    "attempts",
    "disposition",
    "outcome_notes",
    "ticket",
    "created_on",
    "completed_at",
    "updated_at",
]


class FollowupSerializer(BlankChoices, serializers.ModelSerializer[Followup]):
    customer = FollowupCustomerSerializer(read_only=True)
    vehicle = FollowupVehicleSerializer(read_only=True, allow_null=True)
    assignee = FollowupPersonSerializer(read_only=True, allow_null=True)
    ticket = serializers.IntegerField(source="ticket_id", read_only=True, allow_null=True)

    class Meta:
        model = Followup
        fields = FOLLOWUP_FIELDS
        read_only_fields = fields


class FollowupDetailSerializer(FollowupSerializer):
    attempt_log = serializers.SerializerMethodField(help_text="Every attempt, oldest first.")

    class Meta(FollowupSerializer.Meta):
        fields = [*FOLLOWUP_FIELDS, "attempt_log"]
        read_only_fields = fields

    @extend_schema_field(FollowupAttemptSerializer(many=True))
    def get_attempt_log(self, followup: Followup) -> Any:
        return FollowupAttemptSerializer(followup_attempts(followup=followup), many=True).data


class FollowupOutcomeSerializer(StrictInput, serializers.Serializer[Any]):
    disposition = serializers.ChoiceField(choices=Disposition.choices)
    notes = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
    callback_on = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Needed for disposition=callback."
    )
    occurred_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="When the call happened (now by default)."
    )
    idempotency_key = serializers.RegexField(
        r"^[-A-Za-z0-9_:.]{8,80}$", max_length=80, required=False, allow_blank=True, help_text=KEY_HELP
    )


class FollowupOutcomeResultSerializer(serializers.Serializer[Any]):
    """The recorded attempt and the follow-up's state after it."""

    attempt = FollowupAttemptSerializer()
    followup = FollowupSerializer()


class FollowupCreateSerializer(StrictInput, serializers.Serializer[Any]):
    customer = serializers.IntegerField(min_value=1)
    vehicle = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    reason = serializers.ChoiceField(choices=Reason.choices, default=Reason.MANUAL)
    due_from = serializers.DateField()
    due_until = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="The dealership's window after due_from by default."
    )
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.CALL)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    assignee = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="Membership id; you by default."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        today = timezone.localdate()
        errors: dict[str, list[str]] = {}
        if not today - timedelta(days=31) <= attrs["due_from"] <= today + timedelta(days=366):
            errors["due_from"] = ["Within a month back and a year ahead."]
        until = attrs.get("due_until")
        if until is not None and not attrs["due_from"] <= until <= attrs["due_from"] + timedelta(days=366):
            errors["due_until"] = ["On or after due_from, within a year of it."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class FollowupAssignSerializer(StrictInput, serializers.Serializer[Any]):
    assignee = serializers.IntegerField(min_value=1, allow_null=True, help_text="Membership id, or null: the pool.")


class FollowupCancelSerializer(StrictInput, serializers.Serializer[Any]):
    note = serializers.CharField(max_length=1000, help_text="Why it is cancelled.")


SETTINGS_FIELDS = [
    f.name for f in FollowupSettings._meta.concrete_fields if f.editable and f.name not in ("id", "tenant")
]


class FollowupSettingsSerializer(StrictInput, serializers.ModelSerializer[FollowupSettings]):
    delivery_days = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=365), min_length=0, max_length=6, required=False
    )

    class Meta:
        model = FollowupSettings
        fields = SETTINGS_FIELDS
        # The service validates the whole row; field validators here catch types and ranges first.
        validators: list[Any] = []


class FollowupSummaryQuerySerializer(DateRangeQuerySerializer):
    """?start=&end= of the follow-up figures."""


class FollowupLoadSerializer(serializers.Serializer[PersonLoad]):
    """The figures of a person's (or the team's) follow-ups."""

    due_today = serializers.IntegerField()
    overdue = serializers.IntegerField()
    upcoming = serializers.IntegerField()
    done = serializers.IntegerField()
    unreachable = serializers.IntegerField()
    expired = serializers.IntegerField()
    finished = serializers.IntegerField()
    completion_rate = serializers.FloatField(allow_null=True, help_text="done ÷ finished, in percent")


class FollowupPersonLoadSerializer(FollowupLoadSerializer):
    member = FollowupPersonSerializer(allow_null=True, help_text="null: the pool (nobody holds it).")


class FollowupReasonFiguresSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField()
    active = serializers.IntegerField()
    done = serializers.IntegerField()
    unreachable = serializers.IntegerField()


class FollowupTeamFiguresSerializer(serializers.Serializer[TeamFigures]):
    start = serializers.DateField(source="period.start")
    end = serializers.DateField(source="period.end")
    on = serializers.DateField(help_text="The day 'due today' and 'overdue' are counted on.")
    totals = serializers.SerializerMethodField()
    people = FollowupPersonLoadSerializer(many=True)
    by_reason = FollowupReasonFiguresSerializer(many=True)

    @extend_schema_field(FollowupLoadSerializer)
    def get_totals(self, figures: TeamFigures) -> dict[str, Any]:
        return dict(FollowupLoadSerializer(figures.totals).data)
