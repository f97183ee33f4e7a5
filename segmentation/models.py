"""Segmentation: RFM scores, value tiers, lifecycle, their history, and each dealership's settings.

How the nightly engine fills these tables is in `segmentation/engine.py` and docs/segmentation.md.
"""

from __future__ import annotations

import itertools

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.tenancy.models import TenantOwnedModel, tenant_foreign_key
from customers.models import Customer, LifecycleStage


class Tier(models.TextChoices):
    """Value tiers (80/20), best first."""

    KEY = "key", pgettext_lazy("value tier", "Key")
    CONSOLIDATE = "consolidate", _("Consolidate")
    MAINTAIN = "maintain", _("Maintain")
    EXIT = "exit", _("Exit")


TIER_ORDER = [Tier.KEY, Tier.CONSOLIDATE, Tier.MAINTAIN, Tier.EXIT]

# What staff should do with each tier (../shared/domain.md); a dealership may write its own.
DEFAULT_STRATEGIES = {
    Tier.KEY: _("Dedicated service and team follow-up; green channel for every request; dig deeper into their needs."),
    Tier.CONSOLIDATE: _(
        "Grow our share of their spending: cross-sell and upsell, follow up more closely, watch for risk."
    ),
    Tier.MAINTAIN: _("Keep the cost of care low, hold our current share, control risk."),
    Tier.EXIT: _("Minimum upkeep; do not spend scarce resources here."),
}


class Segment(models.TextChoices):
    """The standard RFM segments; the R × FM grid that assigns them is `engine.SEGMENT_GRID`."""

    CHAMPIONS = "champions", _("Champions")
    LOYAL = "loyal", _("Loyal customers")
    POTENTIAL_LOYALIST = "potential_loyalist", _("Potential loyalists")
    NEW = "new", _("New customers")
    PROMISING = "promising", _("Promising")
    NEED_ATTENTION = "need_attention", _("Need attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to sleep")
    AT_RISK = "at_risk", _("At risk")
    CANT_LOSE = "cant_lose", _("Can't lose them")
    HIBERNATING = "hibernating", _("Hibernating")
    LOST = "lost", _("Lost")


class ScoringMode(models.TextChoices):
    QUINTILE = "quintile", _("Quintiles within the dealership")
    THRESHOLDS = "thresholds", _("Thresholds set by the dealership")


class RedListEffect(models.TextChoices):
    NONE = "none", _("No effect on the tier")
    AT_LEAST_CONSOLIDATE = "at_least_consolidate", _("Never below Consolidate")
    ALWAYS_KEY = "always_key", _("Always Key")


def _four_ascending(values: list[int] | list[float], what: str) -> None:
    if len(values) != 4:
        raise ValidationError(_("Give four limits, one between each pair of scores (%(what)s).") % {"what": what})
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValidationError(_("The limits must rise from left to right (%(what)s).") % {"what": what})
    if values[0] < 0:
        raise ValidationError(_("Limits cannot be negative (%(what)s).") % {"what": what})


class SegmentationSettings(TenantOwnedModel):
    """One row per dealership; created with the defaults on first use."""

    scoring_mode = models.CharField(
        _("scoring"), max_length=12, choices=ScoringMode.choices, default=ScoringMode.QUINTILE
    )
    window_months = models.PositiveSmallIntegerField(
        _("window (months)"),
        default=36,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text=_("Frequency and monetary count the orders of this many months back."),
    )
    # Thresholds mode. Recency: days since the last visit, score 5 within the first limit … 1 beyond
    # the last. Frequency and monetary: score 2 from the first limit up, … 5 from the last.
    recency_days = ArrayField(
        models.PositiveIntegerField(), size=4, default=list, blank=True, verbose_name=_("recency limits (days)")
    )
    frequency_limits = ArrayField(
        models.PositiveIntegerField(), size=4, default=list, blank=True, verbose_name=_("frequency limits (orders)")
    )
    monetary_limits = ArrayField(
        models.DecimalField(max_digits=14, decimal_places=2),
        size=4,
        default=list,
        blank=True,
        verbose_name=_("monetary limits (CNY)"),
    )
    share_key = models.PositiveSmallIntegerField(_("Key share (%)"), default=15, validators=[MaxValueValidator(100)])
    share_consolidate = models.PositiveSmallIntegerField(
        _("Consolidate share (%)"), default=35, validators=[MaxValueValidator(100)]
    )
    share_maintain = models.PositiveSmallIntegerField(
        _("Maintain share (%)"), default=35, validators=[MaxValueValidator(100)]
    )
    share_exit = models.PositiveSmallIntegerField(_("Exit share (%)"), default=15, validators=[MaxValueValidator(100)])
    red_list_effect = models.CharField(
        _("red list"), max_length=24, choices=RedListEffect.choices, default=RedListEffect.AT_LEAST_CONSOLIDATE
    )
    dormant_after_days = models.PositiveIntegerField(
        _("dormant after (days without a visit)"), default=365, validators=[MinValueValidator(1)]
    )
    lost_after_days = models.PositiveIntegerField(
        _("lost after (days without a visit)"), default=730, validators=[MinValueValidator(1)]
    )
    loyal_min_orders = models.PositiveSmallIntegerField(
        _("loyal from (orders in the window)"), default=8, validators=[MinValueValidator(2)]
    )
    strategy_key = models.TextField(_("Key strategy"), blank=True, max_length=500)
    strategy_consolidate = models.TextField(_("Consolidate strategy"), blank=True, max_length=500)
    strategy_maintain = models.TextField(_("Maintain strategy"), blank=True, max_length=500)
    strategy_exit = models.TextField(_("Exit strategy"), blank=True, max_length=500)
    # The window the per-customer aggregates reflect (set by the engine; empty = not built yet).
    aggregates_window_start = models.DateField(null=True, blank=True, editable=False)
    # The engine's own bookkeeping between runs: score and tier edges with their ranks, the
    # distribution's counts, the last run date and a fingerprint of the settings it used.
    engine_state = models.JSONField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("segmentation settings")
        verbose_name_plural = _("segmentation settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="segmentation_settings_one_per_tenant")]

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        shares = (self.share_key, self.share_consolidate, self.share_maintain, self.share_exit)
        if None not in shares and sum(shares) != 100:
            errors["share_exit"] = [
                str(_("The four shares must add up to 100 (they add up to %(sum)s).") % {"sum": sum(shares)})
            ]
        lost, dormant = self.lost_after_days, self.dormant_after_days
        if lost is not None and dormant is not None and lost <= dormant:
            errors["lost_after_days"] = [str(_("Must be longer than the dormant period."))]
        if self.scoring_mode == ScoringMode.THRESHOLDS:
            for field, what in (
                ("recency_days", _("recency")),
                ("frequency_limits", _("frequency")),
                ("monetary_limits", _("monetary")),
            ):
                try:
                    _four_ascending(list(getattr(self, field) or []), str(what))
                except ValidationError as error:
                    errors[field] = error.messages
        if errors:
            raise ValidationError(errors)

    def strategy(self, tier: str) -> str:
        own = getattr(self, f"strategy_{tier}", "")
        return own or str(DEFAULT_STRATEGIES[Tier(tier)])

    @property
    def cumulative_shares(self) -> tuple[int, int, int]:
        """Upper edges of key, consolidate and maintain as percentages of customers ranked by value."""
        return (
            self.share_key,
            self.share_key + self.share_consolidate,
            self.share_key + self.share_consolidate + self.share_maintain,
        )


BUYERS = models.Q(orders_total__gt=0)


class CustomerValue(TenantOwnedModel):
    """One row per live customer: order aggregates (kept current for customers whose orders changed),
    the latest RFM scores, segment and tier. Rows change only when a value changes."""

    # Rewritten every night for the changed customers: every index below leads with the dealership.
    tenant = tenant_foreign_key(db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    # Aggregates of non-reversed orders, all time and in the window (the window's start is
    # SegmentationSettings.aggregates_window_start).
    first_order_on = models.DateField(_("first order"), null=True, blank=True)
    last_order_on = models.DateField(_("last order"), null=True, blank=True)
    orders_total = models.PositiveIntegerField(_("orders (all time)"), default=0)
    vehicle_purchases = models.PositiveIntegerField(_("vehicles bought"), default=0)
    frequency = models.PositiveIntegerField(_("frequency"), default=0)
    monetary = models.DecimalField(_("monetary (CNY)"), max_digits=16, decimal_places=2, default=0)
    # Recency is counted from this date (the latest order or in-person visit), so it needs no
    # nightly rewrite; days = today − last_activity_on.
    last_activity_on = models.DateField(_("last visit"), null=True, blank=True)
    r_score = models.PositiveSmallIntegerField(_("R"), null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(_("F"), null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(_("M"), null=True, blank=True)
    rfm_code = models.CharField(_("RFM"), max_length=3, blank=True)
    segment = models.CharField(_("segment"), max_length=20, choices=Segment.choices, blank=True)
    tier = models.CharField(_("value tier"), max_length=12, choices=Tier.choices, blank=True)
    scored_on = models.DateField(_("scores changed on"), null=True, blank=True)
    monetary_cents = models.BigIntegerField(editable=False, default=0, db_default=0)  # indexable under RLS
    # (R + F + M) × 10^16 + spend in cents: the value rank the tiers are cut from
    value_key = models.BigIntegerField(_("value rank key"), null=True, blank=True, editable=False)
    # Lifecycle signals from other apps (surveys, complaints, loyalty) as of the last run
    satisfied = models.BooleanField(_("satisfied"), default=False, db_default=False)
    dissatisfied = models.BooleanField(_("dissatisfied"), default=False, db_default=False)
    referrals = models.PositiveIntegerField(_("referrals"), default=0, db_default=0)

    class Meta:
        verbose_name = _("customer value")
        verbose_name_plural = _("customer values")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "customer"], name="customervalue_one_per_customer"),
        ]
        indexes = [
            models.Index(fields=["tenant", "tier", "customer"], name="customervalue_tier"),
            models.Index(fields=["tenant", "segment", "customer"], name="customervalue_segment"),
            models.Index(fields=["tenant", "r_score", "f_score"], name="customervalue_grid"),
            # The engine walks these to move score and tier edges without sorting a dealership.
            models.Index(fields=["tenant", "last_activity_on"], condition=BUYERS, name="customervalue_recency"),
            models.Index(fields=["tenant", "frequency"], condition=BUYERS, name="customervalue_frequency"),
            models.Index(fields=["tenant", "monetary_cents"], condition=BUYERS, name="customervalue_monetary"),
            models.Index(
                fields=["tenant", "value_key"], condition=models.Q(value_key__isnull=False), name="customervalue_rank"
            ),
            models.Index(
                fields=["tenant", "customer"],
                condition=models.Q(satisfied=True) | models.Q(dissatisfied=True) | models.Q(referrals__gt=0),
                name="customervalue_signals",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.rfm_code or '—'} {self.tier or '—'}"

    def recency_days(self, today: object) -> int | None:
        if self.last_activity_on is None:
            return None
        return max((today - self.last_activity_on).days, 0)  # type: ignore[operator]


class DirtyCustomer(TenantOwnedModel):
    """Customers whose orders changed since the last run. Filled by a statement-level trigger on
    customers_order (migration 0001), so every write path counts: services, imports, raw SQL."""

    customer_id = models.BigIntegerField()

    class Meta:
        verbose_name = _("customer to rescore")
        verbose_name_plural = _("customers to rescore")
        constraints = [models.UniqueConstraint(fields=["tenant", "customer_id"], name="dirtycustomer_unique")]


class ValueHistory(TenantOwnedModel):
    """A customer's tier, segment and lifecycle over time: a row per period in which they stayed the same.

    The state on day D is the row with valid_from <= D < valid_to (valid_to empty = still current),
    which is what the migration matrix and the customer page read.
    """

    # Written every night for the changed customers: every index below leads with the dealership.
    tenant = tenant_foreign_key(db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="value_history")
    tier = models.CharField(_("value tier"), max_length=12, choices=Tier.choices, blank=True)
    segment = models.CharField(_("segment"), max_length=20, choices=Segment.choices, blank=True)
    rfm_code = models.CharField(_("RFM"), max_length=3, blank=True)
    lifecycle_stage = models.CharField(_("lifecycle stage"), max_length=12, choices=LifecycleStage.choices)
    valid_from = models.DateField(_("from"))
    valid_to = models.DateField(_("until"), null=True, blank=True)

    class Meta:
        verbose_name = _("value history")
        verbose_name_plural = _("value history")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "customer"], condition=models.Q(valid_to__isnull=True), name="valuehistory_one_open"
            ),
            models.CheckConstraint(
                condition=models.Q(valid_to__isnull=True) | models.Q(valid_to__gt=models.F("valid_from")),
                name="valuehistory_period_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "customer", "valid_from"], name="valuehistory_customer"),
            models.Index(fields=["tenant", "valid_from", "valid_to"], name="valuehistory_period"),
        ]


class SegmentationRun(TenantOwnedModel):
    """What one completed run produced: written in the run's own transaction, so a run that fails
    leaves no record here (the nightly run record keeps its error)."""

    run_date = models.DateField(_("business date"))
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), default=timezone.now)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    trigger = models.CharField(_("trigger"), max_length=12, blank=True)
    window_start = models.DateField(_("window start"))
    customers = models.PositiveIntegerField(_("customers"))
    scored = models.PositiveIntegerField(_("customers scored"))
    aggregates_refreshed = models.PositiveIntegerField(_("customers re-aggregated"))
    rows_changed = models.PositiveIntegerField(_("rows changed"))
    scoring_mode = models.CharField(_("scoring"), max_length=12, choices=ScoringMode.choices)
    boundaries = models.JSONField(_("score boundaries"), default=dict)
    tier_counts = models.JSONField(_("tiers"), default=dict)
    segment_counts = models.JSONField(_("segments"), default=dict)
    lifecycle_counts = models.JSONField(_("lifecycle stages"), default=dict)
    grid = models.JSONField(_("R × F grid"), default=list)  # [{"r": 5, "f": 4, "customers": n, "monetary": avg}]

    class Meta:
        verbose_name = _("segmentation run")
        verbose_name_plural = _("segmentation runs")
        ordering = ["-finished_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-finished_at"], name="segmentationrun_tenant_time")]

    def __str__(self) -> str:
        return f"{self.run_date} ({self.scored}/{self.customers})"
