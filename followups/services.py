"""Every write of follow-ups: settings, planning one by hand, logging an outcome, handing over,
cancelling. The nightly scheduling lives in followups/scheduling.py.

Logging an outcome locks the follow-up row, records an Attempt and a Touchpoint in the customer's
history, and moves the follow-up on:
- no answer: retried `retry_after_days` later until `max_attempts`, then "unreachable";
- call back later: stays open, rescheduled to the day the customer asked for;
- anything else: done. A done complaint follow-up also takes its ticket to "followed up".
A pushed outcome with an idempotency key is recorded once; the replay returns the first attempt.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError, NotAllowed
from crm.tenancy.access import require
from crm.tenancy.models import Membership, dealership_settings, settings_assign
from customers.models import Customer, ListFlag, Vehicle
from customers.records import touchpoint_log
from followups.models import (
    ACTIVE_STATUSES,
    CONSENT_FIELD,
    NO_TIER_PRIORITY,
    TIER_PRIORITY,
    TOUCHPOINT_OUTCOME,
    Attempt,
    Channel,
    Disposition,
    Followup,
    FollowupSettings,
    Reason,
    Status,
)
from followups.subjects import subject_for

logger = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"[-A-Za-z0-9_:.]{8,80}")
MAX_CALLBACK_DAYS = 90


def followup_settings() -> FollowupSettings:
    """The current dealership's rules, made with the defaults on first use."""
    return dealership_settings(FollowupSettings)


@transaction.atomic
def followup_settings_update(*, actor: Membership, data: dict[str, Any]) -> FollowupSettings:
    require(actor, "followups.manage", _("Your role may not change the follow-up rules."))
    settings = followup_settings()
    settings_assign(settings, data, invalid=_("Some settings are not valid."))
    if "delivery_days" in data:
        settings.delivery_days = sorted(set(settings.delivery_days or []))
    settings.save()
    return settings


def may_work(actor: Membership, followup: Followup) -> bool:
    """Whoever holds it, whoever sees every follow-up (and may work), and the customer's owner."""
    if not actor.can("followups.work"):
        return False
    if actor.can("followups.view_all") or followup.assignee_id == actor.pk:
        return True
    return followup.customer.owner_id == actor.pk


def _priority(customer: Customer) -> int:
    from segmentation.selectors import customer_tier

    return TIER_PRIORITY.get(customer_tier(customer_id=customer.pk) or "", NO_TIER_PRIORITY)


def consent_allows(customer: Customer, channel: str) -> bool:
    field = CONSENT_FIELD.get(channel)
    if field is None:
        return True
    if channel in (Channel.CALL, Channel.SMS, Channel.WECHAT) and not customer.mobile:
        return False
    return bool(getattr(customer, field))


def _check_assignee(assignee: Membership | None) -> None:
    if assignee is not None and not (assignee.is_active and assignee.can("followups.work")):
        raise ApplicationError(
            _("That person cannot take follow-ups."),
            fields={"assignee": [_("Not an active colleague who works follow-ups.")]},
        )


@transaction.atomic
def followup_create(
    *,
    actor: Membership | None,
    customer: Customer,
    reason: str = Reason.MANUAL,
    due_from: date,
    due_until: date | None = None,
    vehicle: Vehicle | None = None,
    channel: str = Channel.CALL,
    note: str = "",
    assignee: Membership | None = None,
    source_key: str = "",
    ticket: Any = None,
) -> Followup:
    """Plan one follow-up now (by hand, or from a hook such as a low survey score). The same rules
    as the nightly run: consent for the channel, no black-listed customer, one open per reason."""
    require(actor, "followups.work", _("Your role may not plan follow-ups."))
    errors: dict[str, list[str]] = {}
    if customer.merged_into_id is not None:
        errors["customer"] = [_("This record was merged into another customer.")]
    elif customer.list_flag == ListFlag.BLACK:
        errors["customer"] = [_("The customer is on the black list.")]
    if channel not in Channel.values:
        errors["channel"] = [_("Not a channel.")]
    elif not consent_allows(customer, channel):
        errors["channel"] = [_("The customer has not agreed to be contacted this way.")]
    if vehicle is not None and vehicle.customer_id != customer.pk:
        errors["vehicle"] = [_("Not this customer's.")]
    settings = followup_settings()
    due_until = due_until or due_from + timedelta(days=settings.window_days - 1)
    if due_until < due_from:
        errors["due_until"] = [_("The latest day cannot be before the earliest.")]
    if reason not in Reason.values:
        errors["reason"] = [_("Not a reason.")]
    if len(note) > 300:
        errors["note"] = [_("At most 300 characters.")]
    if errors:
        raise ApplicationError(_("The follow-up cannot be planned."), fields=errors)
    _check_assignee(assignee)
    if assignee is None and actor is not None and not actor.is_service_account and reason == Reason.MANUAL:
        assignee = actor
    followup = Followup(
        customer=customer,
        vehicle=vehicle,
        reason=reason,
        source_key=source_key or f"manual:{customer.pk}:{timezone.now().timestamp():.6f}",
        note=note.strip(),
        due_from=due_from,
        due_until=due_until,
        scheduled_on=due_from,
        assignee=assignee,
        channel=channel,
        priority=_priority(customer),
        ticket=ticket,
        created_by=actor,
        created_on=timezone.localdate(),
    )
    try:
        with transaction.atomic():
            followup.save()
    except IntegrityError as error:
        raise ApplicationError(
            _("This customer already has an open follow-up for that reason."),
            code="duplicate",
            fields={"reason": [_("One is open already.")]},
            status_code=409,
        ) from error
    return followup


def _locked(followup: Followup) -> Followup:
    return Followup.objects.select_for_update(of=("self",)).select_related("customer", "vehicle").get(pk=followup.pk)


@transaction.atomic
def followup_log_outcome(
    *,
    actor: Membership,
    followup: Followup,
    disposition: str,
    notes: str = "",
    callback_on: date | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str = "",
) -> tuple[Attempt, bool]:
    """Record what came of a call or visit. Returns (attempt, created): a replayed key returns the
    attempt it recorded first, with created False."""
    require(actor, "followups.work", _("Your role may not work follow-ups."))
    if idempotency_key:
        if not KEY_PATTERN.fullmatch(idempotency_key):
            raise ApplicationError(
                _("An idempotency key is 8–80 letters, digits and - _ : ."),
                fields={"idempotency_key": [_("Not a valid key.")]},
            )
        earlier = _replayed(followup, disposition, idempotency_key)
        if earlier is not None:
            return earlier, False
    followup = _locked(followup)
    if idempotency_key:
        # a push with the same key may have been recorded while this one waited for the lock
        earlier = _replayed(followup, disposition, idempotency_key)
        if earlier is not None:
            return earlier, False
    if not may_work(actor, followup):
        raise NotAllowed(_("This follow-up is someone else's."))
    errors: dict[str, list[str]] = {}
    if disposition not in Disposition.values:
        errors["disposition"] = [_("Not an outcome.")]
    if len(notes) > 4000:
        errors["notes"] = [_("At most 4,000 characters.")]
    # retries and call-backs count from the day of the call (a call logged late keeps its day)
    today = timezone.localdate(occurred_at) if occurred_at is not None else timezone.localdate()
    if disposition == Disposition.CALLBACK:
        if callback_on is None:
            errors["callback_on"] = [_("Say when to call back.")]
        elif not today < callback_on <= today + timedelta(days=MAX_CALLBACK_DAYS):
            errors["callback_on"] = [_("A day after today, within %(days)s days.") % {"days": MAX_CALLBACK_DAYS}]
    if disposition in (Disposition.FEEDBACK, Disposition.COMPLAINT) and not notes.strip():
        errors["notes"] = [_("Write down what the customer said.")]
    if errors:
        raise ApplicationError(_("The outcome was not recorded."), fields=errors)
    if followup.status not in ACTIVE_STATUSES:
        raise ApplicationError(
            _("This follow-up is %(status)s already.") % {"status": Status(followup.status).label},
            code="not_open",
            status_code=409,
        )
    touchpoint = touchpoint_log(
        actor=actor,
        customer=followup.customer,
        vehicle=followup.vehicle,
        channel=followup.channel,
        outcome=TOUCHPOINT_OUTCOME[Disposition(disposition)],
        notes=_compose_notes(followup, disposition, notes),
        occurred_at=occurred_at,
    )
    attempt = Attempt(
        followup=followup,
        disposition=disposition,
        notes=notes.strip(),
        staff=None if actor.is_service_account else actor,
        touchpoint=touchpoint,
        callback_on=callback_on if disposition == Disposition.CALLBACK else None,
        occurred_at=touchpoint.occurred_at,
        idempotency_key=idempotency_key,
    )
    try:
        with transaction.atomic():
            attempt.save()
    except IntegrityError:
        # the same key raced in from another request: that one won, this one changes nothing
        earlier = Attempt.objects.get(idempotency_key=idempotency_key)
        transaction.set_rollback(True)  # undoes the contact recorded above
        return earlier, False
    _advance(followup, attempt, actor, today)
    return attempt, True


def _replayed(followup: Followup, disposition: str, idempotency_key: str) -> Attempt | None:
    """The attempt recorded before with this key, or None; the key used for another outcome is a 409."""
    earlier = Attempt.objects.filter(idempotency_key=idempotency_key).first()
    if earlier is not None and (earlier.followup_id != followup.pk or earlier.disposition != disposition):
        raise ApplicationError(
            _("This idempotency key was used for another outcome."),
            code="key_reused",
            fields={"idempotency_key": [_("Used already for another outcome.")]},
            status_code=409,
        )
    return earlier


def _compose_notes(followup: Followup, disposition: str, notes: str) -> str:
    head = f"{Reason(followup.reason).label}: {Disposition(disposition).label}"
    return f"{head}\n{notes.strip()}" if notes.strip() else head


def _advance(followup: Followup, attempt: Attempt, actor: Membership, today: date) -> None:
    settings = followup_settings()
    followup.attempts += 1
    followup.disposition = attempt.disposition
    if attempt.notes:
        followup.outcome_notes = attempt.notes
    if attempt.disposition == Disposition.NO_ANSWER:
        if followup.attempts >= settings.max_attempts:
            _finish(followup, Status.UNREACHABLE, actor, attempt.occurred_at)
        else:
            followup.status = Status.NO_ANSWER
            followup.scheduled_on = today + timedelta(days=settings.retry_after_days)
            followup.due_until = max(followup.due_until, followup.scheduled_on)
    elif attempt.disposition == Disposition.CALLBACK:
        followup.status = Status.OPEN
        followup.scheduled_on = attempt.callback_on or today
        followup.due_until = max(followup.due_until, followup.scheduled_on)
    else:
        _finish(followup, Status.DONE, actor, attempt.occurred_at)
    followup.updated_at = timezone.now()
    followup.save()
    if (
        followup.status == Status.DONE
        and followup.ticket_id is not None
        and attempt.disposition != Disposition.WRONG_NUMBER
    ):
        _close_complaint_loop(followup, attempt, actor)
    subject = subject_for(followup.reason)
    if subject is not None:
        subject.attempt_logged(followup=followup, attempt=attempt, actor=actor)


def _finish(followup: Followup, status: str, actor: Membership, at: datetime) -> None:
    # finished when the call that finished it happened: a call logged late counts on its own day
    followup.status = status
    followup.completed_at = at
    followup.completed_by = None if actor.is_service_account else actor


def _close_complaint_loop(followup: Followup, attempt: Attempt, actor: Membership) -> None:
    """The complaint's last step (回访) is this call: move a closed ticket to "followed up"."""
    from complaints import services as complaints
    from complaints.models import Status as TicketStatus
    from complaints.models import Ticket

    ticket = Ticket.objects.filter(pk=followup.ticket_id).first() if followup.ticket_id else None
    if ticket is None or ticket.status != TicketStatus.CLOSED or not actor.can("complaints.work"):
        return
    note = _compose_notes(followup, attempt.disposition, attempt.notes)
    complaints.ticket_advance(actor=actor, ticket=ticket, to_status=TicketStatus.FOLLOWED_UP, note=note)


@transaction.atomic
def followup_assign(*, actor: Membership, followup: Followup, assignee: Membership | None) -> Followup:
    """Hand one follow-up to a colleague (or back to the pool, with None)."""
    followup = _locked(followup)
    if not (actor.can("followups.manage") or (actor.can("followups.view_all") and actor.can("followups.work"))):
        raise NotAllowed(_("Your role may not hand follow-ups over."))
    if followup.status not in ACTIVE_STATUSES:
        raise ApplicationError(_("Only an open follow-up can be handed over."), code="not_open", status_code=409)
    _check_assignee(assignee)
    followup.assignee = assignee
    followup.updated_at = timezone.now()
    followup.save(update_fields=["assignee", "updated_at"])
    return followup


@transaction.atomic
def followups_hand_over(*, actor: Membership, from_member: Membership, to_member: Membership | None) -> int:
    """Everything open that one person holds goes to another (or to the pool)."""
    require(actor, "followups.manage", _("Your role may not hand follow-ups over."))
    _check_assignee(to_member)
    if to_member is not None and to_member.pk == from_member.pk:
        raise ApplicationError(_("Choose someone else."), fields={"to_member": [_("The same person.")]})
    return Followup.objects.filter(assignee=from_member, status__in=ACTIVE_STATUSES).update(
        assignee=to_member, updated_at=timezone.now()
    )


@transaction.atomic
def followup_cancel(*, actor: Membership, followup: Followup, note: str) -> Followup:
    require(actor, "followups.manage", _("Your role may not cancel follow-ups."))
    if not note.strip():
        raise ApplicationError(_("Say why it is cancelled."), fields={"note": [_("Required.")]})
    followup = _locked(followup)
    if followup.status not in ACTIVE_STATUSES:
        raise ApplicationError(_("Only an open follow-up can be cancelled."), code="not_open", status_code=409)
    followup.status = Status.CANCELLED
    followup.outcome_notes = note.strip()[:4000]
    _finish(followup, Status.CANCELLED, actor, timezone.now())
    followup.updated_at = timezone.now()
    followup.save()
    return followup


@transaction.atomic
def followup_subject_plan(
    *,
    customer: Customer,
    reason: str,
    source_key: str,
    due_from: date | None,
    assignee: Membership | None,
    note: str = "",
    channel: str = Channel.CALL,
    priority: int = NO_TIER_PRIORITY,
    actor: Membership | None = None,
) -> Followup | None:
    """The one open follow-up of `reason` another area keeps for a customer (a sales lead's next
    call): an open one planned for another day or holder is cancelled ("planned again") and the new
    one made under `source_key` (unique: the caller makes it so); `due_from` None only cancels.
    Idempotent: the same day and holder again changes nothing."""
    current = (
        Followup.objects.select_for_update()
        .filter(customer=customer, reason=reason, status__in=ACTIVE_STATUSES)
        .first()
    )
    holder = assignee.pk if assignee else None
    if current is not None:
        if due_from is not None and current.due_from == due_from and current.assignee_id == holder:
            return current
        current.status, current.outcome_notes = Status.CANCELLED, _("Planned again.")
        current.completed_at = current.updated_at = timezone.now()
        current.completed_by = actor if actor is not None and not actor.is_service_account else None
        current.save()
    if due_from is None:
        return None
    settings = followup_settings()
    followup = Followup(
        customer=customer,
        reason=reason,
        source_key=source_key,
        note=note[:300],
        due_from=due_from,
        due_until=due_from + timedelta(days=settings.window_days - 1),
        scheduled_on=due_from,
        assignee=assignee,
        channel=channel if consent_allows(customer, channel) else Channel.VISIT,
        priority=priority,
        created_by=actor,
        created_on=timezone.localdate(),
    )
    followup.save()
    return followup


def followups_cancel_for(*, reason: str, customer_ids: list[int], note: str) -> int:
    """Cancel, in one statement, the open follow-ups of `reason` of these customers (another area's
    nightly work: a lead reclaimed to the pool or gone dormant)."""
    if not customer_ids:
        return 0
    now = timezone.now()
    return Followup.objects.filter(reason=reason, customer_id__in=customer_ids, status__in=ACTIVE_STATUSES).update(
        status=Status.CANCELLED, outcome_notes=note[:4000], completed_at=now, updated_at=now
    )


def followups_plan_from(*, select_sql: str, params: dict[str, Any]) -> int:
    """Insert, in one statement, the follow-ups another area's nightly SQL selects as
    (customer_id, reason, source_key, note, due_from, assignee_id, channel, priority); the window is
    the dealership's. One that exists already (its source, or an open one of that reason) is skipped."""
    from django.db import connection

    settings = followup_settings()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO followups_followup (tenant_id, customer_id, reason, source_key, note, due_from, due_until,
                scheduled_on, assignee_id, channel, priority, status, attempts, disposition, outcome_notes,
                created_on, created_at, updated_at)
            SELECT %(tenant_id)s, p.customer_id, p.reason, p.source_key, p.note, p.due_from,
                   p.due_from + %(window_days)s - 1, p.due_from, p.assignee_id, p.channel, p.priority,
                   'open', 0, '', '', %(today)s, now(), now()
            FROM ({select_sql}) AS p(customer_id, reason, source_key, note, due_from, assignee_id, channel, priority)
            ON CONFLICT DO NOTHING
            """,
            {
                **params,
                "tenant_id": settings.tenant_id,
                "window_days": settings.window_days,
                "today": timezone.localdate(),
            },
        )
        return max(cursor.rowcount, 0)


def followups_merge(*, survivor: Customer, duplicate: Customer) -> dict[str, int]:
    """Customer merge hook: the duplicate's open follow-ups are cancelled (the survivor's own rules
    plan what it needs); its follow-up history moves to the survivor, as its contacts do."""
    now = timezone.now()
    cancelled = Followup.objects.filter(customer=duplicate, status__in=ACTIVE_STATUSES).update(
        status=Status.CANCELLED, outcome_notes=_("Customer merged."), completed_at=now, updated_at=now
    )
    moved = Followup.objects.filter(customer=duplicate).update(customer=survivor, updated_at=now)
    return {"followups_cancelled": cancelled, "followups": moved}
