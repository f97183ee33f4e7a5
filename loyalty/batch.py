"""The set-based nightly work of the programme, called by loyalty/nightly.py.

Per dealership, in set-based SQL: enrolling buyers and earning from completed orders, order
reversals, referral rewards, expiry (oldest first), levels (with the notices they send) and care
greetings (birthdays and holidays). Each is idempotent: unique keys and "not exists" conditions
make a second run the same day a no-op. Points move as in loyalty/services.py: the ledger entries
and the members' balances change in the same statement, members locked in id order first where
redemptions may be in flight.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django.db import connection
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.core.notifications import notify
from crm.messaging.consent import channel_sql, reachable_channel
from crm.messaging.services import outbox_enqueue
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import Tenant
from customers.models import Customer, ListFlag
from loyalty.holidays import holiday_on
from loyalty.models import Level, Member, Programme
from loyalty.services import (
    EXPIRY_SQL,
    _add_months,
    _base_level,
    _tenant,
    care_templates_ensure,
    programme,
)

# --- Nightly: earning, reversals, referral rewards --------------------------------------------------


def _zone_name() -> str:
    return _tenant().time_zone


def orders_earn(*, run_date: date) -> dict[str, int]:
    """Enrol buyers (when the programme says so), credit completed orders that have not earned
    yet, and take back the points of earned orders that were reversed since. Set-based."""
    prog = programme()
    counts = {"enrolled": 0, "earned": 0, "reversed": 0, "referrals": 0}
    if not prog.is_active:
        return counts
    tenant_id = require_tenant_id()
    base = _base_level()
    params: dict[str, Any] = {
        "t": tenant_id,
        "d": run_date,
        "starts": prog.starts_on,
        "months": prog.expiry_months,
        "zone": _zone_name(),
        "base": base.pk if base else None,
    }
    with connection.cursor() as cursor:
        if prog.auto_enrol:
            cursor.execute(
                """
                INSERT INTO loyalty_member (tenant_id, customer_id, level_id, level_locked, level_since,
                       points_balance, joined_on, created_at, updated_at)
                SELECT %(t)s, o.customer_id, %(base)s::bigint, false, %(d)s, 0, min(o.ordered_on), now(), now()
                  FROM customers_order o
                  JOIN customers_customer c ON c.tenant_id = o.tenant_id AND c.id = o.customer_id
                  JOIN loyalty_earningrule r ON r.tenant_id = o.tenant_id AND r.order_kind = o.kind AND r.is_active
                 WHERE o.tenant_id = %(t)s AND o.status = 'completed'
                   AND o.ordered_on >= %(starts)s AND o.ordered_on <= %(d)s
                   AND c.merged_into_id IS NULL AND c.list_flag <> 'black'
                 GROUP BY o.customer_id
                ON CONFLICT DO NOTHING
                """,
                params,
            )
            counts["enrolled"] = cursor.rowcount
        cursor.execute(
            f"""
            WITH due AS (
                SELECT o.id AS order_id, m.id AS member_id, o.ordered_on, o.kind, o.amount,
                       floor(CASE WHEN r.max_points_per_order > 0
                                  THEN LEAST(o.amount * r.points_per_yuan * coalesce(l.earn_multiplier, 1),
                                             r.max_points_per_order)
                                  ELSE o.amount * r.points_per_yuan * coalesce(l.earn_multiplier, 1) END)::int AS points
                  FROM customers_order o
                  JOIN loyalty_earningrule r ON r.tenant_id = o.tenant_id AND r.order_kind = o.kind AND r.is_active
                  JOIN loyalty_member m ON m.tenant_id = o.tenant_id AND m.customer_id = o.customer_id
                  LEFT JOIN loyalty_level l ON l.id = m.level_id
                 WHERE o.tenant_id = %(t)s AND o.status = 'completed'
                   AND o.ordered_on >= GREATEST(%(starts)s, m.joined_on) AND o.ordered_on <= %(d)s
                   AND NOT EXISTS (SELECT 1 FROM loyalty_ledgerentry e
                                    WHERE e.tenant_id = %(t)s AND e.order_id = o.id AND e.kind = 'earn')
            ), added AS (
                INSERT INTO loyalty_ledgerentry (tenant_id, member_id, kind, points, occurred_at, expires_on, reason,
                       source, order_id, key, created_at)
                SELECT %(t)s, member_id, 'earn', points, (ordered_on + time '12:00') AT TIME ZONE %(zone)s,
                       CASE WHEN %(months)s > 0 THEN (ordered_on + make_interval(months => %(months)s))::date END,
                       'order ' || order_id || ' · ' || kind || ' ¥' || amount, 'nightly', order_id, '', now()
                  FROM due WHERE points > 0
                ON CONFLICT DO NOTHING
                RETURNING member_id, points
            ){POST_ENTRIES}
            """,
            params,
        )
        counts["earned"] = int(cursor.fetchone()[0])
        counts["reversed"] = _reverse_orders(cursor, params)
    counts["referrals"] = referrals_reward(run_date=run_date)
    return counts


# The tail of a statement whose CTE `added` inserted ledger entries (RETURNING member_id, points):
# the members' balances move by the same amounts in the same statement, and it returns the count.
POST_ENTRIES = """, totals AS (SELECT member_id, sum(points) AS points, count(*) AS n FROM added GROUP BY member_id),
    moved AS (
        UPDATE loyalty_member m SET points_balance = m.points_balance + totals.points, updated_at = now()
          FROM totals WHERE m.tenant_id = %(t)s AND m.id = totals.member_id
        RETURNING totals.n
    )
    SELECT coalesce(sum(n), 0) FROM moved"""


def _lock_members(cursor: Any, tenant_id: int, member_ids: list[int]) -> None:
    """Lock these members in id order (redemptions lock one member at a time: no deadlock)."""
    if member_ids:
        cursor.execute(
            "SELECT id FROM loyalty_member WHERE tenant_id = %s AND id = ANY(%s) ORDER BY id FOR UPDATE",
            [tenant_id, sorted(set(member_ids))],
        )


# Earned orders reversed since, with the member that holds their points today (after a merge, the
# survivor) and the points they earned.
REVERSAL_DUE = """
    SELECT e.order_id, coalesce(m.id, e.member_id) AS member_id, e.points AS earned
      FROM loyalty_ledgerentry e
      JOIN customers_order o ON o.tenant_id = e.tenant_id AND o.id = e.order_id
      LEFT JOIN loyalty_member m ON m.tenant_id = o.tenant_id AND m.customer_id = o.customer_id
     WHERE e.tenant_id = %(t)s AND e.kind = 'earn' AND o.status = 'reversed'
       AND NOT EXISTS (SELECT 1 FROM loyalty_ledgerentry x
                        WHERE x.tenant_id = %(t)s AND x.order_id = e.order_id AND x.kind = 'reversal')"""


def _reverse_orders(cursor: Any, params: dict[str, Any]) -> int:
    """Earned orders that are reversed now give their points back: a reversal entry of the earned
    points, at most what the member has left (the balance never goes below zero; 0 is recorded
    when nothing is left). The member is the order's customer's today (after a merge, the survivor)."""
    cursor.execute(
        f"""
        SELECT DISTINCT member_id FROM ({REVERSAL_DUE}) due
        """,
        params,
    )
    members = [row[0] for row in cursor.fetchall()]
    if not members:
        return 0
    _lock_members(cursor, params["t"], members)
    # One order at a time per member would be simplest; with several reversed orders of one member
    # the running balance caps each in turn (window sum), so the total never exceeds the balance.
    cursor.execute(
        f"""
        WITH due AS (
            {REVERSAL_DUE}
        ), ranked AS (
            SELECT due.*, mm.points_balance AS balance,
                   sum(earned) OVER (PARTITION BY due.member_id ORDER BY due.order_id) - earned AS before
              FROM due JOIN loyalty_member mm ON mm.tenant_id = %(t)s AND mm.id = due.member_id
        ), capped AS (
            SELECT order_id, member_id, LEAST(earned, GREATEST(balance - before, 0)) AS points FROM ranked
        ), added AS (
            INSERT INTO loyalty_ledgerentry (tenant_id, member_id, kind, points, occurred_at, reason, source,
                   order_id, key, created_at)
            SELECT %(t)s, member_id, 'reversal', -points, now(), 'order ' || order_id || ' reversed', 'nightly',
                   order_id, '', now()
              FROM capped
            ON CONFLICT DO NOTHING
            RETURNING member_id, points
        ){POST_ENTRIES}
        """,
        params,
    )
    return int(cursor.fetchone()[0])


def referrals_reward(*, run_date: date) -> int:
    """Pending referrals whose referee has bought a vehicle (a completed sale on or after the day
    the referral was recorded): the referrer earns the referral reward. Exactly once: the referral
    is marked rewarded in the same statement, and a unique index allows one referral entry each."""
    prog = programme()
    if not prog.referral_points:
        return 0
    params: dict[str, Any] = {
        "t": require_tenant_id(),
        "d": run_date,
        "points": prog.referral_points,
        "months": prog.expiry_months,
        "zone": _zone_name(),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH due AS (
                SELECT DISTINCT ON (r.id) r.id AS referral_id, r.referrer_id, o.id AS order_id
                  FROM loyalty_referral r
                  JOIN customers_order o ON o.tenant_id = r.tenant_id AND o.customer_id = r.referee_id
                 WHERE r.tenant_id = %(t)s AND r.status = 'pending'
                   AND o.kind = 'vehicle_sale' AND o.status = 'completed' AND o.ordered_on <= %(d)s
                   AND o.ordered_on >= (r.created_at AT TIME ZONE %(zone)s)::date
                 ORDER BY r.id, o.ordered_on, o.id
            ), marked AS (
                UPDATE loyalty_referral r SET status = 'rewarded', rewarded_at = now(), order_id = due.order_id
                  FROM due WHERE r.tenant_id = %(t)s AND r.id = due.referral_id AND r.status = 'pending'
                RETURNING r.id, r.referrer_id
            ), added AS (
                INSERT INTO loyalty_ledgerentry (tenant_id, member_id, kind, points, occurred_at, expires_on, reason,
                       source, referral_id, key, created_at)
                SELECT %(t)s, referrer_id, 'referral', %(points)s, now(),
                       CASE WHEN %(months)s > 0 THEN (%(d)s::date + make_interval(months => %(months)s))::date END,
                       'referral ' || id, 'nightly', id, 'referral:' || id, now()
                  FROM marked
                ON CONFLICT DO NOTHING
                RETURNING member_id, points
            ){POST_ENTRIES}
            """,
            params,
        )
        return int(cursor.fetchone()[0])


# --- Nightly: expiry, oldest first ------------------------------------------------------------------


def points_expire(*, run_date: date) -> int:
    """Expire what is left of credits whose date has come, oldest first (FIFO).

    Every debit — redemptions, reversals, negative adjustments and earlier expiries — is taken
    from the soonest-expiring credits first. So what is left of the credits expiring by `run_date`
    is (their sum) − (all debits so far), when positive; that is what expires. A second run the
    same day finds nothing left (the expiry just written is a debit too)."""
    params: dict[str, Any] = {"t": require_tenant_id(), "d": run_date, "zone": _zone_name()}
    with connection.cursor() as cursor:
        cursor.execute(EXPIRY_SQL.format(members=""), params)
        members = [row[0] for row in cursor.fetchall()]
        if not members:
            return 0
        _lock_members(cursor, params["t"], members)  # redemptions in flight finish first
        cursor.execute(
            f"""
            WITH due AS ({EXPIRY_SQL.format(members="AND e.member_id = ANY(%(members)s)")}),
            added AS (
                INSERT INTO loyalty_ledgerentry (tenant_id, member_id, kind, points, occurred_at, reason, source,
                       key, created_at)
                SELECT %(t)s, member_id, 'expire', -expiring, (%(d)s::date + time '00:00') AT TIME ZONE %(zone)s,
                       'expired ' || %(d)s::date, 'nightly', 'expire:' || member_id || ':' || %(d)s::date, now()
                  FROM due
                ON CONFLICT DO NOTHING
                RETURNING member_id, points
            ){POST_ENTRIES}
            """,
            params | {"members": sorted(set(members))},
        )
        return int(cursor.fetchone()[0])


# --- Nightly: levels --------------------------------------------------------------------------------


def levels_recompute(*, run_date: date) -> int:
    """Put every member (except those kept by hand) on the highest level they qualify for:
    points earned from orders (less reversals) OR spend on completed orders, over the look-back.
    Moves up and down; each change is recorded, the customer is told (consent respected) and so is
    the customer's owner. A second run the same day changes nothing."""
    prog = programme()
    if not prog.is_active:
        return 0
    tenant = _tenant()
    start = _add_months(run_date, -prog.qualifying_months)
    params: dict[str, Any] = {"t": tenant.pk, "d": run_date, "start": start, "zone": tenant.time_zone}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH pts AS (
                SELECT e.member_id, sum(e.points) AS points
                  FROM loyalty_ledgerentry e
                 WHERE e.tenant_id = %(t)s AND (e.kind = 'earn' OR (e.kind = 'reversal' AND e.points <= 0))
                   AND e.occurred_at >= (%(start)s::date + time '00:00') AT TIME ZONE %(zone)s
                   AND e.occurred_at < (%(d)s::date + 1 + time '00:00') AT TIME ZONE %(zone)s
                 GROUP BY e.member_id
            ), spend AS (
                SELECT o.customer_id, sum(o.amount) AS amount
                  FROM customers_order o
                 WHERE o.tenant_id = %(t)s AND o.status = 'completed'
                   AND o.ordered_on > %(start)s AND o.ordered_on <= %(d)s
                 GROUP BY o.customer_id
            ), target AS (
                SELECT m.id AS member_id, m.level_id AS old_level, t.id AS new_level,
                       coalesce(pts.points, 0) AS points, coalesce(spend.amount, 0) AS spend
                  FROM loyalty_member m
                  JOIN customers_customer c ON c.tenant_id = m.tenant_id AND c.id = m.customer_id
                  LEFT JOIN pts ON pts.member_id = m.id
                  LEFT JOIN spend ON spend.customer_id = m.customer_id
                  LEFT JOIN LATERAL (
                      SELECT l.id FROM loyalty_level l
                       WHERE l.tenant_id = %(t)s AND l.is_active AND NOT l.by_hand_only
                         AND ((l.min_points = 0 AND l.min_spend = 0)
                              OR (l.min_points > 0 AND coalesce(pts.points, 0) >= l.min_points)
                              OR (l.min_spend > 0 AND coalesce(spend.amount, 0) >= l.min_spend))
                       ORDER BY l.rank DESC LIMIT 1
                  ) t ON true
                 WHERE m.tenant_id = %(t)s AND NOT m.level_locked AND c.merged_into_id IS NULL
                   AND m.level_id IS DISTINCT FROM t.id
            ), history AS (
                INSERT INTO loyalty_levelchange (tenant_id, member_id, from_level_id, to_level_id, changed_on,
                       points_window, spend_window, reason, created_at)
                SELECT %(t)s, member_id, old_level, new_level, %(d)s, points, spend, 'nightly', now() FROM target
            ), moved AS (
                UPDATE loyalty_member m SET level_id = target.new_level, level_since = %(d)s, updated_at = now()
                  FROM target WHERE m.tenant_id = %(t)s AND m.id = target.member_id
                RETURNING m.id
            )
            SELECT target.member_id, target.old_level, target.new_level FROM target
            """,
            params,
        )
        changes = cursor.fetchall()
    if changes:
        _tell_level_changes(tenant, prog, changes, run_date)
    return len(changes)


def _tell_level_changes(tenant: Tenant, prog: Programme, changes: list[tuple[int, Any, Any]], run_date: date) -> None:
    levels = {lv.pk: lv for lv in Level.objects.all()}
    members = Member.objects.select_related("customer", "customer__owner__user").in_bulk([c[0] for c in changes])
    with translation.override(tenant.locale):
        for member_id, old, new in changes:
            member = members[member_id]
            old_level, new_level = levels.get(old), levels.get(new)
            up = (new_level.rank if new_level else 0) > (old_level.rank if old_level else 0)
            new_name = new_level.name if new_level else _("no level")
            if prog.notify_level_changes:
                text = (
                    _("%(name)s, congratulations: you are now a %(level)s of %(dealership)s.")
                    if up
                    else _("%(name)s, your membership level at %(dealership)s is now %(level)s.")
                ) % {"name": member.customer.name, "level": new_name, "dealership": tenant.name}
                _send_to_customer(
                    member.customer,
                    prog,
                    subject=_("Your membership level"),
                    text=text,
                    purpose=f"loyalty-level:{member.pk}",
                    key=f"loyalty-level:{member.pk}:{run_date}",
                )
            owner = member.customer.owner
            if owner is not None:
                notify(
                    recipients=[owner],
                    kind="loyalty_level",
                    title=(_("%(name)s moved up to %(level)s") if up else _("%(name)s moved down to %(level)s"))
                    % {"name": member.customer.name, "level": new_name},
                    url=reverse("loyalty:member", args=[member.pk]),
                    key=f"loyalty-level:{member.pk}:{run_date}",
                )


def channel_for(customer: Customer, prog: Programme) -> tuple[str, str] | None:
    """The first preferred channel the customer consented to and can be reached on."""
    if customer.list_flag == ListFlag.BLACK or customer.merged_into_id:
        return None
    return reachable_channel(customer, prog.preferred_channels())


def _send_to_customer(customer: Customer, prog: Programme, *, subject: str, text: str, purpose: str, key: str) -> bool:
    route = channel_for(customer, prog)
    if route is None:
        return False
    return (
        outbox_enqueue(channel=route[0], to=route[1], subject=subject, body=text, purpose=purpose, key=key) is not None
    )


# --- Nightly: care (birthdays and holidays) ----------------------------------------------------------


def _birthdays_on(day: date) -> list[str]:
    """ "MM-DD" of the birthdays celebrated on `day` (29 February on the 28th in other years)."""
    days = [day.strftime("%m-%d")]
    if (day.month, day.day) == (2, 28):
        try:
            date(day.year, 2, 29)
        except ValueError:
            days.append("02-29")
    return days


def care_send(*, run_date: date) -> dict[str, int]:
    """Birthday bonus points and greetings, and holiday greetings, through the outbox (consent
    respected, black list and merged records left out), set-based. Keys make it once a year each."""
    prog = programme()
    counts = {"birthday_points": 0, "greetings": 0}
    if not prog.is_active:
        return counts
    tenant = _tenant()
    templates = {t.occasion: t for t in care_templates_ensure() if t.is_active}
    send_at = timezone.make_aware(datetime.combine(run_date, time(prog.care_send_hour)), tenant.zone)
    params: dict[str, Any] = {
        "t": tenant.pk,
        "d": run_date,
        "year": run_date.year,
        "days": _birthdays_on(run_date),
        "zone": tenant.time_zone,
        "months": prog.expiry_months,
        "points": prog.birthday_points,
        "dealer": tenant.name,
        "at": send_at,
    }
    eligible = """
        FROM loyalty_member m
        JOIN customers_customer c ON c.tenant_id = m.tenant_id AND c.id = m.customer_id
       WHERE m.tenant_id = %(t)s AND c.merged_into_id IS NULL AND c.list_flag <> 'black'
    """
    birthday = " AND to_char(c.birthday, 'MM-DD') = ANY(%(days)s)"
    with connection.cursor() as cursor:
        if prog.birthday_points:
            cursor.execute(
                f"""
                WITH added AS (
                    INSERT INTO loyalty_ledgerentry (tenant_id, member_id, kind, points, occurred_at, expires_on,
                           reason, source, key, created_at)
                    SELECT %(t)s, m.id, 'birthday', %(points)s, now(),
                           CASE WHEN %(months)s > 0 THEN (%(d)s::date + make_interval(months => %(months)s))::date END,
                           'birthday ' || %(year)s, 'nightly', 'birthday:' || m.id || ':' || %(year)s, now()
                    {eligible} {birthday}
                    ON CONFLICT DO NOTHING
                    RETURNING member_id, points
                ), moved AS (
                    UPDATE loyalty_member m SET points_balance = m.points_balance + added.points, updated_at = now()
                      FROM added WHERE m.tenant_id = %(t)s AND m.id = added.member_id
                    RETURNING m.id
                )
                SELECT count(*) FROM moved
                """,
                params,
            )
            counts["birthday_points"] = int(cursor.fetchone()[0])
        occasions = [("birthday", birthday)]
        holiday = holiday_on(run_date)
        if holiday:
            occasions.append((holiday, ""))
        channel, address = channel_sql(prog.preferred_channels())
        for occasion, condition in occasions:
            template = templates.get(occasion)
            if template is None:
                continue
            cursor.execute(
                f"""
                INSERT INTO messaging_outboxmessage (tenant_id, channel, "to", subject, body, purpose, key, status,
                       attempts, next_attempt_at, last_error, created_at)
                SELECT %(t)s, x.channel, x.address, %(subject)s,
                       left(replace(replace(%(text)s, '{{name}}', c.name), '{{dealership}}', %(dealer)s), 2000),
                       'care:' || %(occasion)s, 'care:' || %(occasion)s || ':' || %(year)s || ':' || c.id,
                       'pending', 0, %(at)s, '', now()
                  FROM loyalty_member m
                  JOIN customers_customer c ON c.tenant_id = m.tenant_id AND c.id = m.customer_id
                 CROSS JOIN LATERAL (SELECT {channel} AS channel, {address} AS address) x
                 WHERE m.tenant_id = %(t)s AND c.merged_into_id IS NULL AND c.list_flag <> 'black'
                   AND x.channel IS NOT NULL {condition}
                ON CONFLICT DO NOTHING
                """,
                params
                | {
                    "occasion": occasion,
                    "text": template.text,
                    "subject": template.subject or template.get_occasion_display(),
                },
            )
            counts["greetings"] += cursor.rowcount
    return counts
