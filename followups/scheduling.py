"""The nightly scheduling of follow-ups for one dealership: set-based SQL, in one transaction.

For run date D (the dealership's local date), in order:
1. expire: open follow-ups whose latest day is before D become "expired";
2. release: follow-ups held by deactivated staff (or staff whose role no longer works follow-ups)
   go back to the pool;
3. collect candidates from every rule the dealership switched on (see RULES below) into a temporary
   table: each candidate names its occasion (`source_key`) and its window [due_from, due_until];
4. keep those that may be made: live customer, not black-listed, consent for the rule's channel
   (and a mobile number to call), no follow-up for the same occasion ever, no open follow-up for
   the same reason, and, for tier cadence and win-back, no open follow-up at all (that call covers
   it); one per customer and reason;
5. insert them, held by the customer's own consultant (or the complaint's assignee) while that
   person is active and under the daily cap; the rest go to the pool;
6. spread the pool over the customer-relations agents: slots of (agent, day) up to the daily cap,
   today first, agents in turn, within each follow-up's window; what finds no slot stays in the
   pool for a manager to see.

Idempotent: the unique source key and the open-per-reason index make a second run on the same
date create nothing, and steps 1, 2 and 6 find nothing left to do.

Rules and their occasions (W = the window in days, "lead" = days ahead):
- post_delivery: a completed vehicle sale on day S, for each k in delivery_days: due S+k … S+k+W−1;
- service: a completed maintenance or repair order on day S: due S+after … +W−1;
- maintenance: per vehicle, the next service is due at the earlier of (last maintenance, or purchase,
  + N months) and the day its estimated mileage reaches the last maintenance's + N km (the rate from
  its own readings over the last two years); due (that day − lead) … (that day + W − 1); one per
  service cycle. Only a completed maintenance order (kind `maintenance`) starts a cycle; the purchase
  date starts the first one while the vehicle has none. Repairs, open and reversed orders do not.
  A cycle that started more than N months + W days ago cannot be due any more, so only the
  maintenance orders (and purchases) since then are read, not the whole history;
- warranty: the vehicle's warranty end E: due E − lead … E + W − 1;
- insurance: the latest insurance order of a vehicle (or a customer without a vehicle) on day S
  renews at S + 1 year = E: due E − lead … E + W − 1;
- birthday: the birthday B this year (29 Feb → 28 Feb in other years): due B − lead … B + W − 1;
- cadence: value tier with an interval I > 0 days: each customer's cycles of I days start on their
  own phase day (customer id mod I), so calls spread evenly over the interval; fires in the first
  W days of a cycle when the customer was not reached (a contact reached or an appointment) in the
  last I days;
- win_back: key and consolidate customers whose last visit is over N months before D, once per
  dormant spell (the key carries the last visit date);
- complaint: a closed ticket whose follow-up call is due on F: due F … F + W − 1, held by the
  ticket's assignee.
A rule fires only while D is inside its window, so a missed night catches up and nothing older does.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from crm.tenancy.context import require_tenant_id
from crm.tenancy.roles import CAPABILITIES, Role
from followups.models import NO_TIER_PRIORITY, TIER_PRIORITY, FollowupSettings, Reason
from followups.services import followup_settings

logger = logging.getLogger(__name__)

EPOCH = date(2000, 1, 3)  # a Monday; cadence cycles count from here
WORK_ROLES = sorted(str(r) for r in CAPABILITIES["followups.work"][1] if r != Role.INTEGRATION)
POOL_ROLES = [str(Role.CR_AGENT)]

CANDIDATES = """
CREATE TEMP TABLE IF NOT EXISTS followup_candidate (
    customer_id bigint NOT NULL,
    vehicle_id bigint,
    reason varchar(16) NOT NULL,
    source_key varchar(80) NOT NULL,
    due_from date NOT NULL,
    due_until date NOT NULL,
    channel varchar(8) NOT NULL,
    ticket_id bigint,
    holder_id bigint
)
"""

# Each rule: SQL selecting (customer_id, vehicle_id, reason, source_key, due_from, due_until,
# channel, ticket_id, holder_id) with named parameters; `enabled(settings)` says whether it runs.
RULES: dict[Reason, str] = {
    Reason.POST_DELIVERY: """
        SELECT o.customer_id, o.vehicle_id, 'post_delivery', 'delivery:' || o.id || ':' || k.k,
               o.ordered_on + k.k, o.ordered_on + k.k + %(w)s - 1, %(delivery_channel)s, NULL::bigint, NULL::bigint
        FROM unnest(%(delivery_days)s::int[]) AS k(k)
        JOIN customers_order o
          ON o.ordered_on BETWEEN %(d)s::date - k.k - %(w)s + 1 AND %(d)s::date - k.k
        WHERE o.kind = 'vehicle_sale' AND o.status = 'completed'
          -- constant outer bounds, so the planner reads one date range of the index, not the table
          AND o.ordered_on BETWEEN %(d)s::date - %(delivery_last)s - %(w)s + 1 AND %(d)s::date - %(delivery_first)s
    """,
    Reason.SERVICE: """
        SELECT o.customer_id, o.vehicle_id, 'service', 'service:' || o.id,
               o.ordered_on + %(after)s, o.ordered_on + %(after)s + %(w)s - 1, %(service_channel)s, NULL, NULL
        FROM customers_order o
        WHERE o.ordered_on BETWEEN %(d)s::date - %(after)s - %(w)s + 1 AND %(d)s::date - %(after)s
          AND o.kind IN ('maintenance', 'repair') AND o.status = 'completed'
    """,
    Reason.MAINTENANCE: """
        WITH last_service AS (
            SELECT DISTINCT ON (o.vehicle_id) o.vehicle_id, o.ordered_on, o.mileage_km
            FROM customers_order o
            -- only a maintenance order (保养) starts a new cycle: a repair (维修) does not
            WHERE o.vehicle_id IS NOT NULL AND o.kind = 'maintenance' AND o.status = 'completed'
              AND o.ordered_on BETWEEN %(cycle_since)s AND %(d)s
            ORDER BY o.vehicle_id, o.ordered_on DESC, o.id DESC
        ),
        readings AS (
            SELECT r.vehicle_id, r.read_on, r.km FROM customers_mileagereading r
            WHERE r.read_on BETWEEN %(d)s::date - 730 AND %(d)s
              AND r.vehicle_id IN (SELECT vehicle_id FROM last_service)
            UNION ALL
            SELECT o.vehicle_id, o.ordered_on, o.mileage_km FROM customers_order o
            WHERE o.vehicle_id IS NOT NULL AND o.mileage_km IS NOT NULL AND o.status <> 'reversed'
              AND o.ordered_on BETWEEN %(d)s::date - 730 AND %(d)s
              AND o.vehicle_id IN (SELECT vehicle_id FROM last_service)
        ),
        rate AS (
            SELECT vehicle_id,
                   (max(km) - min(km))::float8 / NULLIF(max(read_on) - min(read_on), 0) AS km_per_day,
                   max(read_on) AS last_read_on, max(km) AS last_km
            FROM readings GROUP BY vehicle_id
            HAVING max(read_on) - min(read_on) >= 30 AND max(km) > min(km)
        ),
        due AS (
            SELECT v.id AS vehicle_id, v.customer_id,
                   COALESCE(ls.ordered_on, v.purchase_date) AS cycle_start,
                   LEAST(
                       (COALESCE(ls.ordered_on, v.purchase_date) + make_interval(months => %(months)s))::date,
                       CASE WHEN rt.km_per_day > 0 AND ls.mileage_km IS NOT NULL THEN
                           rt.last_read_on
                           + GREATEST(0, ceil((ls.mileage_km + %(km)s - rt.last_km) / rt.km_per_day))::int
                       END
                   ) AS due_on
            FROM customers_vehicle v
            LEFT JOIN last_service ls ON ls.vehicle_id = v.id
            LEFT JOIN rate rt ON rt.vehicle_id = v.id
            WHERE ls.vehicle_id IS NOT NULL
               OR (v.purchase_date BETWEEN %(cycle_since)s AND %(d)s
                   AND NOT EXISTS (
                       SELECT 1 FROM customers_order o
                       WHERE o.vehicle_id = v.id AND o.kind = 'maintenance'
                         AND o.status = 'completed' AND o.ordered_on <= %(d)s))
        )
        SELECT customer_id, vehicle_id, 'maintenance', 'maintenance:' || vehicle_id || ':' || cycle_start,
               due_on - %(lead)s, due_on + %(w)s - 1, %(maintenance_channel)s, NULL, NULL
        FROM due
        WHERE due_on - %(lead)s <= %(d)s AND %(d)s <= due_on + %(w)s - 1 AND due_on > cycle_start
    """,
    Reason.WARRANTY: """
        SELECT v.customer_id, v.id, 'warranty', 'warranty:' || v.id || ':' || v.warranty_end,
               v.warranty_end - %(warranty_lead)s, v.warranty_end + %(w)s - 1, %(expiry_channel)s, NULL, NULL
        FROM customers_vehicle v
        WHERE v.warranty_end BETWEEN %(d)s::date - %(w)s + 1 AND %(d)s::date + %(warranty_lead)s
    """,
    Reason.INSURANCE: """
        SELECT o.customer_id, o.vehicle_id, 'insurance', 'insurance:' || o.id,
               (o.ordered_on + interval '1 year')::date - %(insurance_lead)s,
               (o.ordered_on + interval '1 year')::date + %(w)s - 1, %(expiry_channel)s, NULL, NULL
        FROM customers_order o
        WHERE o.kind = 'insurance' AND o.status = 'completed'
          AND o.ordered_on BETWEEN (%(d)s::date - interval '1 year')::date - %(w)s - 1
                               AND (%(d)s::date + %(insurance_lead)s - interval '1 year')::date + 1
          AND (o.ordered_on + interval '1 year')::date - %(insurance_lead)s <= %(d)s
          AND %(d)s <= (o.ordered_on + interval '1 year')::date + %(w)s - 1
          AND NOT EXISTS (
              SELECT 1 FROM customers_order later
              WHERE later.customer_id = o.customer_id AND later.kind = 'insurance' AND later.status = 'completed'
                AND later.vehicle_id IS NOT DISTINCT FROM o.vehicle_id
                AND (later.ordered_on, later.id) > (o.ordered_on, o.id)
          )
    """,
    Reason.BIRTHDAY: """
        SELECT c.id, NULL::bigint, 'birthday', 'birthday:' || c.id || ':' || b.y,
               b.day - %(birthday_lead)s, b.day + %(w)s - 1, %(birthday_channel)s, NULL, NULL
        FROM customers_customer c
        CROSS JOIN LATERAL (
            SELECT y, make_date(
                y, extract(month FROM c.birthday)::int,
                CASE WHEN extract(month FROM c.birthday) = 2 AND extract(day FROM c.birthday) = 29
                          AND NOT (y %% 4 = 0 AND (y %% 100 <> 0 OR y %% 400 = 0))
                     THEN 28 ELSE extract(day FROM c.birthday)::int END
            ) AS day
            FROM unnest(ARRAY[%(year)s - 1, %(year)s, %(year)s + 1]) AS y
        ) b
        WHERE c.birthday IS NOT NULL AND c.merged_into_id IS NULL
          AND b.day - %(birthday_lead)s <= %(d)s AND %(d)s <= b.day + %(w)s - 1
    """,
    Reason.CADENCE: """
        WITH tiers(tier, every) AS (SELECT * FROM unnest(%(cadence_tiers)s::text[], %(cadence_days)s::int[])),
        cycles AS (
            SELECT cv.customer_id, t.every,
                   ((%(d)s::date - %(epoch)s::date) + (cv.customer_id %% t.every)::int) / t.every AS cycle,
                   ((%(d)s::date - %(epoch)s::date) + (cv.customer_id %% t.every)::int) %% t.every AS into_cycle
            FROM segmentation_customervalue cv JOIN tiers t ON t.tier = cv.tier
        )
        SELECT cy.customer_id, NULL::bigint, 'cadence',
               'cadence:' || cy.customer_id || ':' || cy.every || ':' || cy.cycle,
               %(d)s::date - cy.into_cycle, %(d)s::date - cy.into_cycle + GREATEST(%(w)s, 1) - 1,
               %(cadence_channel)s, NULL, NULL
        FROM cycles cy
        WHERE cy.into_cycle < %(w)s
          AND NOT EXISTS (
              SELECT 1 FROM customers_touchpoint tp
              WHERE tp.customer_id = cy.customer_id AND tp.outcome IN ('reached', 'appointment')
                AND tp.occurred_at >= %(day_start)s - make_interval(days => cy.every)
          )
    """,
    Reason.WIN_BACK: """
        SELECT c.id, NULL::bigint, 'win_back', 'win_back:' || c.id || ':' || c.last_visit_on,
               %(d)s, %(d)s::date + %(w)s - 1, %(cadence_channel)s, NULL, NULL
        FROM customers_customer c
        JOIN segmentation_customervalue cv ON cv.customer_id = c.id AND cv.tier IN ('key', 'consolidate')
        WHERE c.last_visit_on < %(dormant_since)s AND c.merged_into_id IS NULL
    """,
    Reason.COMPLAINT: """
        SELECT t.customer_id, t.vehicle_id, 'complaint', 'ticket:' || t.id || ':' || t.follow_up_due_on,
               t.follow_up_due_on, t.follow_up_due_on + %(w)s - 1, 'call', t.id, t.assignee_id
        FROM complaints_ticket t
        WHERE t.status = 'closed' AND t.customer_id IS NOT NULL
          AND t.follow_up_due_on BETWEEN %(d)s::date - %(w)s + 1 AND %(d)s
    """,
}

ENABLED = {
    Reason.POST_DELIVERY: lambda s: s.delivery_enabled and bool(s.delivery_days),
    Reason.SERVICE: lambda s: s.service_enabled,
    Reason.MAINTENANCE: lambda s: s.maintenance_enabled,
    Reason.WARRANTY: lambda s: s.warranty_enabled,
    Reason.INSURANCE: lambda s: s.insurance_enabled,
    Reason.BIRTHDAY: lambda s: s.birthday_enabled,
    Reason.CADENCE: lambda s: s.cadence_enabled and any(s.cadence_days().values()),
    Reason.WIN_BACK: lambda s: s.win_back_enabled,
    Reason.COMPLAINT: lambda s: s.complaint_enabled,
}

# Reasons that give way to any open follow-up of the customer (that call covers them).
YIELDING = [str(Reason.CADENCE), str(Reason.WIN_BACK)]

INSERT = """
WITH eligible AS (
    SELECT DISTINCT ON (k.customer_id, k.reason) k.*, c.owner_id
    FROM followup_candidate k
    JOIN customers_customer c ON c.id = k.customer_id
    WHERE c.merged_into_id IS NULL AND c.list_flag <> 'black'
      AND CASE k.channel
              WHEN 'call' THEN c.consent_call AND c.mobile <> ''
              WHEN 'sms' THEN c.consent_sms AND c.mobile <> ''
              WHEN 'wechat' THEN c.consent_wechat AND c.mobile <> ''
              ELSE true
          END
      AND k.due_until >= %(d)s
      AND NOT EXISTS (SELECT 1 FROM followups_followup f WHERE f.source_key = k.source_key)
      AND NOT EXISTS (
          SELECT 1 FROM followups_followup f
          WHERE f.customer_id = k.customer_id AND f.status IN ('open', 'no_answer')
            AND (f.reason = k.reason OR k.reason = ANY(%(yielding)s))
      )
    ORDER BY k.customer_id, k.reason, k.due_from, k.source_key
),
holders AS (
    SELECT m.id FROM tenancy_membership m
    WHERE m.is_active AND NOT m.is_service_account AND m.role = ANY(%(work_roles)s)
),
held AS (
    SELECT e.*,
           CASE WHEN e.holder_id IN (SELECT id FROM holders) THEN e.holder_id
                WHEN %(owner_calls)s AND e.owner_id IN (SELECT id FROM holders) THEN e.owner_id
           END AS wanted
    FROM eligible e
),
ranked AS (
    SELECT h.*, COALESCE(p.priority, %(no_tier)s) AS priority,
           row_number() OVER (
               PARTITION BY h.wanted ORDER BY COALESCE(p.priority, %(no_tier)s), h.due_until, h.customer_id
           ) AS nth
    FROM held h
    LEFT JOIN segmentation_customervalue cv ON cv.customer_id = h.customer_id
    LEFT JOIN unnest(%(tiers)s::text[], %(priorities)s::int[]) AS p(tier, priority) ON p.tier = cv.tier
),
load AS (
    SELECT f.assignee_id, count(*) AS n FROM followups_followup f
    WHERE f.status IN ('open', 'no_answer') AND f.scheduled_on <= %(d)s AND f.assignee_id IS NOT NULL
    GROUP BY f.assignee_id
)
INSERT INTO followups_followup (
    tenant_id, customer_id, vehicle_id, reason, source_key, ticket_id, note, due_from, due_until, scheduled_on,
    assignee_id, channel, priority, status, attempts, disposition, outcome_notes, created_on, created_at, updated_at
)
SELECT %(tenant)s, r.customer_id, r.vehicle_id, r.reason, r.source_key, r.ticket_id, '', r.due_from, r.due_until,
       GREATEST(r.due_from, %(d)s::date),
       CASE WHEN r.wanted IS NOT NULL AND COALESCE(l.n, 0) + r.nth <= %(cap)s THEN r.wanted END,
       r.channel, r.priority,
       'open', 0, '', '', %(d)s, now(), now()
FROM ranked r
LEFT JOIN load l ON l.assignee_id = r.wanted
ON CONFLICT DO NOTHING
RETURNING reason, assignee_id IS NOT NULL
"""

# The pool over the customer-relations agents: numbered (agent, day) slots up to the cap, today
# first, agents in turn; numbered pool follow-ups (priority first) take the slot of the same number
# when it falls inside their window. Both sides are written to ANALYZEd temporary tables first: the
# pool was inserted moments ago, so the table's statistics do not know it, and a join planned on a
# one-row estimate (a nested loop over the window function) took minutes on the largest dealerships.
POOL = """
CREATE TEMP TABLE IF NOT EXISTS followup_pool (id bigint PRIMARY KEY, due_until date NOT NULL, nth bigint NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS followup_slot (nth bigint PRIMARY KEY, agent bigint NOT NULL, day date NOT NULL);
TRUNCATE followup_pool, followup_slot;
"""

POOL_ROWS = """
INSERT INTO followup_pool (id, due_until, nth)
SELECT f.id, f.due_until, row_number() OVER (ORDER BY f.priority, f.due_until, f.id)
FROM followups_followup f
WHERE f.status IN ('open', 'no_answer') AND f.assignee_id IS NULL AND f.scheduled_on <= %(d)s
"""

SLOTS = """
WITH agents AS (
    SELECT m.id FROM tenancy_membership m
    WHERE m.is_active AND NOT m.is_service_account AND m.role = ANY(%(pool_roles)s)
),
days AS (SELECT generate_series(%(d)s::date, %(d)s::date + %(horizon)s, interval '1 day')::date AS day),
load AS (
    SELECT f.assignee_id, GREATEST(f.scheduled_on, %(d)s::date) AS day, count(*) AS n
    FROM followups_followup f
    WHERE f.status IN ('open', 'no_answer') AND f.assignee_id IN (SELECT id FROM agents)
      AND f.scheduled_on <= %(d)s::date + %(horizon)s
    GROUP BY 1, 2
)
INSERT INTO followup_slot (nth, agent, day)
SELECT row_number() OVER (ORDER BY dy.day, g.i, a.id), a.id, dy.day
FROM agents a CROSS JOIN days dy
LEFT JOIN load l ON l.assignee_id = a.id AND l.day = dy.day
CROSS JOIN LATERAL generate_series(1, %(cap)s - COALESCE(l.n, 0)) AS g(i)
"""

SPREAD = """
UPDATE followups_followup f
SET assignee_id = s.agent, scheduled_on = GREATEST(f.scheduled_on, s.day), updated_at = now()
FROM followup_pool p JOIN followup_slot s ON s.nth = p.nth
WHERE f.id = p.id AND s.day <= p.due_until
"""


def _params(settings: FollowupSettings, run_date: date, tenant_id: int) -> dict[str, Any]:
    cadence = {tier: days for tier, days in settings.cadence_days().items() if days > 0}
    zone = timezone.get_current_timezone()
    return {
        "tenant": tenant_id,
        "d": run_date,
        "year": run_date.year,
        "day_start": datetime.combine(run_date, clock.min, tzinfo=zone),
        "w": settings.window_days,
        "delivery_days": list(settings.delivery_days or []),
        "delivery_first": min(settings.delivery_days or [0]),
        "delivery_last": max(settings.delivery_days or [0]),
        "delivery_channel": settings.delivery_channel,
        "after": settings.service_after_days,
        "service_channel": settings.service_channel,
        "months": settings.maintenance_months,
        "km": settings.maintenance_km,
        "lead": settings.maintenance_lead_days,
        # the earliest cycle start whose due window can still hold D (due ≤ start + N months)
        "cycle_since": _months_before(run_date, settings.maintenance_months) - timedelta(days=settings.window_days + 3),
        "maintenance_channel": settings.maintenance_channel,
        "warranty_lead": settings.warranty_lead_days,
        "insurance_lead": settings.insurance_lead_days,
        "expiry_channel": settings.expiry_channel,
        "birthday_lead": settings.birthday_lead_days,
        "birthday_channel": settings.birthday_channel,
        "cadence_tiers": list(cadence),
        "cadence_days": list(cadence.values()),
        "cadence_channel": settings.cadence_channel,
        "epoch": EPOCH,
        "dormant_since": _months_before(run_date, settings.win_back_months),
        "yielding": YIELDING,
        "work_roles": WORK_ROLES,
        "pool_roles": POOL_ROLES,
        "owner_calls": settings.owner_calls,
        "cap": settings.daily_cap,
        "horizon": settings.window_days - 1,
        "tiers": list(TIER_PRIORITY),
        "priorities": list(TIER_PRIORITY.values()),
        "no_tier": NO_TIER_PRIORITY,
    }


def _months_before(day: date, months: int) -> date:
    month = day.month - 1 - months
    year, month = day.year + month // 12, month % 12 + 1
    for dom in (day.day, 30, 29, 28):
        try:
            return date(year, month, dom)
        except ValueError:
            continue
    raise AssertionError("unreachable")


@transaction.atomic
def followups_schedule(*, run_date: date) -> dict[str, int]:
    """Create what is due on `run_date` for the current dealership. Returns counts: one per reason
    created, plus expired, released, assigned (held by someone at creation), spread (taken from the
    pool by an agent) and seconds per phase (for the benchmark)."""
    tenant_id = require_tenant_id()
    settings = followup_settings()
    params = _params(settings, run_date, tenant_id)
    counts: dict[str, int] = {}
    laps: dict[str, float] = {}
    with connection.cursor() as cursor:
        # Planned once per statement, each run once a night: compiling them costs more than it saves.
        cursor.execute("SET LOCAL jit = off")
        started = time.monotonic()
        cursor.execute(
            "UPDATE followups_followup SET status = 'expired', completed_at = now(), updated_at = now() "
            "WHERE status IN ('open', 'no_answer') AND due_until < %(d)s",
            params,
        )
        counts["expired"] = cursor.rowcount
        cursor.execute(
            "UPDATE followups_followup f SET assignee_id = NULL, updated_at = now() "
            "FROM tenancy_membership m WHERE m.id = f.assignee_id AND f.status IN ('open', 'no_answer') "
            "AND (NOT m.is_active OR NOT (m.role = ANY(%(work_roles)s)))",
            params,
        )
        counts["released"] = cursor.rowcount
        laps["housekeeping"] = time.monotonic() - started
        cursor.execute(CANDIDATES)
        cursor.execute("TRUNCATE followup_candidate")
        for reason, sql in RULES.items():
            if not ENABLED[reason](settings):
                continue
            started = time.monotonic()
            cursor.execute(f"INSERT INTO followup_candidate {sql}", params)
            laps[f"rule.{reason}"] = time.monotonic() - started
        started = time.monotonic()
        cursor.execute(INSERT, params)
        created = cursor.fetchall()
        laps["insert"] = time.monotonic() - started
        cursor.execute("TRUNCATE followup_candidate")
        started = time.monotonic()
        cursor.execute(POOL)
        cursor.execute(POOL_ROWS, params)
        counts["spread"] = 0
        if cursor.rowcount > 0:
            cursor.execute(SLOTS, params)
            cursor.execute("ANALYZE followup_pool; ANALYZE followup_slot")
            cursor.execute(SPREAD, params)
            counts["spread"] = cursor.rowcount
        laps["spread"] = time.monotonic() - started
    for name in Reason.values:
        counts[name] = sum(1 for r, _held in created if r == name)
    counts["created"] = len(created)
    counts["assigned"] = sum(1 for _r, held in created if held)
    logger.info("followups scheduled for tenant %s on %s: %s", tenant_id, run_date, counts)
    counts.update({f"ms.{name}": round(value * 1000) for name, value in laps.items()})
    return counts
