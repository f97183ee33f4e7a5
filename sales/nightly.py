"""The nightly lead work (declared in hooks.py): reclaim, dormancy, waking, the cadence's follow-ups.

Each part is one set-based statement over the dealership's leads (docs/sales.md#nightly states the
rules); only giving reclaimed leads out again goes lead by lead, at most REASSIGN_LIMIT a night.
Idempotent: a second run the same night changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django.db import connection
from django.utils import timezone

from crm.tenancy.models import Tenant
from customers.records import prospects_owner_set
from followups.models import Reason as FollowupReason
from followups.services import followups_cancel_for, followups_plan_from
from sales.models import OPEN_STAGES, Lead, LeadEvent
from sales.services import _assign, _next_on_duty, _replan, _save, sales_settings

REASSIGN_LIMIT = 500
OPEN = tuple(stage.value for stage in OPEN_STAGES)


def _rows(sql: str, params: dict[str, Any]) -> list[tuple[int, int, int | None]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def leads_reclaim(*, tenant_id: int, run_date: date, now: datetime) -> list[int]:
    """Back to the pool: a lead given out `reclaim_hours` ago that nobody has tried to reach, and a
    lead whose next follow-up is more than `reclaim_overdue_days` overdue (awake leads only)."""
    settings = sales_settings()
    rows = _rows(
        """
        WITH c AS (
            SELECT l.id, l.customer_id, l.owner_id FROM sales_lead l
            WHERE l.tenant_id = %(t)s AND l.owner_id IS NOT NULL AND l.stage = ANY(%(open)s)
              AND l.defeat_status <> 'pending'
              AND ((l.response_minutes IS NULL AND l.first_contact_at IS NULL
                    AND l.assigned_at <= %(now)s - make_interval(hours => %(hours)s))
                   OR (l.dormant_since IS NULL AND l.next_followup_on < %(d)s::date - %(overdue)s))
            FOR UPDATE
        ), u AS (
            UPDATE sales_lead l SET owner_id = NULL, assigned_at = NULL, response_due_at = NULL, updated_at = %(now)s
            FROM c WHERE l.id = c.id RETURNING l.id
        ), e AS (
            INSERT INTO sales_leadevent (tenant_id, lead_id, kind, at, from_owner_id, summary, data)
            SELECT %(t)s, c.id, 'reclaimed', %(now)s, c.owner_id, 'nightly', '{}'::jsonb FROM c
        )
        SELECT c.id, c.customer_id, c.owner_id FROM c
        """,
        {
            "t": tenant_id,
            "open": list(OPEN),
            "now": now,
            "hours": settings.reclaim_hours,
            "d": run_date,
            "overdue": settings.reclaim_overdue_days,
        },
    )
    customers = [customer for _lead, customer, _owner in rows]
    followups_cancel_for(reason=FollowupReason.LEAD, customer_ids=customers, note="Lead reclaimed to the pool.")
    prospects_owner_set(owners=dict.fromkeys(customers))
    return [lead for lead, _customer, _owner in rows]


def leads_reassign(*, lead_ids: list[int]) -> int:
    """Give reclaimed leads out again, round-robin, never back to the consultant who let them go."""
    if not sales_settings().auto_assign or not lead_ids:
        return 0
    given = 0
    leads = Lead.objects.filter(pk__in=lead_ids[:REASSIGN_LIMIT], owner__isnull=True).select_related("customer")
    for lead in leads.order_by("created_at", "id"):
        former = LeadEvent.objects.filter(lead=lead, kind=LeadEvent.Kind.RECLAIMED).order_by("-at", "-id").first()
        member = _next_on_duty(brand=lead.brand, exclude=former.from_owner if former else None)
        if member is None:
            break
        _assign(lead, member, None, "nightly")
        _save(lead)
        _replan(lead)
        given += 1
    return given


def leads_dormancy(*, tenant_id: int, run_date: date, now: datetime, zone: str) -> int:
    """Asleep: an open lead with no contact for `dormant_days` (counted from its last contact, its
    capture or its last waking, whichever is latest). Its follow-up is cancelled."""
    settings = sales_settings()
    rows = _rows(
        """
        WITH c AS (
            SELECT l.id, l.customer_id, l.owner_id FROM sales_lead l
            WHERE l.tenant_id = %(t)s AND l.stage = ANY(%(open)s) AND l.dormant_since IS NULL
              AND l.defeat_status <> 'pending'
              AND GREATEST((l.last_contact_at AT TIME ZONE %(zone)s)::date, (l.created_at AT TIME ZONE %(zone)s)::date,
                           l.woken_on) <= %(d)s::date - %(days)s
            FOR UPDATE
        ), u AS (
            UPDATE sales_lead l SET dormant_since = %(d)s, updated_at = %(now)s FROM c WHERE l.id = c.id
        ), e AS (
            INSERT INTO sales_leadevent (tenant_id, lead_id, kind, at, summary, data)
            SELECT %(t)s, c.id, 'dormant', %(now)s, 'nightly', '{}'::jsonb FROM c
        )
        SELECT c.id, c.customer_id, c.owner_id FROM c
        """,
        {"t": tenant_id, "open": list(OPEN), "now": now, "d": run_date, "zone": zone, "days": settings.dormant_days},
    )
    followups_cancel_for(reason=FollowupReason.LEAD, customer_ids=[r[1] for r in rows], note="Lead went dormant.")
    return len(rows)


def leads_wake(*, tenant_id: int, run_date: date, now: datetime) -> int:
    """Awake again: a lead dormant for `wake_days` is due for a call today; its cadence starts again."""
    settings = sales_settings()
    rows = _rows(
        """
        WITH c AS (
            SELECT l.id, l.customer_id, l.owner_id FROM sales_lead l
            WHERE l.tenant_id = %(t)s AND l.stage = ANY(%(open)s) AND l.dormant_since <= %(d)s::date - %(days)s
            FOR UPDATE
        ), u AS (
            UPDATE sales_lead l SET dormant_since = NULL, woken_on = %(d)s, next_followup_on = %(d)s,
                   updated_at = %(now)s
            FROM c WHERE l.id = c.id
        ), e AS (
            INSERT INTO sales_leadevent (tenant_id, lead_id, kind, at, summary, data)
            SELECT %(t)s, c.id, 'woken', %(now)s, 'nightly', '{}'::jsonb FROM c
        )
        SELECT c.id, c.customer_id, c.owner_id FROM c
        """,
        {"t": tenant_id, "open": list(OPEN), "now": now, "d": run_date, "days": settings.wake_days},
    )
    return len(rows)


def leads_plan_followups(*, tenant_id: int, run_date: date) -> int:
    """The cadence's follow-ups: every open, awake lead with a consultant and a follow-up day up to
    today has its one follow-up (reason "lead") in the queue, planned for that day."""
    return followups_plan_from(
        select_sql="""
            SELECT l.customer_id, 'lead', 'lead:' || l.id || ':' || l.next_followup_on, 'Lead ' || l.level,
                   l.next_followup_on, l.owner_id,
                   CASE WHEN c.consent_call AND c.mobile <> '' THEN 'call' ELSE 'visit' END,
                   CASE l.level WHEN 'H' THEN 1 WHEN 'A' THEN 2 WHEN 'B' THEN 3 ELSE 4 END
            FROM sales_lead l JOIN customers_customer c ON c.id = l.customer_id
            WHERE l.tenant_id = %(t)s AND l.stage = ANY(%(open)s) AND l.owner_id IS NOT NULL
              AND l.dormant_since IS NULL AND l.next_followup_on <= %(d)s
        """,
        params={"t": tenant_id, "open": list(OPEN), "d": run_date},
    )


def leads_nightly(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Reclaim, give out again, put to sleep, wake, plan the cadence (rows: leads changed + follow-ups made)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    zone = tenant.zone
    # the night belongs to run_date: its rules are applied as at the end of that day
    now = min(timezone.now(), datetime.combine(run_date, time(23, 59, 59), tzinfo=zone))
    reclaimed = leads_reclaim(tenant_id=tenant_id, run_date=run_date, now=now)
    given = leads_reassign(lead_ids=reclaimed)
    dormant = leads_dormancy(tenant_id=tenant_id, run_date=run_date, now=now, zone=tenant.time_zone)
    woken = leads_wake(tenant_id=tenant_id, run_date=run_date, now=now)
    planned = leads_plan_followups(tenant_id=tenant_id, run_date=run_date)
    return len(reclaimed) + given + dormant + woken + planned
