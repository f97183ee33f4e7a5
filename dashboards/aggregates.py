"""The nightly pre-aggregation of the manager dashboard (set-based SQL, one dealership at a time).

`dashboard_figures_refresh(run_date=D)`:
1. writes the customer base as it stands at the end of D (`CustomerStateDay` rows for D);
2. the first time a dealership is aggregated, also the last 12 month ends before D, from the value
   history (tiers and ladder stages as they were), the orders (the service base) and the points
   ledger, so that the ladder's month-on-month movement is there from the first day; data quality
   is only known from now on (those rows count no scored records);
3. rewrites `RevenueDay` for the REVENUE_REFRESH_DAYS days up to D (all days up to D the first
   time): late DMS imports and reversals of recent orders are picked up; older days, and days after
   D (when an earlier night is run again), keep their figures.

A day ends at midnight in the dealership's own time zone.

Definitions (one row per owner × tier × stage):
- customers: live customers (not merged into another record) created by the end of the day or
  with a value history period covering it (records imported later with their history count from
  their first scored day); tier and stage are those of that period (customers never scored are
  prospects without a tier);
- scored / accurate: customers with a data-quality score / with score 100 (customers/quality.py);
- vehicles (the service base 基盘): the customers' vehicles bought or serviced in the 24 calendar
  months up to the day (`service_base_since`): bought = a purchase date, or a completed vehicle-sale
  order linked to the vehicle, in that time (DMS imports often leave the purchase date empty and
  only the sale order says the car was bought here); serviced = a completed maintenance or repair
  order linked to it in that time; vehicles_returned: those of them serviced in the last 12
  calendar months: their share is the dependency figure (回厂率). Open and reversed orders count for
  neither (a car in the workshop counts when its order is completed);
- points: outstanding loyalty points (today the members' balances, for past month ends the ledger).

Idempotent: a day's rows are replaced, never added to.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from django.db import connection, transaction

from crm.core.period import month_ends_before
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import Tenant
from dashboards.models import CustomerStateDay, RevenueDay, RevenueDayTotal

REVENUE_REFRESH_DAYS = 400  # a year-on-year comparison's both periods
BACKFILL_MONTHS = 12
BASE_MONTHS = 24  # the service base: bought or serviced in the last 24 calendar months
RETURN_MONTHS = 12  # came back: serviced in the last 12 calendar months


def service_base_since(day: date) -> tuple[date, date]:
    """(base, returned): the service base is what was dated *after* `base` and up to `day`, the
    vehicles that came back were serviced after `returned` (and up to `day`). Each is the same date
    24 (12) calendar months before `day`, the month's last day when that month is shorter (29 February
    2028 → 28 February 2026): the window of 30 June 2026 is 1 July 2024 … 30 June 2026."""
    return day - relativedelta(months=BASE_MONTHS), day - relativedelta(months=RETURN_MONTHS)


STATE = """
WITH state AS (
    SELECT h.customer_id, h.tier, h.lifecycle_stage FROM segmentation_valuehistory h
    WHERE h.valid_from <= %(d)s AND (h.valid_to IS NULL OR h.valid_to > %(d)s)
),
service AS (
    SELECT o.vehicle_id, max(o.ordered_on) AS last_on FROM customers_order o
    WHERE o.vehicle_id IS NOT NULL AND o.kind IN ('maintenance', 'repair') AND o.status = 'completed'
      AND o.ordered_on > %(base_since)s AND o.ordered_on <= %(d)s
    GROUP BY o.vehicle_id
),
sold AS (  -- bought here by the DMS's sale order, whether or not the vehicle has a purchase date
    SELECT DISTINCT o.vehicle_id FROM customers_order o
    WHERE o.vehicle_id IS NOT NULL AND o.kind = 'vehicle_sale' AND o.status = 'completed'
      AND o.ordered_on > %(base_since)s AND o.ordered_on <= %(d)s
),
fleet AS (
    SELECT v.customer_id, count(*) AS vehicles,
           count(*) FILTER (WHERE s.last_on > %(return_since)s) AS returned
    FROM customers_vehicle v LEFT JOIN service s ON s.vehicle_id = v.id
    WHERE s.vehicle_id IS NOT NULL
       OR (v.purchase_date > %(base_since)s AND v.purchase_date <= %(d)s)
       OR v.id IN (SELECT vehicle_id FROM sold)
    GROUP BY v.customer_id
),
points AS ({points})
INSERT INTO dashboards_customerstateday (
    tenant_id, day, owner_id, tier, stage, customers, scored, accurate, vehicles, vehicles_returned, points
)
SELECT %(tenant)s, %(d)s, c.owner_id, coalesce(st.tier, ''), coalesce(st.lifecycle_stage, 'prospect'),
       count(*), {scored}, {accurate},
       coalesce(sum(fl.vehicles), 0), coalesce(sum(fl.returned), 0), coalesce(sum(p.points), 0)
FROM customers_customer c
LEFT JOIN state st ON st.customer_id = c.id
LEFT JOIN fleet fl ON fl.customer_id = c.id
LEFT JOIN points p ON p.customer_id = c.id
WHERE c.merged_into_id IS NULL AND (c.created_at < %(day_end)s OR st.customer_id IS NOT NULL)
GROUP BY c.owner_id, coalesce(st.tier, ''), coalesce(st.lifecycle_stage, 'prospect')
"""

POINTS_NOW = "SELECT m.customer_id, m.points_balance AS points FROM loyalty_member m WHERE m.points_balance <> 0"
POINTS_THEN = """SELECT m.customer_id, sum(e.points) AS points
                 FROM loyalty_ledgerentry e JOIN loyalty_member m ON m.id = e.member_id
                 WHERE e.occurred_at < %(day_end)s GROUP BY m.customer_id"""

REVENUE = """
INSERT INTO dashboards_revenueday (tenant_id, day, owner_id, staff_id, kind, orders, amount)
SELECT %(tenant)s, o.ordered_on, c.owner_id, o.staff_id, o.kind, count(*), coalesce(sum(o.amount), 0)
FROM customers_order o JOIN customers_customer c ON c.id = o.customer_id
WHERE o.status <> 'reversed' AND o.ordered_on BETWEEN %(since)s AND %(d)s
GROUP BY o.ordered_on, c.owner_id, o.staff_id, o.kind
"""

REVENUE_TOTAL = """
INSERT INTO dashboards_revenuedaytotal (tenant_id, day, kind, orders, amount)
SELECT %(tenant)s, r.day, r.kind, sum(r.orders), sum(r.amount)
FROM dashboards_revenueday r
WHERE r.day BETWEEN %(since)s AND %(d)s
GROUP BY r.day, r.kind
"""


def _state(cursor: Any, params: dict[str, Any], *, now: bool) -> int:
    cursor.execute("DELETE FROM dashboards_customerstateday WHERE day = %(d)s", params)
    sql = STATE.format(
        points=POINTS_NOW if now else POINTS_THEN,
        scored="count(c.quality_score)" if now else "0",
        accurate="count(*) FILTER (WHERE c.quality_score = 100)" if now else "0",
    )
    cursor.execute(sql, params)
    return cursor.rowcount


@transaction.atomic
def dashboard_figures_refresh(*, run_date: date) -> dict[str, Any]:
    """Aggregate the current dealership's figures for `run_date` (see the module's docstring)."""
    tenant_id = require_tenant_id()
    zone = Tenant.objects.get(pk=tenant_id).zone  # a day ends at midnight where the dealership is
    laps: dict[str, float] = {}
    rows = 0
    first_time = not CustomerStateDay.objects.exists()

    def params_for(day: date) -> dict[str, Any]:
        base_since, return_since = service_base_since(day)
        return {
            "tenant": tenant_id,
            "d": day,
            "day_end": datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone),
            "base_since": base_since,
            "return_since": return_since,
        }

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        started = time.monotonic()
        rows += _state(cursor, params_for(run_date), now=True)
        laps["state"] = time.monotonic() - started
        if first_time:
            started = time.monotonic()
            for day in month_ends_before(run_date, BACKFILL_MONTHS):
                rows += _state(cursor, params_for(day), now=False)
            laps["backfill"] = time.monotonic() - started
        started = time.monotonic()
        since = date(1900, 1, 1) if not RevenueDay.objects.exists() else run_date - timedelta(days=REVENUE_REFRESH_DAYS)
        params = params_for(run_date) | {"since": since}
        cursor.execute("DELETE FROM dashboards_revenueday WHERE day BETWEEN %(since)s AND %(d)s", params)
        cursor.execute(REVENUE, params)
        rows += cursor.rowcount
        # the totals follow the rows they sum; all days the first time (also after an upgrade)
        totals = params | {"since": since if RevenueDayTotal.objects.exists() else date(1900, 1, 1)}
        cursor.execute("DELETE FROM dashboards_revenuedaytotal WHERE day BETWEEN %(since)s AND %(d)s", totals)
        cursor.execute(REVENUE_TOTAL, totals)
        rows += cursor.rowcount
        laps["revenue"] = time.monotonic() - started
    return {"rows": rows, **{f"ms.{name}": round(value * 1000) for name, value in laps.items()}}
