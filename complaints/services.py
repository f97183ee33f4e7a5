"""Every write to complaint tickets: opening, the six steps, waiting on the customer, assignment,
notes, attachments, closing, reopening, the follow-up call, settings; and the SLA check.

Workflow rules (docs/complaints.md):
- steps go greet → listen → calm → handle → closed → followed up, one at a time; a reopened ticket
  goes back to listen;
- finishing "greet" is the first response; closing needs root cause, resolution and compensation
  (money and/or points, 0 allowed) and starts the closed loop (survey + follow-up call hooks);
- reopening within the dealership's window marks the resolution as not held.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from complaints import sla
from complaints.models import (
    OPEN_STATUSES,
    ComplaintCategory,
    ComplaintSettings,
    SlaPolicy,
    Status,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketWatcher,
)
from complaints.selectors import ticket_shows_full_mobile
from complaints.uploads import check_upload
from crm.core.business_time import whole_minutes
from crm.core.errors import ApplicationError, NotAllowed
from crm.core.extensions import Contribution, ExtensionPoint
from crm.core.notifications import notify
from crm.tenancy.access import require
from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import AuditAction, Membership, Tenant, dealership_settings, settings_assign
from crm.tenancy.roles import Role
from customers.models import Customer, Vehicle
from customers.selectors import customer_visible_to
from customers.validators import normalize_cn_mobile, normalize_person_name

logger = logging.getLogger(__name__)

NEXT_STEP: dict[str, str] = {
    Status.GREET: Status.LISTEN,
    Status.LISTEN: Status.CALM,
    Status.CALM: Status.HANDLE,
    Status.HANDLE: Status.CLOSED,
    Status.CLOSED: Status.FOLLOWED_UP,
    Status.REOPENED: Status.LISTEN,
}

DEFAULT_CATEGORIES = (
    ("staff_attitude", _("Staff attitude")),
    ("repair_quality", _("Repair quality")),
    ("sales_promise", _("Sales promise")),
    ("price_fees", _("Price and fees")),
    ("parts", _("Parts")),
    ("waiting_time", _("Waiting time")),
    ("other", _("Other")),
)

# --- The closed loop -------------------------------------------------------------------------------
# Other apps act on a closed ticket (a survey, compensation points): each handler is called after the
# closing commits, in its own transaction; one that fails is logged and does not stop the others.


@dataclass(frozen=True, kw_only=True)
class TicketClosedHandler(Contribution):
    handle: Callable[[Ticket], None]


ticket_closed_handlers: ExtensionPoint[TicketClosedHandler] = ExtensionPoint(
    "complaints.ticket_closed_handlers", TicketClosedHandler
)


def _run_closed_handlers(ticket_id: int, tenant_id: int) -> None:
    from crm.tenancy.context import tenant_context

    for handler in ticket_closed_handlers.contributions():
        try:
            with tenant_context(tenant_id):
                handler.handle(Ticket.objects.get(pk=ticket_id))
        except Exception:
            logger.exception("ticket closed handler %s failed for ticket %s", handler.name, ticket_id)


# --- Helpers ---------------------------------------------------------------------------------------


def complaint_settings() -> ComplaintSettings:
    return dealership_settings(ComplaintSettings)


def categories_ensure() -> list[ComplaintCategory]:
    """The dealership's categories, creating the standard set on first use."""
    existing = list(ComplaintCategory.objects.order_by("position", "name"))
    if existing:
        return existing
    for position, (code, name) in enumerate(DEFAULT_CATEGORIES):
        ComplaintCategory.objects.get_or_create(code=code, defaults={"name": str(name), "position": position})
    return list(ComplaintCategory.objects.order_by("position", "name"))


def _event(ticket: Ticket, kind: str, *, actor: Membership | None, note: str = "", **data: Any) -> TicketEvent:
    return TicketEvent.objects.create(
        ticket=ticket,
        kind=kind,
        actor=actor,
        note=note,
        from_status=data.pop("from_status", ""),
        to_status=data.pop("to_status", ""),
        data=data,
    )


def _next_number(tenant: Tenant, now: datetime) -> str:
    """Acknowledgement number: local date + sequence of the day, e.g. 2611230007 (serialised per dealership)."""
    day = timezone.localtime(now, tenant.zone).date()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('ticket-number'), %s)", [tenant.pk])
    prefix = day.strftime("%y%m%d")
    last = Ticket.objects.filter(number__startswith=prefix).order_by("-number").values_list("number", flat=True).first()
    sequence = int(last[len(prefix) :]) + 1 if last else 1
    return f"{prefix}{sequence:04d}"


def ticket_url(ticket: Ticket) -> str:
    return reverse("complaints:detail", args=[ticket.pk])


# --- Opening ---------------------------------------------------------------------------------------


@dataclass
class TicketInput:
    contact_name: str
    contact_mobile: str
    channel: str
    category: ComplaintCategory
    subject: str
    description: str
    severity: str = "normal"
    customer: Customer | None = None
    vehicle: Vehicle | None = None
    assignee: Membership | None = None


def ticket_reveal_mobile(*, viewer: Membership, ticket: Ticket, meta: RequestMeta | None = None) -> str:
    """Show a ticket's masked contact mobile in full: an explicit action, audited like a customer's."""
    if not ticket_shows_full_mobile(viewer=viewer, ticket=ticket):
        require(viewer, "customers.reveal_pii", _("Your role may not show full numbers."))
    audit_record(
        action=AuditAction.PII_REVEALED,
        actor=viewer.user,
        target=ticket,
        summary=f"{ticket.number}: contact_mobile",
        data={"field": "contact_mobile"},
        meta=meta,
    )
    return ticket.contact_mobile


def tickets_read_unmasked(*, viewer: Membership, ticket_ids: Sequence[int], meta: RequestMeta | None = None) -> None:
    """Audit an API read that returned full contact mobiles of tickets not assigned to the caller."""
    if ticket_ids:
        audit_record(
            action=AuditAction.CUSTOMERS_READ_UNMASKED,
            actor=viewer.user,
            summary=f"{len(ticket_ids)} complaint tickets",
            data={"ticket_ids": list(ticket_ids[:1000]), "count": len(ticket_ids)},
            meta=meta,
        )


@transaction.atomic
def ticket_open(*, actor: Membership | None, data: TicketInput, source: str = Ticket.Source.STAFF) -> Ticket:
    """Open a ticket; the SLA clocks start now (in business hours). `actor` None = the public form."""
    require(actor, "complaints.work", _("Your role may not open complaint tickets."))
    tenant = Tenant.objects.get(pk=require_tenant_id())
    try:
        mobile = normalize_cn_mobile(data.contact_mobile)
    except ValidationError as error:
        raise ApplicationError(_("Check the mobile number."), fields={"contact_mobile": error.messages}) from None
    try:
        contact_name = normalize_person_name(data.contact_name)
    except ValidationError as error:
        raise ApplicationError(_("Check the contact's name."), fields={"contact_name": error.messages}) from None
    if data.vehicle is not None and data.customer is not None and data.vehicle.customer_id != data.customer.pk:
        raise ApplicationError(
            _("That vehicle belongs to another customer."), fields={"vehicle": [_("Not this customer's.")]}
        )
    if data.customer is None and actor is not None:
        # link the caller's record when the number is a known customer's that the actor may see (a
        # consultant must not learn who a colleague's customer is from a ticket page)
        data.customer = customer_visible_to(viewer=actor).filter(mobile=mobile).order_by("pk").first()
    now = timezone.now()
    targets = sla.targets_for(severity=data.severity, category=data.category)
    calendar = sla.calendar_for(tenant)
    response = sla.clock(calendar, start=now, minutes=targets.response_minutes)
    resolution = sla.clock(calendar, start=now, minutes=targets.resolution_minutes)
    assignee = data.assignee or (actor if actor is not None and not actor.is_service_account else None)
    ticket = Ticket(
        number=_next_number(tenant, now),
        customer=data.customer,
        vehicle=data.vehicle,
        contact_name=contact_name,
        contact_mobile=mobile,
        channel=data.channel,
        category=data.category,
        severity=data.severity,
        subject=data.subject.strip(),
        description=data.description.strip(),
        source=source,
        assignee=assignee,
        opened_at=now,
        response_target_minutes=targets.response_minutes,
        resolution_target_minutes=targets.resolution_minutes,
        response_due_at=response.due_at,
        response_warn_at=response.warn_at,
        resolution_due_at=resolution.due_at,
        resolution_warn_at=resolution.warn_at,
    )
    try:
        ticket.full_clean(exclude=["tenant", "number"])
    except ValidationError as error:
        raise ApplicationError(_("Check the highlighted fields."), fields=error.message_dict) from None
    ticket.save()
    _event(ticket, TicketEvent.Kind.OPENED, actor=actor, to_status=Status.GREET, note=ticket.description[:500])
    if assignee is not None and assignee != actor:
        _notify_assigned(ticket)
    elif assignee is None:
        notify(
            recipients=_managers(),
            kind="ticket_unassigned",
            title=_("New complaint %(number)s waiting for an owner") % {"number": ticket.number},
            body=ticket.subject,
            url=ticket_url(ticket),
            key=f"ticket:{ticket.pk}:opened",
            email=True,
        )
    return ticket


def _managers() -> list[Membership]:
    return list(Membership.objects.filter(role=Role.MANAGER, is_active=True).select_related("user"))


def _notify_assigned(ticket: Ticket) -> None:
    if ticket.assignee is None:
        return
    notify(
        recipients=[ticket.assignee],
        kind="ticket_assigned",
        title=_("Complaint %(number)s is yours") % {"number": ticket.number},
        body=ticket.subject,
        url=ticket_url(ticket),
        email=True,
    )


# --- The steps -------------------------------------------------------------------------------------


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _resume_if_paused(ticket: Ticket, actor: Membership | None, now: datetime) -> None:
    """The wait is the exact business time from pausing to now; every pending moment moves by it."""
    if ticket.paused_at is None:
        return
    calendar = sla.calendar_for(Tenant.objects.get(pk=ticket.tenant_id))
    waited = calendar.duration_between(ticket.paused_at, now)
    if waited:
        if ticket.first_response_at is None:
            ticket.response_due_at = sla.shift(calendar, ticket.response_due_at, by=waited)
            ticket.response_warn_at = sla.shift(calendar, ticket.response_warn_at, by=waited)
        ticket.resolution_due_at = sla.shift(calendar, ticket.resolution_due_at, by=waited)
        ticket.resolution_warn_at = sla.shift(calendar, ticket.resolution_warn_at, by=waited)
    ticket.paused_duration += waited
    ticket.paused_at = None
    _event(ticket, TicketEvent.Kind.RESUMED, actor=actor, waited_seconds=waited.total_seconds())


def _business_minutes_since_opening(ticket: Ticket, now: datetime) -> int:
    """Business time since opening less the time waited, in whole minutes (halves up)."""
    calendar = sla.calendar_for(Tenant.objects.get(pk=ticket.tenant_id))
    return max(0, whole_minutes(calendar.duration_between(ticket.opened_at, now) - ticket.paused_duration))


@dataclass
class Closing:
    root_cause: str
    resolution: str
    compensation_amount: Decimal = Decimal("0")
    compensation_points: int = 0
    compensation_note: str = ""

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Closing:
        """From a validated form's or serializer's data."""
        return cls(
            root_cause=data.get("root_cause") or "",
            resolution=data.get("resolution") or "",
            compensation_amount=data.get("compensation_amount") or Decimal("0"),
            compensation_points=data.get("compensation_points") or 0,
            compensation_note=data.get("compensation_note") or "",
        )


@transaction.atomic
def ticket_advance(
    *, actor: Membership, ticket: Ticket, to_status: str, note: str = "", closing: Closing | None = None
) -> Ticket:
    """Move the ticket one step on. Naming the target step guards against double submits: a step
    that is not the next one is refused (no skipping, no going back)."""
    require(actor, "complaints.work", _("Your role may not work complaint tickets."))
    ticket = _locked(ticket)
    expected = NEXT_STEP.get(ticket.status)
    if expected is None or to_status != expected:
        raise ApplicationError(
            _("From “%(current)s” the next step is “%(next)s”; steps cannot be skipped.")
            % {"current": Status(ticket.status).label, "next": Status(expected).label if expected else "—"},
            code="step_not_allowed",
            fields={"to_status": [_("Not the next step.")]},
        )
    now = timezone.now()
    previous = ticket.status
    if to_status == Status.CLOSED:
        _apply_closing(ticket, closing, now)
    if to_status == Status.FOLLOWED_UP:
        if not note.strip():
            raise ApplicationError(
                _("Write down what the customer said on the follow-up call."), fields={"note": [_("Required.")]}
            )
        ticket.followed_up_at = now
    else:
        _resume_if_paused(ticket, actor, now)
    if previous == Status.GREET and ticket.first_response_at is None:
        ticket.first_response_at = now
        ticket.response_minutes = _business_minutes_since_opening(ticket, now)
    if to_status == Status.CLOSED:
        ticket.resolution_minutes = _business_minutes_since_opening(ticket, now)
    ticket.status = to_status
    ticket.save()
    _event(ticket, TicketEvent.Kind.TRANSITION, actor=actor, note=note, from_status=previous, to_status=to_status)
    _notify_watchers(ticket, actor, to_status)
    if to_status == Status.CLOSED:
        tenant_id = ticket.tenant_id
        ticket_id = ticket.pk
        transaction.on_commit(lambda: _run_closed_handlers(ticket_id, tenant_id))
    return ticket


def _notify_watchers(ticket: Ticket, actor: Membership | None, to_status: str) -> None:
    """Watchers (and the assignee, when someone else moved the ticket) hear of every step."""
    recipients = [w.membership for w in TicketWatcher.objects.filter(ticket=ticket).select_related("membership__user")]
    if ticket.assignee is not None:
        recipients.append(ticket.assignee)
    recipients = [m for m in recipients if actor is None or m.pk != actor.pk]
    if recipients:
        notify(
            recipients=recipients,
            kind="ticket_step",
            title=_("Complaint %(number)s: now “%(step)s”")
            % {"number": ticket.number, "step": Status(to_status).label},
            body=ticket.subject,
            url=ticket_url(ticket),
        )


def _apply_closing(ticket: Ticket, closing: Closing | None, now: datetime) -> None:
    errors: dict[str, list[str]] = {}
    if closing is None or not closing.root_cause.strip():
        errors["root_cause"] = [_("Say what caused the complaint.")]
    if closing is None or not closing.resolution.strip():
        errors["resolution"] = [_("Say how it was resolved.")]
    if closing is not None:
        if closing.compensation_amount < 0:
            errors["compensation_amount"] = [_("Cannot be negative.")]
        if closing.compensation_points < 0:
            errors["compensation_points"] = [_("Cannot be negative.")]
        if (closing.compensation_amount or closing.compensation_points) and not closing.compensation_note.strip():
            errors["compensation_note"] = [_("Say what was given (voucher, refund, free service …).")]
    if errors or closing is None:
        raise ApplicationError(_("A ticket closes with its root cause, resolution and compensation."), fields=errors)
    ticket.root_cause = closing.root_cause.strip()
    ticket.resolution = closing.resolution.strip()
    ticket.compensation_amount = closing.compensation_amount
    ticket.compensation_points = closing.compensation_points
    ticket.compensation_note = closing.compensation_note.strip()
    ticket.resolved_at = now
    days = complaint_settings().follow_up_after_days
    ticket.follow_up_due_on = timezone.localtime(now).date() + timedelta(days=days)


@transaction.atomic
def ticket_reopen(*, actor: Membership, ticket: Ticket, note: str) -> Ticket:
    """The customer is not satisfied after all: back to listening, with a fresh resolution clock.
    Within the dealership's window the earlier resolution counts as not held."""
    require(actor, "complaints.work", _("Your role may not work complaint tickets."))
    ticket = _locked(ticket)
    if ticket.status not in (Status.CLOSED, Status.FOLLOWED_UP):
        raise ApplicationError(_("Only a closed ticket can be reopened."), code="not_closed")
    if not note.strip():
        raise ApplicationError(_("Say why the ticket is reopened."), fields={"note": [_("Required.")]})
    now = timezone.now()
    window = timedelta(days=complaint_settings().reopen_window_days)
    if ticket.resolved_at is not None and now - ticket.resolved_at <= window:
        ticket.resolution_failed = True
    calendar = sla.calendar_for(Tenant.objects.get(pk=ticket.tenant_id))
    resolution = sla.clock(calendar, start=now, minutes=ticket.resolution_target_minutes)
    ticket.resolution_due_at, ticket.resolution_warn_at = resolution.due_at, resolution.warn_at
    ticket.resolution_warned_at = ticket.resolution_breached_at = None
    ticket.reopen_count += 1
    previous, ticket.status = ticket.status, Status.REOPENED
    ticket.save()
    _event(ticket, TicketEvent.Kind.TRANSITION, actor=actor, note=note, from_status=previous, to_status=Status.REOPENED)
    _notify_watchers(ticket, actor, Status.REOPENED)
    return ticket


@transaction.atomic
def ticket_pause(*, actor: Membership, ticket: Ticket, note: str = "") -> Ticket:
    """Waiting on the customer (a photo, an appointment): the SLA clocks stop until resumed."""
    require(actor, "complaints.work", _("Your role may not work complaint tickets."))
    ticket = _locked(ticket)
    if ticket.status not in OPEN_STATUSES:
        raise ApplicationError(_("Only an open ticket can wait on the customer."), code="not_open")
    if ticket.paused_at is not None:
        return ticket
    ticket.paused_at = timezone.now()
    ticket.save(update_fields=["paused_at", "updated_at"])
    _event(ticket, TicketEvent.Kind.PAUSED, actor=actor, note=note)
    return ticket


@transaction.atomic
def ticket_resume(*, actor: Membership, ticket: Ticket, note: str = "") -> Ticket:
    require(actor, "complaints.work", _("Your role may not work complaint tickets."))
    ticket = _locked(ticket)
    if ticket.paused_at is None:
        return ticket
    _resume_if_paused(ticket, actor, timezone.now())
    ticket.save()
    if note:
        _event(ticket, TicketEvent.Kind.NOTE, actor=actor, note=note)
    return ticket


@transaction.atomic
def ticket_assign(*, actor: Membership, ticket: Ticket, assignee: Membership) -> Ticket:
    if not (
        actor.can("complaints.manage") or (actor.can("complaints.work") and ticket.assignee_id in (None, actor.pk))
    ):
        raise NotAllowed(_("Only a manager may hand over someone else's ticket."))
    if assignee.is_service_account or not assignee.is_active or not assignee.can("complaints.work"):
        raise ApplicationError(
            _("Choose an active staff member who works complaints."), fields={"assignee": [_("Not allowed.")]}
        )
    ticket = _locked(ticket)
    previous = ticket.assignee
    ticket.assignee = assignee
    ticket.save(update_fields=["assignee", "updated_at"])
    _event(
        ticket,
        TicketEvent.Kind.ASSIGNED,
        actor=actor,
        previous=previous.display_name if previous else "",
        assignee=assignee.display_name,
    )
    if assignee != actor:
        _notify_assigned(ticket)
    return ticket


@transaction.atomic
def ticket_note(*, actor: Membership, ticket: Ticket, note: str) -> TicketEvent:
    require(actor, "complaints.work", _("Your role may not work complaint tickets."))
    if not note.strip():
        raise ApplicationError(_("Write a note."), fields={"note": [_("Required.")]})
    return _event(ticket, TicketEvent.Kind.NOTE, actor=actor, note=note.strip())


@transaction.atomic
def ticket_watch(*, actor: Membership, ticket: Ticket, watch: bool = True) -> None:
    require(actor, "complaints.work", _("Your role may not work complaint tickets."))
    if watch:
        TicketWatcher.objects.get_or_create(ticket=ticket, membership=actor)
    else:
        TicketWatcher.objects.filter(ticket=ticket, membership=actor).delete()


@transaction.atomic
def ticket_link_customer(*, actor: Membership, ticket: Ticket, customer: Customer, vehicle: Vehicle | None) -> Ticket:
    require(actor, "complaints.work", _("Your role may not work complaint tickets."))
    if vehicle is not None and vehicle.customer_id != customer.pk:
        raise ApplicationError(
            _("That vehicle belongs to another customer."), fields={"vehicle": [_("Not this customer's.")]}
        )
    ticket = _locked(ticket)
    ticket.customer, ticket.vehicle = customer, vehicle
    ticket.save(update_fields=["customer", "vehicle", "updated_at"])
    _event(ticket, TicketEvent.Kind.CUSTOMER_LINKED, actor=actor, customer=customer.pk)
    return ticket


@transaction.atomic
def ticket_attach(*, actor: Membership | None, ticket: Ticket, upload: Any) -> TicketAttachment:
    """Store a photo, PDF or recording after checking its size and what it really contains."""
    require(actor, "complaints.work", _("Your role may not work complaint tickets."))
    content_type = check_upload(upload)
    attachment = TicketAttachment(
        ticket=ticket,
        file=upload,
        original_name=upload.name[:255],
        content_type=content_type,
        size=upload.size,
        uploaded_by=actor,
    )
    attachment.save()
    _event(ticket, TicketEvent.Kind.ATTACHMENT, actor=actor, note=attachment.original_name, attachment=attachment.pk)
    return attachment


# --- Settings --------------------------------------------------------------------------------------


@transaction.atomic
def complaint_settings_update(*, actor: Membership, data: dict[str, Any]) -> ComplaintSettings:
    require(actor, "complaints.manage", _("Only managers may change complaint settings."))
    settings = complaint_settings()
    settings_assign(settings, data, invalid=_("Some settings are not valid."))
    settings.save()
    return settings


@transaction.atomic
def sla_policy_set(
    *,
    actor: Membership,
    severity: str,
    category: ComplaintCategory | None,
    response_minutes: int,
    resolution_minutes: int,
) -> SlaPolicy:
    require(actor, "complaints.manage", _("Only managers may change SLA targets."))
    if resolution_minutes < response_minutes:
        raise ApplicationError(
            _("Resolution cannot be due before the first response."),
            fields={"resolution_minutes": [_("Must be at least the first-response target.")]},
        )
    policy, _created = SlaPolicy.objects.update_or_create(
        severity=severity,
        category=category,
        defaults={"first_response_minutes": response_minutes, "resolution_minutes": resolution_minutes},
    )
    return policy


@transaction.atomic
def category_save(*, actor: Membership, code: str, name: str, is_active: bool = True) -> ComplaintCategory:
    require(actor, "complaints.manage", _("Only managers may change complaint categories."))
    category, _created = ComplaintCategory.objects.update_or_create(
        code=code, defaults={"name": name.strip(), "is_active": is_active}
    )
    return category


# --- The SLA check ---------------------------------------------------------------------------------

_OPEN = tuple(str(s) for s in OPEN_STATUSES)


def _fire(stage_sql: str, params: list[Any]) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(stage_sql, params)
        return [row[0] for row in cursor.fetchall()]


def sla_check(*, now: datetime | None = None) -> dict[str, int]:
    """Warn assignees at 80% and escalate to managers at breach, for the active dealership. Each
    stage fires once: a conditional UPDATE … RETURNING claims it, so overlapping checks cannot both
    notify. Paused tickets are skipped (their clocks are stopped)."""
    now = now or timezone.now()
    fired: dict[str, int] = {}
    stages = (
        ("response_breached", "response_breached_at", "response_due_at", "first_response_at IS NULL"),
        ("resolution_breached", "resolution_breached_at", "resolution_due_at", "TRUE"),
        ("response_warned", "response_warned_at", "response_warn_at", "first_response_at IS NULL"),
        ("resolution_warned", "resolution_warned_at", "resolution_warn_at", "TRUE"),
    )
    for stage, claimed, moment, condition in stages:
        # a breach also claims the warning, so a ticket found late is escalated, not warned
        also = (
            f", {claimed.replace('breached', 'warned')} = coalesce({claimed.replace('breached', 'warned')}, %s)"
            if "breached" in stage
            else ""
        )
        params: list[Any] = [now] + ([now] if also else []) + [list(_OPEN), now]
        ids = _fire(
            f"""UPDATE complaints_ticket SET {claimed} = %s{also}
                 WHERE {claimed} IS NULL AND status = ANY(%s) AND paused_at IS NULL AND {condition}
                   AND {moment} <= %s
             RETURNING id""",
            params,
        )
        fired[stage] = len(ids)
        for ticket in Ticket.objects.filter(pk__in=ids).select_related("assignee__user"):
            _announce(ticket, stage)
    return fired


def _announce(ticket: Ticket, stage: str) -> None:
    what = (
        pgettext("sla clock", "First response") if stage.startswith("response") else pgettext("sla clock", "Resolution")
    )
    due = ticket.response_due_at if stage.startswith("response") else ticket.resolution_due_at
    local_due = timezone.localtime(due).strftime("%Y-%m-%d %H:%M")
    if stage.endswith("warned"):
        title = _("Complaint %(number)s: %(what)s due at %(due)s") % {
            "number": ticket.number,
            "what": what,
            "due": local_due,
        }
        recipients = [ticket.assignee] if ticket.assignee else _managers()
        kind = TicketEvent.Kind.SLA_WARNING
    else:
        title = _("Complaint %(number)s: %(what)s overdue since %(due)s") % {
            "number": ticket.number,
            "what": what,
            "due": local_due,
        }
        recipients = _managers() + ([ticket.assignee] if ticket.assignee else [])
        kind = TicketEvent.Kind.SLA_BREACH
    _event(ticket, kind, actor=None, note=title, stage=stage)
    notify(
        recipients=recipients,
        kind=str(kind),
        title=title,
        body=ticket.subject,
        url=ticket_url(ticket),
        key=f"ticket:{ticket.pk}:{stage}:{ticket.reopen_count}",
        email=True,
    )
