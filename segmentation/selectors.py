"""Reads of segmentation results: distributions, the R×F grid, tier migration, per-customer values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.tenancy.models import Membership
from customers.models import Customer, LifecycleStage
from customers.selectors import customer_visible_to
from segmentation.models import (
    TIER_ORDER,
    CustomerValue,
    Segment,
    SegmentationRun,
    SegmentationSettings,
    Tier,
    ValueHistory,
)

NO_TIER = ""  # prospects (no purchase yet) have no tier
NOT_TIERED = "none"  # how pages and the API name NO_TIER in a query string


def segmentation_settings() -> SegmentationSettings:
    """The dealership's settings, or unsaved defaults (nothing is written by a read)."""
    return SegmentationSettings.objects.first() or SegmentationSettings()


def latest_run() -> SegmentationRun | None:
    return SegmentationRun.objects.order_by("-finished_at", "-id").first()


def run_list() -> QuerySet[SegmentationRun]:
    return SegmentationRun.objects.order_by("-finished_at", "-id")


def customer_tier(*, customer_id: int) -> str:
    """The customer's value tier as of the last run ("" when not scored)."""
    return CustomerValue.objects.filter(customer_id=customer_id).values_list("tier", flat=True).first() or ""


def tier_label(tier: str) -> str:
    return str(Tier(tier).label) if tier else _("Not tiered (no purchase yet)")


def segment_label(segment: str) -> str:
    return str(Segment(segment).label) if segment else _("Not scored")


@dataclass(frozen=True)
class TierRow:
    tier: str
    label: str
    customers: int
    share: float  # % of all customers
    strategy: str


def tier_distribution(*, run: SegmentationRun | None, settings: SegmentationSettings) -> list[TierRow]:
    counts = run.tier_counts if run else {}
    total = sum(counts.values()) or 1
    rows = [
        TierRow(
            tier=str(tier),
            label=tier_label(tier),
            customers=counts.get(str(tier), 0),
            share=round(100 * counts.get(str(tier), 0) / total, 1),
            strategy=settings.strategy(tier),
        )
        for tier in TIER_ORDER
    ]
    if counts.get(NO_TIER):
        rows.append(
            TierRow(
                tier=NO_TIER,
                label=tier_label(NO_TIER),
                customers=counts[NO_TIER],
                share=round(100 * counts[NO_TIER] / total, 1),
                strategy=_("Turn prospects into buyers: follow up every lead and invite them to a test drive."),
            )
        )
    return rows


def segment_distribution(*, run: SegmentationRun | None) -> list[dict[str, Any]]:
    counts = run.segment_counts if run else {}
    total = sum(v for k, v in counts.items() if k) or 1
    return [
        {
            "segment": str(segment),
            "label": str(segment.label),
            "customers": counts.get(str(segment), 0),
            "share": round(100 * counts.get(str(segment), 0) / total, 1),
        }
        for segment in Segment
    ]


def lifecycle_distribution(*, run: SegmentationRun | None) -> list[dict[str, Any]]:
    counts = run.lifecycle_counts if run else {}
    return [
        {"stage": str(stage), "label": str(stage.label), "customers": counts.get(str(stage), 0)}
        for stage in LifecycleStage
    ]


@dataclass(frozen=True)
class GridCell:
    r: int
    f: int
    customers: int
    monetary: Decimal
    shade: int  # 15 … 100 from the lowest to the highest average spend; 0 = empty cell

    @property
    def dark(self) -> bool:
        return self.shade >= 55


def rf_grid(*, run: SegmentationRun | None) -> list[list[GridCell]]:
    """Rows R = 5 … 1, columns F = 1 … 5; each cell's customers and their average spend."""
    cells = {(c["r"], c["f"]): c for c in (run.grid if run else [])}
    # shade from the lowest to the highest average, so differences show even when all are high
    averages = [Decimal(c["monetary"]) for c in cells.values() if c["customers"]]
    low, high = min(averages, default=Decimal(0)), max(averages, default=Decimal(0))
    span = (high - low) or Decimal(1)
    grid = []
    for r in range(5, 0, -1):
        row = []
        for f in range(1, 6):
            cell = cells.get((r, f), {"customers": 0, "monetary": "0"})
            monetary = Decimal(cell["monetary"])
            row.append(
                GridCell(
                    r=r,
                    f=f,
                    customers=cell["customers"],
                    monetary=monetary,
                    shade=int(15 + 85 * (monetary - low) / span) if cell["customers"] else 0,
                )
            )
        grid.append(row)
    return grid


@dataclass(frozen=True)
class Migration:
    from_date: date
    to_date: date
    tiers: list[str]  # row and column keys, best first, "" (not tiered) last
    counts: dict[tuple[str, str], int]
    row_totals: dict[str, int]
    col_totals: dict[str, int]
    total: int

    def cell(self, from_tier: str, to_tier: str) -> int:
        return self.counts.get((from_tier, to_tier), 0)

    @property
    def moved_up(self) -> int:
        rank = {t: i for i, t in enumerate(self.tiers)}
        return sum(n for (a, b), n in self.counts.items() if rank[b] < rank[a])

    @property
    def moved_down(self) -> int:
        rank = {t: i for i, t in enumerate(self.tiers)}
        return sum(n for (a, b), n in self.counts.items() if rank[b] > rank[a])


def _state_on_sql(alias: str) -> str:
    return f"""SELECT customer_id, tier FROM segmentation_valuehistory
                WHERE valid_from <= %({alias})s AND (valid_to IS NULL OR valid_to > %({alias})s)"""


def tier_migration(*, from_date: date, to_date: date) -> Migration:
    """How many customers moved from each tier on `from_date` to each tier on `to_date` (the state of a
    day is the history period covering it; customers without one count as not tiered)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT coalesce(a.tier, ''), coalesce(b.tier, ''), count(*)
                  FROM ({_state_on_sql("d1")}) a
                  FULL JOIN ({_state_on_sql("d2")}) b ON b.customer_id = a.customer_id
                 GROUP BY 1, 2""",
            {"d1": from_date, "d2": to_date},
        )
        counts = {(a, b): n for a, b, n in cursor.fetchall()}
    tiers = [str(t) for t in TIER_ORDER] + [NO_TIER]
    return Migration(
        from_date=from_date,
        to_date=to_date,
        tiers=tiers,
        counts=counts,
        row_totals={t: sum(n for (a, _b), n in counts.items() if a == t) for t in tiers},
        col_totals={t: sum(n for (_a, b), n in counts.items() if b == t) for t in tiers},
        total=sum(counts.values()),
    )


def history_dates() -> tuple[date | None, date | None]:
    """The first and last day any history covers (for the migration page's defaults)."""
    first = ValueHistory.objects.order_by("valid_from").values_list("valid_from", flat=True).first()
    last_run = latest_run()
    return first, (last_run.run_date if last_run else None)


@dataclass
class ValueFilters:
    tier: str | None = None  # "" selects prospects (not tiered)
    segment: str | None = None
    r: int | None = None
    f: int | None = None
    m: int | None = None
    rfm_code: str = ""
    lifecycle_stage: str = ""
    # drill-down from the migration matrix: customers whose tier was `from_tier` on `from_date` and
    # `to_tier` on `to_date`
    from_date: date | None = None
    from_tier: str | None = None
    to_date: date | None = None
    to_tier: str | None = None


def _tier_on(day: date, tier: str) -> Any:
    covering = ValueHistory.objects.filter(customer_id=OuterRef("customer_id"), valid_from__lte=day).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=day)
    )
    return Exists(covering.filter(tier=tier)) if tier else ~Exists(covering.exclude(tier=""))


def customer_values(*, viewer: Membership, filters: ValueFilters | None = None) -> QuerySet[CustomerValue]:
    """Scores of the customers the viewer may see (consultants: their own book), best value first."""
    filters = filters or ValueFilters()
    queryset = (
        CustomerValue.objects.filter(customer__in=customer_visible_to(viewer=viewer))
        .select_related("customer", "customer__owner__user")
        .order_by("-r_score", "-f_score", "-m_score", "-monetary", "customer_id")
    )
    if filters.tier is not None:
        queryset = queryset.filter(tier=filters.tier)
    if filters.segment is not None:
        queryset = queryset.filter(segment=filters.segment)
    for field, value in (("r_score", filters.r), ("f_score", filters.f), ("m_score", filters.m)):
        if value is not None:
            queryset = queryset.filter(**{field: value})
    if filters.rfm_code:
        queryset = queryset.filter(rfm_code=filters.rfm_code)
    if filters.lifecycle_stage:
        queryset = queryset.filter(customer__lifecycle_stage=filters.lifecycle_stage)
    if filters.from_date and filters.from_tier is not None:
        queryset = queryset.filter(_tier_on(filters.from_date, filters.from_tier))
    if filters.to_date and filters.to_tier is not None:
        queryset = queryset.filter(_tier_on(filters.to_date, filters.to_tier))
    return queryset


def customer_value_history(*, customer: Customer) -> QuerySet[ValueHistory]:
    return ValueHistory.objects.filter(customer=customer).order_by("-valid_from", "-id")


def customer_value_panel(*, customer: Customer, viewer: Membership) -> dict[str, Any] | None:
    """The customer page's value card: scores, segment, tier and its strategy, and the tier history."""
    value = CustomerValue.objects.filter(customer=customer).first()
    settings = segmentation_settings()
    today = timezone.localdate()
    return {
        "value": value,
        "recency_days": value.recency_days(today) if value else None,
        "tier_label": tier_label(value.tier) if value else "",
        "segment_label": segment_label(value.segment) if value else "",
        "strategy": settings.strategy(value.tier) if value and value.tier else "",
        "history": list(customer_value_history(customer=customer)[:24]),
        "window_months": settings.window_months,
    }
