"""Sales at 2,000,000 leads: "my leads today", the lead list, bulk intake and the nightly lead work.

Method
  1. Creates the database crm_bench_sales as the owning role and migrates it.
  2. Loads, as the owner and set-based (INSERT … SELECT generate_series, one statement per table and
     dealership), `--tenants` dealerships with `--leads-total` leads, the first with `--leads-big` and
     the others sharing the rest: per dealership a manager, an administrator and one sales consultant
     per 2,000 leads (at least 5), all on duty (the round-robin); the default defeat reasons; one
     customer per lead (`bench_customer_search.py`'s customer generator: weighted Chinese names, unique
     mainland mobiles), owned by the lead's consultant; the leads, captured over three years up to
     now (the newest last) with what a steady state looks like the morning of the night measured, D:
       * leads older than 90 days: 25 % delivered, 69 % defeated (approved, with a reason), 6 % still
         open, most of those dormant (dormant since 0 to 30 days: the 30th are woken tonight);
       * younger leads: 70 % open (contacted 35 %, invited 15 %, visited 20 %, test drive 12 %,
         negotiation 10 %, ordered 8 %), the rest delivered or defeated; leads of the last two days
         40 % still new (not yet contacted: those given out more than 24 hours ago are reclaimed
         tonight);
       * 5 % of the open leads in the pool (nobody holds them); intent H 10 %, A 25 %, B 40 %, C 25 %;
         every milestone up to the stage set (the funnel's rule), the first response in 0-120 minutes;
       * next follow-up: 25 % of the awake leads 1 to 7 days overdue (those worked late), 1 % 8 days
         (reclaimed tonight: the overdue limit is 7 days), the rest spread over the level's cadence;
         last contact 0 to 60 days ago, skewed to recent (the 60th go dormant tonight);
     the lead follow-ups the earlier nights planned (one open follow-up, reason "lead", per awake
     owned open lead due before D); a vehicle-sale order for every delivered lead and 1 to 3 service
     orders for half of them, so that segmentation has orders to score. Then VACUUM ANALYZE.
  3. Segmentation's first run (cold build) for D - 1 and a business day of orders (one per 200 leads,
     for customers who have bought), as `bench_followups.py` prepares its night.
  4. The night D, each step for every dealership in turn in a child process as the application role
     under row-level security (`nightly_run_tenant(…, only=[step])`, `bench_segmentation.py`'s child):
     (a) `segmentation.rfm`, the baseline; (b) `sales.leads`, the figure; (c) `sales.leads` again for
     the same date: it must change nothing. The counts of leads reclaimed, put to sleep and woken
     must equal those counted beforehand with SQL, every awake owned open lead due by D must have
     its open lead follow-up afterwards, and no dealership may fail.
  5. Starts gunicorn (`bench_customer_search.py`'s: 2 sync workers, DEBUG off, persistent connections,
     the application role) and measures, round by round, one request of each case per round:
     the floor GET /api/v1/me/; for the big dealership's first consultant the page "my leads today"
     (GET /sales/) and GET /api/v1/sales/leads/?due=true; for its manager the lead list's first page
     (GET /sales/leads/) and GET /api/v1/sales/leads/. Every answer is checked (fails otherwise): the
     page lists exactly the leads a direct SQL count finds (the consultant's open, awake leads due
     by today), the API's `count` equals the SQL count of its own rule (open leads due by today the
     consultant sees: their own and the pool), the lists show the newest lead first and the right
     total.
  6. Bulk intake: `--bulk-batches` requests of 1,000 new leads each (POST /api/v1/sales/leads/bulk/,
     online and brand leads with external ids, given out by the round-robin), sent one after another
     with an integration key holding `sales:write` (made by `credential_create`); each answer must
     report 1,000 created and the table must hold them. Then the last batch again: 1,000 existing,
     nothing created (idempotent), as context.
  7. Stops gunicorn and drops the database (`--keep-db` keeps it, to EXPLAIN queries afterwards).

Baselines, measured in the same run (nothing is asserted about time: shared, noisy machines):
  (a) pages and API p95 against the floor's p95, target ≤ 3 × floor; (b) bulk intake in leads/s,
  target ≥ 300; (c) the nightly lead work against segmentation's nightly for the same customers,
  target ≤ 1 ×.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_customer_search as search  # modules beside this one
import bench_followups as followups_bench
import bench_segmentation as seg

ROOT = seg.ROOT
BENCH_DB = "crm_bench_sales"
# bench_customer_search's server helpers (_server_env, _django_setup) read the database name from
# their module global when called; bench_segmentation's take it as an argument here.
search.BENCH_DB = BENCH_DB
seg.BENCH_DB = BENCH_DB  # bench_followups points it at its own database when imported
STEP = "sales.leads"
ZONE = "Asia/Shanghai"
LEADS_PER_CONSULTANT = 2_000
POOL_SHARE = 0.05
BULK_SIZE = 1_000
TARGET_FLOOR_RATIO = 3.0
TARGET_LEADS_PER_S = 300.0
PASSWORD = search.PASSWORD
OPEN = ["new", "contacted", "invited", "visited", "test_drive", "negotiation", "ordered"]
DEFEAT_REASONS = [
    ("price", "价格原因", False),
    ("competitor", "购买竞品", True),
    ("no_stock", "无现车", False),
    ("loan_refused", "贷款未通过", False),
    ("plan_changed", "购车计划变更", False),
    ("unreachable", "联系不上", False),
]
MODELS = [(b[0], b[1]) for b in search.BRANDS]


class BenchmarkFailed(Exception):
    """A result was not what the application must produce: the figures would be meaningless."""


# ---------------------------------------------------------------------------------------------
# Loading, as the owner
# ---------------------------------------------------------------------------------------------

STAFF_SQL = """
WITH u AS (
    INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active,
        date_joined, preferred_language)
    SELECT CASE WHEN g <= 3 THEN %(hash)s ELSE '!' END, false,
           'bench-' || %(code)s || '-' || CASE g WHEN 1 THEN 'manager' WHEN 2 THEN 'admin'
                                        ELSE 'consultant-' || lpad((g - 2)::text, 3, '0') END,
           CASE g WHEN 1 THEN '经理' WHEN 2 THEN '管理员' ELSE '顾问' || (g - 2) END, '林', '', false, true, now(), ''
      FROM generate_series(1, %(n)s + 2) AS g
    RETURNING id, username
)
INSERT INTO tenancy_membership (role, is_active, is_service_account, created_at, user_id, tenant_id)
SELECT CASE WHEN username LIKE '%%-manager' THEN 'manager' WHEN username LIKE '%%-admin' THEN 'tenant_admin'
            ELSE 'sales_consultant' END, true, false, now(), id, %(tenant)s
  FROM u ORDER BY id
RETURNING id, role
"""

DUTY_SQL = """
INSERT INTO sales_consultantduty (tenant_id, member_id, on_duty, brands, last_assigned_at)
SELECT %(tenant)s, m, true, '{}', now() - make_interval(mins => o::int) FROM unnest(%(members)s::bigint[])
  WITH ORDINALITY AS x(m, o)
"""

REASONS_SQL = """
INSERT INTO sales_defeatreason (tenant_id, code, label, needs_competitor, is_active, position)
SELECT %(tenant)s, code, label, nc, true, o FROM unnest(%(codes)s::text[], %(labels)s::text[], %(nc)s::bool[])
  WITH ORDINALITY AS x(code, label, nc, o)
"""

# One lead per customer of the dealership. u is the customer's number (from its DMS id); the newest
# customers are the youngest leads. Every random choice is drawn once per row in the inner SELECT.
LEADS_SQL = """
INSERT INTO sales_lead (tenant_id, customer_id, owner_id, name, mobile, wechat, source, source_system, external_id,
    campaign, brand, series, other_models, budget, timeframe, payment, trade_in, level, stage, notes, created_at,
    assigned_at, first_contact_at, response_minutes, response_due_at, invited_at, appointment_at, visited_at,
    test_drive_at, quoted_at, ordered_at, delivered_at, closed_at, last_contact_at, next_followup_on, dormant_since,
    woken_on, deposit, expected_delivery_on, defeat_status, defeat_reason_id, defeat_note, competitor_brand,
    competitor_model, updated_at)
SELECT tenant_id, customer_id, owner_id, name, mobile, '', source,
       CASE source WHEN 'online' THEN 'autohome' WHEN 'brand' THEN 'brand-dcc' ELSE '' END,
       CASE WHEN source IN ('online', 'brand') THEN 'L' || u ELSE '' END, '',
       (%(brands)s::text[])[model], (%(series)s::text[])[model], '', 100000 + floor(r_budget * 30) * 10000,
       CASE level WHEN 'H' THEN '7d' WHEN 'A' THEN '15d' WHEN 'B' THEN '30d' ELSE '90d' END,
       (ARRAY['undecided', 'cash', 'loan'])[1 + floor(r_budget * 3)::int], '', level, stage, '', created_at,
       CASE WHEN owner_id IS NOT NULL THEN created_at END,
       CASE WHEN rank >= 1 THEN created_at + make_interval(mins => floor(r_resp * 120)::int) END,
       CASE WHEN rank >= 1 THEN floor(r_resp * 120)::int END,
       CASE WHEN source IN ('online', 'brand') AND owner_id IS NOT NULL THEN created_at + interval '30 minutes' END,
       CASE WHEN rank >= 2 THEN created_at + age * 0.2 END,
       CASE WHEN rank >= 2 THEN created_at + age * 0.25 END,
       CASE WHEN rank >= 3 THEN created_at + age * 0.3 END,
       CASE WHEN rank >= 4 THEN created_at + age * 0.35 END,
       CASE WHEN rank >= 5 THEN created_at + age * 0.4 END,
       CASE WHEN rank >= 6 THEN created_at + age * 0.5 END,
       CASE WHEN stage = 'delivered' THEN created_at + age * 0.6 END,
       CASE WHEN stage IN ('delivered', 'defeated') THEN created_at + age * 0.6 END,
       CASE WHEN stage IN ('delivered', 'defeated') THEN created_at + age * 0.6
            WHEN rank >= 1
            THEN greatest(created_at, %(now)s - make_interval(days => floor(r_contact ^ 2 * 61)::int)) END,
       CASE WHEN stage IN ('delivered', 'defeated') THEN NULL
            WHEN dormant THEN %(d)s::date - 7 - floor(r_next * 20)::int
            WHEN r_next < 0.01 THEN %(d)s::date - 8
            WHEN r_next < 0.26 THEN %(d)s::date - 1 - floor((r_next - 0.01) / 0.25 * 7)::int
            ELSE %(d)s::date + floor((r_next - 0.26) / 0.74 * CASE level WHEN 'H' THEN 2 WHEN 'A' THEN 3
                                                                       WHEN 'B' THEN 7 ELSE 14 END)::int END,
       CASE WHEN dormant THEN %(d)s::date - floor(r_dormant / 0.6 * 31)::int END,  -- r_dormant < 0.6 here
       NULL, CASE WHEN rank >= 6 THEN 5000 END, NULL,
       CASE WHEN stage = 'defeated' THEN 'approved' ELSE '' END,
       CASE WHEN stage = 'defeated'
            THEN (%(reasons)s::bigint[])[1 + floor(r_budget * cardinality(%(reasons)s::bigint[]))::int] END,
       '', '', '', %(now)s
  FROM (SELECT *, CASE stage WHEN 'new' THEN 0 WHEN 'contacted' THEN 1 WHEN 'invited' THEN 2 WHEN 'visited' THEN 3
                            WHEN 'test_drive' THEN 4 WHEN 'negotiation' THEN 5 WHEN 'ordered' THEN 6
                            WHEN 'delivered' THEN 7 ELSE 1 + floor(r_level * 5)::int END AS rank,
               %(now)s - created_at AS age,
               stage = ANY(%(open)s) AND age_days > 90 AND r_dormant < 0.6 AS dormant,
               CASE WHEN stage = ANY(%(open)s) AND r_pool < %(pool_share)s THEN NULL
                    ELSE (%(owners)s::bigint[])[1 + u %% 500] END AS owner_id
          FROM (SELECT *, CASE WHEN age_days < 2 THEN (CASE WHEN r_stage < 0.3 AND r_source >= 5 / 12.0 THEN 'new'
                                                                 WHEN r_source < 3 / 12.0 THEN 'visited'
                                                                 ELSE 'contacted' END)
                               WHEN age_days <= 90 THEN (CASE WHEN r_stage < 0.245 THEN 'contacted'
                                    WHEN r_stage < 0.35 THEN 'invited' WHEN r_stage < 0.49 THEN 'visited'
                                    WHEN r_stage < 0.574 THEN 'test_drive' WHEN r_stage < 0.644 THEN 'negotiation'
                                    WHEN r_stage < 0.70 THEN 'ordered' WHEN r_stage < 0.82 THEN 'delivered'
                                    ELSE 'defeated' END)
                               ELSE (CASE WHEN r_stage < 0.01 THEN 'contacted' WHEN r_stage < 0.02 THEN 'invited'
                                    WHEN r_stage < 0.03 THEN 'visited' WHEN r_stage < 0.04 THEN 'test_drive'
                                    WHEN r_stage < 0.05 THEN 'negotiation' WHEN r_stage < 0.06 THEN 'ordered'
                                    WHEN r_stage < 0.31 THEN 'delivered' ELSE 'defeated' END) END AS stage,
                       %(now)s - make_interval(secs => age_days * 86400 + 60) AS created_at,
                       CASE WHEN r_level < 0.1 THEN 'H' WHEN r_level < 0.35 THEN 'A' WHEN r_level < 0.75 THEN 'B'
                            ELSE 'C' END AS level,
                       (ARRAY['walk_in', 'walk_in', 'walk_in', 'phone', 'phone', 'online', 'online', 'online',
                              'brand', 'brand', 'event', 'repurchase'])[1 + floor(r_source * 12)::int] AS source,
                       1 + floor(r_model * cardinality(%(brands)s::text[]))::int AS model
                  FROM (SELECT c.tenant_id, c.id AS customer_id, c.name, c.mobile,
                               substr(c.external_id, 2)::bigint AS u,
                               (%(last)s - substr(c.external_id, 2)::bigint) * 1095.0::float8 / %(size)s AS age_days,
                               random() AS r_stage, random() AS r_level, random() AS r_source, random() AS r_model,
                               random() AS r_budget, random() AS r_resp, random() AS r_contact, random() AS r_next,
                               random() AS r_dormant, random() AS r_pool
                          FROM customers_customer c WHERE c.tenant_id = %(tenant)s) AS a) AS b) AS s
"""

# What the earlier nights planned: the open lead follow-up of every awake owned open lead due before D.
FOLLOWUPS_SQL = """
INSERT INTO followups_followup (tenant_id, customer_id, reason, source_key, note, due_from, due_until, scheduled_on,
    assignee_id, channel, priority, status, attempts, disposition, outcome_notes, created_on, created_at, updated_at)
SELECT l.tenant_id, l.customer_id, 'lead', 'lead:' || l.id || ':' || l.next_followup_on, 'Lead ' || l.level,
       l.next_followup_on, l.next_followup_on + 6, l.next_followup_on, l.owner_id, 'call',
       CASE l.level WHEN 'H' THEN 1 WHEN 'A' THEN 2 WHEN 'B' THEN 3 ELSE 4 END, 'open', 0, '', '',
       l.next_followup_on, l.next_followup_on + time '02:00', l.next_followup_on + time '02:00'
  FROM sales_lead l
 WHERE l.tenant_id = %(tenant)s AND l.stage = ANY(%(open)s) AND l.owner_id IS NOT NULL AND l.dormant_since IS NULL
   AND l.next_followup_on < %(d)s
"""

# A car for every delivered lead, and 1 to 3 service visits since for half of them.
ORDERS_SQL = """
INSERT INTO customers_order (tenant_id, customer_id, kind, status, ordered_on, amount, external_id, created_at)
SELECT l.tenant_id, l.customer_id, CASE WHEN k = 0 THEN 'vehicle_sale' ELSE 'maintenance' END, 'completed', o.day,
       CASE WHEN k = 0 THEN 120000 + (l.id * 7919 %% 200000) ELSE 300 + (l.id * 31 %% 1500) END, '',
       o.day + time '15:00'
  FROM sales_lead l
  CROSS JOIN LATERAL generate_series(0, CASE WHEN l.id %% 2 = 0 THEN 1 + (l.id / 2 %% 3)::int ELSE 0 END) AS k
  CROSS JOIN LATERAL (SELECT least(%(last_day)s::date,
                                   (l.delivered_at AT TIME ZONE %(zone)s)::date + k * 120) AS day) AS o
 WHERE l.tenant_id = %(tenant)s AND l.stage = 'delivered'
"""

# One business day: an order for one customer in 200 who has bought (as a DMS sync brings them).
DAY_SQL = """
INSERT INTO customers_order (tenant_id, customer_id, kind, status, ordered_on, amount, external_id, created_at)
SELECT tenant_id, customer_id, (ARRAY['maintenance', 'repair', 'parts', 'insurance'])[1 + floor(random() * 4)::int],
       'completed', %(day)s, 200 + floor(random() * 3000), '', %(day)s::date + time '16:00'
  FROM (SELECT DISTINCT tenant_id, customer_id FROM customers_order) AS c
 ORDER BY random() LIMIT %(n)s
"""


def tenant_sizes(big: int, total: int, tenants: int) -> list[int]:
    if tenants < 1 or big > total or (tenants == 1 and big != total):
        raise SystemExit("--leads-big must be at most --leads-total, and equal to it for one dealership.")
    rest = total - big
    others = [rest // (tenants - 1) + (1 if i < rest % (tenants - 1) else 0) for i in range(tenants - 1)]
    return [big, *others]


def _timed(conn: psycopg.Connection[Any], label: str, sql: str, params: dict[str, Any]) -> int:
    mark = time.perf_counter()
    rows = conn.execute(sql, params).rowcount
    print(f"    {label}: {rows:,} in {time.perf_counter() - mark:.1f} s", flush=True)
    return rows


BULK_TABLES = [
    "customers_customer",
    "customers_customersearchterm",
    "sales_lead",
    "followups_followup",
    "customers_order",
]


def _staff(conn: psycopg.Connection[Any], number: int, size: int, password_hash: str) -> dict[str, Any]:
    """The dealership, its staff on duty and its defeat reasons."""
    code = f"s{number:02d}"
    tenant = search._insert_tenant(conn, code, f"销售基准 {number} 号店")
    params = {"hash": password_hash, "code": code, "n": max(5, size // LEADS_PER_CONSULTANT), "tenant": tenant}
    staff = conn.execute(STAFF_SQL, params).fetchall()
    consultants = sorted(m for m, role in staff if role == "sales_consultant")
    conn.execute(DUTY_SQL, {"tenant": tenant, "members": consultants})
    codes, labels, needs = zip(*DEFEAT_REASONS, strict=True)
    conn.execute(REASONS_SQL, {"tenant": tenant, "codes": list(codes), "labels": list(labels), "nc": list(needs)})
    (signs_in,) = conn.execute(  # type: ignore[misc]
        "SELECT m.id FROM tenancy_membership m JOIN accounts_user u ON u.id = m.user_id WHERE u.username = %s",
        [f"bench-{code}-consultant-001"],
    ).fetchone()
    return {
        "tenant": tenant,
        "code": code,
        "manager": next(m for m, role in staff if role == "manager"),
        "admin": next(m for m, role in staff if role == "tenant_admin"),
        "consultant": int(signs_in),
        "consultants": consultants,
        "reasons": [r[0] for r in conn.execute("SELECT id FROM sales_defeatreason WHERE tenant_id = %s", [tenant])],
    }


def load(owner_url: str, sizes: list[int], night: date, password_hash: str) -> dict[str, Any]:
    """Every dealership, set-based, with the foreign keys and secondary indexes of the tables filled
    dropped and made again afterwards (bench_segmentation's and bench_followups' helpers: every row
    is checked once, every index built packed). Returns the big dealership's ids."""
    surnames = [surname for surname, weight in search.SURNAMES for _ in range(weight)]
    now = datetime.now(ZoneInfo(ZONE))
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        dealers = [_staff(conn, number, size, password_hash) for number, size in enumerate(sizes, start=1)]
        keys = seg._ForeignKeysCheckedOnce(conn, BULK_TABLES)
        indexes = followups_bench._IndexesRebuilt(conn, BULK_TABLES, rewritten=[])
        first = 1
        with keys, indexes:
            for number, (size, dealer) in enumerate(zip(sizes, dealers, strict=True), start=1):
                started = time.perf_counter()
                tenant = dealer["tenant"]
                owners = [dealer["consultants"][i % len(dealer["consultants"])] for i in range(500)]  # u % 500
                print(
                    f"  dealership {number} (#{tenant}): {size:,} leads, {len(dealer['consultants'])} consultants",
                    flush=True,
                )
                last = first + size - 1
                _timed(
                    conn,
                    "customers",
                    search.CUSTOMERS_SQL,
                    {
                        "tenant": tenant,
                        "surnames": surnames,
                        "given": search.GIVEN,
                        "mobile_prefixes": search.MOBILE_PREFIXES,
                        "first": first,
                        "last": last,
                        "size": size,
                        "with_owners": True,
                        "owners": owners,
                    },
                )
                params = {
                    "tenant": tenant,
                    "owners": owners,
                    "brands": [m[0] for m in MODELS],
                    "series": [m[1] for m in MODELS],
                    "reasons": dealer["reasons"],
                    "open": OPEN,
                    "pool_share": POOL_SHARE,
                    "now": now,
                    "d": night,
                    "last": last,
                    "size": size,
                }
                _timed(conn, "leads", LEADS_SQL, params)
                _timed(conn, "lead follow-ups planned by earlier nights", FOLLOWUPS_SQL, params)
                _timed(
                    conn, "orders", ORDERS_SQL, {"tenant": tenant, "last_day": night - timedelta(days=2), "zone": ZONE}
                )
                print(f"    dealership loaded in {time.perf_counter() - started:.1f} s", flush=True)
                first = last + 1
            mark = time.perf_counter()
            conn.execute(  # a pool lead's person has no consultant (prospects_owner_set)
                "UPDATE customers_customer c SET owner_id = NULL FROM sales_lead l "
                "WHERE l.customer_id = c.id AND l.owner_id IS NULL"
            )
            conn.execute(seg.LAST_VISIT_SQL.format(where=""))
            print(f"  pool owners and last visits in {time.perf_counter() - mark:.1f} s", flush=True)
        mark = time.perf_counter()
        for table in BULK_TABLES:
            conn.execute(f"VACUUM (ANALYZE) {table}")
        conn.execute("ANALYZE")
        print(f"  foreign keys checked, VACUUM ANALYZE in {time.perf_counter() - mark:.1f} s", flush=True)
    return dealers[0]


# ---------------------------------------------------------------------------------------------
# The night
# ---------------------------------------------------------------------------------------------

EXPECTED_SQL = {
    "reclaimed": """
        SELECT count(*) FROM sales_lead l WHERE l.owner_id IS NOT NULL AND l.stage = ANY(%(open)s)
           AND l.defeat_status <> 'pending'
           AND ((l.response_minutes IS NULL AND l.first_contact_at IS NULL
                 AND l.assigned_at <= %(now)s - interval '24 hours')
                OR (l.dormant_since IS NULL AND l.next_followup_on < %(d)s::date - 7))""",
    "dormant": """
        SELECT count(*) FROM sales_lead l WHERE l.stage = ANY(%(open)s) AND l.dormant_since IS NULL
           AND l.defeat_status <> 'pending'
           AND greatest((l.last_contact_at AT TIME ZONE %(zone)s)::date, (l.created_at AT TIME ZONE %(zone)s)::date,
                        l.woken_on) <= %(d)s::date - 60""",
    "woken": """
        SELECT count(*) FROM sales_lead l WHERE l.stage = ANY(%(open)s) AND l.dormant_since <= %(d)s::date - 30""",
}
DONE_SQL = """
SELECT kind, count(*) FROM sales_leadevent WHERE summary = 'nightly' AND kind IN ('reclaimed', 'dormant', 'woken')
 GROUP BY kind
"""
# After the night: every awake owned open lead due by D has an open lead follow-up for its person.
UNPLANNED_SQL = """
SELECT count(*) FROM sales_lead l WHERE l.stage = ANY(%(open)s) AND l.owner_id IS NOT NULL
   AND l.dormant_since IS NULL AND l.next_followup_on <= %(d)s
   AND NOT EXISTS (SELECT 1 FROM followups_followup f WHERE f.tenant_id = l.tenant_id AND f.customer_id = l.customer_id
                   AND f.reason = 'lead' AND f.status IN ('open', 'no_answer'))
"""


def child_nightly(run_date: date, step: str) -> dict[str, Any]:
    """Every dealership's `step`, sequentially, as `run_nightly --step` runs it (bench_segmentation's child)."""
    return seg.child_engine(run_date, step=step)


def _night(label: str, run_date: date, step: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "nightly", "--step", step, "--date", run_date.isoformat()],
        cwd=ROOT,
        env=seg._env(BENCH_DB),
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise BenchmarkFailed(f"{label}: the nightly process failed:\n{out.stderr[-4000:]}")
    report = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    if report["failed"]:
        raise BenchmarkFailed(
            f"{label}: {len(report['failed'])} dealership(s) failed; the first:\n{report['failed'][0]}"
        )
    slowest = ", ".join(f"#{t} {s:.2f} s" for t, s in report["slowest"])
    print(
        f"  {label}: {report['seconds']:.1f} s for {report['tenants']} dealerships as {report['role']}, "
        f"{report['rows']:,} rows, peak RSS {report['peak_rss']:.0f} MB; slowest {slowest}",
        flush=True,
    )
    return report


def expected_night(owner_url: str, night: date) -> dict[str, int]:
    now = datetime.now(ZoneInfo(ZONE))
    params = {"open": OPEN, "now": now, "d": night, "zone": ZONE}
    with psycopg.connect(owner_url) as conn:
        return {kind: int(conn.execute(sql, params).fetchone()[0]) for kind, sql in EXPECTED_SQL.items()}  # type: ignore[index]


def check_night(owner_url: str, night: date, expected: dict[str, int]) -> dict[str, int]:
    with psycopg.connect(owner_url) as conn:
        done = {kind: int(n) for kind, n in conn.execute(DONE_SQL).fetchall()}
        (unplanned,) = conn.execute(UNPLANNED_SQL, {"open": OPEN, "d": night}).fetchone()  # type: ignore[misc]
        (planned,) = conn.execute(  # type: ignore[misc]
            "SELECT count(*) FROM followups_followup WHERE reason = 'lead' AND created_on = %s", [night]
        ).fetchone()
        (given,) = conn.execute(  # type: ignore[misc]
            "SELECT count(*) FROM sales_leadevent WHERE summary = 'nightly' AND kind = 'assigned'"
        ).fetchone()
    print(
        "  check: "
        + ", ".join(f"{kind} {done.get(kind, 0):,} (SQL beforehand {n:,})" for kind, n in expected.items())
        + f"; given out again {given:,}; lead follow-ups planned {planned:,}; "
        + f"awake owned due leads without one {unplanned}"
    )
    wrong = [kind for kind, n in expected.items() if done.get(kind, 0) != n]
    if wrong or unplanned:
        raise BenchmarkFailed(f"the night's result is wrong: {wrong or ''} {unplanned} due leads without a follow-up")
    return {**done, "planned": int(planned), "given": int(given)}


# ---------------------------------------------------------------------------------------------
# Pages and API through gunicorn
# ---------------------------------------------------------------------------------------------

ROW = re.compile(r'data-testid="lead-row" data-lead="(\d+)"')


def _check_today(text: str, expected: list[int]) -> str:
    rows = [int(x) for x in ROW.findall(text.split('data-testid="pool"')[0])]
    if rows == expected:
        return ""
    if sorted(rows) == sorted(expected):
        return f"the {len(rows)} leads expected, in another order: {rows[:8]} … against the SQL's {expected[:8]} …"
    return f"{len(rows)} rows, expected {len(expected)}: missing {sorted(set(expected) - set(rows))[:10]}"


def _check_list(text: str, newest: int, size: int) -> str:
    rows = [int(x) for x in ROW.findall(text)]
    return "" if rows[:1] == [newest] and len(rows) == size else f"{len(rows)} rows, first {rows[:1]}, want {newest}"


def _check_api(text: str, count: int, first: int | None) -> str:
    body = json.loads(text)
    got_first = body["results"][0]["id"] if body["results"] else None
    if body["count"] != count or (first is not None and got_first != first):
        return f"count {body['count']}, first {got_first}; SQL: count {count}, first {first}"
    return ""


def _expectations(owner_url: str, loaded: dict[str, Any], today: date) -> dict[str, Any]:
    params = {"t": loaded["tenant"], "me": loaded["consultant"], "open": OPEN, "d": today}
    with psycopg.connect(owner_url) as conn:
        due = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM sales_lead WHERE tenant_id = %(t)s AND owner_id = %(me)s AND stage = ANY(%(open)s) "
                "AND next_followup_on <= %(d)s AND dormant_since IS NULL "
                "ORDER BY next_followup_on, CASE level WHEN 'H' THEN 1 WHEN 'A' THEN 2 WHEN 'B' THEN 3 ELSE 4 END, "
                "created_at, id LIMIT 200",
                params,
            )
        ]
        api_due, api_first = conn.execute(
            "SELECT count(*), (array_agg(id ORDER BY created_at DESC, id DESC))[1] FROM sales_lead "
            "WHERE tenant_id = %(t)s AND (owner_id = %(me)s OR owner_id IS NULL) AND stage = ANY(%(open)s) "
            "AND next_followup_on <= %(d)s",
            params,
        ).fetchone() or (0, None)
        total, newest = conn.execute(
            "SELECT count(*), (SELECT id FROM sales_lead WHERE tenant_id = %(t)s ORDER BY created_at DESC, id DESC "
            "LIMIT 1) FROM sales_lead WHERE tenant_id = %(t)s",
            params,
        ).fetchone() or (0, None)
    return {"due": due, "api_due": api_due, "api_first": api_first, "total": total, "newest": newest}


def _cases(manager: search.Browser, consultant: search.Browser, e: dict[str, Any]) -> list[dict[str, Any]]:
    page = min(50, e["total"])
    return [
        {"name": "floor: GET /api/v1/me/", "who": manager, "path": "/api/v1/me/", "check": lambda t: ""},
        {
            "name": "consultant: my leads today (page)",
            "who": consultant,
            "path": "/sales/",
            "check": lambda t: _check_today(t, e["due"]),
        },
        {
            "name": "consultant: API leads ?due=true",
            "who": consultant,
            "path": "/api/v1/sales/leads/?due=true",
            "check": lambda t: _check_api(t, e["api_due"], e["api_first"]),
        },
        {
            "name": "manager: lead list, first page",
            "who": manager,
            "path": "/sales/leads/",
            "check": lambda t: _check_list(t, e["newest"], page),
        },
        {
            "name": "manager: API leads, first page",
            "who": manager,
            "path": "/api/v1/sales/leads/",
            "check": lambda t: _check_api(t, e["total"], e["newest"]),
        },
    ]


def measure_pages(cases: list[dict[str, Any]], rounds: int, warmup: int) -> None:
    for case in cases:
        case["samples"] = []
    for i in range(warmup + rounds):
        for case in cases:
            status, body, elapsed = case["who"].request("GET", case["path"])
            text = body.decode("utf-8", errors="replace")
            problem = "" if status == 200 else f"status {status}"
            if not problem and (i == 0 or i == warmup):  # every answer is the same: check the first ones fully
                problem = case["check"](text)
            if problem:
                raise BenchmarkFailed(f"{case['name']}: GET {case['path']}: {problem}\n{text[:1500]}")
            if i >= warmup:
                case["samples"].append(elapsed)


def _integration_key(loaded: dict[str, Any]) -> str:
    """An integration key of the big dealership with the sales scopes (`credential_create`, as its admin)."""
    from crm.tenancy.context import tenant_context
    from crm.tenancy.models import ApiCredential, Membership
    from crm.tenancy.services import credential_create

    with tenant_context(loaded["tenant"]):
        admin = Membership.objects.select_related("tenant", "user").get(pk=loaded["admin"])
        _credential, raw = credential_create(
            actor=admin,
            kind=ApiCredential.Kind.INTEGRATION,
            name="bench lead portal",
            scopes=["sales:read", "sales:write"],
        )
    return raw


def _batch(number: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(BULK_SIZE):
        n = number * BULK_SIZE + i
        model = MODELS[n % len(MODELS)]
        rows.append(
            {
                "name": f"{search.SURNAMES[n % 10][0]}先生",
                "mobile": f"199{n:08d}",  # 199…: no generated customer has it
                "source": "online" if n % 3 else "brand",
                "source_system": "autohome" if n % 3 else "brand-dcc",
                "external_id": f"BULK-{n}",
                "brand": model[0],
                "series": model[1],
                "timeframe": ["7d", "15d", "30d", "90d"][n % 4],
            }
        )
    return rows


def _post(port: int, path: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    data = json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json"}
    started = time.perf_counter()
    conn.request("POST", path, body=data, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    try:
        parsed = dict(json.loads(raw))
    except ValueError:
        parsed = {"raw": raw[:1000].decode(errors="replace")}
    return response.status, parsed, elapsed


def bulk_intake(port: int, key: str, owner_url: str, tenant: int, batches: int) -> dict[str, Any]:
    path = "/api/v1/sales/leads/bulk/"
    with psycopg.connect(owner_url) as conn:
        (before,) = conn.execute("SELECT count(*) FROM sales_lead WHERE tenant_id = %s", [tenant]).fetchone()  # type: ignore[misc]
    times = []
    for number in range(batches):
        status, body, elapsed = _post(port, path, key, {"leads": _batch(number)})
        if status != 200 or body.get("created") != BULK_SIZE:
            raise BenchmarkFailed(f"bulk batch {number}: {status} {json.dumps(body)[:1500]}")
        times.append(elapsed)
        print(f"    batch {number + 1}: {BULK_SIZE / elapsed:,.0f} leads/s ({elapsed:.2f} s)", flush=True)
    with psycopg.connect(owner_url) as conn:
        (after,) = conn.execute("SELECT count(*) FROM sales_lead WHERE tenant_id = %s", [tenant]).fetchone()  # type: ignore[misc]
        (owned,) = conn.execute(  # type: ignore[misc]
            "SELECT count(*) FROM sales_lead WHERE tenant_id = %s AND external_id LIKE 'BULK-%%' "
            "AND owner_id IS NOT NULL",
            [tenant],
        ).fetchone()
    if after - before != batches * BULK_SIZE:
        raise BenchmarkFailed(f"bulk intake: {after - before:,} leads stored, {batches * BULK_SIZE:,} reported created")
    status, body, again = _post(port, path, key, {"leads": _batch(batches - 1)})
    if status != 200 or body.get("created") != 0 or body.get("existing") != BULK_SIZE:
        raise BenchmarkFailed(f"the same batch again: {status} {json.dumps(body)[:1500]}")
    print(
        f"  stored {after - before:,} leads ({owned:,} given out by the round-robin); the same batch again: "
        f"{BULK_SIZE:,} existing, none created, in {again:.2f} s"
    )
    return {"seconds": sum(times), "leads": batches * BULK_SIZE, "times": times, "again": again}


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _setup_database(template: str | None) -> None:
    seg._drop_database(BENCH_DB)
    with psycopg.connect(seg._url("DATABASE_OWNER_URL", "postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {BENCH_DB}" + (f" TEMPLATE {template}" if template else ""))
    if not template:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=seg._env(BENCH_DB), check=True
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads-big", type=int, default=200_000, help="leads of the measured dealership")
    parser.add_argument("--leads-total", type=int, default=2_000_000, help="leads of the installation")
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=300, help="timed requests per page case")
    parser.add_argument("--bulk-batches", type=int, default=10, help="bulk requests of 1,000 leads")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {BENCH_DB} afterwards (to EXPLAIN queries)")
    parser.add_argument("--template", help=argparse.SUPPRESS)  # a migrated database to copy (trying things out)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--date", type=date.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "nightly":
        print(json.dumps(child_nightly(args.date, args.step)))
        return

    sizes = tenant_sizes(args.leads_big, args.leads_total, args.tenants)
    night = datetime.now(ZoneInfo(ZONE)).date()  # the dealerships' today
    owner = seg._url("DATABASE_OWNER_URL", BENCH_DB)
    started = time.perf_counter()
    print(
        f"{sum(sizes):,} leads in {len(sizes)} dealerships (the measured one {sizes[0]:,}), one customer each; "
        f"segmentation's first run for {night - timedelta(days=1)}, the night measured {night}; database {BENCH_DB}"
    )
    _setup_database(args.template)
    os.environ["GUNICORN_CMD_ARGS"] = "--timeout 600"  # a bulk request of 1,000 leads may take a while
    search._django_setup()
    from django.contrib.auth.hashers import make_password
    from django.db import connections

    process: subprocess.Popen[bytes] | None = None
    try:
        print("Loading (as the owner, set-based):")
        mark = time.perf_counter()
        loaded = load(owner, sizes, night, make_password(PASSWORD))
        load_seconds = time.perf_counter() - mark
        with psycopg.connect(owner) as conn:
            stages = conn.execute("SELECT stage, count(*) FROM sales_lead GROUP BY 1 ORDER BY 2 DESC").fetchall()
            (orders,) = conn.execute("SELECT count(*) FROM customers_order").fetchone()  # type: ignore[misc]
            (followups,) = conn.execute("SELECT count(*) FROM followups_followup").fetchone()  # type: ignore[misc]
        print(
            f"  loaded in {load_seconds:.0f} s: "
            + ", ".join(f"{s} {n:,}" for s, n in stages)
            + f"; {orders:,} orders, {followups:,} open lead follow-ups"
        )

        print("Segmentation's first run (cold build) and a business day:")
        _night(f"segmentation first run for {night - timedelta(days=1)}", night - timedelta(days=1), seg.STEP)
        with psycopg.connect(owner, autocommit=True) as conn:
            rows = _timed(
                conn, "orders of the day", DAY_SQL, {"day": night - timedelta(days=1), "n": sum(sizes) // 200}
            )
            for table in ("segmentation_customervalue", "customers_order", "customers_customer"):
                conn.execute(f"VACUUM (ANALYZE) {table}")
            del rows

        print(f"The night {night} ({seg._load_average()}):")
        segmentation = _night("segmentation.rfm (baseline)", night, seg.STEP)
        expected = expected_night(owner, night)
        sales = _night("sales.leads", night, STEP)
        done = check_night(owner, night, expected)
        again = _night("sales.leads, the same date again", night, STEP)
        if again["rows"] != 0:
            raise BenchmarkFailed(f"the same night again changed {again['rows']:,} rows")

        print(f"Pages and API through gunicorn ({seg._load_average()}):")
        with tempfile.TemporaryDirectory(prefix="bench_sales_") as settings_dir:
            log_path = Path(settings_dir, "gunicorn.log")
            process, port = search._start_gunicorn(settings_dir, log_path)
            try:
                manager, consultant = search.Browser(port), search.Browser(port)
                manager.sign_in(f"bench-{loaded['code']}-manager")
                consultant.sign_in(f"bench-{loaded['code']}-consultant-001")
                e = _expectations(owner, loaded, night)
                print(
                    f"  the consultant: {len(e['due'])} leads due today or late (page), {e['api_due']} due they see "
                    f"through the API (their own and the pool's); the manager sees {e['total']:,}"
                )
                cases = _cases(manager, consultant, e)
                measure_pages(cases, args.rounds, search.WARMUP)
                print(f"Bulk intake ({seg._load_average()}):")
                key = _integration_key(loaded)
                bulk = bulk_intake(port, key, owner, loaded["tenant"], args.bulk_batches)
            except BenchmarkFailed:
                print(f"gunicorn's log:\n{log_path.read_text()[-5000:]}", file=sys.stderr)
                raise
            finally:
                search._stop(process)
                process = None
    finally:
        if process is not None:
            search._stop(process)
        connections.close_all()
        if args.keep_db:
            print(f"Kept the database {BENCH_DB}.")
        else:
            seg._drop_database(BENCH_DB)

    floor_p95 = search._p(cases[0]["samples"], 95)
    print(f"\n{args.rounds} timed requests per case (after {search.WARMUP} untimed), wall time on the client, ms")
    print(f"{'case':<40}{'p50':>8}{'p95':>8}{'p95/floor':>11}  target ≤ {TARGET_FLOOR_RATIO:.0f}× floor")
    for case in cases:
        p50, p95 = search._p(case["samples"], 50), search._p(case["samples"], 95)
        verdict = "-" if case is cases[0] else ("PASS" if p95 <= TARGET_FLOOR_RATIO * floor_p95 else "MISS")
        print(f"{case['name']:<40}{p50:>8.1f}{p95:>8.1f}{p95 / floor_p95:>10.1f}×  {verdict}")
    rate = bulk["leads"] / bulk["seconds"]
    print(f"\n{'figure':<44}{'value':>12}  {'baseline (same run)':<26}{'ratio':>9}  {'target':<18}result")
    seg._row(
        f"bulk intake, {bulk['leads'] // BULK_SIZE} × {BULK_SIZE:,} leads",
        f"{rate:,.0f} /s",
        f"{1000 / rate:.1f} ms a lead",
        "",
        f"≥ {TARGET_LEADS_PER_S:.0f} leads/s",
        rate >= TARGET_LEADS_PER_S,
    )
    seg._row("  the same batch again (all existing)", f"{bulk['again']:.2f} s", "", "", "", None)
    ratio = sales["seconds"] / segmentation["seconds"]
    seg._row(
        f"sales.leads nightly, {sales['tenants']} dealerships",
        f"{sales['seconds']:.1f} s",
        f"segmentation {segmentation['seconds']:.1f} s",
        f"{ratio:.2f}×",
        "≤ 1× segmentation",
        ratio <= 1,
    )
    seg._row("  " + ", ".join(f"{k} {v:,}" for k, v in done.items()), "", "", "", "", None)
    seg._row(
        "  peak RSS of the process", f"{sales['peak_rss']:.0f} MB", f"{segmentation['peak_rss']:.0f} MB", "", "", None
    )
    seg._row("  the same date again (changed nothing)", f"{again['seconds']:.1f} s", "", "", "", None)
    print(f"Total run time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
