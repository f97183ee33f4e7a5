"""Pre-aggregated figures of the manager dashboard, written by the nightly step `dashboards.figures`.

A dealership of a million customers cannot be counted live in 300 ms, so every night keeps two small
tables per dealership (see dashboards/aggregates.py):

- `CustomerStateDay`: the customer base as it stood at the end of a day, counted per owner, value
  tier and ladder stage, with the figures the four degrees need (accurate records, service-base
  vehicles and those that came back, outstanding points);
- `RevenueDay`: orders and net spend per day, customer owner, order handler and order type, and
  `RevenueDayTotal`, the same per day and order type only (what the unfiltered page reads).

The page then sums a few hundred rows; what is small (survey responses, tickets, follow-ups) is
read live.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from crm.tenancy.models import TenantOwnedModel


class CustomerStateDay(TenantOwnedModel):
    day = models.DateField(_("date"))
    owner = models.ForeignKey(
        "tenancy.Membership",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    tier = models.CharField(_("value tier"), max_length=12, blank=True)  # "" = not tiered (prospects)
    stage = models.CharField(_("lifecycle stage"), max_length=12)
    customers = models.PositiveIntegerField(_("customers"))
    scored = models.PositiveIntegerField(_("records scored"), default=0)  # data quality known
    accurate = models.PositiveIntegerField(_("accurate records"), default=0)  # score 100
    vehicles = models.PositiveIntegerField(_("vehicles in the service base"), default=0)
    vehicles_returned = models.PositiveIntegerField(_("vehicles serviced in the last 12 months"), default=0)
    points = models.BigIntegerField(_("outstanding points"), default=0)

    class Meta:
        verbose_name = _("customer base on a day")
        verbose_name_plural = _("customer base by day")
        indexes = [models.Index(fields=["tenant", "day"], name="dash_state_tenant_day")]


class RevenueDay(TenantOwnedModel):
    day = models.DateField(_("date"))
    owner = models.ForeignKey(
        "tenancy.Membership",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    staff = models.ForeignKey(
        "tenancy.Membership", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("by")
    )
    kind = models.CharField(_("type"), max_length=16)
    orders = models.PositiveIntegerField(_("orders"))
    amount = models.DecimalField(_("net spend (CNY)"), max_digits=16, decimal_places=2)

    class Meta:
        verbose_name = _("revenue on a day")
        verbose_name_plural = _("revenue by day")
        indexes = [models.Index(fields=["tenant", "day"], name="dash_revenue_tenant_day")]


class RevenueDayTotal(TenantOwnedModel):
    """`RevenueDay` summed over owners and handlers: what the unfiltered page reads (a year of a
    large dealership is ~200,000 `RevenueDay` rows, but 2,190 of these)."""

    day = models.DateField(_("date"))
    kind = models.CharField(_("type"), max_length=16)
    orders = models.PositiveIntegerField(_("orders"))
    amount = models.DecimalField(_("net spend (CNY)"), max_digits=16, decimal_places=2)

    class Meta:
        verbose_name = _("revenue total on a day")
        verbose_name_plural = _("revenue totals by day")
        indexes = [models.Index(fields=["tenant", "day"], name="dash_total_tenant_day")]
