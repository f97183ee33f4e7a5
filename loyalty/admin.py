"""Platform operators see the loyalty programme read-only: points move only through services
(the ledger is append-only and the balance must equal it)."""

from django.contrib import admin

from crm.tenancy.admin import ReadOnlyTenantAdmin
from loyalty.models import (
    CareTemplate,
    EarningRule,
    LedgerEntry,
    Level,
    LevelChange,
    Member,
    Programme,
    Redemption,
    Referral,
    Reward,
)


def _fields(model: type) -> list[str]:
    return [f.name for f in model._meta.fields]  # type: ignore[attr-defined]


@admin.register(Programme)
class ProgrammeAdmin(ReadOnlyTenantAdmin):
    list_display = ["tenant", "name", "is_active", "starts_on", "expiry_months", "point_value"]
    readonly_fields = _fields(Programme)


@admin.register(Level)
class LevelAdmin(ReadOnlyTenantAdmin):
    list_display = ["name", "code", "rank", "min_points", "min_spend", "earn_multiplier", "by_hand_only", "is_active"]
    readonly_fields = _fields(Level)


@admin.register(EarningRule)
class EarningRuleAdmin(ReadOnlyTenantAdmin):
    list_display = ["order_kind", "points_per_yuan", "max_points_per_order", "is_active"]
    readonly_fields = _fields(EarningRule)


@admin.register(Member)
class MemberAdmin(ReadOnlyTenantAdmin):
    list_display = ["customer", "level", "points_balance", "joined_on"]
    list_filter = ["level"]
    readonly_fields = _fields(Member)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyTenantAdmin):
    list_display = ["occurred_at", "member", "kind", "points", "source", "reason"]
    list_filter = ["kind", "source"]
    readonly_fields = _fields(LedgerEntry)


@admin.register(Reward)
class RewardAdmin(ReadOnlyTenantAdmin):
    list_display = ["name", "kind", "points_cost", "stock", "is_active"]
    readonly_fields = _fields(Reward)


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "member", "reward", "quantity", "points", "status"]
    list_filter = ["status"]
    readonly_fields = _fields(Redemption)


@admin.register(Referral)
class ReferralAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "referrer", "referee", "status", "rewarded_at"]
    readonly_fields = _fields(Referral)


@admin.register(LevelChange)
class LevelChangeAdmin(ReadOnlyTenantAdmin):
    list_display = ["changed_on", "member", "from_level", "to_level", "reason"]
    readonly_fields = _fields(LevelChange)


@admin.register(CareTemplate)
class CareTemplateAdmin(ReadOnlyTenantAdmin):
    list_display = ["occasion", "is_active"]
    readonly_fields = _fields(CareTemplate)
