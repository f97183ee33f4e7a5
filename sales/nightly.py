"""The nightly lead work (declared in hooks.py): reclaim, dormancy, waking, the cadence's follow-ups.

Each part is one set-based statement over the dealership's leads (docs/sales.md#nightly states the
rules); giving reclaimed leads out again is decided in memory over one read of the duty list (at
most REASSIGN_LIMIT a night) and written with one statement per table.
Idempotent: a second run the same night changes nothing.
"""

from __future__ import annotations

import contextlib
from datetime import date, datetime, time
from typing import Any

from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.business_time import BusinessCalendar, NoBusinessHours
from crm.core.notifications import notify
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import Membership, Tenant
from customers.records import prospects_owner_set
from followups.models import Reason as FollowupReason
from followups.services import followups_cancel_for, followups_plan_from
from sales.models import ONLINE_SOURCES, OPEN_STAGES, Lead, LeadEvent
from sales.services import RoundRobin, sales_settings

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


def leads_reassign(*, lead_ids: list[int], now: datetime) -> int:
    """Give reclaimed leads out again by the round-robin (oldest capture first, at most
    REASSIGN_LIMIT), never back to the consultant who let each go; a lead nobody else may take stays
    in the pool. In memory over one read of the duty list, then one statement per table."""
    if not sales_settings().auto_assign or not lead_ids:
        return 0
    leads = list(
        Lead.objects.filter(pk__in=lead_ids, owner__isnull=True)
        .order_by("created_at", "id")
        .values_list("pk", "brand", "customer_id", "source", "first_contact_at")[:REASSIGN_LIMIT]
    )
    former = dict(
        LeadEvent.objects.filter(lead_id__in=[row[0] for row in leads], kind=LeadEvent.Kind.RECLAIMED)
        .order_by("lead_id", "-at", "-id")
        .distinct("lead_id")
        .values_list("lead_id", "from_owner_id")
    )
    robin = RoundRobin()
    calendar = BusinessCalendar.for_tenant(Tenant.objects.get(pk=require_tenant_id()))
    limit = sales_settings().response_minutes
    given: list[tuple[int, int, int, datetime | None]] = []
    for pk, brand, customer_id, source, first_contact_at in leads:
        member = robin.pick(brand=brand, exclude_id=former.get(pk))
        if member is None:
            continue
        due = None
        if source in ONLINE_SOURCES and first_contact_at is None:
            with contextlib.suppress(NoBusinessHours):
                due = calendar.add_minutes(now, limit)
        given.append((pk, member.pk, customer_id, due))
    robin.flush()
    if not given:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE sales_lead l SET owner_id = n.owner_id, assigned_at = %(now)s, response_due_at = n.due,
                   next_followup_on = GREATEST(l.next_followup_on, %(today)s::date), updated_at = %(now)s
            FROM unnest(%(ids)s::bigint[], %(owners)s::bigint[], %(dues)s::timestamptz[]) AS n(id, owner_id, due)
            WHERE l.id = n.id
            """,
            {
                "now": now,
                "today": timezone.localdate(now),
                "ids": [g[0] for g in given],
                "owners": [g[1] for g in given],
                "dues": [g[3] for g in given],
            },
        )
    LeadEvent.objects.bulk_create(
        [
            LeadEvent(lead_id=pk, kind=LeadEvent.Kind.ASSIGNED, at=now, to_owner_id=owner, summary="nightly")
            for pk, owner, _customer, _due in given
        ]
    )
    prospects_owner_set(owners={customer: owner for _pk, owner, customer, _due in given})
    followups_plan_from(
        select_sql="""
            SELECT l.customer_id, 'lead', 'lead:' || l.id || ':' || l.next_followup_on || ':given', 'Lead ' || l.level,
                   l.next_followup_on, l.owner_id,
                   CASE WHEN c.consent_call AND c.mobile <> '' THEN 'call' ELSE 'visit' END,
                   CASE l.level WHEN 'H' THEN 1 WHEN 'A' THEN 2 WHEN 'B' THEN 3 ELSE 4 END
            FROM sales_lead l JOIN customers_customer c ON c.id = l.customer_id
            WHERE l.id = ANY(%(ids)s) AND l.dormant_since IS NULL
        """,
        params={"ids": [g[0] for g in given]},
    )
    counts: dict[int, int] = {}
    for _pk, owner, _customer, _due in given:
        counts[owner] = counts.get(owner, 0) + 1
    for member in Membership.objects.filter(pk__in=counts).select_related("user"):
        notify(
            recipients=[member],
            kind="lead_assigned",
            title=_("%(n)s leads given to you tonight") % {"n": counts[member.pk]},
            url=reverse("sales:today"),
            key=f"lead_assigned:night:{timezone.localdate(now).isoformat()}",
        )
    return len(given)


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
            SELECT l.customer_id, 'lead', 'lead:' || l.id || ':' || l.next_followup_on || ':night', 'Lead ' || l.level,
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
    given = leads_reassign(lead_ids=reclaimed, now=now)
    dormant = leads_dormancy(tenant_id=tenant_id, run_date=run_date, now=now, zone=tenant.time_zone)
    woken = leads_wake(tenant_id=tenant_id, run_date=run_date, now=now)
    planned = leads_plan_followups(tenant_id=tenant_id, run_date=run_date)
    return len(reclaimed) + given + dormant + woken + planned
