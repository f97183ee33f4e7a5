"""The segmentation engine: RFM scores, segments, value tiers, lifecycle stage and relationship class
for every live customer of one dealership, computed set-based in PostgreSQL.

One run = one transaction (the nightly step's), so readers see last night's results until the new
ones commit, and a run killed half-way leaves nothing behind. The nightly pipeline's advisory lock
keeps it to one run per dealership at a time. docs/segmentation.md explains every rule below.

Why it is fast (benchmarks/bench_segmentation.py): a night's work is proportional to what changed
since the last run, not to customers or orders.
1. Order aggregates per customer live in `CustomerValue` and are recomputed only for customers
   whose orders or scoring fields changed (triggers on orders, customers and touchpoints list them
   in `DirtyCustomer`, migrations 0002 and 0003), reading their orders index-only. Orders that slid
   out of the window since the last run (one index range scan on order dates) move their customers'
   frequency and spend by exactly their count and amount, without re-reading anyone's history. The
   orders table is read in full once, on a dealership's first run.
2. Score and tier edges are kept between runs with their ranks (how many customers lie below and at
   each edge). The changed customers' old and new values move those ranks; an edge whose position no
   longer falls in its tie group is found again by a short walk along an index. Nothing is sorted.
3. Only customers whose result can differ are scored again: the changed ones, those whose value lies
   between an edge's old and new place, and those who crossed a day limit (dormant, lost, recency
   thresholds) between the two run dates.
4. The distribution managers read (tiers, segments, stages, R×F grid) is kept as counts: a run adds
   the rescored customers' new state and takes away their old one.
5. A changed customer's row is written once, at the end, with its aggregates and scores together:
   until then the new aggregates wait in a temporary table, which the edge walks read beside the
   stored rows. Each row write costs an entry in each of the table's indexes.
A first run, a settings change, a rule change (ENGINE_VERSION) or a customer deleted outright makes
the next run score everyone, and so does kept state that no longer matches the rows (StateDrift).

`_run` picks one of three modes, which share the scoring steps (`_start`, `_stage`, `_score`,
`_score_from_scratch`, `_score_moved`, `_finish`): `_run_cold_build` on a dealership's first run
(aggregates from the whole orders table, everyone scored, edges from scratch),
`_run_settings_change` when the kept state cannot be used (changed customers re-aggregated,
everyone scored, edges from scratch) and `_run_incremental` on the nights after (1–5 above).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from crm.core.extensions import Contribution, ExtensionPoint
from crm.core.sql import fetch_dicts
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import dealership_settings
from customers.models import LifecycleStage, Order, RelationshipClass
from customers.records import customers_apply_derived_classes
from segmentation.models import ScoringMode, Segment, SegmentationRun, SegmentationSettings, Tier

logger = logging.getLogger(__name__)

S = Segment
# The segment of a customer is looked up by R (row) and FM = round((F + M) / 2) (column, 1 … 5).
SEGMENT_GRID: dict[int, tuple[Segment, Segment, Segment, Segment, Segment]] = {
    5: (S.NEW, S.POTENTIAL_LOYALIST, S.POTENTIAL_LOYALIST, S.CHAMPIONS, S.CHAMPIONS),
    4: (S.PROMISING, S.POTENTIAL_LOYALIST, S.POTENTIAL_LOYALIST, S.LOYAL, S.CHAMPIONS),
    3: (S.ABOUT_TO_SLEEP, S.ABOUT_TO_SLEEP, S.NEED_ATTENTION, S.LOYAL, S.LOYAL),
    2: (S.HIBERNATING, S.HIBERNATING, S.AT_RISK, S.AT_RISK, S.CANT_LOSE),
    1: (S.LOST, S.LOST, S.AT_RISK, S.CANT_LOSE, S.CANT_LOSE),
}


def fm_score(f: int, m: int) -> int:
    """The grid's column: the mean of F and M, halves rounded up."""
    return (f + m + 1) // 2


def segment_of(r: int, f: int, m: int) -> Segment:
    return SEGMENT_GRID[r][fm_score(f, m) - 1]


# --- Signals from other apps --------------------------------------------------------------------
# Surveys, complaints and loyalty may add lifecycle signals through the extension point
# `lifecycle_signals`: a SQL query that returns (customer_id bigint, satisfied boolean, dissatisfied
# boolean, referrals integer) rows for the dealership %(tenant)s (and may use %(run_date)s). A
# customer counts as satisfied when some source says satisfied and none says dissatisfied;
# referrals are summed.


@dataclass(frozen=True, kw_only=True)
class LifecycleSignal(Contribution):
    sql: str


lifecycle_signals: ExtensionPoint[LifecycleSignal] = ExtensionPoint("segmentation.lifecycle_signals", LifecycleSignal)


def _signals_sql() -> str:
    signals = lifecycle_signals.contributions()
    if not signals:
        return "SELECT NULL::bigint AS customer_id, false AS sat, false AS dis, 0::bigint AS refs WHERE false"
    union = "\nUNION ALL\n".join(f"({signal.sql})" for signal in signals)
    return f"""
        SELECT x.customer_id, bool_or(coalesce(x.satisfied, false)) AS sat,
               bool_or(coalesce(x.dissatisfied, false)) AS dis, sum(coalesce(x.referrals, 0))::bigint AS refs
          FROM ({union}) AS x(customer_id, satisfied, dissatisfied, referrals)
         GROUP BY x.customer_id"""


# --- Progress, for the "recompute now" page --------------------------------------------------------
PHASES = ("aggregates", "scores", "writing", "history", "done")


def progress_key(tenant_id: int) -> str:
    return f"segmentation:progress:{tenant_id}"


def _progress(tenant_id: int, phase: str, started: float, **extra: Any) -> None:
    cache.set(
        progress_key(tenant_id),
        {
            "phase": phase,
            "step": PHASES.index(phase) + 1,
            "of": len(PHASES),
            "seconds": round(time.monotonic() - started, 1),
        }
        | extra,
        timeout=60 * 60,
    )


def run_progress(tenant_id: int) -> dict[str, Any] | None:
    value = cache.get(progress_key(tenant_id))
    return value if isinstance(value, dict) else None


# --- The run ---------------------------------------------------------------------------------------
#
# Temporary tables of a run (emptied when it commits, and at its start):
#   seg_affected  customers to re-aggregate (orders or customer fields changed)
#   seg_slide     the others whose orders entered or left the window, with the change to their
#                 frequency and spend
#   seg_rescore   customers to score again (affected, signals changed, a day limit crossed, a value
#                 between an old and a new score boundary)
#   seg_before    the rescored customers' previous state, for the distribution's delta
#   seg_agg       the rescored customers' new order aggregates and signals (CustomerValue's columns)
#   seg_new       the rescored customers' new state
#   seg_changed   the rows of seg_new and seg_agg that differ from what is stored: what gets written
#   seg_signal    the signals from other apps that differ from the stored ones
# CustomerValue itself is written once, at the end: until then it holds the previous run's values,
# and where a rescored customer's new value matters (boundary walks), seg_agg stands in for it.

# Bumped when a rule changes, so the next run of every dealership scores everyone again.
ENGINE_VERSION = 2

# Value rank key = (R + F + M) × scale + spend in cents: spend breaks ties between equal score sums.
VALUE_KEY_SCALE = 10**16


@dataclass
class RunResult:
    run: SegmentationRun
    aggregates_refreshed: int
    rows_changed: int
    timings: dict[str, float] = field(default_factory=dict)
    incremental: bool = False


def settings_for_tenant() -> SegmentationSettings:
    return dealership_settings(SegmentationSettings)


def window_start_for(settings: SegmentationSettings, run_date: date) -> date:
    start: date = run_date - relativedelta(months=settings.window_months)
    return start


def _execute(sql: str, params: dict[str, Any] | list[Any] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return max(cursor.rowcount, 0)


def _fetch_one(sql: str, params: dict[str, Any] | list[Any] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchone()


def _fingerprint(settings: SegmentationSettings) -> str:
    """Everything a score depends on besides the data: a change means everyone is scored again."""
    return json.dumps(
        [
            ENGINE_VERSION,
            settings.scoring_mode,
            list(settings.recency_days or []),
            list(settings.frequency_limits or []),
            [str(v) for v in settings.monetary_limits or []],
            list(settings.cumulative_shares),
            settings.red_list_effect,
            settings.dormant_after_days,
            settings.lost_after_days,
            settings.loyal_min_orders,
            settings.window_months,
            [signal.name for signal in lifecycle_signals.contributions()],
        ]
    )


# The aggregate columns of CustomerValue, which seg_agg and seg_changed carry under the same names.
AGGREGATE_COLUMNS = (
    "first_order_on",
    "last_order_on",
    "orders_total",
    "vehicle_purchases",
    "frequency",
    "monetary",
    "monetary_cents",
    "last_activity_on",
    "satisfied",
    "dissatisfied",
    "referrals",
)
_AGGREGATE_TYPES = """first_order_on date, last_order_on date, orders_total integer, vehicle_purchases integer,
    frequency bigint, monetary numeric, monetary_cents bigint, last_activity_on date, satisfied boolean,
    dissatisfied boolean, referrals integer"""

TEMP_TABLE_COLUMNS = {
    "seg_affected": "customer_id bigint PRIMARY KEY",
    "seg_slide": "customer_id bigint PRIMARY KEY, orders bigint, spend numeric",
    "seg_rescore": "customer_id bigint PRIMARY KEY",
    "seg_before": """customer_id bigint PRIMARY KEY, existed boolean, total integer, last_activity date,
        frequency bigint, monetary numeric, monetary_cents bigint, value_key bigint, r smallint, f smallint,
        segment varchar(20), tier varchar(12), stage varchar(12)""",
    "seg_agg": f"customer_id bigint PRIMARY KEY, {_AGGREGATE_TYPES}",
    "seg_new": """customer_id bigint PRIMARY KEY, list_flag varchar(8), m_val numeric, r smallint, f smallint,
        m smallint, value_key bigint, segment varchar(20), tier varchar(12), stage varchar(12), class varchar(12)""",
    "seg_changed": f"""customer_id bigint PRIMARY KEY, r smallint, f smallint, m smallint, value_key bigint,
        segment varchar(20), tier varchar(12), stage varchar(12), class varchar(12), value_changed boolean,
        key_changed boolean, class_changed boolean, aggregates_changed boolean, {_AGGREGATE_TYPES}""",
    "seg_signal": "customer_id bigint PRIMARY KEY, sat boolean, dis boolean, refs integer",
}
# Marks the tables' layout: a connection holding tables of another one (a pooled server connection
# that outlived a deploy) drops and creates them again.
TEMP_TABLES_LAYOUT = hashlib.sha256(repr(sorted(TEMP_TABLE_COLUMNS.items())).encode()).hexdigest()[:12]


def _temp_tables() -> None:
    """Kept for the connection's life: creating and dropping eight tables costs more catalog writes
    than a quiet night's whole run (measured 20 ms a dealership). Emptied when the run's transaction
    commits (a truncation of their files: no dead rows for the next run to scan), and at the start of
    a run, for a second run in one transaction. One round trip."""
    creates = "\n".join(
        f"CREATE TEMP TABLE {name} ({columns}) ON COMMIT DELETE ROWS;" for name, columns in TEMP_TABLE_COLUMNS.items()
    )
    empties = "\n".join(f"DELETE FROM {name};" for name in TEMP_TABLE_COLUMNS)
    _execute(
        f"""DO $layout$ BEGIN
              IF obj_description(to_regclass('pg_temp.seg_changed'), 'pg_class')
                 IS DISTINCT FROM '{TEMP_TABLES_LAYOUT}' THEN
                DROP TABLE IF EXISTS {", ".join(f"pg_temp.{name}" for name in TEMP_TABLE_COLUMNS)};
                {creates}
                COMMENT ON TABLE pg_temp.seg_changed IS '{TEMP_TABLES_LAYOUT}';
              END IF;
            END $layout$;
            {empties}"""
    )


def _analyze(*tables: str) -> None:
    """Temporary tables have no statistics until analyzed: without them the planner guesses from
    their pages and hash-joins a whole dealership to a few hundred changed customers. The row count
    and the join key's statistics are what the plans need; the other columns' statistics would cost
    a catalog row each (measured: 0.6 s of a night's 100 dealerships for all columns)."""
    _execute(f"ANALYZE {', '.join(f'{table} (customer_id)' for table in tables)}")


def _collect_affected(
    *, params: dict[str, Any], previous_window_start: date | None, window_start: date, full: bool
) -> None:
    """seg_affected: the customers whose order aggregates or customer fields may have changed."""
    if full:
        _execute(
            """INSERT INTO seg_affected SELECT id FROM customers_customer
                WHERE tenant_id = %(tenant)s AND merged_into_id IS NULL""",
            params,
        )
        # Everyone is recomputed; the marks collected so far are all covered.
        _execute("DELETE FROM segmentation_dirtycustomer WHERE tenant_id = %(tenant)s", params)
        return
    # Rows marked by writes that commit from now on stay for the next run (READ COMMITTED: this
    # DELETE removes only the marks it sees).
    marks = """WITH marked AS (DELETE FROM segmentation_dirtycustomer WHERE tenant_id = %(tenant)s
                               RETURNING customer_id),
                    affected AS (INSERT INTO seg_affected SELECT DISTINCT customer_id FROM marked
                                 ON CONFLICT DO NOTHING RETURNING customer_id)"""
    if previous_window_start is None or previous_window_start == window_start:
        _execute(f"{marks} SELECT count(*) FROM affected", params)
        return
    # Orders between the old and the new window start left the window (or entered it, when a run
    # goes back in time). The other customers' frequency and spend move by exactly those orders: one
    # range scan of a day's orders instead of re-reading each customer's history. The marked ones
    # are re-aggregated in full. One statement, so the marks and the orders read are of one
    # snapshot: an order committed after it leaves a mark for the next run and is not read here.
    lo, hi = sorted((previous_window_start, window_start))
    sign = -1 if window_start > previous_window_start else 1
    _execute(
        f"""{marks}
            INSERT INTO seg_slide
            SELECT o.customer_id, %(sign)s * count(*), %(sign)s * sum(o.amount)
              FROM customers_order o
             WHERE o.tenant_id = %(tenant)s AND o.ordered_on >= %(lo)s AND o.ordered_on < %(hi)s
               AND o.status <> %(reversed)s
               AND NOT EXISTS (SELECT 1 FROM marked m WHERE m.customer_id = o.customer_id)
             GROUP BY o.customer_id""",
        params | {"lo": lo, "hi": hi, "sign": sign},
    )


def _collect_signals(params: dict[str, Any]) -> int:
    """seg_signal: the signals of the customers whose signals differ from the stored ones."""
    return _execute(
        f"""INSERT INTO seg_signal
            SELECT coalesce(g.customer_id, v.customer_id), coalesce(g.sat, false), coalesce(g.dis, false),
                   coalesce(g.refs, 0)
              FROM ({_signals_sql()}) g
              FULL JOIN (SELECT customer_id, satisfied, dissatisfied, referrals FROM segmentation_customervalue
                          WHERE tenant_id = %(tenant)s AND (satisfied OR dissatisfied OR referrals > 0)) v
                ON v.customer_id = g.customer_id
             WHERE (coalesce(g.sat, false), coalesce(g.dis, false), coalesce(g.refs, 0))
                   IS DISTINCT FROM (coalesce(v.satisfied, false), coalesce(v.dissatisfied, false),
                                     coalesce(v.referrals, 0))""",
        params,
    )


def _snapshot(source: str, params: dict[str, Any], *, keep_before: bool = True) -> None:
    """Read the stored rows of the customers of `source` not read yet (a later call reads only those
    added since), once each. Their state goes to seg_before, which the distribution's delta takes
    away (incremental runs only). Their aggregates go to seg_agg, moved by the window's slide and with
    their new signals; not those of seg_affected, which _stage_aggregates reads from their orders."""
    before = (
        """, kept AS (INSERT INTO seg_before
                         SELECT customer_id, existed, orders_total, last_activity_on, frequency, monetary,
                                monetary_cents, value_key, r_score, f_score, segment, tier, lifecycle_stage
                           FROM stored)"""
        if keep_before
        else ""
    )
    _execute(
        f"""
        WITH stored AS (
            SELECT s.customer_id, v.customer_id IS NOT NULL AS existed, v.value_key, v.r_score, v.f_score,
                   v.segment, v.tier, c.lifecycle_stage, {", ".join(f"v.{column}" for column in AGGREGATE_COLUMNS)}
              FROM ({source}) s
              LEFT JOIN segmentation_customervalue v ON v.tenant_id = %(tenant)s AND v.customer_id = s.customer_id
              LEFT JOIN customers_customer c ON c.tenant_id = %(tenant)s AND c.id = s.customer_id
             WHERE NOT EXISTS (SELECT 1 FROM seg_before b WHERE b.customer_id = s.customer_id)
               AND NOT EXISTS (SELECT 1 FROM seg_agg a WHERE a.customer_id = s.customer_id)
        ){before}
        INSERT INTO seg_agg ({", ".join(("customer_id", *AGGREGATE_COLUMNS))})
        SELECT v.customer_id, v.first_order_on, v.last_order_on, v.orders_total, v.vehicle_purchases,
               v.frequency + coalesce(d.orders, 0), v.monetary + coalesce(d.spend, 0),
               v.monetary_cents + coalesce(round(d.spend * 100)::bigint, 0), v.last_activity_on,
               coalesce(g.sat, v.satisfied), coalesce(g.dis, v.dissatisfied), coalesce(g.refs, v.referrals)
          FROM stored v
          LEFT JOIN seg_slide d ON d.customer_id = v.customer_id
          LEFT JOIN seg_signal g ON g.customer_id = v.customer_id
         WHERE v.existed AND NOT EXISTS (SELECT 1 FROM seg_affected x WHERE x.customer_id = v.customer_id)""",
        params,
    )


def _stage_aggregates(*, params: dict[str, Any], full: bool) -> None:
    """seg_agg: new order aggregates, last visit and signals of the live customers in seg_affected, read
    from their orders."""
    aggregates = """min(o.ordered_on) AS first_on, max(o.ordered_on) AS last_on,
                    count(*) AS total, count(*) FILTER (WHERE o.kind = %(vehicle_sale)s) AS vehicles,
                    count(*) FILTER (WHERE o.ordered_on >= %(ws)s) AS freq,
                    sum(o.amount) FILTER (WHERE o.ordered_on >= %(ws)s) AS spend"""
    if full:
        # Everyone: one pass over the dealership's orders, grouped.
        source = f"""LEFT JOIN (SELECT o.customer_id, {aggregates} FROM customers_order o
                                  WHERE o.tenant_id = %(tenant)s AND o.status <> %(reversed)s
                                  GROUP BY o.customer_id) agg ON agg.customer_id = a.customer_id"""
    else:
        # A few: each customer's orders by index (a grouped join here can re-run once per customer).
        source = f"""CROSS JOIN LATERAL (SELECT {aggregates} FROM customers_order o
                                          WHERE o.tenant_id = %(tenant)s AND o.customer_id = a.customer_id
                                            AND o.status <> %(reversed)s) agg"""
    _execute(
        f"""
        INSERT INTO seg_agg ({", ".join(("customer_id", *AGGREGATE_COLUMNS))})
        SELECT a.customer_id, agg.first_on, agg.last_on, coalesce(agg.total, 0), coalesce(agg.vehicles, 0),
               coalesce(agg.freq, 0), coalesce(agg.spend, 0), round(coalesce(agg.spend, 0) * 100)::bigint,
               GREATEST(c.last_visit_on, agg.last_on),
               coalesce(g.sat, v.satisfied, false), coalesce(g.dis, v.dissatisfied, false),
               coalesce(g.refs, v.referrals, 0)
          FROM seg_affected a
          JOIN customers_customer c ON c.tenant_id = %(tenant)s AND c.id = a.customer_id AND c.merged_into_id IS NULL
          LEFT JOIN segmentation_customervalue v ON v.tenant_id = %(tenant)s AND v.customer_id = a.customer_id
          LEFT JOIN seg_signal g ON g.customer_id = a.customer_id
          {source}""",
        params,
    )


def _drop_departed(params: dict[str, Any]) -> None:
    """The rows of affected customers who are no longer live (merged away since: the survivor was
    marked by its moved orders) go, before any boundary walk reads the stored rows."""
    _execute(
        """DELETE FROM segmentation_customervalue v USING seg_affected a
            WHERE v.tenant_id = %(tenant)s AND v.customer_id = a.customer_id
              AND NOT EXISTS (SELECT 1 FROM seg_agg g WHERE g.customer_id = a.customer_id)""",
        params,
    )


# --- Boundaries -----------------------------------------------------------------------------------
# A boundary is the k-th smallest value of a measure among the n scored customers, kept with how
# many customers are below it (lt) and at or below it (le), so lt < k <= le. After a day of changes
# the new lt and le follow from the changed customers' old and new values alone; when k no longer
# falls in (lt, le], the new boundary is a short index walk away. No sort of the whole dealership.

# measure -> (CustomerValue column, seg_before column, SQL type, population)
MEASURES: dict[str, tuple[str, str, str, str]] = {
    "r": ("last_activity_on", "last_activity", "date", "orders_total > 0"),
    "f": ("frequency", "frequency", "bigint", "orders_total > 0"),
    # spend in cents: numeric comparisons are not leakproof, so under row-level security they
    # cannot be index conditions (a walk would read the whole dealership); bigint ones can.
    "m": ("monetary_cents", "monetary_cents", "bigint", "orders_total > 0"),
    "t": ("value_key", "value_key", "bigint", "value_key IS NOT NULL"),
}


def quintile_positions(n: int) -> list[int]:
    """k of the four quintile edges: score = 1 + (edges strictly below the value)."""
    return [max((q * n + 4) // 5, 1) for q in range(1, 5)]


def tier_positions(n: int, cumulative: tuple[int, int, int]) -> list[int]:
    """Ascending positions of the tier edges: the ceil(share × n)-th largest value key."""
    return [n - max((min(c, 100) * n + 99) // 100, 1) + 1 for c in cumulative]


def _to_sql_value(measure: str, value: Any) -> Any:
    if value is None:
        return None
    if measure == "r":
        return date.fromisoformat(value) if isinstance(value, str) else value
    return int(value)


def _to_json_value(value: Any) -> Any:
    if isinstance(value, (date, Decimal)):
        return str(value)
    return value


def _bounds_from_scratch(measure: str, positions: list[int], n: int, params: dict[str, Any]) -> list[list[Any]]:
    """percentile_disc at whole-number positions (k - 0.5) / n, then each edge's lt and le."""
    column, _before, sql_type, population = MEASURES[measure]
    # Everyone is in the run's tables: their new aggregates in seg_agg, their value keys in seg_new.
    source = "seg_new" if measure == "t" else "seg_agg"
    where = population
    fractions = [(k - 0.5) / n for k in positions]
    (edges,) = _fetch_one(
        f"SELECT percentile_disc(%(fr)s::float8[]) WITHIN GROUP (ORDER BY {column}) FROM {source} WHERE {where}",
        params | {"fr": fractions},
    )
    counts = ", ".join(
        f"count(*) FILTER (WHERE {column} < %(e{i})s::{sql_type}), "
        f"count(*) FILTER (WHERE {column} <= %(e{i})s::{sql_type})"
        for i in range(len(edges))
    )
    row = _fetch_one(f"SELECT {counts} FROM {source} WHERE {where}", params | {f"e{i}": e for i, e in enumerate(edges)})
    return [[edge, row[2 * i], row[2 * i + 1]] for i, edge in enumerate(edges)]


def _walk_sql(measure: str, i: int, edge: Any, lt: int, le: int, k: int) -> tuple[str, dict[str, Any]]:
    """A query for the k-th smallest value now, with its lt and le, from an edge whose lt and le are
    already brought up to date (k is outside (lt, le]): the value `off` places past the edge, then the
    values between the two counted. Its rows are (i, date value, number value, lt, le); none means the
    kept counts no longer match the rows."""
    column, _before, sql_type, population = MEASURES[measure]
    edge_p, off_p, base_p = f"%(walk_edge{i})s::{sql_type}", f"%(walk_off{i})s", f"%(walk_base{i})s::bigint"

    def values(condition: str, order: str = "") -> str:
        """The values in a range (the first off + 1 in `order`, if given). Nothing is written before the
        run's end: the rescored customers' new values come from the run's table (aggregates from
        seg_agg, value keys from seg_new), beside everyone else's stored ones."""
        first = f"ORDER BY {column} {order} LIMIT {off_p} + 1" if order else ""
        new = "seg_new" if measure == "t" else "seg_agg"
        return f"""((SELECT {column} FROM segmentation_customervalue
                      WHERE tenant_id = %(tenant)s AND {population} AND {condition}
                        AND customer_id NOT IN (SELECT customer_id FROM {new}) {first})
                    UNION ALL
                    (SELECT {column} FROM {new} WHERE {population} AND {condition} {first})) AS x"""

    if k > le:
        found = f"""SELECT {column} AS new FROM {values(f"{column} > {edge_p}", "ASC")}
                     ORDER BY {column} OFFSET {off_p} LIMIT 1"""
        counted = f"""SELECT count(*) FILTER (WHERE {column} < w.new) AS passed,
                             count(*) FILTER (WHERE {column} = w.new) AS tied
                        FROM {values(f"{column} > {edge_p} AND {column} <= w.new")}"""
        bounds = f"{base_p} + c.passed, {base_p} + c.passed + c.tied"
        off, base = k - le - 1, le
    else:
        found = f"""SELECT {column} AS new FROM {values(f"{column} < {edge_p}", "DESC")}
                     ORDER BY {column} DESC OFFSET {off_p} LIMIT 1"""
        counted = f"""SELECT count(*) FILTER (WHERE {column} > w.new) AS passed,
                             count(*) FILTER (WHERE {column} = w.new) AS tied
                        FROM {values(f"{column} >= w.new AND {column} < {edge_p}")}"""
        bounds = f"{base_p} - c.passed - c.tied, {base_p} - c.passed"
        off, base = lt - k, lt
    # One statement holds walks of dates and of numbers: each goes in a column of its own type.
    typed = "w.new, NULL::bigint" if sql_type == "date" else "NULL::date, w.new"
    sql = f"""(SELECT {i}, {typed}, {bounds} FROM ({found}) w CROSS JOIN LATERAL ({counted}) c)"""
    return sql, {f"walk_edge{i}": edge, f"walk_off{i}": off, f"walk_base{i}": base}


def _moved_bounds(
    measures: list[str],
    old: dict[str, list[list[Any]]],
    old_n: int,
    new_source: str,
    params: dict[str, Any],
    positions_of: Callable[[int], list[int]],
) -> tuple[int, dict[str, list[list[Any]]]]:
    """New n and edges from the old ones and the changed customers (seg_before against `new_source`,
    a query with the same columns over the customers whose values may have changed)."""
    parts, values = [], {}
    population = "value_key IS NOT NULL" if measures == ["t"] else "total > 0"
    for measure in measures:
        _column, before, sql_type, _population = MEASURES[measure]
        for i, (edge, _lt, _le) in enumerate(old[measure]):
            key = f"{measure}{i}"
            values[key] = _to_sql_value(measure, edge)
            for side in ("o", "n"):
                for op in ("<", "<="):
                    parts.append(
                        f"count(*) FILTER (WHERE {side}.{population} AND {side}.{before} {op} %({key})s::{sql_type})"
                    )
    row = _fetch_one(
        f"""SELECT count(*) FILTER (WHERE o.existed AND o.{population}), count(*) FILTER (WHERE n.{population}),
                   {", ".join(parts)}
              FROM (SELECT * FROM seg_before WHERE existed AND {population}) o
              FULL JOIN ({new_source}) n ON n.customer_id = o.customer_id
             WHERE o.customer_id IS NOT NULL OR n.{population}""",
        params | values,
    )
    n = old_n - row[0] + row[1]
    moved: dict[str, list[list[Any]]] = {measure: [] for measure in measures}
    if n <= 0:
        return 0, moved
    # Edges whose position left (lt, le] move by an index walk: all of them in one statement.
    at = 2
    walks: list[tuple[str, int, str]] = []
    walk_params: dict[str, Any] = {}
    for measure in measures:
        positions = positions_of(n)
        for i, (_edge, lt, le) in enumerate(old[measure]):
            old_lt, old_le, new_lt, new_le = row[at : at + 4]
            at += 4
            lt, le = lt - old_lt + new_lt, le - old_le + new_le
            edge, k = values[f"{measure}{i}"], positions[i]
            moved[measure].append([edge, lt, le])
            if not lt < k <= le:
                sql, p = _walk_sql(measure, len(walks), edge, lt, le, k)
                walks.append((measure, i, sql))
                walk_params |= p
    if walks:
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(sql for _m, _i, sql in walks), params | walk_params)
            found = {
                int(w): (day if day is not None else number, int(lt), int(le))
                for w, day, number, lt, le in cursor.fetchall()
            }
        for w, (measure, i, _sql) in enumerate(walks):
            if w not in found:
                raise StateDrift(measure)
            new, lt, le = found[w]
            moved[measure][i] = [_to_sql_value(measure, new), lt, le]
    return n, moved


def _add_between(moves: list[tuple[str, list[list[Any]], list[list[Any]]]], params: dict[str, Any]) -> int:
    """Customers whose score or tier test flips because an edge moved: value in (lo, hi] for scores
    (value > edge), [lo, hi) for tiers (value key >= edge). `moves` holds (measure, old edges, new
    edges); one statement for all of them."""
    ranges: list[str] = []
    p: dict[str, Any] = {}
    for measure, old, new in moves:
        column, _before, sql_type, population = MEASURES[measure]
        for i, ((a, _l1, _e1), (b, _l2, _e2)) in enumerate(zip(old, new, strict=True)):
            a, b = _to_sql_value(measure, a), _to_sql_value(measure, b)
            if a == b:
                continue
            lo, hi = f"%(lo_{measure}{i})s::{sql_type}", f"%(hi_{measure}{i})s::{sql_type}"
            p[f"lo_{measure}{i}"], p[f"hi_{measure}{i}"] = sorted((a, b))
            test = (
                f"{column} >= {lo} AND {column} < {hi}" if measure == "t" else f"{column} > {lo} AND {column} <= {hi}"
            )
            ranges.append(test + f" AND {population}")
    return _rescore_stored(ranges, params | p)


def _rescore_stored(ranges: list[str], params: dict[str, Any]) -> int:
    """Add the dealership's stored customers in any of `ranges` (each served by an index) to seg_rescore."""
    if not ranges:
        return 0
    selects = " UNION ALL ".join(
        f"(SELECT customer_id FROM segmentation_customervalue WHERE tenant_id = %(tenant)s AND {r})" for r in ranges
    )
    return _execute(f"INSERT INTO seg_rescore {selects} ON CONFLICT DO NOTHING", params)


def _add_day_limits(*, previous: date, run_date: date, limits: list[int], params: dict[str, Any]) -> int:
    """Customers who crossed a day limit (dormant, lost, a recency threshold) between the two run dates:
    `last visit < run date - limit` flips for last visits in [min - limit, max - limit)."""
    if previous == run_date:
        return 0
    lo, hi = sorted((previous, run_date))
    ranges: list[str] = []
    p: dict[str, Any] = {}
    for i, limit in enumerate(sorted(set(limits))):
        ranges.append(f"orders_total > 0 AND last_activity_on >= %(day_lo{i})s AND last_activity_on < %(day_hi{i})s")
        p[f"day_lo{i}"], p[f"day_hi{i}"] = lo - timedelta(days=limit), hi - timedelta(days=limit)
    return _rescore_stored(ranges, params | p)


# --- Scores, tiers, stages --------------------------------------------------------------------------


def _score_sql(mode: str) -> tuple[str, str, str]:
    """SQL for R, F and M of an input row `i`."""
    if mode == ScoringMode.THRESHOLDS:
        days = "(%(run_date)s::date - i.last_activity)"
        r = "1 + " + " + ".join(f"({days} <= %(rd{k})s)::int" for k in range(4))
        f = "1 + " + " + ".join(f"(i.f_val >= %(fl{k})s)::int" for k in range(4))
        m = "1 + " + " + ".join(f"(i.m_val >= %(ml{k})s::numeric)::int" for k in range(4))
        return r, f, m
    # Quintiles: score = 1 + edges strictly below the value; equal values share a score.
    r = "1 + " + " + ".join(f"(i.last_activity > %(r{k})s::date)::int" for k in range(4))
    f = "1 + " + " + ".join(f"(i.f_val > %(f{k})s::bigint)::int" for k in range(4))
    m = "1 + " + " + ".join(f"(i.m_cents > %(m{k})s::bigint)::int" for k in range(4))
    return r, f, m


def _grid_values() -> str:
    rows = [f"({r}, {fm}, '{segment.value}')" for r, row in SEGMENT_GRID.items() for fm, segment in enumerate(row, 1)]
    return "VALUES " + ", ".join(rows)


def _score_into_new(source: str, params: dict[str, Any], mode: str) -> int:
    """Score, segment and stage the live customers of `source` not yet in seg_new, from their
    aggregates in seg_agg (tiers come later)."""
    r_sql, f_sql, m_sql = _score_sql(mode)
    L, R = LifecycleStage, RelationshipClass
    return _execute(
        f"""
        INSERT INTO seg_new (customer_id, list_flag, m_val, r, f, m, value_key, segment, stage, class)
        WITH input AS (
            SELECT c.id AS customer_id, c.list_flag, c.churn_reason <> '' AS churned,
                   c.relationship_class AS old_class, v.last_activity_on AS last_activity,
                   v.orders_total AS total, v.vehicle_purchases AS vehicles, v.first_order_on, v.last_order_on,
                   v.frequency AS f_val, v.monetary AS m_val, v.monetary_cents AS m_cents,
                   v.satisfied, v.dissatisfied, v.referrals
              FROM ({source}) a
              JOIN customers_customer c
                ON c.tenant_id = %(tenant)s AND c.id = a.customer_id AND c.merged_into_id IS NULL
              JOIN seg_agg v ON v.customer_id = a.customer_id
             WHERE NOT EXISTS (SELECT 1 FROM seg_new n WHERE n.customer_id = a.customer_id)
        ), scored AS (
            SELECT i.*,
                   CASE WHEN i.total > 0 THEN {r_sql} END AS r,
                   CASE WHEN i.total > 0 THEN {f_sql} END AS f,
                   CASE WHEN i.total > 0 THEN {m_sql} END AS m
              FROM input i
        ), staged AS (
            SELECT s.*, coalesce(grid.segment, '') AS segment,
                   CASE WHEN s.total = 0 THEN '{L.PROSPECT}'
                        WHEN s.churned OR %(run_date)s::date - s.last_activity > %(lost)s THEN '{L.LOST}'
                        WHEN %(run_date)s::date - s.last_activity > %(dormant)s THEN '{L.DORMANT}'
                        WHEN s.vehicles >= 2 OR s.f_val >= %(loyal_orders)s OR s.referrals > 0 THEN '{L.LOYAL}'
                        WHEN s.last_order_on > s.first_order_on THEN '{L.RETAINED}'
                        WHEN s.satisfied AND NOT s.dissatisfied THEN '{L.SATISFIED}'
                        ELSE '{L.NEW}' END AS stage
              FROM scored s
              LEFT JOIN ({_grid_values()}) AS grid(r, fm, segment) ON grid.r = s.r AND grid.fm = (s.f + s.m + 1) / 2
        )
        SELECT customer_id, list_flag, m_val, r, f, m,
               CASE WHEN r IS NOT NULL
                    THEN (r + f + m)::bigint * {VALUE_KEY_SCALE} + m_cents END,
               segment, stage,
               CASE WHEN stage = '{L.LOYAL}' THEN '{R.LOYAL}'
                    WHEN stage IN ('{L.NEW}', '{L.SATISFIED}', '{L.RETAINED}') THEN '{R.KEY}'
                    WHEN total > 0 OR last_activity IS NOT NULL OR old_class <> '{R.POTENTIAL}' THEN '{R.GENERAL}'
                    WHEN EXISTS (SELECT 1 FROM customers_touchpoint p
                                  WHERE p.tenant_id = %(tenant)s AND p.customer_id = staged.customer_id)
                         THEN '{R.GENERAL}'
                    ELSE '{R.POTENTIAL}' END
          FROM staged
        """,
        params,
    )


def _assign_tiers(params: dict[str, Any]) -> None:
    _execute(
        f"""UPDATE seg_new SET tier = CASE
                WHEN list_flag = 'black' THEN '{Tier.EXIT}'
                WHEN r IS NULL THEN ''
                WHEN list_flag = 'red' AND %(red_effect)s = 'always_key' THEN '{Tier.KEY}'
                WHEN %(c1)s > 0 AND value_key >= %(t0)s::bigint THEN '{Tier.KEY}'
                WHEN %(c2)s > 0 AND value_key >= %(t1)s::bigint THEN '{Tier.CONSOLIDATE}'
                WHEN list_flag = 'red' AND %(red_effect)s = 'at_least_consolidate' THEN '{Tier.CONSOLIDATE}'
                WHEN %(c3)s > 0 AND value_key >= %(t2)s::bigint THEN '{Tier.MAINTAIN}'
                ELSE '{Tier.EXIT}' END""",
        params,
    )


def _collect_changes() -> tuple[int, int]:
    """seg_changed: the rescored customers whose scores, tier, stage, class, value key or aggregates
    differ from what is stored (or who have no row yet). Returns how many changed scores, segment,
    tier, stage or class (not those whose value key alone moved: spend within the same scores), and
    how many changed aggregates."""
    agg = ", ".join(f"a.{column}" for column in AGGREGATE_COLUMNS)
    stored = ", ".join(f"v.{column}" for column in AGGREGATE_COLUMNS)
    changed, refreshed = _fetch_one(
        f"""WITH compared AS (
               SELECT n.customer_id, n.r, n.f, n.m, n.value_key, n.segment, n.tier, n.stage, n.class,
                      v.scored_on IS NULL OR (n.r, n.f, n.m, n.segment, n.tier)
                          IS DISTINCT FROM (v.r_score, v.f_score, v.m_score, v.segment, v.tier) AS value_changed,
                      n.value_key IS DISTINCT FROM v.value_key AS key_changed,
                      (n.stage, n.class) IS DISTINCT FROM (c.lifecycle_stage, c.relationship_class) AS class_changed,
                      v.customer_id IS NULL OR ({agg}) IS DISTINCT FROM ({stored}) AS aggregates_changed,
                      {agg}
                 FROM seg_new n
                 JOIN seg_agg a ON a.customer_id = n.customer_id
                 JOIN customers_customer c ON c.tenant_id = %(tenant)s AND c.id = n.customer_id
                 LEFT JOIN segmentation_customervalue v ON v.tenant_id = %(tenant)s AND v.customer_id = n.customer_id
           ), written AS (
               INSERT INTO seg_changed
               SELECT * FROM compared WHERE value_changed OR key_changed OR class_changed OR aggregates_changed
               RETURNING value_changed, class_changed, aggregates_changed)
           SELECT count(*) FILTER (WHERE value_changed OR class_changed), count(*) FILTER (WHERE aggregates_changed)
             FROM written""",
        {"tenant": require_tenant_id()},
    )
    return int(changed), int(refreshed)


def _apply_changes(*, tenant_id: int, run_date: date) -> int:
    """One write per changed customer: aggregates, scores, segment and tier together."""
    params = {"tenant": tenant_id, "run_date": run_date}
    columns = ", ".join(AGGREGATE_COLUMNS)
    written = _execute(
        f"""INSERT INTO segmentation_customervalue AS v
                   (tenant_id, customer_id, {columns}, r_score, f_score, m_score, value_key, rfm_code, segment,
                    tier, scored_on)
            SELECT %(tenant)s, s.customer_id, {", ".join(f"s.{column}" for column in AGGREGATE_COLUMNS)},
                   s.r, s.f, s.m, s.value_key, coalesce(s.r::text || s.f::text || s.m::text, ''), s.segment,
                   s.tier, CASE WHEN s.value_changed THEN %(run_date)s::date END
              FROM seg_changed s
             WHERE s.value_changed OR s.key_changed OR s.aggregates_changed
            ON CONFLICT (tenant_id, customer_id) DO UPDATE SET
                   {", ".join(f"{column} = EXCLUDED.{column}" for column in AGGREGATE_COLUMNS)},
                   r_score = EXCLUDED.r_score, f_score = EXCLUDED.f_score, m_score = EXCLUDED.m_score,
                   value_key = EXCLUDED.value_key, rfm_code = EXCLUDED.rfm_code, segment = EXCLUDED.segment,
                   tier = EXCLUDED.tier,
                   -- "changed since" (the API's incremental sync) counts new scores and a new last visit
                   scored_on = CASE WHEN EXCLUDED.scored_on IS NOT NULL THEN EXCLUDED.scored_on
                                    WHEN v.scored_on IS NOT NULL
                                         AND v.last_activity_on IS DISTINCT FROM EXCLUDED.last_activity_on
                                    THEN %(run_date)s::date
                                    ELSE v.scored_on END""",
        params,
    )
    written += customers_apply_derived_classes(tenant_id=tenant_id, source_table="seg_changed")
    return written


def _write_history(*, tenant_id: int, run_date: date) -> int:
    """Close the open period of every customer whose tier, segment, RFM code or stage changed, and open
    a new one from run_date (a second run on the same day rewrites that day's period instead)."""
    params: dict[str, Any] = {"tenant": tenant_id, "run_date": run_date}
    state = "(s.tier, s.segment, coalesce(s.r::text || s.f::text || s.m::text, ''), s.stage)"
    # Rows whose value key or aggregates alone changed keep their period.
    changed = "(SELECT * FROM seg_changed WHERE value_changed OR class_changed)"
    written = _execute(
        f"""UPDATE segmentation_valuehistory h
               SET tier = s.tier, segment = s.segment, rfm_code = coalesce(s.r::text || s.f::text || s.m::text, ''),
                   lifecycle_stage = s.stage
              FROM {changed} s
             WHERE h.tenant_id = %(tenant)s AND h.customer_id = s.customer_id AND h.valid_to IS NULL
               AND h.valid_from >= %(run_date)s
               AND (h.tier, h.segment, h.rfm_code, h.lifecycle_stage) IS DISTINCT FROM {state}""",
        params,
    )
    # A same-day correction that restores the state of the period closed today: drop today's period
    # and reopen that one, so no two adjacent periods carry the same state.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""DELETE FROM segmentation_valuehistory h
                USING segmentation_valuehistory p, {changed} s
                WHERE h.tenant_id = %(tenant)s AND h.customer_id = s.customer_id AND h.valid_to IS NULL
                  AND h.valid_from = %(run_date)s
                  AND p.tenant_id = %(tenant)s AND p.customer_id = h.customer_id AND p.valid_to = %(run_date)s
                  AND (p.tier, p.segment, p.rfm_code, p.lifecycle_stage)
                      = (h.tier, h.segment, h.rfm_code, h.lifecycle_stage)
            RETURNING h.customer_id""",
            params,
        )
        restored = [row[0] for row in cursor.fetchall()]
    if restored:
        written += _execute(
            """UPDATE segmentation_valuehistory SET valid_to = NULL
                WHERE tenant_id = %(tenant)s AND customer_id = ANY(%(ids)s) AND valid_to = %(run_date)s""",
            params | {"ids": restored},
        )
    written += _execute(
        f"""UPDATE segmentation_valuehistory h SET valid_to = %(run_date)s
              FROM {changed} s
             WHERE h.tenant_id = %(tenant)s AND h.customer_id = s.customer_id AND h.valid_to IS NULL
               AND h.valid_from < %(run_date)s
               AND (h.tier, h.segment, h.rfm_code, h.lifecycle_stage) IS DISTINCT FROM {state}""",
        params,
    )
    written += _execute(
        f"""INSERT INTO segmentation_valuehistory
               (tenant_id, customer_id, tier, segment, rfm_code, lifecycle_stage, valid_from, valid_to)
           SELECT %(tenant)s, s.customer_id, s.tier, s.segment, coalesce(s.r::text || s.f::text || s.m::text, ''),
                  s.stage, %(run_date)s, NULL
             FROM {changed} s
            WHERE NOT EXISTS (SELECT 1 FROM segmentation_valuehistory h
                               WHERE h.tenant_id = %(tenant)s AND h.customer_id = s.customer_id
                                 AND h.valid_to IS NULL)""",
        params,
    )
    return written


# --- The distribution managers see ----------------------------------------------------------------
# Kept as counts (and spend sums per R×F cell) in the engine's state: a run adds what seg_new holds
# and takes away what seg_before held, so it never reads the customers it did not rescore.


def _empty_summary() -> dict[str, Any]:
    return {"customers": 0, "scored": 0, "tiers": {}, "segments": {}, "stages": {}, "grid": {}}


def _summary_delta(summary: dict[str, Any]) -> dict[str, Any]:
    """The kept distribution plus what seg_new holds now, minus what seg_before held."""
    sql = """
        SELECT {sign} AS sign, GROUPING(tier) AS g_tier, GROUPING(segment) AS g_seg, GROUPING(stage) AS g_stage,
               GROUPING(r, f) AS g_rf, tier, segment, stage, r, f, count(*) AS customers,
               coalesce(sum({money}) FILTER (WHERE r IS NOT NULL), 0) AS monetary, count(r) AS scored
          FROM {table} {where}
         GROUP BY GROUPING SETS ((tier), (segment), (stage), (r, f), ())"""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.format(sign=1, money="m_val", table="seg_new", where="")
            + " UNION ALL "
            + sql.format(sign=-1, money="monetary", table="seg_before", where="WHERE existed")
        )
        rows = fetch_dicts(cursor)
    result = json.loads(json.dumps(summary))  # a copy

    def add(part: str, key: str, count: int) -> None:
        result[part][key] = result[part].get(key, 0) + count
        if result[part][key] == 0:
            del result[part][key]

    for row in rows:
        sign = row["sign"]
        if not row["g_tier"] and row["g_seg"] and row["g_stage"]:
            add("tiers", row["tier"] or "", sign * row["customers"])
        elif not row["g_seg"]:
            add("segments", row["segment"] or "", sign * row["customers"])
        elif not row["g_stage"]:
            add("stages", row["stage"] or "", sign * row["customers"])
        elif not row["g_rf"]:
            if row["r"] is not None:
                key = f"{row['r']},{row['f']}"
                count, spend = result["grid"].get(key, [0, "0"])
                count += sign * row["customers"]
                spend = Decimal(spend) + sign * Decimal(row["monetary"])
                if count:
                    result["grid"][key] = [count, str(spend)]
                else:
                    result["grid"].pop(key, None)
        else:
            result["customers"] += sign * row["customers"]
            result["scored"] += sign * row["scored"]
    return result


def _grid_list(summary: dict[str, Any]) -> list[dict[str, Any]]:
    cells = []
    for key, (count, spend) in summary["grid"].items():
        r, f = (int(x) for x in key.split(","))
        cells.append({"r": r, "f": f, "customers": count, "monetary": str(_money(Decimal(spend) / count))})
    cells.sort(key=lambda cell: (-cell["r"], cell["f"]))
    return cells


def _decode_value_key(key: Any) -> dict[str, Any]:
    """A tier boundary: the lowest R+F+M score sum (and, within it, spend) that still makes the tier."""
    key = int(key)
    score_sum = (key + VALUE_KEY_SCALE // 2) // VALUE_KEY_SCALE
    return {"rfm_sum": score_sum, "monetary": str(_money(Decimal(key - score_sum * VALUE_KEY_SCALE) / 100))}


def _money(value: Any) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


# --- The run itself ----------------------------------------------------------------------------------


def _params(tenant_id: int, settings: SegmentationSettings, run_date: date, window_start: date) -> dict[str, Any]:
    cum = settings.cumulative_shares
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "run_date": run_date,
        "ws": window_start,
        "reversed": Order.Status.REVERSED,
        "vehicle_sale": Order.Kind.VEHICLE_SALE,
        "c1": cum[0],
        "c2": cum[1],
        "c3": cum[2],
        "lost": settings.lost_after_days,
        "dormant": settings.dormant_after_days,
        "loyal_orders": settings.loyal_min_orders,
        "red_effect": settings.red_list_effect,
    }
    if settings.scoring_mode == ScoringMode.THRESHOLDS:
        for prefix, values in (
            ("rd", settings.recency_days),
            ("fl", settings.frequency_limits),
            ("ml", settings.monetary_limits),
        ):
            for k, value in enumerate(values):
                params[f"{prefix}{k}"] = value
    return params


def _edge_params(measure: str, edges: list[list[Any]] | None, count: int) -> dict[str, Any]:
    values = [_to_sql_value(measure, e[0]) for e in edges] if edges else [None] * count
    return {f"{measure}{i}": v for i, v in enumerate(values)}


def _state_ok(state: Any, fingerprint: str) -> bool:
    return (
        isinstance(state, dict)
        and state.get("fingerprint") == fingerprint
        and {"run_date", "n", "bounds", "summary"} <= set(state)
    )


class StateDrift(Exception):
    """The kept boundary counts no longer match the rows (something wrote them behind the engine's back)."""


def segmentation_recompute(*, run_date: date, trigger: str = "") -> RunResult:
    """Recompute everything for the active dealership. Call inside one transaction (the nightly step's
    `tenant_context`): it commits or rolls back as a whole. Idempotent: a second run with the same
    data and date changes no row."""
    tenant_id = require_tenant_id()
    _execute("SET LOCAL work_mem = '64MB'")
    # Without nested loops (below) the plan cost of a full run rises enough to wake the JIT
    # compiler, which only costs time here.
    _execute("SET LOCAL jit = off")
    # A worker killed mid-run: its backend notices the lost client and rolls back within seconds.
    _execute("SET LOCAL client_connection_check_interval = '2s'")
    settings = SegmentationSettings.objects.select_for_update().get(pk=settings_for_tenant().pk)
    fingerprint = _fingerprint(settings)
    incremental = settings.aggregates_window_start is not None and _state_ok(settings.engine_state, fingerprint)
    if incremental:
        try:
            with transaction.atomic():
                return _run(settings, run_date=run_date, trigger=trigger, incremental=True)
        except StateDrift:
            logger.warning("segmentation state of dealership %s drifted; scoring everyone", tenant_id)
    # A dealership whose rows the planner has no statistics for yet (its first run, before autovacuum
    # analyzes them) must not get nested-loop joins over all its customers: measured 26.8 s instead
    # of 0.3 s for 18,609 customers.
    _execute("SET LOCAL enable_nestloop = off")
    return _run(settings, run_date=run_date, trigger=trigger, incremental=False)


@dataclass
class _Run:
    """What the steps of one run share: the dealership, the dates, the statements' parameters (the
    edges are added to them as they are found) and the clock."""

    settings: SegmentationSettings
    run_date: date
    tenant_id: int
    window_start: date
    params: dict[str, Any]
    started_at: datetime
    started: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def quintiles(self) -> bool:
        return self.settings.scoring_mode == ScoringMode.QUINTILE

    def lap(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.timings[name] = round(now - since, 3)
        return now


# Who is scored: every live customer (a cold build or a settings change), or the rescore set.
LIVE_CUSTOMERS = (
    "SELECT id AS customer_id FROM customers_customer WHERE tenant_id = %(tenant)s AND merged_into_id IS NULL"
)
RESCORED = "SELECT customer_id FROM seg_rescore"


def _run(settings: SegmentationSettings, *, run_date: date, trigger: str, incremental: bool) -> RunResult:
    """Pick the run's mode. `incremental` (decided by segmentation_recompute: aggregates kept and the
    kept state valid): only what changed. Otherwise everyone is scored: from the whole orders table
    when nothing was aggregated yet (a cold build), else from the kept aggregates (a settings or
    rule change, or kept state that drifted)."""
    if incremental:
        return _run_incremental(settings, run_date=run_date, trigger=trigger)
    if settings.aggregates_window_start is None:
        return _run_cold_build(settings, run_date=run_date, trigger=trigger)
    return _run_settings_change(settings, run_date=run_date, trigger=trigger)


def _run_cold_build(settings: SegmentationSettings, *, run_date: date, trigger: str) -> RunResult:
    """A dealership's first run: every customer's aggregates from its whole order history, everyone
    scored, all edges found from scratch."""
    run = _start(settings, run_date=run_date, full_aggregates=True)
    _collect_signals(run.params)
    mark = _stage(run, full_aggregates=True)
    n, bounds = _score_from_scratch(run, LIVE_CUSTOMERS)
    return _finish(
        run, trigger=trigger, mark=mark, n=n, bounds=bounds, summary_before=_empty_summary(), incremental=False
    )


def _run_settings_change(settings: SegmentationSettings, *, run_date: date, trigger: str) -> RunResult:
    """The kept state cannot be used (settings or rules changed, or it drifted): customers whose
    orders changed are re-aggregated, the others keep their aggregates, and everyone is scored again
    with edges from scratch."""
    run = _start(settings, run_date=run_date, full_aggregates=False)
    # Everyone is scored again; customers who somehow have no values row yet get one.
    _execute(
        """INSERT INTO seg_affected SELECT c.id FROM customers_customer c
            WHERE c.tenant_id = %(tenant)s AND c.merged_into_id IS NULL
              AND NOT EXISTS (SELECT 1 FROM segmentation_customervalue v
                               WHERE v.tenant_id = %(tenant)s AND v.customer_id = c.id)
           ON CONFLICT DO NOTHING""",
        run.params,
    )
    _collect_signals(run.params)
    # Everyone is scored; the customers not re-aggregated keep their aggregates.
    _snapshot(LIVE_CUSTOMERS, run.params, keep_before=False)
    mark = _stage(run, full_aggregates=False)
    n, bounds = _score_from_scratch(run, LIVE_CUSTOMERS)
    return _finish(
        run, trigger=trigger, mark=mark, n=n, bounds=bounds, summary_before=_empty_summary(), incremental=False
    )


def _run_incremental(settings: SegmentationSettings, *, run_date: date, trigger: str) -> RunResult:
    """The nights after: only the customers whose result can differ are scored again (changed,
    slid out of the window, new signals, a day limit crossed, between an edge's old and new place),
    and the kept edges are moved rather than found again (docstring, 1–4)."""
    state: dict[str, Any] = settings.engine_state  # type: ignore[assignment]
    old_n = int(state["n"])
    run = _start(settings, run_date=run_date, full_aggregates=False)
    params = run.params
    _collect_signals(params)
    _execute("INSERT INTO seg_rescore SELECT customer_id FROM seg_affected", params)
    _execute("INSERT INTO seg_rescore SELECT customer_id FROM seg_slide", params)
    _execute("INSERT INTO seg_rescore SELECT customer_id FROM seg_signal ON CONFLICT DO NOTHING", params)
    limits = [settings.dormant_after_days, settings.lost_after_days]
    if not run.quintiles:
        limits += list(settings.recency_days)
    previous_run = date.fromisoformat(state["run_date"])
    _add_day_limits(previous=previous_run, run_date=run_date, limits=limits, params=params)
    _analyze("seg_affected", "seg_slide", "seg_rescore", "seg_signal")
    _snapshot(RESCORED, params)
    mark = _stage(run, full_aggregates=False)
    if old_n:
        n, bounds = _score_moved(run, state, old_n)
    else:
        # Nobody was scored before: everyone scored now was re-aggregated, so seg_new will hold them
        # all and computing the edges from scratch reads no more than that.
        n, bounds = _score_from_scratch(run, RESCORED)
    return _finish(
        run, trigger=trigger, mark=mark, n=n, bounds=bounds, summary_before=state["summary"], incremental=True
    )


def _start(settings: SegmentationSettings, *, run_date: date, full_aggregates: bool) -> _Run:
    """The temporary tables, and the customers whose aggregates are recomputed (seg_affected:
    everyone when `full_aggregates`) and the orders that slid out of the window (seg_slide)."""
    tenant_id = require_tenant_id()
    started_at, started = timezone.now(), time.monotonic()
    window_start = window_start_for(settings, run_date)
    run = _Run(
        settings=settings,
        run_date=run_date,
        tenant_id=tenant_id,
        window_start=window_start,
        params=_params(tenant_id, settings, run_date, window_start),
        started_at=started_at,
        started=started,
    )
    _temp_tables()
    _progress(tenant_id, "aggregates", started)
    _collect_affected(
        params=run.params,
        previous_window_start=settings.aggregates_window_start,
        window_start=window_start,
        full=full_aggregates,
    )
    return run


def _stage(run: _Run, *, full_aggregates: bool) -> float:
    """The new aggregates staged beside the stored ones, departed customers dropped: the end of the
    aggregates phase (returns its lap mark)."""
    _stage_aggregates(params=run.params, full=full_aggregates)
    _analyze("seg_before", "seg_agg")
    _drop_departed(run.params)
    mark = run.lap("aggregates", run.started)
    _progress(run.tenant_id, "scores", run.started)
    return mark


def _score(run: _Run, source: str, bounds: dict[str, list[list[Any]]]) -> None:
    """Score `source`'s customers into seg_new with the R, F and M edges in `bounds` (none with
    thresholds)."""
    for measure in ("r", "f", "m"):
        run.params |= _edge_params(measure, bounds.get(measure), 4)
    _score_into_new(source, run.params, run.settings.scoring_mode)
    _analyze("seg_new", "seg_before")


def _score_from_scratch(run: _Run, source: str) -> tuple[int, dict[str, list[list[Any]]]]:
    """Score `source`'s customers with R, F, M and tier edges found from scratch over everyone
    scored (seg_agg)."""
    n = _scored_count(run.params)
    bounds: dict[str, list[list[Any]]] = {}
    if run.quintiles:
        for measure in ("r", "f", "m"):
            bounds[measure] = _bounds_from_scratch(measure, quintile_positions(n), n, run.params) if n else []
    _score(run, source, bounds)
    cumulative = run.settings.cumulative_shares
    bounds["t"] = _bounds_from_scratch("t", tier_positions(n, cumulative), n, run.params) if n else []
    return n, bounds


def _score_moved(run: _Run, state: dict[str, Any], old_n: int) -> tuple[int, dict[str, list[list[Any]]]]:
    """Score the rescore set with R, F, M and tier edges moved from the kept ones (`state`, over
    `old_n` customers); customers found between an edge's old and new place join the rescore set."""
    params = run.params
    # R, F and M edges moved from the kept ones by the rescored customers' old and new values.
    bounds: dict[str, list[list[Any]]] = {}
    if run.quintiles:
        new_values = """SELECT customer_id, orders_total AS total, last_activity_on AS last_activity, frequency,
                               monetary_cents
                          FROM seg_agg"""
        n, bounds = _moved_bounds(["r", "f", "m"], state["bounds"], old_n, new_values, params, quintile_positions)
        if n and _add_between([(m, state["bounds"][m], bounds[m]) for m in ("r", "f", "m")], params):
            _analyze("seg_rescore")
            _snapshot(RESCORED, params)
    _score(run, RESCORED, bounds)
    # Tier edges on the value key, found the same way.
    n, moved = _moved_bounds(
        ["t"],
        state["bounds"],
        old_n,
        "SELECT customer_id, value_key FROM seg_new",
        params,
        lambda count: tier_positions(count, run.settings.cumulative_shares),
    )
    bounds["t"] = moved["t"]
    if n and _add_between([("t", state["bounds"]["t"], bounds["t"])], params):
        _analyze("seg_rescore")
        _snapshot(RESCORED, params)
        _score_into_new(RESCORED, params, run.settings.scoring_mode)
    return n, bounds


def _finish(
    run: _Run,
    *,
    trigger: str,
    mark: float,
    n: int,
    bounds: dict[str, list[list[Any]]],
    summary_before: dict[str, Any],
    incremental: bool,
) -> RunResult:
    """Tiers from the tier edges, the changed rows written with their history, the kept state and
    the run's record."""
    settings, run_date, tenant_id, params = run.settings, run.run_date, run.tenant_id, run.params
    started = run.started
    params |= _edge_params("t", bounds["t"], 3)
    _assign_tiers(params)
    changed, refreshed = _collect_changes()
    _analyze("seg_changed")
    mark = run.lap("scores", mark)

    _progress(tenant_id, "writing", started, changed=changed)
    written = _apply_changes(tenant_id=tenant_id, run_date=run_date)
    mark = run.lap("writing", mark)
    _progress(tenant_id, "history", started)
    written += _write_history(tenant_id=tenant_id, run_date=run_date)
    summary = _summary_delta(summary_before)
    mark = run.lap("history", mark)

    engine_state = {
        "fingerprint": _fingerprint(settings),
        "run_date": run_date.isoformat(),
        "n": n,
        "bounds": {k: [[_to_json_value(e), lt, le] for e, lt, le in v] for k, v in bounds.items()},
        "summary": summary,
    }
    SegmentationSettings.objects.filter(pk=settings.pk).update(
        aggregates_window_start=run.window_start, engine_state=engine_state
    )
    if run.quintiles:
        score_bounds: dict[str, Any] = {"n": n} | {
            name: [_to_json_value(e[0]) for e in bounds[m]] for m, name in (("r", "recency"), ("f", "frequency"))
        }
        score_bounds["monetary"] = [str(_money(Decimal(e[0]) / 100)) for e in bounds["m"]]
    else:
        score_bounds = {
            "recency_days": settings.recency_days,
            "frequency": settings.frequency_limits,
            "monetary": [str(v) for v in settings.monetary_limits],
        }
    record = SegmentationRun.objects.create(
        run_date=run_date,
        started_at=run.started_at,
        finished_at=timezone.now(),
        duration_ms=int((time.monotonic() - started) * 1000),
        trigger=trigger,
        window_start=run.window_start,
        customers=summary["customers"],
        scored=summary["scored"],
        aggregates_refreshed=refreshed,
        rows_changed=changed,
        scoring_mode=settings.scoring_mode,
        boundaries={"scores": score_bounds, "tiers": [_decode_value_key(e[0]) for e in bounds["t"]]},
        tier_counts=summary["tiers"],
        segment_counts=summary["segments"],
        lifecycle_counts=summary["stages"],
        grid=_grid_list(summary),
    )
    run.lap("total", started)
    _progress(tenant_id, "done", started, changed=changed)
    return RunResult(
        run=record, aggregates_refreshed=refreshed, rows_changed=written, timings=run.timings, incremental=incremental
    )


def _scored_count(params: dict[str, Any]) -> int:
    (n,) = _fetch_one("SELECT count(*) FROM seg_agg WHERE orders_total > 0", params)
    return int(n)
