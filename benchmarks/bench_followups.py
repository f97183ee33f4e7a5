"""The nightly follow-up scheduling at 1,000,000 customers, beside the segmentation recompute of the same night.

Method
  1. Creates the database crm_bench_followups and loads exactly what `bench_segmentation.py` loads
     (its functions, imported: 100 dealerships of Zipf-like sizes, 1,000,000 customers, 10,000,000
     orders over 3.5 years up to the day before yesterday; see its docstring), seeded the same way.
  2. Adds, as the owner, set-based (INSERT … SELECT and UPDATE, one statement per table; the foreign
     keys of the tables written are dropped for it and added back as they were, which checks every row
     once; their secondary indexes are dropped and created again afterwards, after a VACUUM FULL of
     the customers and orders, which are updated throughout), what follow-ups read. Every choice is a
     fixed function of the row ids, so every run loads the same data:
     * staff per dealership: sales consultants and service advisors who own customers (one per 500
       live customers, at least 4, at most 100; 60/40), 2 to 10 customer-relations agents (one per
       10,000), a manager; the first consultant and the first advisor are deactivated (left the
       dealership, their customers not yet handed over). Users and memberships with explicit ids.
     * customers: an owner for 85 % of the customers with orders (a sales consultant if they bought a
       car here, else a service advisor) and 40 % of the prospects; no calls (consent_call off) for
       5 %; 0.1 % black-listed. Birthdays stay as bench_segmentation loads them (80 %).
     * vehicles: one per customer with a car sale, service or insurance order (id = the customer's),
       bought on their first car sale here, or else 30 days to 5 years before their first such order
       (a car bought elsewhere); warranty 3 years; a 17-character VIN unique per dealership; a current
       ownership row each. The car sales, maintenance, repair and insurance orders from the purchase
       on point at it (one UPDATE of about 8 million orders; segmentation's order trigger is disabled
       for it, since it changes none of the columns the trigger watches). Maintenance and repair orders
       carry the odometer (the vehicle's own rate, 8,000 to 22,000 km a year, mean 15,000) and each
       is a mileage reading (source "order"), as `order_create` records them; the vehicle's mileage is
       the latest reading.
     * contacts: a call in the last year for 35 % of the customers with orders (80 % reached), so
       tier cadence sees recent contacts.
     * complaints: one closed ticket per 3,000 live customers (at least one per dealership), held by a
       customer-relations agent, the follow-up call due between 6 days before and 2 days after the
       first night measured.
     Then VACUUM ANALYZE.
  3. Segmentation's first run (cold build) for D = yesterday, then one business day D (bench_segmentation's
     `simulate_day`: 10,000 orders, 50 new customers who bought a car, 200 reversals), with what the
     DMS sync brings beside them here: the new customers' vehicles, the day's orders linked to
     vehicles, their mileage readings.
  4. The first night, D + 1 = today, in child processes as the application role under row-level
     security, as `manage.py run_nightly` runs the steps (`nightly_run_tenant(…, only=[step])`, every
     dealership in turn in one process), in the pipeline's order:
     (a) segmentation's nightly recompute (`segmentation.rfm`): the baseline of the same night;
     (b) follow-up scheduling (`followups.schedule`): the figure: wall time, rows created per reason,
         peak RSS of the process and of the PostgreSQL backend (as bench_segmentation measures them);
     (c) the scheduling again for the same date: it must create nothing (the run fails otherwise);
         then once more with PostgreSQL's JIT compilation off for the session (PGOPTIONS="-c jit=off"),
         a diagnosis: what the night's fixed costs are without it.
     The first night is the first the dealerships ever schedule: rules that look back over a window
     (a follow-up may be created up to its latest day) start with a full window, and every dormant key
     or consolidate customer is due a win-back call once.
  5. The next night, D + 2: the day's work first (70 % of the follow-ups held for D + 1 done and
     logged as reached contacts, 10 % no answer and retried the next day; another business day of
     orders by `simulate_day`), then segmentation and scheduling for D + 2, measured the same way.
  6. Checks of every night's result (the run fails on any): the rows created per reason equal what the
     scheduling reported; no follow-up of a merged or black-listed customer or without the consent
     for its channel; each created follow-up's window contains the run date; holders are active staff
     of a working role; and, on the first night (no follow-ups before it, so no unfinished work carried
     over): nobody holds more than the daily cap on a day, and independent counts of the service,
     birthday and warranty follow-ups (customers with a due occasion, eligible, one per customer).
     The counts vary by a few between runs: `simulate_day` picks its 200 reversals with random() in SQL.
  7. Drops the database (`--keep-db` keeps it, to EXPLAIN the scheduling's queries afterwards).

Baseline, measured in the same run: the nightly segmentation recompute for the same night and the
same dealerships. Target (from the issue): the scheduling under 60 s. Nothing is asserted about time
(shared, noisy machines); the run fails on wrong results or a failed dealership.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_segmentation as seg  # a module beside this one

BENCH_DB = "crm_bench_followups"
# bench_segmentation's helpers (_env, _setup_database, _drop_database, _engine's child) read the
# database name from its module global when called: pointing it here makes them work on this database.
seg.BENCH_DB = BENCH_DB
STEP = "followups.schedule"
TARGET_SECONDS = 60.0
REASONS = [
    "post_delivery",
    "service",
    "maintenance",
    "warranty",
    "insurance",
    "birthday",
    "cadence",
    "win_back",
    "complaint",
    "survey",
    "manual",
]

# staff: owners per live customer (bounds), agents per live customer (bounds)
CUSTOMERS_PER_OWNER, MIN_OWNERS, MAX_OWNERS = 500, 4, 100
CUSTOMERS_PER_AGENT, MIN_AGENTS, MAX_AGENTS = 10_000, 2, 10
CUSTOMERS_PER_TICKET = 3_000
BRANDS = [
    ("丰田", ["凯美瑞", "卡罗拉", "RAV4荣放", "汉兰达"]),
    ("本田", ["雅阁", "思域", "CR-V", "奥德赛"]),
    ("大众", ["帕萨特", "迈腾", "途观L", "朗逸"]),
    ("别克", ["君威", "英朗", "昂科威", "GL8"]),
    ("日产", ["天籁", "轩逸", "奇骏", "逍客"]),
    ("奥迪", ["A4L", "A6L", "Q3", "Q5L"]),
    ("宝马", ["3系", "5系", "X1", "X3"]),
    ("比亚迪", ["汉", "唐", "秦PLUS", "宋PLUS"]),
]
COLOURS = ["白色", "黑色", "银色", "灰色", "红色", "蓝色"]
PROVINCE_PLATES = "粤粤湘浙川苏"  # by the dealership's province, as bench_segmentation assigns cities


# ---------------------------------------------------------------------------------------------
# What follow-ups need, added to the segmentation data (as the owner, set-based)
# ---------------------------------------------------------------------------------------------

STAFF_SQL = """
CREATE TEMP TABLE bench_staff AS
WITH sizes AS (
    SELECT tenant_id, count(*) AS n FROM customers_customer WHERE merged_into_id IS NULL GROUP BY tenant_id
),
owners AS (
    SELECT tenant_id, n, LEAST(GREATEST(n / %(per_owner)s, %(min_owners)s), %(max_owners)s) AS owners FROM sizes
),
plan (tenant_id, role, people) AS (
    SELECT tenant_id, 'manager', 1 FROM owners
    UNION ALL
    SELECT tenant_id, 'cr_agent', LEAST(GREATEST(n / %(per_agent)s, %(min_agents)s), %(max_agents)s) FROM owners
    UNION ALL
    SELECT tenant_id, 'service_advisor', GREATEST(owners * 2 / 5, 1) FROM owners
    UNION ALL
    SELECT tenant_id, 'sales_consultant', owners - GREATEST(owners * 2 / 5, 1) FROM owners
)
SELECT row_number() OVER (ORDER BY p.tenant_id, p.role, k.k) AS n, p.tenant_id, p.role, k.k,
       p.role IN ('sales_consultant', 'service_advisor') AND k.k = 1 AND p.people > 1 AS inactive
  FROM plan p CROSS JOIN LATERAL generate_series(1, p.people) AS k(k)
"""

USERS_SQL = """
INSERT INTO accounts_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
                           is_staff, is_active, date_joined, preferred_language)
SELECT %(user_base)s + s.n, '!', NULL, false, 'bench-' || s.tenant_id || '-' || s.role || '-' || s.k,
       substr(%(given)s, 1 + (s.n * 7 %% length(%(given)s))::int, 1)
           || substr(%(given)s, 1 + (s.n * 13 %% length(%(given)s))::int, 1),
       substr(%(surnames)s, 1 + (s.n * 31 %% length(%(surnames)s))::int, 1),
       '', false, true, %(joined)s, ''
  FROM bench_staff s ORDER BY s.n
"""

MEMBERSHIPS_SQL = """
INSERT INTO tenancy_membership (id, tenant_id, user_id, role, is_active, is_service_account, created_at, deactivated_at)
SELECT %(membership_base)s + s.n, s.tenant_id, %(user_base)s + s.n, s.role, NOT s.inactive, false, %(joined)s,
       CASE WHEN s.inactive THEN %(left)s END
  FROM bench_staff s ORDER BY s.n
"""

# Per customer (of those with id > after): the dates vehicles are made from.
CUSTOMER_FACTS_SQL = """
CREATE TEMP TABLE bench_customer AS
SELECT c.id, c.tenant_id, c.merged_into_id, a.customer_id IS NOT NULL AS has_orders, a.first_sale,
       a.first_vehicle_order, a.last_service
  FROM customers_customer c
  LEFT JOIN (
      SELECT customer_id,
             min(ordered_on) FILTER (WHERE kind = 'vehicle_sale' AND status <> 'reversed') AS first_sale,
             min(ordered_on) FILTER (WHERE kind IN ('vehicle_sale', 'maintenance', 'repair', 'insurance')
                                       AND status <> 'reversed') AS first_vehicle_order,
             max(ordered_on) FILTER (WHERE kind IN ('maintenance', 'repair')) AS last_service
        FROM customers_order WHERE customer_id > %(after)s GROUP BY customer_id
  ) a ON a.customer_id = c.id
 WHERE c.id > %(after)s
"""

# the odometer of vehicle v on day d: its own yearly rate from its id, 8,000 to 22,000 km
KM = "(8 + ({d} - {v}.purchase_date) * (8000 + {v}.id * 7919 %% 14001) / 365.25)::int"

VEHICLES_SQL = f"""
INSERT INTO customers_vehicle (id, tenant_id, customer_id, vin, plate, brand, series, model_name, model_year,
                               colour, purchase_date, warranty_end, mileage_km, external_id, created_at)
SELECT v.id, v.tenant_id, v.id, 'LSVAB2' || lpad(v.id::text, 11, '0'),
       substr(%(plates)s, 1 + (v.tenant_id %% length(%(plates)s))::int, 1) || chr(65 + (v.id %% 8)::int)
           || lpad((v.id * 7919 %% 100000)::text, 5, '0'),
       m.brand, m.series, m.brand || m.series || ' ' || (1 + v.id %% 3) || '.' || (v.id %% 2) * 5 || 'T',
       extract(year FROM v.purchase_date)::int, (%(colours)s::text[])[1 + (v.id %% %(n_colours)s)::int],
       v.purchase_date, (v.purchase_date + interval '3 years')::date,
       CASE WHEN v.last_service >= v.purchase_date THEN {KM.format(d="v.last_service", v="v")} END,
       'V' || lpad(v.id::text, 10, '0'), v.purchase_date + time '10:00'
  FROM (SELECT f.id, f.tenant_id, f.last_service,
               COALESCE(f.first_sale, f.first_vehicle_order - 30 - (f.id * 7919 %% 1800)::int) AS purchase_date
          FROM bench_customer f WHERE f.first_vehicle_order IS NOT NULL AND f.merged_into_id IS NULL) v
  JOIN bench_model m ON m.brand_no = v.tenant_id %% %(n_brands)s AND m.series_no = v.id %% 4
 ORDER BY v.id
"""

OWNERSHIPS_SQL = """
INSERT INTO customers_vehicleownership (tenant_id, vehicle_id, customer_id, started_on, ended_on)
SELECT tenant_id, id, customer_id, purchase_date, NULL FROM customers_vehicle WHERE id > %(after)s ORDER BY id
"""

ORDERS_SQL = f"""
UPDATE customers_order o
   SET vehicle_id = v.id,
       mileage_km = CASE WHEN o.kind IN ('maintenance', 'repair') THEN {KM.format(d="o.ordered_on", v="v")} END
  FROM customers_vehicle v
 WHERE v.id = o.customer_id AND o.id > %(after_order)s
   AND o.kind IN ('vehicle_sale', 'maintenance', 'repair', 'insurance') AND o.ordered_on >= v.purchase_date
"""

READINGS_SQL = """
INSERT INTO customers_mileagereading (tenant_id, vehicle_id, read_on, km, source, order_id)
SELECT tenant_id, vehicle_id, ordered_on, mileage_km, 'order', id
  FROM customers_order WHERE id > %(after_order)s AND mileage_km IS NOT NULL ORDER BY id
"""

# the day's readings move the vehicles' mileage (the full load computes it with the vehicle)
VEHICLE_MILEAGE_SQL = """
UPDATE customers_vehicle v SET mileage_km = r.km
  FROM (SELECT vehicle_id, max(km) AS km FROM customers_mileagereading WHERE order_id > %(after_order)s
         GROUP BY vehicle_id) r
 WHERE v.id = r.vehicle_id AND v.mileage_km IS DISTINCT FROM GREATEST(v.mileage_km, r.km)
"""

CUSTOMERS_SQL = """
UPDATE customers_customer c
   SET owner_id = CASE WHEN (c.id * 2654435761 %% 100) < CASE WHEN f.has_orders THEN 85 ELSE 40 END
                       THEN o.ids[1 + (c.id * 40503 %% cardinality(o.ids))::int] END,
       consent_call = (c.id * 48271 %% 100) >= 5,
       list_flag = CASE WHEN c.id %% 1000 = 7 THEN 'black' ELSE '' END,
       list_reason = CASE WHEN c.id %% 1000 = 7 THEN '多次恶意投诉' ELSE '' END
  FROM bench_customer f
  JOIN (SELECT tenant_id, role, array_agg(%(membership_base)s + n ORDER BY n) AS ids
          FROM bench_staff WHERE role IN ('sales_consultant', 'service_advisor') GROUP BY tenant_id, role) o
    ON o.tenant_id = f.tenant_id
   AND o.role = CASE WHEN f.first_sale IS NOT NULL OR NOT f.has_orders THEN 'sales_consultant'
                     ELSE 'service_advisor' END
 WHERE c.id = f.id AND f.merged_into_id IS NULL
"""

TOUCHPOINTS_SQL = """
INSERT INTO customers_touchpoint (tenant_id, customer_id, vehicle_id, channel, direction, outcome, notes, staff_id,
                                  occurred_at, external_id, created_at)
SELECT c.tenant_id, c.id, v.id, 'call', 'outbound',
       CASE WHEN c.id * 69621 %% 10 < 8 THEN 'reached' ELSE 'no_answer' END, '', c.owner_id, t.at, '', t.at
  FROM customers_customer c
  LEFT JOIN customers_vehicle v ON v.id = c.id
 CROSS JOIN LATERAL (SELECT %(day)s::date - (c.id * 16807 %% 365)::int + time '10:30' AS at) t
 WHERE c.merged_into_id IS NULL AND c.last_visit_on IS NOT NULL AND c.id * 2147483647 %% 100 < 35
 ORDER BY t.at, c.id
"""

CATEGORIES_SQL = """
INSERT INTO complaints_complaintcategory (tenant_id, code, name, is_active, position)
SELECT id, 'service-quality', '服务质量', true, 1 FROM tenancy_tenant ORDER BY id
"""

TICKETS_SQL = """
WITH picked AS (
    SELECT c.id, c.tenant_id, c.name, c.mobile,
           row_number() OVER (PARTITION BY c.tenant_id ORDER BY c.id * 2654435761 %% 1000003, c.id) AS rn,
           count(*) OVER (PARTITION BY c.tenant_id) AS n
      FROM customers_customer c
     WHERE c.merged_into_id IS NULL AND c.last_visit_on IS NOT NULL AND c.list_flag = ''
),
agents AS (
    SELECT tenant_id, array_agg(%(membership_base)s + n ORDER BY n) AS ids
      FROM bench_staff WHERE role = 'cr_agent' GROUP BY tenant_id
),
dated AS (
    SELECT p.*, %(night)s::date + (p.rn %% 9)::int - 6 AS due,
           a.ids[1 + (p.rn %% cardinality(a.ids))::int] AS agent
      FROM picked p JOIN agents a ON a.tenant_id = p.tenant_id
     WHERE p.rn <= GREATEST(p.n / %(per_ticket)s, 1)
)
INSERT INTO complaints_ticket (
    tenant_id, number, customer_id, vehicle_id, contact_name, contact_mobile, channel, category_id, severity,
    subject, description, source, status, assignee_id, opened_at, response_target_minutes,
    resolution_target_minutes, response_due_at, response_warn_at, resolution_due_at, resolution_warn_at,
    first_response_at, resolved_at, response_minutes, resolution_minutes, paused_duration, root_cause, resolution,
    compensation_amount, compensation_points, compensation_note, follow_up_due_on, reopen_count,
    resolution_failed, updated_at
)
SELECT d.tenant_id, 'B' || lpad(d.rn::text, 9, '0'), d.id, v.id, d.name, d.mobile, 'phone', cat.id, 'normal',
       '保养后仍有异响', '客户反映保养后车辆仍有异响，要求复查。', 'staff', 'closed', d.agent,
       d.due - 5 + time '09:30', 120, 2880, d.due - 5 + time '11:30', d.due - 5 + time '11:00',
       d.due - 3 + time '09:30', d.due - 3 + time '08:00', d.due - 5 + time '10:00', d.due - 3 + time '16:00',
       30, 1380, interval '0', '紧固件松动', '复查并紧固，试车无异响。', 0, 0, '', d.due, 0, false,
       d.due - 3 + time '16:00'
  FROM dated d
  JOIN complaints_complaintcategory cat ON cat.tenant_id = d.tenant_id
  LEFT JOIN customers_vehicle v ON v.id = d.id
 ORDER BY d.tenant_id, d.rn
"""

SEQUENCES = [
    ("accounts_user", "id"),
    ("tenancy_membership", "id"),
    ("customers_vehicle", "id"),
]


def _timed(conn: psycopg.Connection[Any], label: str, sql: str, params: dict[str, Any]) -> int:
    mark = time.perf_counter()
    rows = conn.execute(sql, params).rowcount
    print(f"    {label}: {rows:,} rows in {time.perf_counter() - mark:.1f} s", flush=True)
    return rows


def _bump_sequences(conn: psycopg.Connection[Any]) -> None:
    for table, column in SEQUENCES:
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
            f"GREATEST((SELECT max({column}) FROM {table}), 1))"
        )


# the tables written in bulk, whose secondary indexes are built once afterwards; and those updated
# throughout, rewritten compactly (VACUUM FULL) before that
BULK_TABLES = [
    "customers_customer",
    "customers_vehicle",
    "customers_vehicleownership",
    "customers_order",
    "customers_mileagereading",
    "customers_touchpoint",
]
REWRITTEN_TABLES = ["customers_customer", "customers_order"]


class _IndexesRebuilt:
    """Drops the indexes of `tables` that back no constraint and creates them again afterwards,
    exactly as they were (pg_get_indexdef). An UPDATE of 8 million orders with ten indexes in place
    writes every index for every row (the changed vehicle_id is indexed, so no update is HOT): about
    10,000 rows/s on this machine. Without them it writes the heap and the primary key, and the
    indexes come out packed, as after a restore. Tables in `rewritten` (updated throughout, half
    their tuples dead) are rewritten by VACUUM FULL first, so they are as compact as loaded."""

    def __init__(self, conn: psycopg.Connection[Any], tables: list[str], *, rewritten: list[str]) -> None:
        self.conn, self.rewritten = conn, rewritten
        self.indexes = conn.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%s::regclass[]) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
            [tables],
        ).fetchall()

    def __enter__(self) -> None:
        for name, _definition in self.indexes:
            self.conn.execute(f"DROP INDEX {name}")

    def __exit__(self, *exc: object) -> None:
        mark = time.perf_counter()
        for table in self.rewritten:
            self.conn.execute(f"VACUUM FULL {table}")
        rewrite = time.perf_counter() - mark
        for _name, definition in self.indexes:
            self.conn.execute(definition)
        print(
            f"    VACUUM FULL of {', '.join(self.rewritten)} in {rewrite:.1f} s; {len(self.indexes)} indexes "
            f"created again in {time.perf_counter() - mark - rewrite:.1f} s",
            flush=True,
        )


def _vehicles_for(conn: psycopg.Connection[Any], after_customer: int, after_order: int) -> dict[str, int]:
    """Vehicles for the customers with id > after_customer, then the orders with id > after_order
    linked to them, with their odometer, and a mileage reading each. Expects bench_model."""
    counts = {}
    params = {
        "after": after_customer,
        "after_order": after_order,
        "plates": PROVINCE_PLATES,
        "colours": COLOURS,
        "n_colours": len(COLOURS),
        "n_brands": len(BRANDS),
    }
    conn.execute("DROP TABLE IF EXISTS bench_customer")
    _timed(conn, "per-customer order facts (temporary table)", CUSTOMER_FACTS_SQL, params)
    conn.execute("ANALYZE bench_customer")
    counts["vehicles"] = _timed(conn, "vehicles", VEHICLES_SQL, params)
    counts["ownerships"] = _timed(conn, "current ownerships", OWNERSHIPS_SQL, params)
    # The update changes none of the columns segmentation's trigger watches (customer, status, amount,
    # date, kind), so it would mark nobody, after joining two transition tables of millions of rows.
    conn.execute("ALTER TABLE customers_order DISABLE TRIGGER segmentation_orders_updated")
    try:
        counts["orders_linked"] = _timed(conn, "orders linked to vehicles, with odometer", ORDERS_SQL, params)
    finally:
        conn.execute("ALTER TABLE customers_order ENABLE TRIGGER segmentation_orders_updated")
    counts["readings"] = _timed(conn, "mileage readings of the service orders", READINGS_SQL, params)
    if after_order:
        _timed(conn, "vehicles' mileage from the new readings", VEHICLE_MILEAGE_SQL, params)
    return counts


def _models_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS bench_model (brand_no int, series_no int, brand text, series text)")
    conn.execute("TRUNCATE bench_model")
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO bench_model VALUES (%s, %s, %s, %s)",
            [(b, s, brand, series) for b, (brand, names) in enumerate(BRANDS) for s, series in enumerate(names)],
        )


def add_followup_data(owner_url: str, *, day: date, night: date) -> dict[str, int]:
    """Staff, owners, consents, vehicles, linked orders, readings, contacts and complaints (docstring, step 2)."""
    counts: dict[str, int] = {}
    joined = datetime.combine(day - timedelta(days=seg.HISTORY_DAYS), datetime.min.time()).astimezone()
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET work_mem = '256MB'")
        (user_base,) = conn.execute("SELECT COALESCE(max(id), 0) FROM accounts_user").fetchone() or (0,)
        (membership_base,) = conn.execute("SELECT COALESCE(max(id), 0) FROM tenancy_membership").fetchone() or (0,)
        params: dict[str, Any] = {
            "per_owner": CUSTOMERS_PER_OWNER,
            "min_owners": MIN_OWNERS,
            "max_owners": MAX_OWNERS,
            "per_agent": CUSTOMERS_PER_AGENT,
            "min_agents": MIN_AGENTS,
            "max_agents": MAX_AGENTS,
            "per_ticket": CUSTOMERS_PER_TICKET,
            "user_base": user_base,
            "membership_base": membership_base,
            "given": seg.GIVEN,
            "surnames": seg.SURNAMES,
            "joined": joined,
            "left": datetime.combine(day - timedelta(days=20), datetime.min.time()).astimezone(),
            "day": day,
            "night": night,
        }
        conn.execute(STAFF_SQL, params)
        _models_table(conn)
        tables = [
            "accounts_user",
            "tenancy_membership",
            "customers_customer",
            "customers_vehicle",
            "customers_vehicleownership",
            "customers_order",
            "customers_mileagereading",
            "customers_touchpoint",
            "complaints_ticket",
        ]
        foreign_keys = seg._ForeignKeysCheckedOnce(conn, tables)
        indexes = _IndexesRebuilt(conn, BULK_TABLES, rewritten=REWRITTEN_TABLES)
        with foreign_keys:
            with indexes:
                counts["users"] = _timed(conn, "staff users", USERS_SQL, params)
                counts["memberships"] = _timed(conn, "memberships", MEMBERSHIPS_SQL, params)
                counts.update(_vehicles_for(conn, 0, 0))
                counts["customers"] = _timed(
                    conn, "customers: owner, consent to calls, black list", CUSTOMERS_SQL, params
                )
                counts["touchpoints"] = _timed(conn, "contacts (calls in the last year)", TOUCHPOINTS_SQL, params)
                _timed(conn, "complaint categories", CATEGORIES_SQL, params)
                counts["tickets"] = _timed(conn, "closed complaint tickets", TICKETS_SQL, params)
            mark = time.perf_counter()
        print(
            f"    {len(foreign_keys.keys)} foreign keys added back (all rows checked) in "
            f"{time.perf_counter() - mark:.1f} s",
            flush=True,
        )
        _bump_sequences(conn)
        mark = time.perf_counter()
        for table in [*tables, "segmentation_dirtycustomer"]:
            conn.execute(f"VACUUM (ANALYZE) {table}")
        print(f"    VACUUM ANALYZE in {time.perf_counter() - mark:.1f} s", flush=True)
        conn.execute("DROP TABLE bench_customer")
    return counts


def day_extras(owner_url: str, *, after_customer: int, after_order: int) -> dict[str, int]:
    """What the DMS sync brings beside `simulate_day`'s orders: new customers' vehicles, the day's
    orders linked to vehicles, their readings (foreign keys checked row by row: a small day)."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        _models_table(conn)
        counts = _vehicles_for(conn, after_customer, after_order)
        _bump_sequences(conn)
        conn.execute("DROP TABLE bench_customer")
        conn.execute("ANALYZE customers_vehicle")
        conn.execute("ANALYZE customers_mileagereading")
    return counts


WORK_DAY_SQL = """
WITH worked AS (
    UPDATE followups_followup f
       SET status = CASE WHEN f.id * 7919 %% 10 < 7 THEN 'done' ELSE 'no_answer' END,
           disposition = CASE WHEN f.id * 7919 %% 10 < 7 THEN 'satisfied' ELSE 'no_answer' END,
           attempts = f.attempts + 1,
           scheduled_on = CASE WHEN f.id * 7919 %% 10 < 7 THEN f.scheduled_on ELSE %(day)s::date + 1 END,
           completed_at = CASE WHEN f.id * 7919 %% 10 < 7 THEN %(at)s END,
           completed_by_id = CASE WHEN f.id * 7919 %% 10 < 7 THEN f.assignee_id END,
           updated_at = %(at)s
     WHERE f.status = 'open' AND f.assignee_id IS NOT NULL AND f.scheduled_on <= %(day)s
       AND f.id * 7919 %% 10 < 8
 RETURNING f.tenant_id, f.customer_id, f.vehicle_id, f.assignee_id, f.channel, f.status
)
INSERT INTO customers_touchpoint (tenant_id, customer_id, vehicle_id, channel, direction, outcome, notes, staff_id,
                                  occurred_at, external_id, created_at)
SELECT tenant_id, customer_id, vehicle_id, channel, 'outbound', CASE WHEN status = 'done' THEN 'reached'
       ELSE 'no_answer' END, '', assignee_id, %(at)s, '', %(at)s
  FROM worked
"""


def work_the_day(owner_url: str, day: date) -> int:
    at = datetime.combine(day, datetime.min.time()).astimezone() + timedelta(hours=15)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        rows = conn.execute(WORK_DAY_SQL, {"day": day, "at": at}).rowcount
        conn.execute("ANALYZE followups_followup")
        conn.execute("ANALYZE customers_touchpoint")
    return rows


# ---------------------------------------------------------------------------------------------
# The child: every dealership's scheduling step, as the application role
# ---------------------------------------------------------------------------------------------


def child_schedule(run_date: date) -> dict[str, Any]:
    """Every active dealership's follow-up step, sequentially, as `run_nightly --step` runs it."""
    import django

    django.setup()
    from django.db import connection

    import followups.nightly
    import followups.scheduling
    from crm.core.models import NightlyRun
    from crm.core.nightly import nightly_run_tenant, nightly_steps
    from crm.tenancy.models import Tenant

    if STEP not in {s.name for s in nightly_steps.contributions()}:
        raise SystemExit(f"The nightly step {STEP} is not registered.")
    totals: dict[str, float] = {}
    per_tenant: list[tuple[int, float, int, dict[str, int]]] = []  # (tenant, seconds, created, ms per phase)
    original = followups.scheduling.followups_schedule

    last: dict[str, int] = {}

    def counted(**kwargs: Any) -> dict[str, int]:
        result = original(**kwargs)
        last.clear()
        last.update({k[3:]: v for k, v in result.items() if k.startswith("ms.")})
        for key, value in result.items():
            totals[key] = totals.get(key, 0) + value
        return result

    followups.scheduling.followups_schedule = counted  # type: ignore[assignment]
    if getattr(followups.nightly, "followups_schedule", None) is original:
        followups.nightly.followups_schedule = counted  # type: ignore[attr-defined]
    tenant_ids = list(Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid(), current_user, current_setting('shared_buffers'), current_setting('jit')"
        )
        backend_pid, role, shared_buffers, jit = cursor.fetchone()
    local = urlparse(os.environ["DATABASE_URL"]).hostname in ("127.0.0.1", "localhost", "::1")
    sampler = seg._Sampler(backend_pid) if local and seg._proc_status(backend_pid) else None
    if sampler:
        sampler.start()
    start_rss = seg._rss_mb()
    failed: list[str] = []
    ran = 0
    started = time.perf_counter()
    for tenant_id in tenant_ids:
        mark = time.perf_counter()
        before = totals.get("created", 0)
        for run in nightly_run_tenant(
            tenant_id=tenant_id, trigger=NightlyRun.Trigger.COMMAND, run_date=run_date, only=[STEP]
        ):
            ran += 1
            if run.status != NightlyRun.Status.SUCCEEDED:
                failed.append(f"{tenant_id}: {run.status} {run.error[-2000:]}")
        elapsed, created = time.perf_counter() - mark, int(totals.get("created", 0) - before)
        per_tenant.append((tenant_id, elapsed, created, dict(last)))
    seconds = time.perf_counter() - started
    peak_rss = seg._rss_mb()
    backend = seg._proc_status(backend_pid) if sampler else {}
    if sampler:
        sampler.stop()
    return {
        "seconds": seconds,
        "tenants": len(tenant_ids),
        "steps_run": ran,
        "failed": failed,
        "counts": totals,
        "start_rss": start_rss,
        "peak_rss": peak_rss,
        "role": role,
        "slowest": sorted(per_tenant, key=lambda x: -x[1])[:3],
        "backend_hwm_mb": backend.get("VmHWM", 0) / 1024 if backend else None,
        "backend_anon_mb": sampler.peak_anon_kb / 1024 if sampler else None,
        "shared_buffers": shared_buffers,
        "jit": jit,
    }


def _run_schedule(label: str, run_date: date, *, jit: bool = True) -> dict[str, Any]:
    env = seg._env()
    if not jit:
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c jit=off".strip()
    out = subprocess.run(
        [sys.executable, __file__, "--child", "schedule", "--date", run_date.isoformat()],
        cwd=seg.ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"{label}: the scheduling process failed:\n{out.stderr[-4000:]}")
    report = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    if report["failed"]:
        raise SystemExit(f"{label}: {len(report['failed'])} dealership(s) failed; the first:\n{report['failed'][0]}")
    if report["steps_run"] != report["tenants"]:
        raise SystemExit(f"{label}: the step ran {report['steps_run']} times for {report['tenants']} dealerships")
    counts = report["counts"]
    phases = {k[3:]: v / 1000 for k, v in counts.items() if k.startswith("ms.")}
    phase_text = ", ".join(f"{k} {v:.1f}" for k, v in sorted(phases.items(), key=lambda x: -x[1]))
    slowest = "; ".join(
        f"#{t} {s:.2f} s, {n:,} created ("
        + ", ".join(f"{k} {v / 1000:.1f}" for k, v in sorted(ms.items(), key=lambda x: -x[1])[:3])
        + ")"
        for t, s, n, ms in report["slowest"]
    )
    print(
        f"  {label}: {report['seconds']:.1f} s for {report['tenants']} dealerships as {report['role']}; "
        f"created {int(counts.get('created', 0)):,} (held by their owner or the ticket's holder "
        f"{int(counts.get('assigned', 0)):,}, then from the pool to agents {int(counts.get('spread', 0)):,}), "
        f"expired {int(counts.get('expired', 0)):,}, released {int(counts.get('released', 0)):,}; "
        f"peak RSS {report['peak_rss']:.0f} MB\n"
        f"    phases summed over the dealerships, s: {phase_text or '(not reported)'}\n"
        f"    slowest dealerships: {slowest}",
        flush=True,
    )
    report["phases"] = phases
    return report


# ---------------------------------------------------------------------------------------------
# Checks (as the owner)
# ---------------------------------------------------------------------------------------------


def _by_reason(conn: psycopg.Connection[Any], where: str = "true", params: Any = None) -> dict[str, int]:
    rows = conn.execute(f"SELECT reason, count(*) FROM followups_followup WHERE {where} GROUP BY reason", params)
    return {reason: int(n) for reason, n in rows}


INVARIANTS = {
    "of a merged or black-listed customer": """
        SELECT count(*) FROM followups_followup f JOIN customers_customer c ON c.id = f.customer_id
         WHERE f.created_on = %(d)s AND (c.merged_into_id IS NOT NULL OR c.list_flag = 'black')
    """,
    "without consent or a mobile for its channel": """
        SELECT count(*) FROM followups_followup f JOIN customers_customer c ON c.id = f.customer_id
         WHERE f.created_on = %(d)s AND NOT CASE f.channel
               WHEN 'call' THEN c.consent_call AND c.mobile <> ''
               WHEN 'sms' THEN c.consent_sms AND c.mobile <> ''
               WHEN 'wechat' THEN c.consent_wechat AND c.mobile <> ''
               ELSE true END
    """,
    "whose window does not contain the run date": """
        SELECT count(*) FROM followups_followup
         WHERE created_on = %(d)s AND NOT (due_from <= %(d)s AND %(d)s <= due_until)
    """,
    "of another dealership's customer, vehicle or holder": """
        SELECT count(*) FROM followups_followup f
          JOIN customers_customer c ON c.id = f.customer_id
          LEFT JOIN customers_vehicle v ON v.id = f.vehicle_id
          LEFT JOIN tenancy_membership m ON m.id = f.assignee_id
         WHERE c.tenant_id <> f.tenant_id OR v.tenant_id <> f.tenant_id OR m.tenant_id <> f.tenant_id
    """,
    "held by inactive staff or a role that does not work follow-ups": """
        SELECT count(*) FROM followups_followup f JOIN tenancy_membership m ON m.id = f.assignee_id
         WHERE f.status IN ('open', 'no_answer')
           AND (NOT m.is_active OR m.role NOT IN ('manager', 'cr_agent', 'sales_consultant', 'service_advisor'))
    """,
}

# On the first night only (later nights carry over unfinished work, which may exceed a day's cap):
# nobody holds more than the daily cap on a day (work scheduled before the run date counts on it).
OVER_CAP = """
    SELECT count(*) FROM (
        SELECT f.tenant_id, f.assignee_id, GREATEST(f.scheduled_on, %(d)s) AS day, count(*) AS n
          FROM followups_followup f
         WHERE f.status IN ('open', 'no_answer') AND f.assignee_id IS NOT NULL
         GROUP BY 1, 2, 3) q
      JOIN followups_followupsettings s ON s.tenant_id = q.tenant_id
     WHERE q.n > s.daily_cap
"""

# Independent counts for the first night, when no follow-up exists before it: customers with at least
# one due occasion in the window, eligible for the rule's channel (settings read per dealership).
ELIGIBLE = """
    c.merged_into_id IS NULL AND c.list_flag <> 'black' AND c.mobile <> ''
    AND CASE {channel} WHEN 'call' THEN c.consent_call WHEN 'sms' THEN c.consent_sms
                       WHEN 'wechat' THEN c.consent_wechat ELSE true END
"""
EXPECTED = {
    "service": f"""
        SELECT count(DISTINCT o.customer_id) FROM customers_order o
          JOIN followups_followupsettings s ON s.tenant_id = o.tenant_id AND s.service_enabled
          JOIN customers_customer c ON c.id = o.customer_id
         WHERE o.kind IN ('maintenance', 'repair') AND o.status = 'completed'
           AND %(d)s - o.ordered_on - s.service_after_days BETWEEN 0 AND s.window_days - 1
           AND {ELIGIBLE.format(channel="s.service_channel")}
    """,
    "birthday": f"""
        SELECT count(*) FROM customers_customer c
          JOIN followups_followupsettings s ON s.tenant_id = c.tenant_id AND s.birthday_enabled
         WHERE c.birthday IS NOT NULL AND {ELIGIBLE.format(channel="s.birthday_channel")}
           AND EXISTS (
               SELECT 1 FROM generate_series(%(d)s::date - s.window_days + 1, %(d)s::date + s.birthday_lead_days,
                                             interval '1 day') AS g(at)
                CROSS JOIN LATERAL (SELECT g.at::date AS day) AS g2
                WHERE to_char(g2.day, 'MM-DD') = to_char(c.birthday, 'MM-DD')
                   OR (to_char(c.birthday, 'MM-DD') = '02-29' AND to_char(g2.day, 'MM-DD') = '02-28'
                       AND to_char(g2.day + 1, 'MM-DD') = '03-01'))
    """,
    "warranty": f"""
        SELECT count(DISTINCT v.customer_id) FROM customers_vehicle v
          JOIN followups_followupsettings s ON s.tenant_id = v.tenant_id AND s.warranty_enabled
          JOIN customers_customer c ON c.id = v.customer_id
         WHERE v.warranty_end - s.warranty_lead_days <= %(d)s AND %(d)s <= v.warranty_end + s.window_days - 1
           AND {ELIGIBLE.format(channel="s.expiry_channel")}
    """,
}


def check_night(owner_url: str, label: str, run_date: date, report: dict[str, Any], *, first: bool) -> dict[str, int]:
    """The rows created on `run_date` per reason, checked against the report and the invariants."""
    counts = report["counts"]
    problems = []
    with psycopg.connect(owner_url) as conn:
        created = _by_reason(conn, "created_on = %(d)s", {"d": run_date})
        reported = {r: int(counts.get(r, 0)) for r in REASONS if counts.get(r)}
        if created != reported:
            problems.append(f"rows created per reason {created} differ from the reported {reported}")
        if sum(created.values()) != int(counts.get("created", 0)):
            problems.append(f"{sum(created.values()):,} rows created, {int(counts.get('created', 0)):,} reported")
        for what, sql in INVARIANTS.items():
            (n,) = conn.execute(sql, {"d": run_date}).fetchone() or (0,)
            if n:
                problems.append(f"{n:,} follow-up(s) {what}")
        if first:
            (n,) = conn.execute(OVER_CAP, {"d": run_date}).fetchone() or (0,)
            if n:
                problems.append(f"{n:,} (holder, day) pairs over the daily cap")
            for reason, sql in EXPECTED.items():
                (n,) = conn.execute(sql, {"d": run_date}).fetchone() or (0,)
                print(f"    check {reason}: {created.get(reason, 0):,} created, {n:,} expected independently")
                if n != created.get(reason, 0):
                    problems.append(f"{reason}: {created.get(reason, 0):,} created, {n:,} expected")
    if problems:
        raise SystemExit(f"{label}: wrong results:\n  " + "\n  ".join(problems))
    print(f"  checks {label}: {len(INVARIANTS)} invariants hold; created per reason as reported")
    return created


def schedule_again(owner_url: str, label: str, run_date: date, *, jit: bool = True) -> dict[str, Any]:
    """The scheduling for a date it ran for already: it must create nothing."""
    with psycopg.connect(owner_url) as conn:
        before = _by_reason(conn)
    report = _run_schedule(label, run_date, jit=jit)
    with psycopg.connect(owner_url) as conn:
        after = _by_reason(conn)
    created = int(report["counts"].get("created", 0))
    if before != after or created:
        raise SystemExit(
            f"{label}: the scheduling created follow-ups again: reported {created:,}; "
            f"rows per reason before {before}, after {after}."
        )
    others = {k: int(report["counts"].get(k, 0)) for k in ("expired", "released", "spread")}
    print(f"  {label}: created nothing (rows per reason unchanged); {others}; jit = {report['jit']}")
    return report


def _nightly_segmentation(label: str, run_date: date) -> dict[str, Any]:
    return seg._engine(label, run_date, seg._window_start(run_date))


def _after_ids(owner_url: str) -> tuple[int, int]:
    with psycopg.connect(owner_url) as conn:
        row = conn.execute(
            "SELECT (SELECT COALESCE(max(id), 0) FROM customers_customer), "
            "(SELECT COALESCE(max(id), 0) FROM customers_order)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def business_day(owner_url: str, seed: int, day: date) -> None:
    mark = time.perf_counter()
    after_customer, after_order = _after_ids(owner_url)
    written = seg.simulate_day(owner_url, seed, day)
    extras = day_extras(owner_url, after_customer=after_customer, after_order=after_order)
    print(
        f"  {written['orders']:,} orders for {written['tenants']} dealerships ({written['new_customers']} new "
        f"customers, {extras['vehicles']} vehicles), {extras['orders_linked']:,} linked to vehicles, "
        f"{extras['readings']:,} mileage readings, {written['reversed']} reversed, in "
        f"{time.perf_counter() - mark:.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--today", type=date.fromisoformat, default=None, help="default: today")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {BENCH_DB} afterwards (to EXPLAIN queries)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--date", type=date.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "schedule":
        print(json.dumps(child_schedule(args.date)))
        return

    today = args.today or date.today()
    day, night, next_night = today - timedelta(days=1), today, today + timedelta(days=1)
    owner = seg._url("DATABASE_OWNER_URL", BENCH_DB)
    started = time.perf_counter()
    print(
        f"{args.customers:,} customers, {args.orders:,} orders, {args.tenants} dealerships; orders up to "
        f"{day - timedelta(days=1)}; segmentation's first run for {day}, one business day ({day}); the first "
        f"night measured {night}, the next {next_night}; database {BENCH_DB}"
    )
    seg._setup_database()
    try:
        print("Loading the segmentation data (bench_segmentation's, as the owner):")
        seg.load(owner, args, last_day=day - timedelta(days=1))
        print("Adding what follow-ups read (as the owner):")
        mark = time.perf_counter()
        added = add_followup_data(owner, day=day, night=night)
        load_seconds = time.perf_counter() - mark
        with psycopg.connect(owner) as conn:
            staff = conn.execute(
                "SELECT role, count(*), count(*) FILTER (WHERE NOT is_active) FROM tenancy_membership "
                "GROUP BY role ORDER BY role"
            ).fetchall()
            owned, owners = conn.execute(
                "SELECT count(*) FILTER (WHERE owner_id IS NOT NULL), count(DISTINCT owner_id) FROM customers_customer"
            ).fetchone() or (0, 0)
        print(
            f"  in {load_seconds:.0f} s: staff "
            + ", ".join(f"{role} {n:,} ({off} inactive)" for role, n, off in staff)
            + f"; {owned:,} customers owned by {owners:,} people; {added['vehicles']:,} vehicles, "
            f"{added['orders_linked']:,} orders linked, {added['readings']:,} readings, "
            f"{added['touchpoints']:,} contacts, {added['tickets']:,} closed tickets"
        )
        print("Segmentation's first run (cold build), so every customer has a tier:")
        cold = _nightly_segmentation(f"first run (cold build) for {day}", day)
        with psycopg.connect(owner, autocommit=True) as conn:  # what autovacuum does during the day
            for table in ("segmentation_customervalue", "segmentation_valuehistory", "customers_customer"):
                conn.execute(f"VACUUM (ANALYZE) {table}")
        print(f"One business day ({day}):")
        business_day(owner, args.seed, day)

        print(f"The first night, {night} ({seg._load_average()}):")
        segmentation = _nightly_segmentation(f"segmentation nightly recompute for {night}", night)
        first = _run_schedule(f"follow-up scheduling for {night}", night)
        first_rows = check_night(owner, str(night), night, first, first=True)
        again = schedule_again(owner, f"the same date again ({night})", night)
        # Diagnosis: the same, with PostgreSQL's JIT compilation off for the session (see the README).
        again_no_jit = schedule_again(owner, f"the same date again, jit = off ({night})", night, jit=False)

        print(f"The day's work ({night}) and the next night, {next_night}:")
        mark = time.perf_counter()
        worked = work_the_day(owner, night)
        print(
            f"  {worked:,} follow-ups worked (done or no answer), each a contact, in {time.perf_counter() - mark:.1f} s"
        )
        business_day(owner, args.seed + 1, night)
        print(f"  ({seg._load_average()})")
        segmentation_next = _nightly_segmentation(f"segmentation nightly recompute for {next_night}", next_night)
        second = _run_schedule(f"follow-up scheduling for {next_night}", next_night)
        next_rows = check_night(owner, str(next_night), next_night, second, first=False)
        with psycopg.connect(owner) as conn:
            states = conn.execute(
                "SELECT status, count(*), count(*) FILTER (WHERE assignee_id IS NULL) FROM followups_followup "
                "GROUP BY status ORDER BY status"
            ).fetchall()
        print("  follow-ups by status: " + ", ".join(f"{s} {n:,} ({pool:,} in the pool)" for s, n, pool in states))
    finally:
        if args.keep_db:
            print(f"Kept the database {BENCH_DB}.")
        else:
            seg._drop_database()

    seg_s, seg_next_s = segmentation["seconds"], segmentation_next["seconds"]
    print("\nFigures (seconds, MB; lower is better). RSS = peak resident set size.")
    print(f"{'figure':<44}{'value':>12}  {'baseline (same run)':<26}{'ratio':>9}  {'target':<18}result")
    for label, report, baseline in (
        (f"scheduling, first night, {first['tenants']} dealerships", first, seg_s),
        ("scheduling, next night", second, seg_next_s),
    ):
        seg._row(
            label,
            f"{report['seconds']:.1f} s",
            f"segmentation {baseline:.1f} s",
            f"{report['seconds'] / baseline:.1f}×",
            f"< {TARGET_SECONDS:.0f} s",
            report["seconds"] < TARGET_SECONDS,
        )
        seg._row("  follow-ups created", f"{int(report['counts'].get('created', 0)):,}", "", "", "", None)
        seg._row("  peak RSS of the process", f"{report['peak_rss']:.0f} MB", "", "", "", None)
        if report["backend_anon_mb"] is not None:
            seg._row(
                "  PostgreSQL backend: peak private (RssAnon)", f"{report['backend_anon_mb']:.0f} MB", "", "", "", None
            )
    seg._row(
        "  same date again: created 0 (idempotent)",
        f"{again['seconds']:.1f} s",
        f"segmentation {seg_s:.1f} s",
        f"{again['seconds'] / seg_s:.1f}×",
        "creates nothing",
        True,
    )
    seg._row(
        "  … the same with jit = off (diagnosis)",
        f"{again_no_jit['seconds']:.1f} s",
        f"segmentation {seg_s:.1f} s",
        f"{again_no_jit['seconds'] / seg_s:.1f}×",
        "creates nothing",
        True,
    )
    seg._row(f"segmentation nightly, {segmentation['tenants']} dealers", f"{seg_s:.1f} s", "", "", "", None)
    seg._row("  peak RSS of the process", f"{segmentation['peak_rss']:.0f} MB", "", "", "", None)
    seg._row("segmentation, next night", f"{seg_next_s:.1f} s", "", "", "", None)
    seg._row("segmentation first run (cold build)", f"{cold['seconds']:.1f} s", "", "", "", None)
    print(f"\n{'follow-ups created':<20}{'first night':>12}{'next night':>12}")
    for reason in REASONS:
        if first_rows.get(reason) or next_rows.get(reason):
            print(f"{reason:<20}{first_rows.get(reason, 0):>12,}{next_rows.get(reason, 0):>12,}")
    print(f"{'total':<20}{sum(first_rows.values()):>12,}{sum(next_rows.values()):>12,}")
    print(f"Total run time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
