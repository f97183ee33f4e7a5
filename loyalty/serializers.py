"""API shapes of the loyalty programme."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from crm.api.serializers import DateRangeQuerySerializer, StrictInput
from loyalty.models import LedgerEntry, Level, Member, Redemption, Referral, Reward


class LevelSerializer(serializers.ModelSerializer[Level]):
    class Meta:
        model = Level
        fields = [
            "id",
            "code",
            "name",
            "rank",
            "min_points",
            "min_spend",
            "earn_multiplier",
            "by_hand_only",
            "benefits",
        ]
        read_only_fields = fields


class MemberSerializer(serializers.ModelSerializer[Member]):
    level = serializers.CharField(source="level.code", read_only=True, allow_null=True)
    customer_name = serializers.CharField(source="customer.name", read_only=True)

    class Meta:
        model = Member
        fields = [
            "id",
            "customer",
            "customer_name",
            "level",
            "level_locked",
            "level_since",
            "points_balance",
            "joined_on",
            "created_at",
        ]
        read_only_fields = fields


class MemberCreateSerializer(StrictInput, serializers.Serializer[Any]):
    customer = serializers.IntegerField(min_value=1)


class AdjustSerializer(StrictInput, serializers.Serializer[Any]):
    points = serializers.IntegerField(min_value=-10_000_000, max_value=10_000_000)
    note = serializers.CharField(max_length=300)


class LedgerEntrySerializer(serializers.ModelSerializer[LedgerEntry]):
    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "member",
            "kind",
            "points",
            "occurred_at",
            "expires_on",
            "reason",
            "source",
            "actor",
            "order",
            "redemption",
            "referral",
            "ticket",
            "merged_from",
            "created_at",
        ]
        read_only_fields = fields


class RewardSerializer(serializers.ModelSerializer[Reward]):
    min_level = serializers.CharField(source="min_level.code", read_only=True, allow_null=True)

    class Meta:
        model = Reward
        fields = ["id", "name", "kind", "description", "points_cost", "stock", "min_level", "is_active"]
        read_only_fields = fields


class RedemptionSerializer(serializers.ModelSerializer[Redemption]):
    class Meta:
        model = Redemption
        fields = [
            "id",
            "member",
            "reward",
            "quantity",
            "points",
            "status",
            "idempotency_key",
            "voucher_code",
            "note",
            "created_by",
            "created_at",
            "cancelled_at",
            "cancelled_by",
        ]
        read_only_fields = fields


class RedemptionCreateSerializer(StrictInput, serializers.Serializer[Any]):
    member = serializers.IntegerField(min_value=1)
    reward = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1, max_value=99, default=1)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    idempotency_key = serializers.CharField(
        max_length=80,
        required=False,
        help_text="8–80 of A-Z a-z 0-9 - _ : . — or send the Idempotency-Key header. A retry with the same key "
        "returns the original redemption (200) instead of redeeming again.",
    )


class CancelSerializer(StrictInput, serializers.Serializer[Any]):
    note = serializers.CharField(max_length=300)


class ReferralSerializer(serializers.ModelSerializer[Referral]):
    referrer_customer = serializers.IntegerField(source="referrer.customer_id", read_only=True)

    class Meta:
        model = Referral
        fields = [
            "id",
            "referrer",
            "referrer_customer",
            "referee",
            "status",
            "order",
            "rewarded_at",
            "note",
            "created_at",
        ]
        read_only_fields = fields


class ReferralCreateSerializer(StrictInput, serializers.Serializer[Any]):
    referrer = serializers.IntegerField(min_value=1, help_text="The referring customer's id.")
    referee = serializers.IntegerField(min_value=1, help_text="The referred customer's id.")
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class SummaryQuerySerializer(DateRangeQuerySerializer):
    """?start=&end= of the loyalty figures."""
