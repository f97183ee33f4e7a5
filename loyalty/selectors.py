"""Reads of the loyalty programme, always through the viewer's customer visibility: a consultant
sees the members, ledger, redemptions and referrals of their own customers only."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.period import Period
from crm.core.sql import fetch_dict, fetch_dicts
from crm.tenancy.models import Membership
from customers.selectors import customer_visible_to
from customers.timeline import TimelineEntry
from loyalty import services
from loyalty.models import LedgerEntry, Level, LevelChange, Member, Redemption, Referral, Reward


def member_visible_to(*, viewer: Membership) -> QuerySet[Member]:
    """Members whose customer the viewer may see (merged tombstones' members are never listed)."""
    if not viewer.can("loyalty.view"):
        return Member.objects.none()
    return Member.objects.filter(customer__in=customer_visible_to(viewer=viewer).values("pk")).select_related(
        "customer", "level"
    )


# The members list's sort keys (its Points and Member since headers); the default is the first.
MEMBER_SORTS = {
    "-points": ("-points_balance", "id"),
    "points": ("points_balance", "id"),
    "-joined": ("-joined_on", "-id"),
    "joined": ("joined_on", "id"),
}


def member_list(
    *, viewer: Membership, level: Level | None = None, query: str = "", sort: str = "-points"
) -> QuerySet[Member]:
    members = member_visible_to(viewer=viewer)
    if level is not None:
        members = members.filter(level=level)
    query = query.strip()
    if query:
        members = members.filter(Q(customer__name__prefix=query) | Q(customer__external_id=query))
    return members.order_by(*MEMBER_SORTS.get(sort, MEMBER_SORTS["-points"]))


def ledger_list(
    *,
    viewer: Membership,
    member: Member | None = None,
    kind: str = "",
    start: date | None = None,
    end: date | None = None,
) -> QuerySet[LedgerEntry]:
    entries = LedgerEntry.objects.filter(member__in=member_visible_to(viewer=viewer).values("pk"))
    if member is not None:
        entries = entries.filter(member=member)
    if kind:
        entries = entries.filter(kind=kind)
    zone = timezone.get_current_timezone()
    if start:
        entries = entries.filter(occurred_at__gte=timezone.make_aware(datetime.combine(start, time.min), zone))
    if end:
        entries = entries.filter(
            occurred_at__lt=timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), zone)
        )
    return entries.select_related("member__customer", "actor__user", "redemption__reward", "order").order_by(
        "-occurred_at", "-id"
    )


def redemption_list(*, viewer: Membership, status: str = "", reward: Reward | None = None) -> QuerySet[Redemption]:
    redemptions = Redemption.objects.filter(member__in=member_visible_to(viewer=viewer).values("pk"))
    if status:
        redemptions = redemptions.filter(status=status)
    if reward is not None:
        redemptions = redemptions.filter(reward=reward)
    return redemptions.select_related("member__customer", "reward", "created_by__user").order_by("-created_at", "-id")


def referral_list(*, viewer: Membership) -> QuerySet[Referral]:
    """Referrals whose referrer or referee the viewer may see. Templates show only the names of
    the customers the viewer may see (`visible_customer_ids`)."""
    if not viewer.can("loyalty.view"):
        return Referral.objects.none()
    visible = customer_visible_to(viewer=viewer).values("pk")
    return (
        Referral.objects.filter(Q(referrer__customer__in=visible) | Q(referee__in=visible))
        .select_related("referrer__customer", "referee", "created_by__user")
        .order_by("-created_at", "-id")
    )


def visible_customer_ids(*, viewer: Membership, ids: Iterable[int]) -> set[int]:
    return set(customer_visible_to(viewer=viewer).filter(pk__in=list(ids)).values_list("pk", flat=True))


def catalogue(*, include_inactive: bool = False) -> QuerySet[Reward]:
    rewards = Reward.objects.select_related("min_level")
    if not include_inactive:
        rewards = rewards.filter(is_active=True)
    return rewards.order_by("points_cost", "name")


def level_history(*, member: Member) -> list[LevelChange]:
    return list(LevelChange.objects.filter(member=member).select_related("from_level", "to_level", "actor__user")[:20])


# --- The member card and the timeline ---------------------------------------------------------------


def customer_member_card(*, customer: Any, viewer: Membership) -> dict[str, Any] | None:
    """The customer page's member card: level, points, their value, what expires soon."""
    if not viewer.can("loyalty.view"):
        return None
    member = Member.objects.select_related("level").filter(customer=customer).first()
    prog = services.programme()
    card: dict[str, Any] = {
        "member": member,
        "programme": prog,
        "can_enrol": viewer.can("loyalty.redeem") and member is None and prog.is_active,
    }
    if member is not None:
        soon = timezone.localdate() + timedelta(days=90)
        card |= {
            "value": (Decimal(member.points_balance) * prog.point_value).quantize(Decimal("0.01")),
            "expiring": services.expiring_points(member=member, by=soon),
            "expiring_by": soon,
            "recent": list(member.entries.order_by("-occurred_at", "-id")[:3]),
        }
    return card


def ledger_timeline(*, customer: Any, viewer: Membership, limit: int) -> Iterable[TimelineEntry]:
    if not viewer.can("loyalty.view"):
        return
    member = Member.objects.filter(customer=customer).first()
    if member is None:
        return
    url = reverse("loyalty:member", args=[member.pk])
    for entry in member.entries.select_related("actor__user", "order").order_by("-occurred_at", "-id")[:limit]:
        yield TimelineEntry(
            at=entry.occurred_at,
            kind="points",
            title=_("%(points)s points · %(kind)s")
            % {"points": f"{entry.points:+d}", "kind": entry.get_kind_display()},
            detail=entry.shown_reason(),
            url=url,
            staff=entry.actor.display_name if entry.actor else "",
        )


# --- Manager figures ----------------------------------------------------------------------------------


def loyalty_summary(*, period: Period, zone: Any) -> dict[str, Any]:
    """Members by level, the points liability (outstanding points and their value), and the
    redemption rate (points redeemed ÷ points issued) in the period, with the top rewards."""
    prog = services.programme()
    start, end = period.bounds(zone)
    params: dict[str, Any] = {"t": prog.tenant_id, "start": start, "end": end}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT l.id, l.name, l.rank, count(m.id) AS members, coalesce(sum(m.points_balance), 0) AS points
              FROM loyalty_member m
              JOIN customers_customer c ON c.tenant_id = m.tenant_id AND c.id = m.customer_id
              LEFT JOIN loyalty_level l ON l.tenant_id = m.tenant_id AND l.id = m.level_id
             WHERE m.tenant_id = %(t)s AND c.merged_into_id IS NULL
             GROUP BY l.id, l.name, l.rank
             ORDER BY l.rank DESC NULLS LAST
            """,
            params,
        )
        by_level = fetch_dicts(cursor)
        cursor.execute(
            """
            SELECT coalesce(sum(e.points) FILTER (WHERE e.points > 0 AND e.kind NOT IN ('merge')
                                                   AND e.merged_from_id IS NULL), 0) AS issued,
                   coalesce(-sum(e.points) FILTER (WHERE e.kind = 'redeem' AND e.merged_from_id IS NULL), 0)
                       AS redeemed,
                   coalesce(-sum(e.points) FILTER (WHERE e.kind = 'expire' AND e.merged_from_id IS NULL), 0)
                       AS expired,
                   count(*) FILTER (WHERE e.kind = 'redeem' AND e.merged_from_id IS NULL) AS redemptions
              FROM loyalty_ledgerentry e
             WHERE e.tenant_id = %(t)s AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
            """,
            params,
        )
        flows = fetch_dict(cursor)
        cursor.execute(
            """
            SELECT r.name, sum(d.quantity) AS quantity, sum(d.points) AS points
              FROM loyalty_redemption d JOIN loyalty_reward r ON r.tenant_id = d.tenant_id AND r.id = d.reward_id
             WHERE d.tenant_id = %(t)s AND d.status = 'redeemed' AND d.created_at >= %(start)s
               AND d.created_at < %(end)s
             GROUP BY r.name ORDER BY sum(d.quantity) DESC, r.name LIMIT 10
            """,
            params,
        )
        top_rewards = fetch_dicts(cursor)
    outstanding = sum(int(row["points"]) for row in by_level)
    members = sum(int(row["members"]) for row in by_level)
    issued, redeemed = int(flows["issued"]), int(flows["redeemed"])
    return {
        "members": members,
        "by_level": [
            {
                "level": row["name"] or _("No level"),
                "members": int(row["members"]),
                "points": int(row["points"]),
                "share": round(100 * int(row["members"]) / members, 1) if members else 0.0,
            }
            for row in by_level
        ],
        "outstanding_points": outstanding,
        "point_value": prog.point_value,
        "liability": (Decimal(outstanding) * prog.point_value).quantize(Decimal("0.01")),
        "issued": issued,
        "redeemed": redeemed,
        "expired": int(flows["expired"]),
        "redemptions": int(flows["redemptions"]),
        "redemption_rate": round(100 * redeemed / issued, 1) if issued else None,
        "top_rewards": [
            {"name": r["name"], "quantity": int(r["quantity"]), "points": int(r["points"])} for r in top_rewards
        ],
    }
