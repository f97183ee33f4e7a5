"""The interactive writes of the loyalty programme.

Points move only through the ledger. Whoever changes a member's points locks the member row
(SELECT … FOR UPDATE, or an UPDATE, which takes the same lock) and, in the same transaction,
appends the ledger entry and moves `points_balance` by exactly its points. So the balance always
equals the sum of the ledger, and the CHECK (points_balance >= 0) refuses anything that would
take it below zero. A redemption also locks the reward row (member first, then reward: always in
that order, so two redemptions never deadlock) before taking stock.

Here: the programme and its parts, enrolment, adjustments, redemptions, levels by hand,
referrals, complaint compensation and merges (the hooks), and the FIFO expiry rule (EXPIRY_SQL)
that the member pages and the nightly expiry share. The nightly work itself (earning from
orders, reversals, referral rewards, expiry, levels, care greetings) is set-based SQL in
loyalty/batch.py, which imports from here (never the other way round).
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm.core.errors import ApplicationError
from crm.messaging.consent import CHANNELS
from crm.tenancy.access import require
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import Membership, Tenant, settings_assign
from customers.models import Customer, ListFlag, Order
from loyalty.models import (
    CareTemplate,
    EarningRule,
    LedgerEntry,
    Level,
    LevelChange,
    Member,
    Programme,
    Redemption,
    Referral,
    Reward,
)

logger = logging.getLogger(__name__)

Kind = LedgerEntry.Kind
Source = LedgerEntry.Source
KEY_PATTERN = re.compile(r"[-A-Za-z0-9_:.]{8,80}")
VOUCHER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CREDIT_KINDS = (Kind.EARN, Kind.REFERRAL, Kind.BIRTHDAY, Kind.COMPENSATION, Kind.ADJUST, Kind.REVERSAL)
MAX_ADJUSTMENT = 10_000_000


def _tenant() -> Tenant:
    return Tenant.objects.get(pk=require_tenant_id())


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for dom in (day.day, 30, 29, 28):
        try:
            return date(year, month, dom)
        except ValueError:
            continue
    raise AssertionError("unreachable")


# --- The programme and its ready-made parts ---------------------------------------------------------

READY_LEVELS = (
    # code, name, rank, min points, min spend, multiplier, by hand, benefits
    (
        "regular",
        gettext_noop("Regular member"),
        10,
        0,
        Decimal("0"),
        Decimal("1.00"),
        False,
        gettext_noop("Points on every order."),
    ),
    (
        "silver",
        gettext_noop("Silver member"),
        20,
        5_000,
        Decimal("50000"),
        Decimal("1.20"),
        False,
        gettext_noop("20% more points; free car wash with every service."),
    ),
    (
        "gold",
        gettext_noop("Gold member"),
        30,
        20_000,
        Decimal("200000"),
        Decimal("1.50"),
        False,
        gettext_noop("50% more points; priority workshop booking; courtesy car."),
    ),
    (
        "butler",
        gettext_noop("Personal butler"),
        40,
        0,
        Decimal("0"),
        Decimal("2.00"),
        True,
        gettext_noop("A named service butler; pick-up and delivery; GM hotline."),
    ),
)
READY_RULES = (
    (Order.Kind.VEHICLE_SALE, Decimal("0.1000"), 20_000),
    (Order.Kind.MAINTENANCE, Decimal("1.0000"), 0),
    (Order.Kind.REPAIR, Decimal("1.0000"), 0),
    (Order.Kind.PARTS, Decimal("1.0000"), 0),
    (Order.Kind.ACCESSORIES, Decimal("1.0000"), 0),
    (Order.Kind.INSURANCE, Decimal("0.5000"), 5_000),
)
READY_CARE = {
    CareTemplate.Occasion.BIRTHDAY: gettext_noop(
        "Happy birthday, {name}! Everyone at {dealership} wishes you a wonderful year."
    ),
    CareTemplate.Occasion.NEW_YEAR: gettext_noop(
        "{name}, happy New Year from {dealership}. Safe travels in the year ahead!"
    ),
    CareTemplate.Occasion.SPRING_FESTIVAL: gettext_noop(
        "{name}, {dealership} wishes you and your family a happy Spring Festival!"
    ),
    CareTemplate.Occasion.DRAGON_BOAT: gettext_noop("{name}, happy Dragon Boat Festival from {dealership}!"),
    CareTemplate.Occasion.MID_AUTUMN: gettext_noop(
        "{name}, {dealership} wishes you a happy Mid-Autumn Festival and a joyful reunion!"
    ),
    CareTemplate.Occasion.NATIONAL_DAY: gettext_noop(
        "{name}, happy National Day from {dealership}. Drive safely on the holiday!"
    ),
}


def programme() -> Programme:
    """The dealership's programme, made with ready-made levels, earning rules and greetings on
    first use (in the dealership's language), so a new dealership starts with a working setup."""
    existing = Programme.objects.first()
    if existing is not None:
        return existing
    tenant = _tenant()
    with translation.override(tenant.locale):
        created, made = Programme.objects.get_or_create(
            tenant_id=tenant.pk,
            defaults={"name": _("Loyalty programme"), "starts_on": timezone.localdate(timezone=tenant.zone)},
        )
        if made:
            if not Level.objects.exists():
                Level.objects.bulk_create(
                    [
                        Level(
                            code=code,
                            name=_(name),
                            rank=rank,
                            min_points=points,
                            min_spend=spend,
                            earn_multiplier=multiplier,
                            by_hand_only=by_hand,
                            benefits=_(benefits),
                        )
                        for code, name, rank, points, spend, multiplier, by_hand, benefits in READY_LEVELS
                    ]
                )
            if not EarningRule.objects.exists():
                EarningRule.objects.bulk_create(
                    [
                        EarningRule(order_kind=kind, points_per_yuan=rate, max_points_per_order=cap)
                        for kind, rate, cap in READY_RULES
                    ]
                )
            care_templates_ensure()
    return created


def care_templates_ensure() -> list[CareTemplate]:
    have = set(CareTemplate.objects.values_list("occasion", flat=True))
    missing = [occasion for occasion in CareTemplate.Occasion.values if occasion not in have]
    if missing:
        with translation.override(_tenant().locale):
            CareTemplate.objects.bulk_create(
                [CareTemplate(occasion=o, text=_(READY_CARE[CareTemplate.Occasion(o)])) for o in missing]
            )
    return list(CareTemplate.objects.order_by("occasion"))


def _clean_save(instance: Any, *, message: str) -> Any:
    instance.full_clean(exclude=["tenant"])
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise ApplicationError(message, code="conflict") from None
    return instance


@transaction.atomic
def programme_update(*, actor: Membership, data: dict[str, Any]) -> Programme:
    require(actor, "loyalty.manage", _("Your role may not change the loyalty programme."))
    current = programme()
    current = Programme.objects.select_for_update().get(pk=current.pk)
    settings_assign(current, data, invalid=_("The programme could not be saved."))
    if any(c not in CHANNELS for c in current.channels) or len(set(current.channels)) != len(current.channels):
        raise ApplicationError(
            _("Channels are sms, wechat and email, each once."), fields={"channels": [_("Unknown channel.")]}
        )
    return _clean_save(current, message=_("The programme could not be saved."))


@transaction.atomic
def level_save(*, actor: Membership, level: Level) -> Level:
    require(actor, "loyalty.manage", _("Your role may not change the loyalty programme."))
    return _clean_save(level, message=_("Another level has this code or rank already."))


@transaction.atomic
def earning_rule_save(*, actor: Membership, rule: EarningRule) -> EarningRule:
    require(actor, "loyalty.manage", _("Your role may not change the loyalty programme."))
    return _clean_save(rule, message=_("There is a rule for this order type already."))


@transaction.atomic
def reward_save(*, actor: Membership, reward: Reward) -> Reward:
    """Create or edit a reward. Stock is set here; redemptions take from it under a row lock."""
    require(actor, "loyalty.manage", _("Your role may not change the rewards catalogue."))
    if reward.pk:
        Reward.objects.select_for_update().filter(pk=reward.pk).first()  # wait for redemptions in flight
    return _clean_save(reward, message=_("The reward could not be saved."))


@transaction.atomic
def care_template_save(*, actor: Membership, template: CareTemplate) -> CareTemplate:
    require(actor, "loyalty.manage", _("Your role may not change the loyalty programme."))
    try:
        template.text.format(name="x", dealership="y")
    except (KeyError, IndexError, ValueError):
        raise ApplicationError(
            _("Use only {name} and {dealership} as placeholders."),
            fields={"text": [_("Use only {name} and {dealership} as placeholders.")]},
        ) from None
    return _clean_save(template, message=_("The greeting could not be saved."))


# --- Members and the ledger ---------------------------------------------------------------------------


def _base_level() -> Level | None:
    return Level.objects.filter(is_active=True, by_hand_only=False, min_points=0, min_spend=0).order_by("rank").first()


@transaction.atomic
def member_enrol(*, actor: Membership | None, customer: Customer) -> Member:
    """Make the customer a member (or return their membership). Merged or black-listed customers
    cannot join."""
    require(actor, "loyalty.redeem", _("Your role may not enrol members."))
    programme()
    if customer.merged_into_id:
        raise ApplicationError(_("This record was merged into another customer."), code="merged")
    existing = Member.objects.filter(customer=customer).first()
    if existing is not None:
        return existing
    if customer.list_flag == ListFlag.BLACK:
        raise ApplicationError(_("Customers on the black list cannot join the programme."), code="black_listed")
    today = timezone.localdate()
    member = Member(customer=customer, level=_base_level(), level_since=today, joined_on=today)
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError:  # enrolled at the same moment by someone else
        return Member.objects.get(customer=customer)
    return member


def _lock(member: Member) -> Member:
    return Member.objects.select_for_update(of=("self",)).select_related("customer", "level").get(pk=member.pk)


def _post(
    locked: Member,
    *,
    kind: str,
    points: int,
    reason: str,
    source: str,
    actor: Membership | None,
    key: str = "",
    **links: Any,
) -> LedgerEntry:
    """Append one entry and move the balance by its points. `locked` must be locked by the caller."""
    if locked.points_balance + points < 0:
        raise ApplicationError(
            _("Only %(n)s points are available.") % {"n": locked.points_balance},
            code="insufficient_points",
            fields={"points": [_("More than the balance.")]},
            status_code=409,
        )
    now = timezone.now()
    expires_on = None
    months = programme().expiry_months
    if points > 0 and months:
        expires_on = _add_months(timezone.localdate(now), months)
    entry = LedgerEntry.objects.create(
        member=locked,
        kind=kind,
        points=points,
        occurred_at=now,
        expires_on=expires_on,
        reason=reason[:300],
        source=source,
        actor=actor,
        key=key,
        **links,
    )
    Member.objects.filter(pk=locked.pk).update(points_balance=F("points_balance") + points, updated_at=now)
    locked.points_balance += points
    return entry


@transaction.atomic
def points_adjust(
    *, actor: Membership, member: Member, points: int, note: str, source: str = Source.STAFF
) -> LedgerEntry:
    """A manual correction, up or down. Needs `loyalty.adjust` and a note; never below zero."""
    require(actor, "loyalty.adjust", _("Your role may not adjust points."))
    errors: dict[str, list[str]] = {}
    if not note.strip():
        errors["note"] = [_("Say why the points change.")]
    if points == 0 or abs(points) > MAX_ADJUSTMENT:
        errors["points"] = [_("Enter a number of points other than 0 (at most 10,000,000 either way).")]
    if errors:
        raise ApplicationError(_("An adjustment needs points and a note."), fields=errors)
    locked = _lock(member)
    return _post(locked, kind=Kind.ADJUST, points=points, reason=note.strip(), source=source, actor=actor)


@dataclass
class RedeemOutcome:
    redemption: Redemption
    replayed: bool  # True: the key was seen before; this is the original result, nothing changed


def _replay(key: str, *, member: Member, reward: Reward, quantity: int) -> RedeemOutcome | None:
    earlier = Redemption.objects.select_related("reward", "member").filter(idempotency_key=key).first()
    if earlier is None:
        return None
    if (earlier.member_id, earlier.reward_id, earlier.quantity) != (member.pk, reward.pk, quantity):
        raise ApplicationError(
            _("This idempotency key was used for another redemption."),
            code="idempotency_key_reused",
            fields={"idempotency_key": [_("Use a new key for a new redemption.")]},
            status_code=409,
        )
    return RedeemOutcome(redemption=earlier, replayed=True)


def points_redeem(
    *,
    actor: Membership | None,
    member: Member,
    reward: Reward,
    idempotency_key: str,
    quantity: int = 1,
    note: str = "",
    source: str = Source.STAFF,
) -> RedeemOutcome:
    """Exchange points for a reward. The same key returns the original redemption (a retry, a
    double click); the same key for anything else is refused. Never overdraws the balance, never
    oversells the stock, also under concurrent requests."""
    require(actor, "loyalty.redeem", _("Your role may not redeem rewards."))
    key = (idempotency_key or "").strip()
    if not KEY_PATTERN.fullmatch(key):
        raise ApplicationError(
            _("An idempotency key is 8–80 letters, digits, hyphens, underscores, colons or dots."),
            fields={"idempotency_key": [_("Not a valid key.")]},
        )
    if not 1 <= quantity <= 99:
        raise ApplicationError(_("Redeem 1 to 99 at a time."), fields={"quantity": [_("1 to 99.")]})
    try:
        with transaction.atomic():
            return _redeem(
                actor=actor, member=member, reward=reward, key=key, quantity=quantity, note=note, source=source
            )
    except IntegrityError:
        # the same key committed by a concurrent request for another member: it wins
        with transaction.atomic():
            outcome = _replay(key, member=member, reward=reward, quantity=quantity)
        if outcome is None:
            raise
        return outcome


def _redeem(
    *,
    actor: Membership | None,
    member: Member,
    reward: Reward,
    key: str,
    quantity: int,
    note: str,
    source: str,
) -> RedeemOutcome:
    outcome = _replay(key, member=member, reward=reward, quantity=quantity)
    if outcome is not None:
        return outcome
    locked = _lock(member)  # 1. the member
    # A request with the same key for this member waited on the lock above: it sees the first now.
    outcome = _replay(key, member=member, reward=reward, quantity=quantity)
    if outcome is not None:
        return outcome
    stock = (
        Reward.objects.select_for_update(of=("self",)).select_related("min_level").get(pk=reward.pk)
    )  # 2. the reward
    if not stock.is_active:
        raise ApplicationError(_("This reward is not offered any more."), code="reward_unavailable", status_code=409)
    if locked.customer.list_flag == ListFlag.BLACK or locked.customer.merged_into_id:
        raise ApplicationError(_("This member cannot redeem rewards."), code="member_blocked", status_code=409)
    if stock.min_level is not None and (locked.level is None or locked.level.rank < stock.min_level.rank):
        raise ApplicationError(
            _("This reward is for %(level)s members and above.") % {"level": stock.min_level.name},
            code="level_too_low",
            status_code=409,
        )
    if stock.stock is not None and stock.stock < quantity:
        left = _("Only %(n)s left in stock.") % {"n": stock.stock}
        raise ApplicationError(left, code="out_of_stock", fields={"quantity": [left]}, status_code=409)
    cost = stock.points_cost * quantity
    if locked.points_balance < cost:
        raise ApplicationError(
            _("%(cost)s points needed, %(balance)s available.") % {"cost": cost, "balance": locked.points_balance},
            code="insufficient_points",
            status_code=409,
        )
    if stock.stock is not None:
        Reward.objects.filter(pk=stock.pk).update(stock=F("stock") - quantity)
    redemption = Redemption.objects.create(
        member=locked,
        reward=stock,
        quantity=quantity,
        points=cost,
        idempotency_key=key,
        voucher_code="".join(secrets.choice(VOUCHER_ALPHABET) for _i in range(8)),
        note=note.strip()[:300],
        created_by=actor,
    )
    _post(
        locked,
        kind=Kind.REDEEM,
        points=-cost,
        reason=f"{stock.name} × {quantity}",
        source=source,
        actor=actor,
        redemption=redemption,
    )
    return RedeemOutcome(redemption=redemption, replayed=False)


@transaction.atomic
def redemption_cancel(
    *, actor: Membership, redemption: Redemption, note: str, source: str = Source.STAFF
) -> Redemption:
    """Undo a redemption: the points come back (as a new credit) and so does the stock."""
    require(actor, "loyalty.adjust", _("Your role may not cancel redemptions."))
    if not note.strip():
        raise ApplicationError(_("Say why it is cancelled."), fields={"note": [_("Required.")]})
    locked = _lock(redemption.member)
    redemption = Redemption.objects.select_for_update(of=("self",)).select_related("reward").get(pk=redemption.pk)
    Reward.objects.select_for_update().filter(pk=redemption.reward_id).first()
    if redemption.status == Redemption.Status.CANCELLED:
        raise ApplicationError(_("This redemption was cancelled already."), code="already_cancelled")
    redemption.status = Redemption.Status.CANCELLED
    redemption.cancelled_at, redemption.cancelled_by = timezone.now(), actor
    redemption.save(update_fields=["status", "cancelled_at", "cancelled_by"])
    Reward.objects.filter(pk=redemption.reward_id, stock__isnull=False).update(stock=F("stock") + redemption.quantity)
    _post(
        locked,
        kind=Kind.REVERSAL,
        points=redemption.points,
        reason=_("Cancelled: %(reward)s — %(note)s") % {"reward": redemption.reward.name, "note": note.strip()},
        source=source,
        actor=actor,
        redemption=redemption,
        key=f"redemption-cancel:{redemption.pk}",
    )
    return redemption


@transaction.atomic
def member_set_level(*, actor: Membership, member: Member, level: Level | None, keep: bool, note: str) -> Member:
    """Put a member on a level by hand (e.g. personal butler). With `keep`, the nightly run leaves
    it alone; without, the next run may move the member again."""
    require(actor, "loyalty.adjust", _("Your role may not change a member's level."))
    if not note.strip():
        raise ApplicationError(_("Say why the level changes."), fields={"note": [_("Required.")]})
    locked = _lock(member)
    if locked.level_id != (level.pk if level else None):
        LevelChange.objects.create(
            member=locked,
            from_level=locked.level,
            to_level=level,
            changed_on=timezone.localdate(),
            reason=note.strip()[:300],
            actor=actor,
        )
        locked.level, locked.level_since = level, timezone.localdate()
    locked.level_locked = keep
    locked.updated_at = timezone.now()
    locked.save(update_fields=["level", "level_since", "level_locked", "updated_at"])
    return locked


# --- Referrals ------------------------------------------------------------------------------------------


@transaction.atomic
def referral_create(*, actor: Membership | None, referrer: Customer, referee: Customer, note: str = "") -> Referral:
    """Record who recommended whom. The referrer joins the programme if not a member yet."""
    require(actor, "loyalty.redeem", _("Your role may not record referrals."))
    if referrer.pk == referee.pk:
        raise ApplicationError(_("A customer cannot refer themselves."), fields={"referee": [_("Same customer.")]})
    if referee.merged_into_id:
        raise ApplicationError(_("This record was merged into another customer."), fields={"referee": [_("Merged.")]})
    if Order.objects.filter(customer=referee, kind=Order.Kind.VEHICLE_SALE, status=Order.Status.COMPLETED).exists():
        raise ApplicationError(
            _("This customer has bought a vehicle already: a referral counts before the purchase."),
            fields={"referee": [_("Bought already.")]},
        )
    member = member_enrol(actor=None, customer=referrer)
    referral = Referral(referrer=member, referee=referee, note=note.strip()[:300], created_by=actor)
    try:
        with transaction.atomic():
            referral.save()
    except IntegrityError:
        raise ApplicationError(
            _("Someone else referred this customer already."),
            code="referred_already",
            fields={"referee": [_("Referred already.")]},
        ) from None
    return referral


# --- Complaint compensation and customer merges (hooks) -----------------------------------------


def complaint_compensation_credit(ticket: Any) -> None:
    complaint_compensation_entry(ticket)


def complaint_compensation_entry(ticket: Any) -> LedgerEntry | None:
    """complaints' closed hook: points promised as compensation land on the ledger. A ticket
    reopened and closed again with more points gets the difference; never twice the same."""
    if not ticket.compensation_points or ticket.customer_id is None:
        return None
    with transaction.atomic():
        customer = Customer.objects.get(pk=ticket.customer_id)
        while customer.merged_into_id:
            customer = Customer.objects.get(pk=customer.merged_into_id)
        member = member_enrol(actor=None, customer=customer)
        locked = _lock(member)
        given = sum(
            LedgerEntry.objects.filter(ticket_id=ticket.pk, kind=Kind.COMPENSATION).values_list("points", flat=True)
        )
        missing = ticket.compensation_points - given
        if missing <= 0:
            return None
        with translation.override(_tenant().locale):
            reason = _("Complaint %(ref)s: %(note)s") % {"ref": ticket.pk, "note": ticket.compensation_note}
        return _post(
            locked,
            kind=Kind.COMPENSATION,
            points=missing,
            reason=reason,
            source=Source.COMPLAINT,
            actor=None,
            ticket_id=ticket.pk,
            key=f"complaint:{ticket.pk}:{ticket.compensation_points}",
        )


def members_merge(*, survivor: Customer, duplicate: Customer) -> dict[str, int]:
    """customers' merge hook. The duplicate's membership moves over whole when the survivor has
    none. When both are members, the duplicate's ledger is copied onto the survivor's entry by
    entry (same points, dates and expiry, so expiry stays oldest-first), and the duplicate's
    balance is closed with one "merged" entry: the ledger stays append-only and both balances
    still equal their ledgers."""
    dup = Member.objects.select_for_update().filter(customer=duplicate).first()
    if dup is None:
        return {}
    keep = Member.objects.select_for_update().filter(customer=survivor).first()
    if not Referral.objects.filter(referee=survivor).exists():
        Referral.objects.filter(referee=duplicate).update(referee=survivor)  # who referred them still counts
    if keep is None:
        Member.objects.filter(pk=dup.pk).update(customer=survivor, updated_at=timezone.now())
        return {"loyalty_member": 1}
    tenant_id = require_tenant_id()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO loyalty_ledgerentry (tenant_id, member_id, kind, points, occurred_at, expires_on, reason,
                   source, actor_id, redemption_id, referral_id, ticket_id, merged_from_id, key, created_at, order_id)
            SELECT e.tenant_id, %(keep)s, e.kind, e.points, e.occurred_at, e.expires_on, e.reason, 'merge',
                   e.actor_id, e.redemption_id, NULL, e.ticket_id, e.id, '', now(), NULL
              FROM loyalty_ledgerentry e
             WHERE e.tenant_id = %(t)s AND e.member_id = %(dup)s
            """,
            {"t": tenant_id, "keep": keep.pk, "dup": dup.pk},
        )
        copied = cursor.rowcount
    if dup.points_balance:
        LedgerEntry.objects.create(
            member=dup,
            kind=Kind.MERGE,
            points=-dup.points_balance,
            reason=_("Merged into customer %(id)s") % {"id": survivor.pk},
            source=Source.MERGE,
        )
    now = timezone.now()
    Member.objects.filter(pk=keep.pk).update(points_balance=F("points_balance") + dup.points_balance, updated_at=now)
    Member.objects.filter(pk=dup.pk).update(points_balance=0, updated_at=now)
    Referral.objects.filter(referrer=dup).update(referrer=keep)
    Redemption.objects.filter(member=dup).update(member=keep)
    return {"loyalty_entries": copied}


# --- Expiry, oldest first (the rule batch.points_expire applies each night) -------------------

# What is left of the credits expiring by %(d)s, per member, after every debit so far (FIFO).
EXPIRY_SQL = """
    SELECT e.member_id,
           coalesce(sum(e.points) FILTER (WHERE e.points > 0 AND e.expires_on <= %(d)s), 0)
           - coalesce(-sum(e.points) FILTER (WHERE e.points < 0), 0) AS expiring
      FROM loyalty_ledgerentry e
     WHERE e.tenant_id = %(t)s {members}
     GROUP BY e.member_id
    HAVING coalesce(sum(e.points) FILTER (WHERE e.points > 0 AND e.expires_on <= %(d)s), 0)
           > coalesce(-sum(e.points) FILTER (WHERE e.points < 0), 0)
"""


def expiring_points(*, member: Member, by: date) -> int:
    """Points of this member that will expire by `by` unless spent first (the same FIFO rule)."""
    with connection.cursor() as cursor:
        cursor.execute(
            EXPIRY_SQL.format(members="AND e.member_id = %(m)s"),
            {"t": member.tenant_id, "d": by, "m": member.pk},
        )
        row = cursor.fetchone()
    return int(row[1]) if row else 0
