"""API shapes of segmentation: customer values, history, runs, distributions, migration, settings."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from crm.api.serializers import BlankChoices, StrictInput
from customers.models import LifecycleStage
from segmentation.models import (
    CustomerValue,
    RedListEffect,
    ScoringMode,
    SegmentationRun,
    SegmentationSettings,
    ValueHistory,
)
from segmentation.services import SETTINGS_FIELDS


class ValueHistorySerializer(BlankChoices, serializers.ModelSerializer[ValueHistory]):
    class Meta:
        model = ValueHistory
        fields = ["tier", "segment", "rfm_code", "lifecycle_stage", "valid_from", "valid_to"]
        read_only_fields = fields


class CustomerValueSerializer(BlankChoices, serializers.ModelSerializer[CustomerValue]):
    customer = serializers.IntegerField(source="customer_id", read_only=True)
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    customer_external_id = serializers.CharField(source="customer.external_id", read_only=True)
    lifecycle_stage = serializers.ChoiceField(
        source="customer.lifecycle_stage", choices=LifecycleStage.choices, read_only=True
    )
    relationship_class = serializers.CharField(source="customer.relationship_class", read_only=True)
    recency_days = serializers.SerializerMethodField()

    class Meta:
        model = CustomerValue
        fields = [
            "customer",
            "customer_name",
            "customer_external_id",
            "tier",
            "segment",
            "rfm_code",
            "r_score",
            "f_score",
            "m_score",
            "recency_days",
            "last_activity_on",
            "frequency",
            "monetary",
            "first_order_on",
            "last_order_on",
            "orders_total",
            "vehicle_purchases",
            "lifecycle_stage",
            "relationship_class",
            "scored_on",
        ]
        read_only_fields = fields

    def get_recency_days(self, value: CustomerValue) -> int | None:
        return value.recency_days(timezone.localdate())


class CustomerValueDetailSerializer(CustomerValueSerializer):
    history = serializers.SerializerMethodField()
    strategy = serializers.SerializerMethodField()

    class Meta(CustomerValueSerializer.Meta):
        fields = [*CustomerValueSerializer.Meta.fields, "strategy", "history"]
        read_only_fields = fields

    def get_history(self, value: CustomerValue) -> list[dict[str, Any]]:
        from segmentation.selectors import customer_value_history

        return ValueHistorySerializer(customer_value_history(customer=value.customer), many=True).data  # type: ignore[return-value]

    def get_strategy(self, value: CustomerValue) -> str:
        return str(self.context["settings"].strategy(value.tier)) if value.tier else ""


class SegmentationRunSerializer(serializers.ModelSerializer[SegmentationRun]):
    class Meta:
        model = SegmentationRun
        fields = [
            "id",
            "run_date",
            "started_at",
            "finished_at",
            "duration_ms",
            "trigger",
            "window_start",
            "customers",
            "scored",
            "aggregates_refreshed",
            "rows_changed",
            "scoring_mode",
            "boundaries",
            "tier_counts",
            "segment_counts",
            "lifecycle_counts",
            "grid",
        ]
        read_only_fields = fields


class RunStateSerializer(serializers.Serializer[Any]):
    status = serializers.CharField(help_text="running, succeeded, failed, skipped, or never")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    phase = serializers.CharField(allow_blank=True, help_text="While running: aggregates, scores, writing, history")
    step = serializers.IntegerField(allow_null=True)
    of = serializers.IntegerField(allow_null=True)


class TierRowSerializer(serializers.Serializer[Any]):
    tier = serializers.CharField(help_text='"" = prospects, not tiered')
    tier_label = serializers.CharField(source="label")
    customers = serializers.IntegerField()
    share = serializers.FloatField(help_text="% of all customers")
    strategy = serializers.CharField()


class DistributionSerializer(serializers.Serializer[Any]):
    run = SegmentationRunSerializer(allow_null=True)
    tiers = TierRowSerializer(many=True)
    segments = serializers.ListField(child=serializers.DictField())
    lifecycle_stages = serializers.ListField(child=serializers.DictField())


class MigrationQuerySerializer(serializers.Serializer[Any]):
    from_date = serializers.DateField()
    to_date = serializers.DateField()

    def validate(self, attrs: dict[str, date]) -> dict[str, date]:
        if attrs["from_date"] > attrs["to_date"]:
            raise serializers.ValidationError({"to_date": ["The end is before the start."]})
        return attrs


class MigrationCellSerializer(serializers.Serializer[Any]):
    from_tier = serializers.CharField()
    to_tier = serializers.CharField()
    customers = serializers.IntegerField()


class MigrationSerializer(serializers.Serializer[Any]):
    from_date = serializers.DateField()
    to_date = serializers.DateField()
    total = serializers.IntegerField()
    moved_up = serializers.IntegerField()
    moved_down = serializers.IntegerField()
    cells = MigrationCellSerializer(many=True)


class SettingsSerializer(StrictInput, serializers.ModelSerializer[SegmentationSettings]):
    scoring_mode = serializers.ChoiceField(choices=ScoringMode.choices, required=False)
    red_list_effect = serializers.ChoiceField(choices=RedListEffect.choices, required=False)
    strategies = serializers.SerializerMethodField()

    class Meta:
        model = SegmentationSettings
        fields = [*SETTINGS_FIELDS, "strategies", "updated_at"]
        read_only_fields = ["strategies", "updated_at"]
        # The service validates the whole row (shares add up, limits rise); field validators here
        # catch types and ranges first.
        validators: list[Any] = []

    def get_strategies(self, settings: SegmentationSettings) -> dict[str, str]:
        """The strategy staff see per tier (the dealership's own, or the standard one)."""
        return {tier: settings.strategy(tier) for tier in ("key", "consolidate", "maintain", "exit")}
