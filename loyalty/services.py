"""Every write of the loyalty programme.

Points move only through the ledger. Whoever changes a member's points locks the member row
(SELECT … FOR UPDATE, or an UPDATE, which takes the same lock) and, in the same transaction,
appends the ledger entry and moves `points_balance` by exactly its points. So the balance always
equals the sum of the ledger, and the CHECK (points_balance >= 0) refuses anything that would
take it below zero. A redemption also locks the reward row (member first, then reward: always in
that order, so two redemptions never deadlock) before taking stock.

The nightly work is set-based SQL per dealership (see loyalty/nightly.py): earning from orders,
order reversals, referral rewards, expiry (oldest first), levels and care greetings. Each is
idempotent: unique keys and "not exists" conditions make a second run the same day a no-op.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm.core.errors import ApplicationError, NotAllowed
from crm.core.notifications import notify
from crm.messaging.consent import CHANNELS, channel_sql, reachable_channel
from crm.messaging.services import outbox_enqueue
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import Membership, Tenant
from customers.models import Customer, ListFlag, Order
from loyalty.holidays import holiday_on
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


def _require(actor: Membership | None, capability: str, message: str) -> None:
    if actor is not None and not actor.can(capability):
        raise NotAllowed(message)


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
    _require(actor, "loyalty.manage", _("Your role may not change the loyalty programme."))
    current = programme()
    current = Programme.objects.select_for_update().get(pk=current.pk)
    for name, value in data.items():
        setattr(current, name, value)
    if any(c not in CHANNELS for c in current.channels) or len(set(current.channels)) != len(current.channels):
        raise ApplicationError(
            _("Channels are sms, wechat and email, each once."), fields={"channels": [_("Unknown channel.")]}
        )
    return _clean_save(current, message=_("The programme could not be saved."))


@transaction.atomic
def level_save(*, actor: Membership, level: Level) -> Level:
    _require(actor, "loyalty.manage", _("Your role may not change the loyalty programme."))
    return _clean_save(level, message=_("Another level has this code or rank already."))


@transaction.atomic
def earning_rule_save(*, actor: Membership, rule: EarningRule) -> EarningRule:
    _require(actor, "loyalty.manage", _("Your role may not change the loyalty programme."))
    return _clean_save(rule, message=_("There is a rule for this order type already."))


@transaction.atomic
def reward_save(*, actor: Membership, reward: Reward) -> Reward:
    """Create or edit a reward. Stock is set here; redemptions take from it under a row lock."""
    _require(actor, "loyalty.manage", _("Your role may not change the rewards catalogue."))
    if reward.pk:
        Reward.objects.select_for_update().filter(pk=reward.pk).first()  # wait for redemptions in flight
    return _clean_save(reward, message=_("The reward could not be saved."))


@transaction.atomic
def care_template_save(*, actor: Membership, template: CareTemplate) -> CareTemplate:
    _require(actor, "loyalty.manage", _("Your role may not change the loyalty programme."))
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
    _require(actor, "loyalty.redeem", _("Your role may not enrol members."))
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
    _require(actor, "loyalty.adjust", _("Your role may not adjust points."))
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
    _require(actor, "loyalty.redeem", _("Your role may not redeem rewards."))
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
    _require(actor, "loyalty.adjust", _("Your role may not cancel redemptions."))
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
    _require(actor, "loyalty.adjust", _("Your role may not change a member's level."))
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
    _require(actor, "loyalty.redeem", _("Your role may not record referrals."))
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


def expiring_points(*, member: Member, by: date) -> int:
    """Points of this member that will expire by `by` unless spent first (the same FIFO rule)."""
    with connection.cursor() as cursor:
        cursor.execute(
            EXPIRY_SQL.format(members="AND e.member_id = %(m)s"),
            {"t": member.tenant_id, "d": by, "m": member.pk},
        )
        row = cursor.fetchone()
    return int(row[1]) if row else 0
