"""The manager dashboard at a dealership of 1,000,000 customers: the nightly pre-aggregation and the page.

Method
  1. Creates the database crm_bench_dashboards and loads, as the owner, what `bench_segmentation.py`
     loads (its functions, imported; see its docstring), for two dealerships instead of a hundred: one
     of 1,000,000 customers (`--customers`) and one of 20,000 beside it (a fiftieth, at least 1,000),
     so that row-level security has rows to hide; 5 orders per customer (`--orders`, about 5,100,000)
     of every kind over 3.5 years up to three days before today, 2 % reversed.
  2. Adds what `bench_followups.py` adds (its `add_followup_data`, imported: staff who own the
     customers, sales consultants and service advisors; a vehicle for every customer with a car sale,
     service or insurance order, about 0.9 per customer; the orders linked to them; mileage readings,
     contacts, closed tickets), then, as the owner and set-based, what the dashboard reads beside
     (every choice a fixed function of the row ids, so every run loads the same data):
     * the handler of every order (staff_id): a car sale by the customer's owner when a sales
       consultant, else by a consultant fixed per customer; any other order by the owner when a
       service advisor, else by an advisor fixed per customer; 2 % without one (DMS imports);
       a street address for 85 % of the customers (data quality);
       one UPDATE each, the two tables' secondary indexes dropped and built again after a VACUUM FULL;
     * loyalty: a programme per dealership; members (45 % of the customers with orders, joined within
       90 days of their first order); an "earn" ledger entry per completed order since joining (a
       point per 10 CNY); a redemption of half the points for 30 % of the members, after their last
       order; for 20 %, half of what they earned before two years ago expired then. The balance is
       the sum of the member's entries;
     * survey responses: one per 20 customers, about 50,000, for as many completed service orders
       (each with its invitation; CSAT about 80 %, NPS about 45, about the handler of the order);
     * complaint tickets: one per 200 customers, about 5,000, opened over the 3.5 years (12 % answered
       late, 1 in 7 resolved late, 1 % failed, the last few days' still open);
     * follow-ups: for one customer in 5, about 200,000, due over the last two years: 72 % done,
       10 % unreachable, 14 % expired, 4 % cancelled; those whose window is not over yet open.
     Then VACUUM ANALYZE.
  3. Segmentation's first run (cold build) for D0 = today − 2: the real engine as the application role
     (bench_segmentation's child, `run_nightly --step segmentation.rfm`), so every customer has a tier,
     segment and lifecycle stage and an open value-history period. The engine has no history before
     its first run, so the periods of the 12 month ends before the first night are added as the owner,
     set-based: the ladder stage at each month end by the engine's rules (prospect, new, satisfied,
     retained, loyal, dormant, lost) from the customer's orders up to that day, the tier as now for a
     customer who had bought by then; consecutive equal states make one period, the last one joined to
     the engine's open period when it has the same state. (The engine also opens a period when only the
     segment or the RFM code changes: a real history has more, shorter periods.)
  4. A business day D0 (`bench_followups.business_day`, scaled to an average day of the two
     dealerships: about 4,000 orders, 1 in 200 by a new customer who bought a car, 1 in 50 reversals;
     the new vehicles; the new orders get a handler as above), then the first night
     N1 = today − 1, in child processes as the application role under row-level security, as
     `manage.py run_nightly` runs the steps (`nightly_run_tenant(…, only=[step])`, each dealership in
     turn), in the pipeline's order: segmentation.rfm, customers.data_quality (the real data-quality
     scores, first run), dashboards.figures. The dashboard step is the figure (a): its first run builds
     the customer base for N1 and for the 12 month ends before it, and the spend of every day.
  5. A business day N1 and the next night N2 = today, the same steps: the dashboard step writes the
     base for N2 and rewrites the spend of the last 400 days. Then VACUUM ANALYZE of the two dashboard
     tables, standing in for autovacuum during the day.
  6. The page, in one child process as the application role (DEBUG=False, persistent connections,
     static files from a manifest built by `collectstatic` into a throwaway directory, as in
     `bench_customer_search.py`), with Django's test Client in-process, signed in as the big
     dealership's manager: GET /dashboards/ for the 30 days and the 365 days up to today (each beside
     the same number of days before, the page's default), and for 30 days with a sales consultant
     filter; GET /api/v1/dashboards/figures/ for 30 and 365 days. Each: 2 warm-ups, then 20 requests
     (`--requests`); median and p95 of the wall time of `client.get` (the whole server side: the
     middleware, the session, the request's transaction and tenant, the view, the template); the time
     spent in SQL and the slowest statements of the median request are printed too. Peak RSS of the
     process (VmHWM).
  7. Checks (the run fails on any): every response is 200; the API's figures equal the live
     computation below for the same day and periods: customers, tiers, ladder stages, scored and
     accurate records, service-base vehicles and those that came back, outstanding points, and the
     spend and orders of the period and of its comparison period.
  8. Drops the database (`--keep-db` keeps it, to EXPLAIN the page's queries afterwards).

Baseline, measured in the same run and process: the same figures computed live from the base tables,
without the pre-aggregates, as the application role under row-level security: tier and stage counts
(customers, segmentation's customer values), data quality (customers), spend of the period and of its
comparison period (orders), the service base and those that came back (vehicles, orders), points
(loyalty members): one straightforward query each, for today (the median of 3, after a warm-up). It
computes less than the page does (no comparison-day base, no ladder months, no surveys, complaints or
follow-ups). Target (from the issue): the page renders in under 300 ms of server time, judged on the
p95. Nothing else is asserted about time (shared, noisy machines).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_followups as fu  # modules beside this one
import bench_segmentation as seg

from crm.core.period import month_ends_before  # the dashboard's backfill days

BENCH_DB = "crm_bench_dashboards"
# bench_segmentation's helpers (_env, _setup_database, _drop_database, _engine's child) read the
# database name from its module global when called (bench_followups sets it to its own on import).
seg.BENCH_DB = BENCH_DB
TARGET_MS = 300.0
ORDERS_PER_CUSTOMER = 5
SMALL_SHARE, SMALL_MIN = 50, 1_000  # the dealership beside: a fiftieth of the big one, at least 1,000
BACKFILL_MONTHS = 12  # dashboards.aggregates.BACKFILL_MONTHS (Django is not loaded in this process)
ZONE = "Asia/Shanghai"  # every dealership's (bench_segmentation's tenants)
SECRET_KEY = "bench-only-insecure-secret-key-for-a-throwaway-database-0123456789"  # noqa: S105
NIGHT_STEPS = ["customers.data_quality", "dashboards.figures"]  # after segmentation.rfm, in order

# per customer: survey responses, complaint tickets
CUSTOMERS_PER_RESPONSE, CUSTOMERS_PER_TICKET = 20, 200


def _since(day: date) -> date:
    return day - timedelta(days=seg.HISTORY_DAYS + 2)


# ---------------------------------------------------------------------------------------------
# What the dashboard reads, added to the follow-up data (as the owner, set-based)
# ---------------------------------------------------------------------------------------------

ORDER_STAFF_SQL = """
UPDATE customers_order o
   SET staff_id = CASE
         WHEN o.id %% 50 = 0 THEN NULL
         WHEN o.kind = 'vehicle_sale' THEN
              CASE WHEN ow.role = 'sales_consultant' THEN c.owner_id
                   ELSE s.consultants[1 + (c.id * 7919 %% cardinality(s.consultants))::int] END
         ELSE CASE WHEN ow.role = 'service_advisor' THEN c.owner_id
                   ELSE s.advisors[1 + (c.id * 104729 %% cardinality(s.advisors))::int] END END
  FROM customers_customer c
  LEFT JOIN tenancy_membership ow ON ow.id = c.owner_id
  JOIN (SELECT tenant_id,
               array_agg(id ORDER BY id) FILTER (WHERE role = 'sales_consultant') AS consultants,
               array_agg(id ORDER BY id) FILTER (WHERE role = 'service_advisor') AS advisors
          FROM tenancy_membership GROUP BY tenant_id) s ON s.tenant_id = c.tenant_id
 WHERE c.id = o.customer_id AND o.id > %(after_order)s
"""

ADDRESS_SQL = """
UPDATE customers_customer
   SET address = (ARRAY['科技园路', '深南大道', '人民路', '解放路', '建设路'])[1 + (id %% 5)::int]
                 || (1 + id * 7919 %% 400) || '号'
 WHERE merged_into_id IS NULL AND id * 16807 %% 100 < 85
"""

PROGRAMME_SQL = """
INSERT INTO loyalty_programme (name, is_active, starts_on, auto_enrol, point_value, expiry_months, qualifying_months,
                               referral_points, birthday_points, notify_level_changes, care_send_hour, channels,
                               tenant_id)
SELECT '车主积分计划', true, %(since)s, true, 0.0100, 24, 12, 1000, 200, true, 9, '{sms}', id
  FROM tenancy_tenant ORDER BY id
"""

MEMBER_FACTS_SQL = """
CREATE TEMP TABLE bench_member AS
SELECT c.tenant_id, c.id AS customer_id, LEAST(f.first_on + (c.id %% 90)::int, %(day)s::date) AS joined_on
  FROM customers_customer c
  JOIN (SELECT customer_id, min(ordered_on) AS first_on FROM customers_order WHERE status <> 'reversed'
         GROUP BY customer_id) f ON f.customer_id = c.id
 WHERE c.merged_into_id IS NULL AND c.id * 69069 %% 100 < 45
"""

EARN_SQL = """
CREATE TEMP TABLE bench_earn AS
SELECT m.tenant_id, m.customer_id, o.id AS order_id, GREATEST(floor(o.amount / 10), 1)::int AS points, o.ordered_on
  FROM bench_member m JOIN customers_order o ON o.customer_id = m.customer_id
 WHERE o.status = 'completed' AND o.ordered_on >= m.joined_on
"""

POINTS_SQL = """
CREATE TEMP TABLE bench_points AS
SELECT m.tenant_id, m.customer_id, m.joined_on, e.last_on,
       coalesce(e.earned, 0) AS earned,
       CASE WHEN m.customer_id * 7 %% 10 < 3 THEN floor(coalesce(e.earned, 0) / 2)::int ELSE 0 END AS redeemed,
       CASE WHEN m.customer_id %% 5 = 0 THEN floor(coalesce(e.old, 0) / 2)::int ELSE 0 END AS expired
  FROM bench_member m
  LEFT JOIN (SELECT customer_id, sum(points) AS earned, sum(points) FILTER (WHERE ordered_on < %(cutoff)s) AS old,
                    max(ordered_on) AS last_on
               FROM bench_earn GROUP BY customer_id) e ON e.customer_id = m.customer_id
"""

MEMBERS_SQL = """
INSERT INTO loyalty_member (level_locked, level_since, points_balance, joined_on, created_at, updated_at, customer_id,
                            level_id, tenant_id)
SELECT false, NULL, earned - redeemed - expired, joined_on, joined_on + time '10:00', joined_on + time '10:00',
       customer_id, NULL, tenant_id
  FROM bench_points ORDER BY customer_id
"""

LEDGER_SQL = """
INSERT INTO loyalty_ledgerentry (kind, points, occurred_at, expires_on, reason, source, key, created_at, actor_id,
                                 merged_from_id, order_id, tenant_id, ticket_id, member_id, redemption_id, referral_id)
SELECT x.kind, x.points, x.at, x.expires_on, x.reason, 'nightly', '', x.at, NULL, NULL, x.order_id, x.tenant_id, NULL,
       m.id, NULL, NULL
  FROM (SELECT 'earn' AS kind, e.points, e.ordered_on + time '16:00' AS at,
               (e.ordered_on + interval '24 months')::date AS expires_on, '消费积分' AS reason, e.order_id,
               e.tenant_id, e.customer_id
          FROM bench_earn e
        UNION ALL
        SELECT 'redeem', -p.redeemed, LEAST(p.last_on + 3, %(day)s::date) + time '11:00', NULL, '积分兑换保养券', NULL,
               p.tenant_id, p.customer_id
          FROM bench_points p WHERE p.redeemed > 0
        UNION ALL
        SELECT 'expire', -p.expired, %(cutoff)s::date + time '01:00', NULL, '积分到期', NULL, p.tenant_id, p.customer_id
          FROM bench_points p WHERE p.expired > 0) x
  JOIN loyalty_member m ON m.tenant_id = x.tenant_id AND m.customer_id = x.customer_id
 ORDER BY x.at
"""

TEMPLATES_SQL = """
INSERT INTO surveys_surveytemplate (code, name, moment, is_active, created_at, tenant_id, current_version_id)
SELECT 'bench-service', '售后服务满意度回访', 'service', true, %(since)s, id, NULL FROM tenancy_tenant ORDER BY id
"""
VERSIONS_SQL = """
INSERT INTO surveys_surveyversion (number, title, intro, created_at, created_by_id, template_id, tenant_id)
SELECT 1, '您对本次服务满意吗？', '', t.created_at, NULL, t.id, t.tenant_id
  FROM surveys_surveytemplate t WHERE t.code = 'bench-service' ORDER BY t.id
"""
CURRENT_VERSION_SQL = """
UPDATE surveys_surveytemplate t SET current_version_id = v.id FROM surveys_surveyversion v WHERE v.template_id = t.id
"""

SURVEYED_SQL = """
CREATE TEMP TABLE bench_survey AS
SELECT o.id AS order_id, o.tenant_id, o.customer_id, o.staff_id, c.mobile, v.id AS version_id, o.ordered_on,
       o.ordered_on + 1 + (o.id %% 2)::int + time '09:00' + (o.id %% 600) * interval '1 minute' AS submitted_at,
       o.id * 7919 %% 100 AS roll, o.id * 104729 %% 100 AS roll2
  FROM customers_order o
  JOIN customers_customer c ON c.id = o.customer_id
  JOIN surveys_surveyversion v ON v.tenant_id = o.tenant_id
 WHERE o.kind IN ('maintenance', 'repair') AND o.status = 'completed' AND o.id %% %(one_in)s = 0
   AND o.ordered_on <= %(day)s::date - 3 AND c.merged_into_id IS NULL
"""

INVITATIONS_SQL = """
INSERT INTO surveys_invitation (trigger, channel, address, status, nonce, send_after, expires_at, sent_at, reminded_at,
                                opened_at, answered_at, draft, created_at, created_by_id, customer_id, order_id,
                                staff_id, tenant_id, ticket_id, version_id)
SELECT 'service', 'sms', s.mobile, 'answered', substr(md5(s.order_id::text), 1, 24), s.ordered_on + 1 + time '09:00',
       s.ordered_on + 15 + time '09:00', s.ordered_on + 1 + time '09:00', NULL, s.submitted_at - interval '5 minutes',
       s.submitted_at, '{}', s.ordered_on + time '18:00', NULL, s.customer_id, s.order_id, s.staff_id, s.tenant_id,
       NULL, s.version_id
  FROM bench_survey s ORDER BY s.submitted_at
"""

RESPONSES_SQL = """
INSERT INTO surveys_response (submitted_at, overall, nps, low_score, customer_id, invitation_id, staff_id, tenant_id,
                              version_id)
SELECT s.submitted_at, r.overall,
       CASE WHEN s.roll2 < 10 THEN NULL
            WHEN r.overall = 5 THEN 9 + s.roll2 %% 2
            WHEN r.overall = 4 THEN 7 + s.roll2 %% 3
            WHEN r.overall = 3 THEN 5 + s.roll2 %% 3
            WHEN r.overall = 2 THEN 2 + s.roll2 %% 4
            ELSE s.roll2 %% 3 END,
       r.overall <= 2, s.customer_id, i.id, s.staff_id, s.tenant_id, s.version_id
  FROM bench_survey s
  CROSS JOIN LATERAL (SELECT CASE WHEN s.roll < 55 THEN 5 WHEN s.roll < 80 THEN 4 WHEN s.roll < 90 THEN 3
                                  WHEN s.roll < 96 THEN 2 ELSE 1 END AS overall) r
  JOIN surveys_invitation i ON i.tenant_id = s.tenant_id AND i.trigger = 'service' AND i.order_id = s.order_id
 ORDER BY s.submitted_at
"""

TICKETS_SQL = """
WITH picked AS (
    SELECT c.id, c.tenant_id, c.name, c.mobile,
           row_number() OVER (PARTITION BY c.tenant_id ORDER BY c.id * 40503 %% 1000003, c.id) AS rn,
           count(*) OVER (PARTITION BY c.tenant_id) AS n
      FROM customers_customer c
     WHERE c.merged_into_id IS NULL AND c.last_visit_on IS NOT NULL AND c.list_flag = ''
),
agents AS (
    SELECT tenant_id, array_agg(id ORDER BY id) AS ids FROM tenancy_membership WHERE role = 'cr_agent'
     GROUP BY tenant_id
),
timed AS (
    SELECT p.*, a.ids[1 + (p.rn %% cardinality(a.ids))::int] AS agent, p.rn * 104729 %% 100 AS roll,
           (%(day)s::date - (p.rn * 7919 %% %(history)s)::int + time '09:00' + (p.rn %% 480) * interval '1 minute')
               AS opened,
           p.rn * 7919 %% %(history)s < 4 AS still_open
      FROM picked p JOIN agents a ON a.tenant_id = p.tenant_id
     WHERE p.rn <= GREATEST(p.n * %(tickets_per)s / %(live_per)s, 1)
),
minutes AS (
    SELECT t.*, CASE WHEN t.roll < 88 THEN 10 + t.roll ELSE 130 + t.roll * 3 END AS to_answer,
           CASE WHEN t.roll %% 7 = 0 THEN 2900 + t.roll * 20 ELSE 240 + t.roll * 25 END AS to_resolve
      FROM timed t
)
INSERT INTO complaints_ticket (
    tenant_id, number, customer_id, vehicle_id, contact_name, contact_mobile, channel, category_id, severity,
    subject, description, source, status, assignee_id, opened_at, response_target_minutes,
    resolution_target_minutes, response_due_at, response_warn_at, resolution_due_at, resolution_warn_at,
    first_response_at, resolved_at, response_minutes, resolution_minutes, paused_duration, root_cause, resolution,
    compensation_amount, compensation_points, compensation_note, follow_up_due_on, reopen_count,
    resolution_failed, updated_at
)
SELECT m.tenant_id, 'D' || lpad(m.rn::text, 9, '0'), m.id, v.id, m.name, m.mobile,
       (ARRAY['phone', 'walk_in', 'wechat', 'manufacturer', '12315'])[1 + (m.rn %% 5)::int], cat.id,
       CASE WHEN m.roll < 10 THEN 'high' ELSE 'normal' END, '维修后问题未解决', '客户反映维修后问题依旧，要求返修。',
       'staff', CASE WHEN m.still_open THEN 'handle' WHEN m.roll < 60 THEN 'followed_up' ELSE 'closed' END, m.agent,
       m.opened, 120, 2880, m.opened + interval '2 hours', m.opened + interval '90 minutes',
       m.opened + interval '48 hours', m.opened + interval '40 hours',
       m.opened + m.to_answer * interval '1 minute',
       CASE WHEN NOT m.still_open THEN m.opened + m.to_resolve * interval '1 minute' END,
       m.to_answer, CASE WHEN NOT m.still_open THEN m.to_resolve END, interval '0',
       CASE WHEN m.still_open THEN '' ELSE '配件质量' END,
       CASE WHEN m.still_open THEN '' ELSE '更换配件并免工时费。' END,
       0, 0, '', CASE WHEN NOT m.still_open THEN (m.opened + m.to_resolve * interval '1 minute')::date + 3 END, 0,
       NOT m.still_open AND m.roll = 13,
       CASE WHEN m.still_open THEN m.opened + m.to_answer * interval '1 minute'
            ELSE m.opened + m.to_resolve * interval '1 minute' END
  FROM minutes m
  JOIN complaints_complaintcategory cat ON cat.tenant_id = m.tenant_id AND cat.code = 'service-quality'
  LEFT JOIN customers_vehicle v ON v.id = m.id
 ORDER BY m.opened
"""

FOLLOWUPS_SQL = """
WITH agents AS (
    SELECT tenant_id, array_agg(id ORDER BY id) AS ids FROM tenancy_membership
     WHERE role = 'cr_agent' AND is_active GROUP BY tenant_id
),
picked AS (
    SELECT c.id, c.tenant_id, coalesce(c.owner_id, a.ids[1 + (c.id %% cardinality(a.ids))::int]) AS holder,
           %(day)s::date - (c.id * 16807 %% 720)::int AS due_from, c.id * 69621 %% 100 AS roll
      FROM customers_customer c JOIN agents a ON a.tenant_id = c.tenant_id
     WHERE c.merged_into_id IS NULL AND c.id * 48271 %% 97 < 20  -- 97: prime, so every owner's customers alike
),
states AS (
    SELECT p.*, CASE WHEN p.due_from + 6 >= %(day)s::date THEN 'open' WHEN p.roll < 72 THEN 'done'
                     WHEN p.roll < 82 THEN 'unreachable' WHEN p.roll < 96 THEN 'expired' ELSE 'cancelled' END AS status
      FROM picked p
)
INSERT INTO followups_followup (reason, source_key, note, due_from, due_until, scheduled_on, channel, priority, status,
                                attempts, disposition, outcome_notes, completed_at, created_on, created_at, updated_at,
                                assignee_id, completed_by_id, created_by_id, customer_id, tenant_id, ticket_id,
                                vehicle_id)
SELECT (ARRAY['service', 'maintenance', 'birthday', 'cadence', 'insurance', 'warranty', 'win_back',
              'post_delivery'])[1 + (s.id %% 8)::int],
       'bench:' || s.id, '', s.due_from, s.due_from + 6, s.due_from, 'call', 3, s.status,
       CASE s.status WHEN 'done' THEN 1 WHEN 'unreachable' THEN 3 ELSE 0 END,
       CASE s.status WHEN 'done' THEN 'satisfied' WHEN 'unreachable' THEN 'no_answer' ELSE '' END, '',
       CASE WHEN s.status IN ('done', 'unreachable') THEN s.due_from + (s.roll %% 5)::int + time '15:00' END,
       s.due_from, s.due_from + time '02:00',
       CASE WHEN s.status IN ('done', 'unreachable') THEN s.due_from + (s.roll %% 5)::int + time '15:00'
            ELSE s.due_from + time '02:00' END,
       s.holder, CASE WHEN s.status IN ('done', 'unreachable') THEN s.holder END, NULL, s.id, s.tenant_id, NULL, v.id
  FROM states s LEFT JOIN customers_vehicle v ON v.id = s.id
 ORDER BY s.due_from, s.id
"""


def _service_orders(conn: psycopg.Connection[Any]) -> int:
    (n,) = conn.execute(
        "SELECT count(*) FROM customers_order WHERE kind IN ('maintenance', 'repair') AND status = 'completed'"
    ).fetchone() or (0,)
    return int(n)


def add_dashboard_data(owner_url: str, *, day: date) -> dict[str, int]:
    """Order handlers, addresses, loyalty, surveys, complaints and follow-ups (docstring, step 2)."""
    counts: dict[str, int] = {}
    since = _since(day)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET work_mem = '256MB'")
        (live,) = conn.execute("SELECT count(*) FROM customers_customer WHERE merged_into_id IS NULL").fetchone() or (
            0,
        )
        params: dict[str, Any] = {
            "day": day,
            "since": since,
            "cutoff": day - timedelta(days=730),
            "history": seg.HISTORY_DAYS,
            "after_order": 0,
            "tickets_per": 1,
            "live_per": CUSTOMERS_PER_TICKET,
        }
        keys = seg._ForeignKeysCheckedOnce(conn, ["customers_order"])
        indexes = fu._IndexesRebuilt(
            conn, ["customers_order", "customers_customer"], rewritten=["customers_order", "customers_customer"]
        )
        conn.execute("ALTER TABLE customers_order DISABLE TRIGGER segmentation_orders_updated")  # staff: not watched
        try:
            with keys, indexes:
                counts["orders_handled"] = fu._timed(conn, "orders: their handler (staff)", ORDER_STAFF_SQL, params)
                counts["addresses"] = fu._timed(conn, "customers: street address", ADDRESS_SQL, params)
        finally:
            conn.execute("ALTER TABLE customers_order ENABLE TRIGGER segmentation_orders_updated")

        tables = ["loyalty_member", "loyalty_ledgerentry"]
        keys = seg._ForeignKeysCheckedOnce(conn, tables)
        indexes = fu._IndexesRebuilt(conn, tables, rewritten=[])
        fu._timed(conn, "loyalty programmes", PROGRAMME_SQL, params)
        fu._timed(conn, "members (temporary table)", MEMBER_FACTS_SQL, params)
        fu._timed(conn, "points earned (temporary table)", EARN_SQL, params)
        fu._timed(conn, "balances (temporary table)", POINTS_SQL, params)
        with keys, indexes:
            counts["members"] = fu._timed(conn, "loyalty members", MEMBERS_SQL, params)
            counts["ledger"] = fu._timed(conn, "ledger entries (earned, redeemed, expired)", LEDGER_SQL, params)
        for table in ("bench_member", "bench_earn", "bench_points"):
            conn.execute(f"DROP TABLE {table}")

        fu._timed(conn, "survey templates", TEMPLATES_SQL, params)
        fu._timed(conn, "survey versions", VERSIONS_SQL, params)
        conn.execute(CURRENT_VERSION_SQL)
        params["one_in"] = max(1, _service_orders(conn) // max(1, live // CUSTOMERS_PER_RESPONSE))
        fu._timed(conn, "surveyed service orders (temporary table)", SURVEYED_SQL, params)
        fu._timed(conn, "survey invitations", INVITATIONS_SQL, params)
        counts["responses"] = fu._timed(conn, "survey responses", RESPONSES_SQL, params)
        conn.execute("DROP TABLE bench_survey")
        counts["tickets"] = fu._timed(conn, "complaint tickets", TICKETS_SQL, params)
        counts["followups"] = fu._timed(conn, "follow-ups", FOLLOWUPS_SQL, params)
        mark = time.perf_counter()
        for table in (
            "loyalty_member",
            "loyalty_ledgerentry",
            "surveys_invitation",
            "surveys_response",
            "complaints_ticket",
            "followups_followup",
        ):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        print(f"    VACUUM ANALYZE in {time.perf_counter() - mark:.1f} s", flush=True)
    return counts


def order_handlers(owner_url: str, after_order: int) -> int:
    """The handler of the orders a business day brought (as the full load assigns them)."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        return conn.execute(ORDER_STAFF_SQL, {"after_order": after_order}).rowcount


# ---------------------------------------------------------------------------------------------
# The value history before the engine's first run (as the owner, set-based)
# ---------------------------------------------------------------------------------------------

ENDS_SQL = """
CREATE TEMP TABLE bench_ends AS
SELECT k::int, e::date, ws::date FROM unnest(%(ends)s::date[], %(starts)s::date[]) WITH ORDINALITY AS u(e, ws, k)
"""

# each customer's non-reversed order days (and car purchase days), in order, up to the last month end
DAYS_SQL = """
CREATE TEMP TABLE bench_days AS
SELECT customer_id, array_agg(ordered_on ORDER BY ordered_on) AS days,
       array_agg(ordered_on ORDER BY ordered_on) FILTER (WHERE kind = 'vehicle_sale') AS sales
  FROM customers_order WHERE status <> 'reversed' AND ordered_on <= %(last_end)s
 GROUP BY customer_id
"""

# the state at each month end the customer existed at: the engine's ladder rules (segmentation/engine.py,
# default settings) over the orders up to that day (width_bucket: how many of the sorted days are <= it)
STATES_SQL = f"""
CREATE TEMP TABLE bench_state AS
SELECT h.tenant_id, h.customer_id, e.k, (c.created_at AT TIME ZONE '{ZONE}')::date AS created,
       CASE WHEN w.n = 0 THEN '' ELSE v.tier END AS tier,
       CASE WHEN w.n = 0 THEN '' ELSE h.segment END AS segment,
       CASE WHEN w.n = 0 THEN '' ELSE h.rfm_code END AS rfm_code,
       CASE WHEN w.n = 0 THEN 'prospect'
            WHEN c.churn_reason <> '' OR e.e - d.days[w.n] > 730 THEN 'lost'
            WHEN e.e - d.days[w.n] > 365 THEN 'dormant'
            WHEN coalesce(width_bucket(e.e, d.sales), 0) >= 2 OR w.n - width_bucket(e.ws, d.days) >= 8
                 OR v.referrals > 0 THEN 'loyal'
            WHEN d.days[w.n] > d.days[1] THEN 'retained'
            WHEN v.satisfied AND NOT v.dissatisfied THEN 'satisfied'
            ELSE 'new' END AS stage
  FROM segmentation_valuehistory h
  JOIN customers_customer c ON c.id = h.customer_id
  JOIN segmentation_customervalue v ON v.tenant_id = h.tenant_id AND v.customer_id = h.customer_id
  JOIN bench_ends e ON e.e >= (c.created_at AT TIME ZONE '{ZONE}')::date
  LEFT JOIN bench_days d ON d.customer_id = h.customer_id
 CROSS JOIN LATERAL (SELECT coalesce(width_bucket(e.e, d.days), 0) AS n) w
 WHERE h.valid_to IS NULL
"""

# consecutive equal states make one period: [the day after the month end before its first, the day
# after its last month end), the first from the day the customer was created, the last (every customer's
# last state is at the last month end) up to D0
PERIODS_SQL = """
CREATE TEMP TABLE bench_period AS
WITH changes AS (
    SELECT s.*, CASE WHEN (s.tier, s.stage) IS NOT DISTINCT FROM (lag(s.tier) OVER w, lag(s.stage) OVER w)
                     THEN 0 ELSE 1 END AS change
      FROM bench_state s WINDOW w AS (PARTITION BY s.customer_id ORDER BY s.k)
),
runs AS (
    SELECT c.*, sum(c.change) OVER (PARTITION BY c.customer_id ORDER BY c.k) AS run FROM changes c
),
periods AS (
    SELECT customer_id, run, min(tenant_id) AS tenant_id, min(k) AS k_from, max(k) AS k_to, min(tier) AS tier,
           min(stage) AS stage, min(segment) AS segment, min(rfm_code) AS rfm_code, min(created) AS created
      FROM runs GROUP BY customer_id, run
)
SELECT p.tenant_id, p.customer_id, p.tier, p.stage, p.segment, p.rfm_code,
       CASE WHEN p.run = 1 THEN p.created ELSE eb.e + 1 END AS valid_from,
       CASE WHEN p.k_to = %(last_k)s THEN %(d0)s::date ELSE et.e + 1 END AS valid_to,
       p.k_to = %(last_k)s
           AND (p.tier, p.segment, p.rfm_code, p.stage) = (h.tier, h.segment, h.rfm_code, h.lifecycle_stage)
           AS joins_open
  FROM periods p
  JOIN segmentation_valuehistory h ON h.tenant_id = p.tenant_id AND h.customer_id = p.customer_id AND h.valid_to IS NULL
  JOIN bench_ends et ON et.k = p.k_to
  LEFT JOIN bench_ends eb ON eb.k = p.k_from - 1
"""

CLOSED_PERIODS_SQL = """
INSERT INTO segmentation_valuehistory (tier, segment, rfm_code, lifecycle_stage, valid_from, valid_to, customer_id,
                                       tenant_id)
SELECT tier, segment, rfm_code, stage, valid_from, valid_to, customer_id, tenant_id
  FROM bench_period WHERE NOT joins_open ORDER BY customer_id, valid_from
"""

# the engine's open period starts with the last equal run, or when the customer was created
OPEN_PERIODS_SQL = f"""
UPDATE segmentation_valuehistory h
   SET valid_from = coalesce(p.valid_from, LEAST(h.valid_from, (c.created_at AT TIME ZONE '{ZONE}')::date))
  FROM customers_customer c
  LEFT JOIN bench_period p ON p.customer_id = c.id AND p.joins_open
 WHERE h.valid_to IS NULL AND c.id = h.customer_id
   AND (p.customer_id IS NOT NULL OR NOT EXISTS (SELECT 1 FROM bench_period q WHERE q.customer_id = c.id))
"""


def add_history(owner_url: str, *, d0: date, first_night: date) -> dict[str, int]:
    """The value history of the month ends the dashboard's first run backfills (docstring, step 3)."""
    from dateutil.relativedelta import relativedelta

    ends = month_ends_before(first_night, BACKFILL_MONTHS)
    counts: dict[str, int] = {}
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET work_mem = '256MB'")
        params: dict[str, Any] = {
            "ends": ends,
            "starts": [e - relativedelta(months=seg.WINDOW_MONTHS) for e in ends],
            "last_end": ends[-1],
            "last_k": len(ends),
            "d0": d0,
        }
        conn.execute(ENDS_SQL, params)
        fu._timed(conn, "order days per customer (temporary table)", DAYS_SQL, params)
        counts["states"] = fu._timed(conn, "states at the month ends (temporary table)", STATES_SQL, params)
        fu._timed(conn, "periods (temporary table)", PERIODS_SQL, params)
        tables = ["segmentation_valuehistory"]
        with seg._ForeignKeysCheckedOnce(conn, tables), fu._IndexesRebuilt(conn, tables, rewritten=tables):
            counts["closed"] = fu._timed(conn, "closed periods before the first run", CLOSED_PERIODS_SQL, params)
            counts["open"] = fu._timed(conn, "open periods starting earlier", OPEN_PERIODS_SQL, params)
        conn.execute("VACUUM (ANALYZE) segmentation_valuehistory")
        for table in ("bench_ends", "bench_days", "bench_state", "bench_period"):
            conn.execute(f"DROP TABLE {table}")
    return counts


# ---------------------------------------------------------------------------------------------
# Children (as the application role): the night's steps, and the page
# ---------------------------------------------------------------------------------------------


def child_nightly(run_date: date) -> dict[str, Any]:
    """customers.data_quality and dashboards.figures for every dealership, as `run_nightly --step` runs them."""
    import django

    django.setup()
    from django.db import connection

    import dashboards.nightly
    from crm.core.models import NightlyRun
    from crm.core.nightly import nightly_run_tenant, nightly_steps
    from crm.tenancy.context import require_tenant_id
    from crm.tenancy.models import Tenant

    missing = set(NIGHT_STEPS) - {s.name for s in nightly_steps.contributions()}
    if missing:
        raise SystemExit(f"Nightly steps not registered: {sorted(missing)}")
    refreshes: dict[int, dict[str, Any]] = {}
    original = dashboards.nightly.dashboard_figures_refresh

    def timed(**kwargs: Any) -> dict[str, Any]:
        started = time.perf_counter()
        result = original(**kwargs)
        refreshes[require_tenant_id()] = {"seconds": time.perf_counter() - started, **result}
        return result

    dashboards.nightly.dashboard_figures_refresh = timed  # type: ignore[assignment]
    tenant_ids = list(Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_user")
        backend_pid, role = cursor.fetchone()
    sampler = seg._Sampler(backend_pid) if seg._proc_status(backend_pid) else None
    if sampler:
        sampler.start()
    start_rss = seg._rss_mb()
    failed: list[str] = []
    seconds: dict[str, dict[int, float]] = {step: {} for step in NIGHT_STEPS}
    for tenant_id in tenant_ids:
        for step in NIGHT_STEPS:
            mark = time.perf_counter()
            runs = nightly_run_tenant(
                tenant_id=tenant_id, trigger=NightlyRun.Trigger.COMMAND, run_date=run_date, only=[step]
            )
            seconds[step][tenant_id] = time.perf_counter() - mark
            failed += [
                f"{tenant_id} {step}: {r.status} {r.error[-2000:]}"
                for r in runs
                if r.status != NightlyRun.Status.SUCCEEDED
            ]
            if not runs:
                failed.append(f"{tenant_id} {step}: did not run")
    peak_rss = seg._rss_mb()
    backend = seg._proc_status(backend_pid) if sampler else {}
    if sampler:
        sampler.stop()
    return {
        "role": role,
        "failed": failed,
        "seconds": {step: {str(t): s for t, s in by.items()} for step, by in seconds.items()},
        "refresh": {str(t): r for t, r in refreshes.items()},
        "start_rss": start_rss,
        "peak_rss": peak_rss,
        "backend_hwm_mb": backend.get("VmHWM", 0) / 1024 if backend else None,
        "backend_anon_mb": sampler.peak_anon_kb / 1024 if sampler else None,
    }


# The live computation (the baseline): straightforward queries over the base tables, no pre-aggregates.
LIVE_BASE_SQL = """
SELECT coalesce(v.tier, '') AS tier, c.lifecycle_stage, count(*), count(c.quality_score),
       count(*) FILTER (WHERE c.quality_score = 100)
  FROM customers_customer c
  LEFT JOIN segmentation_customervalue v ON v.customer_id = c.id
 WHERE c.merged_into_id IS NULL AND c.created_at < %(day_end)s {owner}
 GROUP BY 1, 2
"""
LIVE_REVENUE_SQL = """
SELECT o.kind, count(*), coalesce(sum(o.amount), 0)
  FROM customers_order o {join}
 WHERE o.status <> 'reversed' AND o.ordered_on BETWEEN %(start)s AND %(end)s {owner}
 GROUP BY o.kind
"""
LIVE_FLEET_SQL = """
SELECT count(*), count(*) FILTER (WHERE s.last_on > %(d)s::date - 365)
  FROM customers_vehicle v
  JOIN customers_customer c ON c.id = v.customer_id
  LEFT JOIN (SELECT o.vehicle_id, max(o.ordered_on) AS last_on FROM customers_order o
              WHERE o.vehicle_id IS NOT NULL AND o.kind IN ('maintenance', 'repair') AND o.status = 'completed'
                AND o.ordered_on BETWEEN %(d)s::date - 730 AND %(d)s
              GROUP BY o.vehicle_id) s ON s.vehicle_id = v.id
 WHERE c.merged_into_id IS NULL AND c.created_at < %(day_end)s {owner}
   AND (s.vehicle_id IS NOT NULL OR v.purchase_date BETWEEN %(d)s::date - 730 AND %(d)s)
"""
LIVE_POINTS_SQL = """
SELECT coalesce(sum(m.points_balance), 0)
  FROM loyalty_member m JOIN customers_customer c ON c.id = m.customer_id
 WHERE c.merged_into_id IS NULL AND c.created_at < %(day_end)s {owner}
"""


def live_figures(
    cursor: Any, *, day_end: datetime, period: tuple[date, date], compare: tuple[date, date], consultant: int | None
) -> dict[str, Any]:
    owner = " AND c.owner_id = %(consultant)s" if consultant else ""
    join = "JOIN customers_customer c ON c.id = o.customer_id" if consultant else ""
    params: dict[str, Any] = {"day_end": day_end, "d": period[1], "consultant": consultant}
    cursor.execute(LIVE_BASE_SQL.format(owner=owner), params)
    by_tier: dict[str, int] = {}
    by_stage: dict[str, int] = {}
    customers = scored = accurate = 0
    for tier, stage, n, s, a in cursor.fetchall():
        by_tier[tier] = by_tier.get(tier, 0) + n
        by_stage[stage] = by_stage.get(stage, 0) + n
        customers, scored, accurate = customers + n, scored + s, accurate + a
    revenue = {}
    for name, (start, end) in (("now", period), ("before", compare)):
        cursor.execute(LIVE_REVENUE_SQL.format(owner=owner, join=join), {**params, "start": start, "end": end})
        rows = cursor.fetchall()
        revenue[name] = {"orders": sum(r[1] for r in rows), "amount": str(sum((r[2] for r in rows), Decimal(0)))}
    cursor.execute(LIVE_FLEET_SQL.format(owner=owner), params)
    vehicles, returned = cursor.fetchone()
    cursor.execute(LIVE_POINTS_SQL.format(owner=owner), params)
    (points,) = cursor.fetchone()
    return {
        "customers": customers,
        "by_tier": by_tier,
        "by_stage": by_stage,
        "scored": scored,
        "accurate": accurate,
        "vehicles": vehicles,
        "vehicles_returned": returned,
        "points": int(points),
        "revenue": revenue,
    }


class _Statements:
    """Times every SQL statement of a request (connection.execute_wrapper)."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, str]] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.rows.append((time.perf_counter() - started, sql))


def _compare(label: str, api: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Differences between the API's (pre-aggregated) figures and the live computation."""
    base = api["base"]["now"]
    pairs: list[tuple[str, Any, Any]] = [
        ("customers", base["customers"], live["customers"]),
        ("scored records", base["scored"], live["scored"]),
        ("accurate records", base["accurate"], live["accurate"]),
        ("service-base vehicles", base["vehicles"], live["vehicles"]),
        ("vehicles that came back", base["vehicles_returned"], live["vehicles_returned"]),
        ("points", base["points"], live["points"]),
        ("tiers", {k: v for k, v in base["by_tier"].items() if v}, {k: v for k, v in live["by_tier"].items() if v}),
        ("stages", {k: v for k, v in base["by_stage"].items() if v}, {k: v for k, v in live["by_stage"].items() if v}),
    ]
    for name in ("now", "before"):
        page = api["revenue"][name]
        pairs.append((f"spend ({name})", Decimal(str(page["amount"])), Decimal(live["revenue"][name]["amount"])))
        pairs.append((f"orders ({name})", page["orders"], live["revenue"][name]["orders"]))
    return [f"{label}: {what}: page {a} ≠ live {b}" for what, a, b in pairs if a != b]


def child_pages(tenant_id: int, consultant: int, today: date, requests: int, warmups: int) -> dict[str, Any]:
    """The page and the API as the big dealership's manager (Django's test Client), and the live baseline."""
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from crm.tenancy.context import tenant_context
    from crm.tenancy.middleware import SESSION_TENANT_KEY
    from crm.tenancy.models import Membership, Tenant

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    with tenant_context(tenant_id):
        manager = Membership.objects.select_related("user").get(role="manager", is_active=True)
        zone = Tenant.objects.get(pk=tenant_id).zone
    client = Client()
    client.force_login(manager.user)
    session = client.session
    session[SESSION_TENANT_KEY] = tenant_id
    session.save()

    def period(days: int) -> tuple[tuple[date, date], tuple[date, date]]:
        start = today - timedelta(days=days - 1)
        return (start, today), (start - timedelta(days=days), start - timedelta(days=1))

    cases: list[tuple[str, str, int, int | None]] = [
        ("page, 30 days", "/dashboards/", 30, None),
        ("page, 365 days", "/dashboards/", 365, None),
        ("page, 30 days, one consultant", "/dashboards/", 30, consultant),
        ("API, 30 days", "/api/v1/dashboards/figures/", 30, None),
        ("API, 365 days", "/api/v1/dashboards/figures/", 365, None),
    ]
    start_rss = seg._rss_mb()
    results: dict[str, Any] = {}
    api_figures: dict[str, Any] = {}
    problems: list[str] = []
    for label, path, days, who in cases:
        (start, end), _compare_period = period(days)
        query = {"start": start.isoformat(), "end": end.isoformat()} | ({"consultant": str(who)} if who else {})
        url = f"{path}?{urlencode(query)}"
        times, sql_times, counts, profiles = [], [], [], []
        for n in range(warmups + requests):
            statements = _Statements()
            with connection.execute_wrapper(statements):
                started = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - started
            if response.status_code != 200:
                problems.append(f"{label}: HTTP {response.status_code}")
                break
            if n < warmups:
                continue
            times.append(elapsed)
            sql_times.append(sum(s for s, _sql in statements.rows))
            counts.append(len(statements.rows))
            profiles.append(sorted(statements.rows, reverse=True)[:6])
        if path.startswith("/api/") and response.status_code == 200:
            api_figures[str(days)] = response.json()
        if not times:
            continue
        middle = sorted(range(len(times)), key=lambda i: times[i])[len(times) // 2]
        results[label] = {
            "median_ms": statistics.median(times) * 1000,
            "p95_ms": float(np.percentile(times, 95)) * 1000,
            "max_ms": max(times) * 1000,
            "sql_ms": sql_times[middle] * 1000,
            "statements": counts[middle],
            "bytes": len(response.content),
            "slowest": [(round(s * 1000, 1), " ".join(sql.split())[:300]) for s, sql in profiles[middle]],
        }
    peak_rss = seg._rss_mb()

    # The baseline: the same figures computed live (1 warm-up, then the median of 3), and the checks.
    day_end = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    live: dict[str, Any] = {}
    for label, days, who in (
        ("30 days", 30, None),
        ("365 days", 365, None),
        ("30 days, one consultant", 30, consultant),
    ):
        this, before = period(days)
        samples = []
        for _ in range(3 if days == 365 else 4):  # the 30-day run before it warmed the cache for it
            with tenant_context(tenant_id), connection.cursor() as cursor:
                started = time.perf_counter()
                figures = live_figures(cursor, day_end=day_end, period=this, compare=before, consultant=who)
                samples.append(time.perf_counter() - started)
        live[label] = {"median_ms": statistics.median(samples[-3:]) * 1000, "figures": figures}
    for key in ("30", "365"):
        if key in api_figures:
            problems += _compare(f"{key} days", api_figures[key], live[f"{key} days"]["figures"])
    if consultant:  # the consultant's figures through the API once
        (start, end), _before = period(30)
        response = client.get(
            "/api/v1/dashboards/figures/?"
            + urlencode({"start": start.isoformat(), "end": end.isoformat(), "consultant": consultant})
        )
        problems += _compare("30 days, one consultant", response.json(), live["30 days, one consultant"]["figures"])
    return {
        "pages": results,
        "live": live,
        "problems": problems,
        "start_rss": start_rss,
        "peak_rss": peak_rss,
        "api": {k: {"base": v["base"]["now"], "revenue": v["revenue"]["now"]} for k, v in api_figures.items()},
    }


def _run(kind: str, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, *argv], cwd=seg.ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"The {kind} process failed:\n{out.stderr[-6000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def nightly(label: str, run_date: date, big: int) -> dict[str, Any]:
    report = _run("nightly", ["--date", run_date.isoformat()], seg._env())
    if report["failed"]:
        raise SystemExit(f"{label}: {len(report['failed'])} step(s) failed; the first:\n{report['failed'][0]}")
    refresh = report["refresh"][str(big)]
    laps = ", ".join(f"{k[3:]} {v / 1000:.1f} s" for k, v in refresh.items() if k.startswith("ms."))
    quality = report["seconds"]["customers.data_quality"][str(big)]
    step = report["seconds"]["dashboards.figures"][str(big)]
    others = ", ".join(f"#{t} {s:.1f} s" for t, s in report["seconds"]["dashboards.figures"].items() if t != str(big))
    print(
        f"  {label}: dashboards.figures for the big dealership (#{big}) {step:.1f} s as {report['role']} "
        f"(dashboard_figures_refresh {refresh['seconds']:.1f} s: {laps}; {refresh['rows']:,} rows); "
        f"the other dealership {others}; customers.data_quality {quality:.1f} s; peak RSS {report['peak_rss']:.0f} MB",
        flush=True,
    )
    report["step"], report["refresh_big"] = step, refresh
    return report


def _pages_env(settings_dir: str) -> dict[str, str]:
    env = {k: v for k, v in seg._env().items() if k != "DATABASE_OWNER_URL"}  # the application role only
    env.update(
        DJANGO_SETTINGS_MODULE="crm_bench_dashboards_settings",
        PYTHONPATH=os.pathsep.join(p for p in (settings_dir, os.environ.get("PYTHONPATH", "")) if p),
        DEBUG="False",
        SECRET_KEY=SECRET_KEY,
        DB_CONN_MAX_AGE="60",  # persistent connections, as a web worker runs
        API_RATE_PER_USER="1000000/min",
    )
    return env


def pages(tenant_id: int, consultant: int, today: date, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dashboards-") as settings_dir:
        Path(settings_dir, "crm_bench_dashboards_settings.py").write_text(
            f"from config.settings.dev import *  # noqa: F403\n\nSTATIC_ROOT = {str(Path(settings_dir, 'static'))!r}\n"
        )
        env = _pages_env(settings_dir)
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=seg.ROOT, env=env, check=True
        )
        argv = [
            *("--tenant", str(tenant_id), "--consultant", str(consultant), "--date", today.isoformat()),
            *("--requests", str(args.requests), "--warmups", str(args.warmups)),
        ]
        return _run("pages", argv, env)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _vacuum(owner_url: str, tables: list[str]) -> float:
    mark = time.perf_counter()
    with psycopg.connect(owner_url, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM (ANALYZE) {table}")
    return time.perf_counter() - mark


def business_day(owner_url: str, seed: int, day: date) -> None:
    _customer, after_order = fu._after_ids(owner_url)
    fu.business_day(owner_url, seed, day)
    handled = order_handlers(owner_url, after_order)
    print(f"  the day's {handled:,} orders given their handler", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers of the big dealership")
    parser.add_argument("--orders", type=int, default=None, help=f"default: {ORDERS_PER_CUSTOMER} per customer")
    parser.add_argument("--requests", type=int, default=20, help="measured requests per case")
    parser.add_argument("--warmups", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--today", type=date.fromisoformat, default=None, help="default: today")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {BENCH_DB} afterwards (to EXPLAIN queries)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--date", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--tenant", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--consultant", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "nightly":
        print(json.dumps(child_nightly(args.date)))
        return
    if args.child == "pages":
        print(
            json.dumps(child_pages(args.tenant, args.consultant, args.date, args.requests, args.warmups), default=str)
        )
        return

    today = args.today or date.today()
    d0, first_night, next_night = today - timedelta(days=2), today - timedelta(days=1), today
    big, small = args.customers, max(SMALL_MIN, args.customers // SMALL_SHARE)
    orders = args.orders or ORDERS_PER_CUSTOMER * (big + small)
    # bench_segmentation's generator spreads customers over Zipf-like dealership sizes: here two, as given
    seg.tenant_sizes = lambda tenants, customers: np.array([big, small], dtype=np.int64)  # type: ignore[assignment]
    # and its business day (simulate_day) writes an average day of these two dealerships
    seg.DAY_ORDERS = max(200, round(orders / seg.HISTORY_DAYS))
    seg.DAY_NEW_CUSTOMERS, seg.DAY_REVERSALS = max(5, seg.DAY_ORDERS // 200), max(10, seg.DAY_ORDERS // 50)
    owner = seg._url("DATABASE_OWNER_URL", BENCH_DB)
    started = time.perf_counter()
    print(
        f"{big:,} + {small:,} customers, {orders:,} orders in two dealerships; orders up to {d0 - timedelta(days=1)}; "
        f"segmentation's first run for {d0}, the first night {first_night}, the next {next_night}; database {BENCH_DB}"
    )
    seg._setup_database()
    try:
        print("Loading the segmentation data (bench_segmentation's, as the owner):", flush=True)
        load = argparse.Namespace(seed=args.seed, tenants=2, customers=big + small, orders=orders)
        seg.load(owner, load, last_day=d0 - timedelta(days=1))
        print("Adding what follow-ups read (bench_followups', as the owner):", flush=True)
        mark = time.perf_counter()
        added = fu.add_followup_data(owner, day=d0, night=first_night)
        print(f"  in {time.perf_counter() - mark:.0f} s: {added}")
        print("Adding what the dashboard reads (as the owner):", flush=True)
        mark = time.perf_counter()
        extra = add_dashboard_data(owner, day=d0)
        print(f"  in {time.perf_counter() - mark:.0f} s: {extra}")
        with psycopg.connect(owner) as conn:
            (big_id, small_id) = [
                r[0] for r in conn.execute("SELECT tenant_id FROM customers_customer GROUP BY 1 ORDER BY count(*) DESC")
            ]
            row = conn.execute(
                "SELECT m.id, count(c.id) FROM tenancy_membership m JOIN customers_customer c ON c.owner_id = m.id "
                "WHERE m.tenant_id = %s AND m.role = 'sales_consultant' AND m.is_active GROUP BY m.id "
                "ORDER BY 2 DESC, 1 LIMIT 1",
                [big_id],
            ).fetchone()
            assert row is not None
            consultant, consultant_customers = int(row[0]), int(row[1])
        print(
            f"  the big dealership is #{big_id}, the other #{small_id}; the consultant measured #{consultant} "
            f"owns {consultant_customers:,} customers"
        )

        print("Segmentation's first run (cold build), the real engine:", flush=True)
        cold = seg._engine(f"first run (cold build) for {d0}", d0, seg._window_start(d0))
        seconds = _vacuum(owner, ["segmentation_customervalue", "segmentation_valuehistory", "customers_customer"])
        print(f"  VACUUM ANALYZE of the tables it wrote in {seconds:.1f} s")
        print(f"The value history of the {BACKFILL_MONTHS} month ends before {first_night} (as the owner):", flush=True)
        mark = time.perf_counter()
        history = add_history(owner, d0=d0, first_night=first_night)
        print(f"  in {time.perf_counter() - mark:.0f} s: {history}")

        print(f"One business day ({d0}):", flush=True)
        business_day(owner, args.seed, d0)
        print(f"The first night, {first_night} ({seg._load_average()}):", flush=True)
        seg_first = seg._engine(
            f"segmentation nightly recompute for {first_night}", first_night, seg._window_start(first_night)
        )
        first = nightly(f"first night {first_night}", first_night, big_id)
        print(f"One business day ({first_night}):", flush=True)
        business_day(owner, args.seed + 1, first_night)
        print(f"The next night, {next_night} ({seg._load_average()}):", flush=True)
        seg_next = seg._engine(
            f"segmentation nightly recompute for {next_night}", next_night, seg._window_start(next_night)
        )
        second = nightly(f"next night {next_night}", next_night, big_id)
        seconds = _vacuum(owner, ["dashboards_customerstateday", "dashboards_revenueday"])
        with psycopg.connect(owner) as conn:
            sizes = conn.execute(
                "SELECT (SELECT count(*) FROM dashboards_customerstateday WHERE tenant_id = %(t)s), "
                "(SELECT count(DISTINCT day) FROM dashboards_customerstateday WHERE tenant_id = %(t)s), "
                "(SELECT count(*) FROM dashboards_revenueday WHERE tenant_id = %(t)s), "
                "(SELECT count(DISTINCT day) FROM dashboards_revenueday WHERE tenant_id = %(t)s), "
                "(SELECT count(*) FROM segmentation_valuehistory WHERE tenant_id = %(t)s), "
                "(SELECT count(*) FROM customers_order WHERE tenant_id = %(t)s), "
                "(SELECT count(*) FROM customers_vehicle WHERE tenant_id = %(t)s), "
                "(SELECT count(*) FROM loyalty_ledgerentry WHERE tenant_id = %(t)s)",
                {"t": big_id},
            ).fetchone()
        assert sizes is not None
        print(
            f"  VACUUM ANALYZE of the dashboard tables in {seconds:.1f} s. Big dealership: customer base "
            f"{sizes[0]:,} rows for {sizes[1]} days, spend {sizes[2]:,} rows for {sizes[3]:,} days "
            f"({sizes[2] / max(sizes[3], 1):,.0f} a day); value history {sizes[4]:,} rows, orders {sizes[5]:,}, "
            f"vehicles {sizes[6]:,}, ledger entries {sizes[7]:,}"
        )
        print(f"The page and the API, as the big dealership's manager ({seg._load_average()}):", flush=True)
        measured = pages(big_id, consultant, next_night, args)
        for label, r in measured["pages"].items():
            print(
                f"  {label}: median {r['median_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, max {r['max_ms']:.0f} ms; "
                f"median request: {r['statements']} statements, {r['sql_ms']:.0f} ms in SQL, {r['bytes']:,} bytes"
            )
            for ms, sql in r["slowest"][:4]:
                print(f"      {ms:7.1f} ms  {sql[:160]}")
        for label, r in measured["live"].items():
            print(f"  live computation, {label}: median {r['median_ms']:.0f} ms")
        figures = measured["api"].get("30", {}).get("base", {})
        if figures:
            print(
                f"  figures (30 days): {figures['customers']:,} customers, loyalty {figures['loyalty']} %, "
                f"dependency {figures['dependency']} %, accuracy {figures['accuracy']} %, "
                f"points {figures['points']:,}; "
                f"tiers {figures['by_tier']}; stages {figures['by_stage']}"
            )
        if measured["problems"]:
            raise SystemExit("Wrong results:\n  " + "\n  ".join(measured["problems"]))
        print(
            "  checks: every response 200; the pre-aggregated figures equal the live computation (30 and 365 days, "
            "and one consultant)"
        )
    finally:
        if args.keep_db:
            print(f"Kept the database {BENCH_DB}.")
        else:
            seg._drop_database()

    print("\nFigures (ms, s, MB; lower is better). RSS = peak resident set size.")
    print(f"{'figure':<44}{'value':>12}  {'baseline (same run)':<26}{'ratio':>9}  {'target':<18}result")
    for label, live_label, short in (
        ("page, 30 days", "30 days", "GET /dashboards/, 30 days: p95"),
        ("page, 365 days", "365 days", "  365 days: p95"),
        ("page, 30 days, one consultant", "30 days, one consultant", "  30 days, one consultant: p95"),
    ):
        r, base_ms = measured["pages"][label], measured["live"][live_label]["median_ms"]
        seg._row(
            short,
            f"{r['p95_ms']:.0f} ms",
            f"live computation {base_ms:,.0f} ms",
            f"{r['p95_ms'] / base_ms:.2f}×",
            f"< {TARGET_MS:.0f} ms",
            r["p95_ms"] < TARGET_MS,
        )
        seg._row("    median", f"{r['median_ms']:.0f} ms", "", "", "", None)
    for label in ("API, 30 days", "API, 365 days"):
        r = measured["pages"][label]
        seg._row(
            f"GET /api/v1/dashboards/figures/ {label[5:]}",
            f"{r['p95_ms']:.0f} ms",
            f"median {r['median_ms']:.0f} ms",
            "",
            "(p95)",
            None,
        )
    seg._row(
        "  peak RSS of the page process",
        f"{measured['peak_rss']:.0f} MB",
        f"at start {measured['start_rss']:.0f} MB",
        "",
        "",
        None,
    )
    for label, report, baseline in (
        ("dashboards.figures, first night", first, seg_first),
        ("dashboards.figures, next night", second, seg_next),
    ):
        seg._row(
            label,
            f"{report['step']:.1f} s",
            f"segmentation {baseline['seconds']:.1f} s",
            f"{report['step'] / baseline['seconds']:.1f}×",
            "",
            None,
        )
        laps = report["refresh_big"]
        seg._row(
            "  " + ", ".join(f"{k[3:]} {v / 1000:.1f}" for k, v in laps.items() if k.startswith("ms.")),
            f"{laps['rows']:,} rows",
            "",
            "",
            "",
            None,
        )
        seg._row("  peak RSS of the process", f"{report['peak_rss']:.0f} MB", "", "", "", None)
    seg._row("segmentation first run (cold build)", f"{cold['seconds']:.1f} s", "", "", "", None)
    print(f"Total run time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
