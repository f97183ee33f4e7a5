"""Every write of sales: capturing and assigning leads, working them through their stages,
walk-ins, test drives, quotes, orders, delivery, defeats. The nightly lead work is in nightly.py.

docs/sales.md states each rule exactly; the functions below are where they are kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.business_time import BusinessCalendar, NoBusinessHours
from crm.core.errors import ApplicationError, NotAllowed
from crm.core.notifications import notify
from crm.tenancy.access import require
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import Membership, Tenant, dealership_settings, settings_assign
from crm.tenancy.roles import Role
from customers.models import Customer, ListFlag, Order, Touchpoint
from customers.records import customer_create, order_create, prospect_owner_follow, touchpoint_log, vehicle_create
from customers.validators import normalize_cn_mobile, normalize_person_name
from followups.models import Disposition
from followups.models import Reason as FollowupReason
from followups.services import followup_log_outcome, followup_subject_plan
from sales.models import (
    ONLINE_SOURCES,
    OPEN_STAGES,
    STAGE_ORDER,
    TIMEFRAME_LEVEL,
    ZERO,
    Conflict,
    ConsultantDuty,
    DefeatReason,
    DefeatStatus,
    DemoVehicle,
    Lead,
    LeadEvent,
    Level,
    Payment,
    Quote,
    SalesSettings,
    ShowroomVisit,
    Source,
    Stage,
    TestDrive,
    Timeframe,
)
from sales.uploads import check_agreement

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
MAX_APPOINTMENT_DAYS = 90
MAX_TEST_DRIVE_HOURS = 4


# --- settings, lists, duty --------------------------------------------------------------------------


def sales_settings() -> SalesSettings:
    return dealership_settings(SalesSettings)


@transaction.atomic
def sales_settings_update(*, actor: Membership, data: dict[str, Any]) -> SalesSettings:
    require(actor, "sales.manage", _("Your role may not change the sales rules."))
    settings = sales_settings()
    settings_assign(settings, data, invalid=_("Some settings are not valid."))
    settings.save()
    return settings


# The reasons a new dealership starts with: (code, label, asks for the competitor)
DEFAULT_DEFEAT_REASONS = (
    ("price", "价格不满意 / Price", False),
    ("competitor", "购买竞品 / Bought a competitor", True),
    ("no_stock", "无现车 / No stock", False),
    ("loan_refused", "贷款未通过 / Loan refused", False),
    ("plan_changed", "购车计划取消 / Plan changed", False),
    ("unreachable", "联系不上 / Unreachable", False),
    ("other", "其他 / Other", False),
)


def defeat_reasons_ensure() -> list[DefeatReason]:
    """The dealership's reasons, made from the defaults on first use."""
    if not DefeatReason.objects.exists():
        DefeatReason.objects.bulk_create(
            [
                DefeatReason(code=code, label=label, needs_competitor=competitor, position=index)
                for index, (code, label, competitor) in enumerate(DEFAULT_DEFEAT_REASONS)
            ],
            ignore_conflicts=True,
        )
    return list(DefeatReason.objects.filter(is_active=True).order_by("position", "id"))


@transaction.atomic
def defeat_reason_save(
    *, actor: Membership, code: str, label: str, needs_competitor: bool = False, is_active: bool = True
) -> DefeatReason:
    require(actor, "sales.manage", _("Your role may not change the defeat reasons."))
    reason = DefeatReason.objects.filter(code=code).first() or DefeatReason(code=code)
    reason.label, reason.needs_competitor, reason.is_active = label.strip(), needs_competitor, is_active
    if reason.pk is None:
        reason.position = (DefeatReason.objects.aggregate(m=Max("position"))["m"] or 0) + 1
    try:
        reason.full_clean(exclude=["tenant"])
    except ValidationError as error:
        raise ApplicationError(_("The reason cannot be saved."), fields=error.message_dict) from None
    reason.save()
    return reason


def _is_consultant(member: Membership | None) -> bool:
    return (
        member is not None
        and member.is_active
        and not member.is_service_account
        and member.can("sales.work")
        and member.role in (Role.SALES_CONSULTANT, Role.MANAGER)
    )


@transaction.atomic
def duty_set(
    *, actor: Membership, member: Membership, on_duty: bool, brands: list[str] | None = None
) -> ConsultantDuty:
    """Put a consultant on or off duty (a consultant may do it for themself) and set their brands."""
    if member.pk != actor.pk:
        require(actor, "sales.manage", _("Your role may not set a colleague's duty."))
    if not _is_consultant(member):
        raise ApplicationError(
            _("Only an active sales consultant or manager takes leads."), fields={"member": [_("Does not sell.")]}
        )
    duty, _created = ConsultantDuty.objects.select_for_update().get_or_create(member=member)
    duty.on_duty = on_duty
    if brands is not None:
        duty.brands = sorted({b.strip() for b in brands if b.strip()})[:20]
    duty.save()
    return duty


class RoundRobin:
    """The consultants on duty, locked and read once, handing leads out in turn (docs/sales.md#round-robin):
    each lead goes to the eligible consultant who got a lead longest ago (never: first), ties by the
    duty's id; with assign_by_brand only those listing the lead's brand or no brand at all. `flush()`
    writes the new last-assigned times in one statement."""

    def __init__(self) -> None:
        self.by_brand = sales_settings().assign_by_brand
        self.duties = list(
            ConsultantDuty.objects.select_for_update(of=("self",))
            .select_related("member__user")
            .filter(on_duty=True, member__is_active=True, member__role__in=[Role.SALES_CONSULTANT, Role.MANAGER])
            .order_by("id")
        )
        self.touched: set[int] = set()

    def pick(self, *, brand: str, exclude_id: int | None = None) -> Membership | None:
        eligible = [
            duty
            for duty in self.duties
            if duty.member_id != exclude_id
            and (not (self.by_brand and brand) or not duty.brands or brand in duty.brands)
        ]
        if not eligible:
            return None
        duty = min(
            eligible,
            key=lambda d: (
                d.last_assigned_at is not None,
                d.last_assigned_at.timestamp() if d.last_assigned_at else 0,
                d.pk,
            ),
        )
        duty.last_assigned_at = timezone.now()
        self.touched.add(duty.pk)
        return duty.member

    def flush(self) -> None:
        changed = [duty for duty in self.duties if duty.pk in self.touched]
        if changed:
            ConsultantDuty.objects.bulk_update(changed, ["last_assigned_at"])
        self.touched.clear()


def _next_on_duty(*, brand: str, exclude: Membership | None = None) -> Membership | None:
    """One lead's consultant by the round-robin (None: nobody eligible is on duty)."""
    robin = RoundRobin()
    member = robin.pick(brand=brand, exclude_id=exclude.pk if exclude else None)
    robin.flush()
    return member


# --- events, follow-ups, helpers ---------------------------------------------------------------------


def _event(
    lead: Lead,
    kind: str,
    actor: Membership | None,
    summary: str = "",
    *,
    at: datetime | None = None,
    from_owner: Membership | None = None,
    to_owner: Membership | None = None,
    **data: Any,
) -> LeadEvent:
    return LeadEvent.objects.create(
        lead=lead,
        kind=kind,
        at=at or timezone.now(),
        actor=actor if actor is not None and not actor.is_service_account else None,
        from_owner=from_owner,
        to_owner=to_owner,
        summary=summary[:300],
        data=data,
    )


# A lead's follow-up in the daily queue is called in the order of its intent: H first.
LEVEL_PRIORITY = {Level.H: 1, Level.A: 2, Level.B: 3, Level.C: 4}


def lead_url(lead: Lead) -> str:
    return reverse("sales:lead", args=[lead.pk])


def _replan(lead: Lead, actor: Membership | None = None) -> None:
    """The lead's one follow-up in the daily queue (reason "lead"): on its next follow-up day, held
    by its consultant; none for a pool, dormant or closed lead."""
    due = lead.next_followup_on if (lead.is_open and lead.owner_id and lead.dormant_since is None) else None
    followup_subject_plan(
        customer=lead.customer,
        reason=FollowupReason.LEAD,
        source_key=f"lead:{lead.pk}:{due.isoformat() if due else '-'}:{timezone.now().timestamp():.6f}",
        due_from=due,
        assignee=lead.owner,
        note=_("Lead %(level)s · %(model)s") % {"level": lead.level, "model": lead.series or lead.brand or "-"},
        priority=LEVEL_PRIORITY[Level(lead.level)],
        actor=actor,
    )


def _cadence_from(lead: Lead, day: date) -> None:
    lead.next_followup_on = day + timedelta(days=sales_settings().cadence_days(lead.level))


def _advance(lead: Lead, stage: str, at: datetime) -> None:
    """Move an open lead forward to `stage` (never back) and set its milestone. Any stage past
    "new" is also a contact: the first one sets the first contact (and the first response)."""
    if stage != Stage.NEW and lead.first_contact_at is None:
        lead.first_contact_at = at
        if lead.response_minutes is None:
            lead.response_minutes = 0 if lead.source in (Source.WALK_IN, Source.PHONE) else _response_minutes(lead, at)
            lead.response_due_at = None
    milestones = {
        Stage.CONTACTED: "first_contact_at",
        Stage.INVITED: "invited_at",
        Stage.VISITED: "visited_at",
        Stage.TEST_DRIVE: "test_drive_at",
        Stage.NEGOTIATION: "quoted_at",
        Stage.ORDERED: "ordered_at",
        Stage.DELIVERED: "delivered_at",
    }
    field = milestones.get(Stage(stage))
    if field and getattr(lead, field) is None:
        setattr(lead, field, at)
    if STAGE_ORDER.index(Stage(stage)) > STAGE_ORDER.index(Stage(lead.stage)):
        lead.stage = stage


def _touch(lead: Lead, at: datetime) -> None:
    """A contact with the person: the lead is worked (not dormant) and its cadence restarts."""
    at = min(at, timezone.now())  # a drive recorded before its slot ended is a contact now
    lead.last_contact_at = max(lead.last_contact_at or at, at)
    lead.dormant_since = None
    _cadence_from(lead, timezone.localdate(at))


def _save(lead: Lead) -> None:
    lead.updated_at = timezone.now()
    try:
        # the unique constraints are the database's to enforce (an IntegrityError is handled)
        lead.full_clean(
            exclude=["tenant", "customer", "owner", "referrer", "order_quote", "defeat_reason"],
            validate_constraints=False,
        )
    except ValidationError as error:
        raise ApplicationError(_("The lead cannot be saved."), fields=error.message_dict) from None
    lead.save()


def _locked(lead: Lead) -> Lead:
    return Lead.objects.select_for_update(of=("self",)).select_related("customer", "owner__user").get(pk=lead.pk)


def may_work(actor: Membership, lead: Lead) -> bool:
    """Its consultant, whoever sees every lead (and may work), and anyone who works sales for a pool lead."""
    if not actor.can("sales.work"):
        return False
    return actor.can("sales.view_all") or lead.owner_id == actor.pk or lead.owner_id is None


def _check_work(actor: Membership, lead: Lead) -> None:
    require(actor, "sales.work", _("Your role may not work leads."))
    if not may_work(actor, lead):
        raise NotAllowed(_("This lead is a colleague's."))


def _check_open(lead: Lead) -> None:
    if not lead.is_open:
        raise ApplicationError(
            _("This lead is %(stage)s already.") % {"stage": Stage(lead.stage).label}, code="closed", status_code=409
        )


def _response_due(lead: Lead) -> datetime | None:
    if lead.source not in ONLINE_SOURCES or lead.assigned_at is None:
        return None
    tenant = Tenant.objects.get(pk=require_tenant_id())
    try:
        return BusinessCalendar.for_tenant(tenant).add_minutes(lead.assigned_at, sales_settings().response_minutes)
    except NoBusinessHours:
        return None


def _response_minutes(lead: Lead, at: datetime) -> int:
    """Business minutes from being given out (or captured) to `at`, halves rounded up."""
    from crm.core.business_time import whole_minutes

    tenant = Tenant.objects.get(pk=require_tenant_id())
    start = lead.assigned_at or lead.created_at
    return whole_minutes(BusinessCalendar.for_tenant(tenant).duration_between(start, at))


def _notify_owner(lead: Lead, kind: str, title: str) -> None:
    if lead.owner is not None:
        notify(
            recipients=[lead.owner], kind=kind, title=title, url=lead_url(lead), key=f"{kind}:{lead.pk}:{title}"[:120]
        )


def _managers() -> list[Membership]:
    return list(Membership.objects.filter(role=Role.MANAGER, is_active=True).select_related("user"))


# --- capture ---------------------------------------------------------------------------------------

CAPTURE_FIELDS = (
    "name",
    "mobile",
    "wechat",
    "source",
    "source_system",
    "external_id",
    "campaign",
    "referrer",
    "brand",
    "series",
    "other_models",
    "budget",
    "timeframe",
    "payment",
    "trade_in",
    "level",
    "notes",
    "owner",
    "appointment_at",
)


@dataclass(frozen=True)
class Captured:
    lead: Lead
    created: bool  # False: an earlier lead (same external id, same person) took the enquiry
    notice: str = ""  # what the person capturing should know (whose lead it is, a conflict raised)


def _clean_capture(data: dict[str, Any]) -> dict[str, Any]:
    unknown = set(data) - set(CAPTURE_FIELDS)
    errors: dict[str, list[str]] = {f: [_("Not a field you can set.")] for f in sorted(unknown)}
    clean: dict[str, Any] = {k: v for k, v in data.items() if k in CAPTURE_FIELDS}
    for field in (
        "name",
        "mobile",
        "wechat",
        "source_system",
        "external_id",
        "campaign",
        "brand",
        "series",
        "other_models",
        "trade_in",
        "notes",
    ):
        value = clean.get(field, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            errors[field] = [_("Enter text.")]
            continue
        clean[field] = value.strip()
    try:
        clean["name"] = normalize_person_name(clean.get("name", ""))
    except ValidationError as error:
        errors["name"] = list(error.messages)
    if not clean.get("mobile"):
        errors["mobile"] = [_("A lead needs a mobile number.")]
    elif "mobile" not in errors:
        try:
            clean["mobile"] = normalize_cn_mobile(clean["mobile"])
        except ValidationError as error:
            errors["mobile"] = list(error.messages)
    if clean.get("source") not in Source.values:
        errors["source"] = [_("Choose where the lead came from.")]
    elif clean["source"] == Source.REFERRAL and clean.get("referrer") is None:
        errors["referrer"] = [_("Say which customer referred them.")]
    if clean.get("external_id") and not clean.get("source_system"):
        errors["source_system"] = [_("Say which system the external id is from.")]
    for field, choices, default in (
        ("timeframe", Timeframe.values, Timeframe.MONTH),
        ("payment", Payment.values, Payment.UNDECIDED),
    ):
        clean[field] = clean.get(field) or default
        if clean[field] not in choices:
            errors[field] = [_("Not one of the choices.")]
    if clean.get("level") not in (None, "", *Level.values):
        errors["level"] = [_("Choose H, A, B or C.")]
    budget = clean.get("budget")
    if budget not in (None, ""):
        try:
            clean["budget"] = Decimal(str(budget)).quantize(CENT, ROUND_HALF_UP)
            if clean["budget"] < 0 or clean["budget"] >= Decimal("1e10"):
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            errors["budget"] = [_("Enter an amount of at least 0.")]
    else:
        clean["budget"] = None
    appointment = clean.get("appointment_at")
    if appointment is not None and (not isinstance(appointment, datetime) or appointment < timezone.now()):
        errors["appointment_at"] = [_("An appointment cannot be in the past.")]
    if errors:
        raise ApplicationError(_("The lead cannot be saved."), fields=errors)
    return clean


def _owner_for(actor: Membership, clean: dict[str, Any], customer: Customer | None) -> Membership | None:
    owner = clean.get("owner")
    if owner is not None:
        if owner.pk != actor.pk and not actor.can("sales.manage") and not actor.is_service_account:
            raise NotAllowed(_("Only a manager gives a lead to a colleague."))
        if not _is_consultant(owner):
            raise ApplicationError(
                _("Leads go to an active sales consultant or manager."), fields={"owner": [_("Does not sell.")]}
            )
        return owner
    # a known person's consultant keeps them (the first owner)
    if customer is not None and _is_consultant(customer.owner):
        return customer.owner
    # a consultant's own capture (the walk-in they met, the call they took) is theirs
    if actor.role == Role.SALES_CONSULTANT:
        return actor
    if sales_settings().auto_assign:
        return _next_on_duty(brand=clean.get("brand", ""))
    return None


def _protected(lead: Lead, on: datetime) -> bool:
    """The owner's protection: within protection_days of their last contact (or of getting it)."""
    start = lead.last_contact_at or lead.assigned_at or lead.created_at
    return on < start + timedelta(days=sales_settings().protection_days)


def _enquiry_again(actor: Membership, lead: Lead, clean: dict[str, Any]) -> Captured:
    """A second enquiry of a person with an open lead: recorded on it; a colleague's claim is a conflict."""
    lead = _locked(lead)
    source_label = Source(clean["source"]).label
    enquiry = _event(
        lead,
        LeadEvent.Kind.ENQUIRY,
        actor,
        f"{source_label} {clean.get('series', '')}".strip(),
        source=clean["source"],
        campaign=clean.get("campaign", ""),
        source_system=clean.get("source_system", ""),
        external_id=clean.get("external_id", ""),
    )
    if lead.owner is not None:
        notify(
            recipients=[lead.owner],
            kind="lead_enquiry",
            title=_("%(name)s enquired again") % {"name": lead.name},
            url=lead_url(lead),
            key=f"lead_enquiry:{enquiry.pk}",
        )
    notice = ""
    claimant = actor if actor.role == Role.SALES_CONSULTANT else None
    if lead.owner_id is None and claimant is not None:
        _assign(lead, claimant, actor, _("Took it while capturing"))
        _save(lead)
        _replan(lead, actor)
        notice = _("This person was in the pool; the lead is yours now.")
    elif claimant is not None and lead.owner_id != claimant.pk:
        if _protected(lead, timezone.now()):
            notice = _("This person is %(owner)s's lead; they were told of the enquiry.") % {
                "owner": lead.owner.display_name if lead.owner else "-"
            }
        else:
            conflict, created = Conflict.objects.get_or_create(
                lead=lead, status=Conflict.Status.PENDING, defaults={"claimant": claimant, "owner": lead.owner}
            )
            if created:
                _event(lead, LeadEvent.Kind.CONFLICT, actor, claimant.display_name, claimant=claimant.pk)
                notify(
                    recipients=_managers(),
                    kind="lead_conflict",
                    title=_("Ownership conflict: %(name)s") % {"name": lead.name},
                    url=lead_url(lead),
                    key=f"lead_conflict:{conflict.pk}",
                )
            notice = _("This person is %(owner)s's lead; their protection has run out, so a manager decides.") % {
                "owner": lead.owner.display_name if lead.owner else "-"
            }
    return Captured(lead=lead, created=False, notice=notice)


@transaction.atomic
def lead_capture(*, actor: Membership, data: dict[str, Any], at: datetime | None = None) -> Captured:
    """A new lead, or the enquiry recorded on the person's open lead (docs/sales.md#capture).

    Idempotent by (source system, external id): the same lead posted twice is one lead."""
    require(actor, "sales.work", _("Your role may not capture leads."))
    clean = _clean_capture(data)
    at = at or timezone.now()
    if clean.get("external_id"):
        earlier = Lead.objects.filter(source_system=clean["source_system"], external_id=clean["external_id"]).first()
        if earlier is not None:
            return Captured(lead=earlier, created=False)
        # the same enquiry posted again, whose first post joined the person's open lead: recorded once
        joined = (
            LeadEvent.objects.filter(
                kind=LeadEvent.Kind.ENQUIRY,
                data__source_system=clean["source_system"],
                data__external_id=clean["external_id"],
            )
            .select_related("lead")
            .first()
        )
        if joined is not None:
            return Captured(lead=joined.lead, created=False)
    customers = Customer.objects.filter(
        Q(mobile=clean["mobile"]) | Q(mobile_secondary=clean["mobile"]), merged_into__isnull=True
    ).order_by("pk")
    customer = customers.first()
    open_lead = (
        Lead.objects.filter(Q(mobile=clean["mobile"]) | Q(customer=customer) if customer else Q(mobile=clean["mobile"]))
        .filter(stage__in=OPEN_STAGES)
        .select_related("owner__user", "customer")
        .first()
    )
    if open_lead is not None:
        return _enquiry_again(actor, open_lead, clean)
    if customer is not None and customer.list_flag == ListFlag.BLACK:
        raise ApplicationError(
            _("This person is on the black list."), code="black_listed", fields={"mobile": [_("On the black list.")]}
        )
    owner = _owner_for(actor, clean, customer)
    if customer is None:
        customer = customer_create(
            actor=actor,
            data={
                "name": clean["name"],
                "mobile": clean["mobile"],
                "source": _CUSTOMER_SOURCE.get(clean["source"], Customer.Source.OTHER),
                "owner": owner,
                # they left the number to be called about their enquiry; SMS and WeChat are not assumed
                "consent_call": True,
            },
        )
    level = clean.get("level") or TIMEFRAME_LEVEL[Timeframe(clean["timeframe"])]
    lead = Lead(
        customer=customer,
        owner=owner,
        level=level,
        created_at=at,
        assigned_at=at if owner is not None else None,
        **{k: v for k, v in clean.items() if k not in ("owner", "level", "appointment_at")},
    )
    if clean["source"] == Source.WALK_IN:
        _advance(lead, Stage.VISITED, at)
    elif clean["source"] == Source.PHONE:
        _advance(lead, Stage.CONTACTED, at)
    if lead.first_contact_at is not None:
        _touch(lead, at)
    else:
        _cadence_from(lead, timezone.localdate(at) - timedelta(days=sales_settings().cadence_days(level)))
    if clean.get("appointment_at"):
        lead.appointment_at = clean["appointment_at"]
        _advance(lead, Stage.INVITED, at)
    try:
        with transaction.atomic():
            _save(lead)
    except IntegrityError:
        # the same external id or person raced in: that capture won; this enquiry joins it
        earlier = Lead.objects.filter(
            Q(source_system=clean.get("source_system", ""), external_id=clean.get("external_id") or "-")
            | Q(customer=customer, stage__in=OPEN_STAGES)
        ).first()
        if earlier is None:
            raise
        return Captured(lead=earlier, created=False)
    lead.response_due_at = _response_due(lead)
    if lead.response_due_at is not None:
        lead.save(update_fields=["response_due_at"])
    _event(lead, LeadEvent.Kind.CREATED, actor, str(Source(lead.source).label), at=at, source=lead.source)
    if owner is not None:
        _event(lead, LeadEvent.Kind.ASSIGNED, actor, owner.display_name, at=at, to_owner=owner)
        if owner.pk != actor.pk:
            _notify_owner(lead, "lead_assigned", _("New lead: %(name)s") % {"name": lead.name})
    if clean.get("referrer") is not None:
        _event(lead, LeadEvent.Kind.EDITED, actor, _("Referred by %(name)s") % {"name": clean["referrer"].name})
    _replan(lead, actor)
    return Captured(lead=lead, created=True)


_CUSTOMER_SOURCE = {
    Source.WALK_IN: Customer.Source.WALK_IN,
    Source.PHONE: Customer.Source.PHONE,
    Source.ONLINE: Customer.Source.AUTOHOME,
    Source.BRAND: Customer.Source.OTHER,
    Source.EVENT: Customer.Source.EVENT,
    Source.REFERRAL: Customer.Source.REFERRAL,
    Source.REPURCHASE: Customer.Source.OTHER,
}


# --- ownership --------------------------------------------------------------------------------------


def _assign(lead: Lead, to: Membership | None, actor: Membership | None, why: str, kind: str = "") -> None:
    before = lead.owner
    lead.owner = to
    lead.assigned_at = timezone.now() if to is not None else None
    lead.response_due_at = _response_due(lead) if lead.first_contact_at is None else None
    if to is not None and lead.next_followup_on is not None:
        # the new consultant starts with the lead due today at the latest, never overdue
        lead.next_followup_on = max(lead.next_followup_on, timezone.localdate())
    _event(
        lead,
        kind or (LeadEvent.Kind.ASSIGNED if to is not None else LeadEvent.Kind.RECLAIMED),
        actor,
        why,
        from_owner=before,
        to_owner=to,
    )
    prospect_owner_follow(customer=lead.customer, owner=to)


@transaction.atomic
def lead_assign(*, actor: Membership, lead: Lead, to: Membership | None, note: str = "") -> Lead:
    """A manager gives a lead to a consultant or back to the pool; a consultant takes a pool lead."""
    require(actor, "sales.work", _("Your role may not work leads."))
    lead = _locked(lead)
    _check_open(lead)
    taking = to is not None and to.pk == actor.pk and lead.owner_id is None
    if not taking and not actor.can("sales.manage"):
        raise NotAllowed(_("Only a manager gives leads out or takes them back."))
    if to is not None and not _is_consultant(to):
        raise ApplicationError(
            _("Leads go to an active sales consultant or manager."), fields={"to": [_("Does not sell.")]}
        )
    if (to.pk if to else None) == lead.owner_id:
        return lead
    _assign(lead, to, actor, note.strip() or (_("Taken from the pool") if taking else ""))
    _save(lead)
    _replan(lead, actor)
    if to is not None and to.pk != actor.pk:
        _notify_owner(lead, "lead_assigned", _("Lead given to you: %(name)s") % {"name": lead.name})
    return lead


@transaction.atomic
def conflict_decide(*, actor: Membership, conflict: Conflict, give_to_claimant: bool) -> Conflict:
    require(actor, "sales.manage", _("Only a manager decides an ownership conflict."))
    conflict = Conflict.objects.select_for_update().get(pk=conflict.pk)
    if conflict.status != Conflict.Status.PENDING:
        raise ApplicationError(_("This conflict is decided already."), code="decided", status_code=409)
    lead = _locked(conflict.lead)
    conflict.status = Conflict.Status.MOVED if give_to_claimant else Conflict.Status.KEPT
    conflict.decided_by, conflict.decided_at = actor, timezone.now()
    conflict.save()
    _event(lead, LeadEvent.Kind.CONFLICT_DECIDED, actor, conflict.get_status_display(), status=conflict.status)
    if give_to_claimant and not _is_consultant(conflict.claimant):
        raise ApplicationError(
            _("The claimant no longer sells here; keep the lead with its owner or give it to someone else."),
            fields={"give_to_claimant": [_("Not an active consultant.")]},
        )
    if give_to_claimant and lead.is_open:
        _assign(lead, conflict.claimant, actor, _("Ownership conflict decided"))
        _save(lead)
        _replan(lead, actor)
    notify(
        recipients=[m for m in (conflict.claimant, conflict.owner) if m is not None],
        kind="lead_conflict",
        title=_("Conflict decided: %(name)s · %(outcome)s")
        % {"name": lead.name, "outcome": conflict.get_status_display()},
        url=lead_url(lead),
        key=f"lead_conflict_decided:{conflict.pk}",
    )
    return conflict


# --- working a lead ---------------------------------------------------------------------------------

EDITABLE_FIELDS = (
    "name",
    "wechat",
    "campaign",
    "brand",
    "series",
    "other_models",
    "budget",
    "timeframe",
    "payment",
    "trade_in",
    "level",
    "notes",
    "next_followup_on",
)


@transaction.atomic
def lead_update(*, actor: Membership, lead: Lead, data: dict[str, Any]) -> Lead:
    """Change what is known of the lead; a new level restarts the cadence from the last contact."""
    _check_work(actor, lead)
    lead = _locked(lead)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown fields."), fields={f: [_("Not a field you can set.")] for f in sorted(unknown)}
        )
    errors: dict[str, list[str]] = {}
    if "name" in data:
        try:
            data["name"] = normalize_person_name(str(data["name"] or ""))
        except ValidationError as error:
            errors["name"] = list(error.messages)
    if "level" in data and data["level"] not in Level.values:
        errors["level"] = [_("Choose H, A, B or C.")]
    next_on = data.get("next_followup_on")
    if next_on is not None and (not isinstance(next_on, date) or next_on < timezone.localdate()):
        errors["next_followup_on"] = [_("Choose today or a later day.")]
    if errors:
        raise ApplicationError(_("The lead cannot be saved."), fields=errors)
    before_level = lead.level
    changed = sorted(k for k, v in data.items() if getattr(lead, k) != v)
    for field, value in data.items():
        setattr(lead, field, "" if value is None and field not in ("budget", "next_followup_on") else value)
    if lead.level != before_level:
        _event(
            lead, LeadEvent.Kind.LEVEL, actor, f"{before_level} → {lead.level}", before=before_level, after=lead.level
        )
        if "next_followup_on" not in data:
            _cadence_from(lead, timezone.localdate(lead.last_contact_at or lead.created_at))
    elif changed:
        _event(lead, LeadEvent.Kind.EDITED, actor, ", ".join(changed), fields=changed)
    _save(lead)
    _replan(lead, actor)
    return lead


# How a lead's contact outcome is recorded in the person's history and the follow-up queue.
CONTACT_DISPOSITIONS = (
    Disposition.FEEDBACK,
    Disposition.APPOINTMENT,
    Disposition.CALLBACK,
    Disposition.NOT_INTERESTED,
    Disposition.NO_ANSWER,
    Disposition.WRONG_NUMBER,
)
NOT_REACHED = (Disposition.NO_ANSWER, Disposition.WRONG_NUMBER)


def _lead_followup_open(lead: Lead) -> bool:
    from followups.models import ACTIVE_STATUSES, Followup

    return Followup.objects.filter(
        customer=lead.customer, reason=FollowupReason.LEAD, status__in=ACTIVE_STATUSES
    ).exists()


def lead_attempt_logged(*, followup: Any, attempt: Any, actor: Membership) -> None:
    """followups → sales: an attempt on a lead's follow-up, wherever it was logged (the queue or
    the lead page) is a contact of the lead (the hook registered in hooks.py)."""
    lead = (
        Lead.objects.filter(customer_id=followup.customer_id, stage__in=OPEN_STAGES)
        .select_related("customer", "owner__user")
        .first()
    )
    if lead is None:
        return
    _contacted(_locked(lead), attempt.occurred_at, attempt.disposition, actor, attempt.notes)


def _contacted(lead: Lead, at: datetime, disposition: str, actor: Membership, notes: str) -> None:
    """The first attempt of any outcome is the response; only reaching the person is a contact."""
    if lead.first_contact_at is None and lead.response_minutes is None:
        lead.response_minutes = _response_minutes(lead, at)
        lead.response_due_at = None
    if disposition not in NOT_REACHED:
        _advance(lead, Stage.CONTACTED, at)
        _touch(lead, at)
    _event(
        lead,
        LeadEvent.Kind.CONTACT,
        actor,
        str(Disposition(disposition).label),
        at=at,
        disposition=disposition,
        notes=notes[:300],
    )
    if disposition in NOT_REACHED and not _lead_followup_open(lead):
        # the follow-up ended without reaching them (a wrong number, or unreachable after its
        # attempts): the lead is tried again at its next cadence step from today
        _cadence_from(lead, timezone.localdate(at))
    _save(lead)
    _replan(lead, actor)


@transaction.atomic
def lead_contact_log(
    *,
    actor: Membership,
    lead: Lead,
    disposition: str,
    notes: str = "",
    channel: str = Touchpoint.Channel.CALL,
    callback_on: date | None = None,
    occurred_at: datetime | None = None,
) -> Lead:
    """A call, WeChat or SMS with the person. Through the lead's open follow-up when there is one
    (so the queue and the lead tell the same story), else straight into the person's history."""
    _check_work(actor, lead)
    lead = _locked(lead)
    _check_open(lead)
    if disposition not in CONTACT_DISPOSITIONS:
        raise ApplicationError(_("The contact was not recorded."), fields={"disposition": [_("Not an outcome.")]})
    if channel not in (Touchpoint.Channel.CALL, Touchpoint.Channel.WECHAT, Touchpoint.Channel.SMS):
        raise ApplicationError(_("The contact was not recorded."), fields={"channel": [_("Not a channel.")]})
    at = occurred_at or timezone.now()
    if at > timezone.now() + timedelta(minutes=5):
        raise ApplicationError(_("A contact cannot be in the future."), fields={"occurred_at": [_("In the future.")]})
    from followups.models import ACTIVE_STATUSES, Followup

    followup = Followup.objects.filter(
        customer=lead.customer, reason=FollowupReason.LEAD, status__in=ACTIVE_STATUSES
    ).first()
    if followup is not None:
        followup_log_outcome(
            actor=actor,
            followup=followup,
            disposition=disposition,
            notes=notes,
            callback_on=callback_on,
            occurred_at=occurred_at,
        )  # the follow-up's hook records the contact on the lead
        lead.refresh_from_db()
    else:
        touchpoint_log(
            actor=actor,
            customer=lead.customer,
            channel=channel,
            outcome=_touchpoint_outcome(disposition),
            notes=f"{_('Lead')}: {Disposition(disposition).label}\n{notes}".strip(),
            occurred_at=occurred_at,
        )
        _contacted(lead, at, disposition, actor, notes)
    if disposition == Disposition.CALLBACK and callback_on is not None:
        lead.next_followup_on = callback_on
        _save(lead)
        _replan(lead, actor)
    return lead


def _touchpoint_outcome(disposition: str) -> str:
    from followups.models import TOUCHPOINT_OUTCOME

    return str(TOUCHPOINT_OUTCOME[Disposition(disposition)])


@transaction.atomic
def lead_invite(*, actor: Membership, lead: Lead, appointment_at: datetime, note: str = "") -> Lead:
    """邀约: the person agreed to come; the appointment is when."""
    _check_work(actor, lead)
    lead = _locked(lead)
    _check_open(lead)
    now = timezone.now()
    if not isinstance(appointment_at, datetime) or appointment_at < now:
        raise ApplicationError(
            _("The invitation was not saved."), fields={"appointment_at": [_("An appointment cannot be in the past.")]}
        )
    if appointment_at > now + timedelta(days=MAX_APPOINTMENT_DAYS):
        raise ApplicationError(
            _("The invitation was not saved."),
            fields={"appointment_at": [_("Within %(days)s days.") % {"days": MAX_APPOINTMENT_DAYS}]},
        )
    lead.appointment_at = appointment_at
    _advance(lead, Stage.INVITED, now)
    _touch(lead, now)
    lead.next_followup_on = min(lead.next_followup_on or appointment_at.date(), timezone.localdate(appointment_at))
    _event(
        lead,
        LeadEvent.Kind.STAGE,
        actor,
        f"{Stage.INVITED.label} {timezone.localtime(appointment_at):%Y-%m-%d %H:%M}",
        stage=Stage.INVITED,
        appointment_at=appointment_at.isoformat(),
        note=note[:300],
    )
    _save(lead)
    _replan(lead, actor)
    return lead


# --- showroom traffic -------------------------------------------------------------------------------

VISIT_FIELDS = ("arrived_at", "left_at", "party_size", "first_visit", "consultant", "series", "note")


def _visit_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    arrived, left = data.get("arrived_at"), data.get("left_at")
    now = timezone.now()
    if not isinstance(arrived, datetime):
        errors["arrived_at"] = [_("Say when they came.")]
    elif arrived > now + timedelta(minutes=5):
        errors["arrived_at"] = [_("Not in the future.")]
    if left is not None and (not isinstance(left, datetime) or (isinstance(arrived, datetime) and left <= arrived)):
        errors["left_at"] = [_("They left after they came.")]
    party = data.get("party_size", 1)
    if isinstance(party, bool) or not isinstance(party, int) or not 1 <= party <= 30:
        errors["party_size"] = [_("Between 1 and 30 people.")]
    return errors


@transaction.atomic
def showroom_visit_log(
    *, actor: Membership, data: dict[str, Any], lead: Lead | None = None, lead_data: dict[str, Any] | None = None
) -> ShowroomVisit:
    """客流登记: one walk-in. With `lead_data` (a name and mobile) it also captures or finds their lead;
    with `lead`, the visit is that lead's. Without either it is anonymous traffic."""
    require(actor, "sales.work", _("Your role may not log showroom traffic."))
    unknown = set(data) - set(VISIT_FIELDS)
    errors = {f: [_("Not a field you can set.")] for f in sorted(unknown)} | _visit_errors(data)
    if errors:
        raise ApplicationError(_("The visit was not logged."), fields=errors)
    consultant = data.get("consultant") or (actor if actor.role == Role.SALES_CONSULTANT else None)
    if consultant is not None and not _is_consultant(consultant):
        raise ApplicationError(_("The visit was not logged."), fields={"consultant": [_("Does not sell.")]})
    if lead_data:
        captured = lead_capture(
            actor=actor,
            data={"source": Source.WALK_IN, "series": data.get("series", ""), **lead_data},
            at=data["arrived_at"],
        )
        lead = captured.lead
    visit = ShowroomVisit(
        lead=lead,
        arrived_at=data["arrived_at"],
        left_at=data.get("left_at"),
        party_size=data.get("party_size", 1),
        first_visit=data.get("first_visit", True),
        consultant=consultant,
        series=str(data.get("series") or "")[:100],
        note=str(data.get("note") or "")[:300],
    )
    if lead is not None:
        _check_work(actor, lead)
        lead = _locked(lead)
        visit.first_visit = not ShowroomVisit.objects.filter(lead=lead).exists()
        visit.lead = lead
    visit.save()
    if lead is not None:
        if lead.is_open:
            _advance(lead, Stage.VISITED, visit.arrived_at)
            _touch(lead, visit.arrived_at)
        _event(
            lead,
            LeadEvent.Kind.VISIT,
            actor,
            _("%(n)s people") % {"n": visit.party_size},
            at=visit.arrived_at,
            visit=visit.pk,
        )
        _save(lead)
        _replan(lead, actor)
        touchpoint_log(
            actor=actor,
            customer=lead.customer,
            channel=Touchpoint.Channel.SHOWROOM,
            outcome=Touchpoint.Outcome.REACHED,
            direction=Touchpoint.Direction.INBOUND,
            notes=f"{_('Showroom visit')}: {visit.series}".strip(": "),
            occurred_at=visit.arrived_at,
        )
    return visit


@transaction.atomic
def showroom_visit_leave(*, actor: Membership, visit: ShowroomVisit, left_at: datetime | None = None) -> ShowroomVisit:
    require(actor, "sales.work", _("Your role may not log showroom traffic."))
    visit = ShowroomVisit.objects.select_for_update(of=("self",)).select_related("lead").get(pk=visit.pk)
    mine = actor.pk in (visit.consultant_id, visit.lead.owner_id if visit.lead else None)
    if not (mine or actor.can("sales.view_all")):
        raise NotAllowed(_("This visit is a colleague's."))
    left_at = left_at or timezone.now()
    if left_at <= visit.arrived_at:
        raise ApplicationError(_("The visit was not changed."), fields={"left_at": [_("They left after they came.")]})
    visit.left_at = left_at
    visit.save(update_fields=["left_at"])
    return visit


# --- test drives ------------------------------------------------------------------------------------


@transaction.atomic
def demo_vehicle_save(*, actor: Membership, vehicle: DemoVehicle | None = None, data: dict[str, Any]) -> DemoVehicle:
    require(actor, "sales.manage", _("Your role may not change the demo vehicles."))
    vehicle = vehicle or DemoVehicle()
    for field in ("brand", "series", "trim", "plate", "vin", "is_active"):
        if field in data:
            setattr(vehicle, field, data[field])
    try:
        vehicle.full_clean(exclude=["tenant"])
    except ValidationError as error:
        raise ApplicationError(_("The demo vehicle cannot be saved."), fields=error.message_dict) from None
    vehicle.save()
    return vehicle


@transaction.atomic
def test_drive_book(
    *, actor: Membership, lead: Lead, vehicle: DemoVehicle, starts_at: datetime, ends_at: datetime
) -> TestDrive:
    """Book a demo vehicle for a slot; a car is never booked twice at once (the database refuses)."""
    _check_work(actor, lead)
    lead = _locked(lead)
    _check_open(lead)
    errors: dict[str, list[str]] = {}
    if not vehicle.is_active:
        errors["vehicle"] = [_("This car is not in service.")]
    if not isinstance(starts_at, datetime) or starts_at < timezone.now() - timedelta(minutes=15):
        errors["starts_at"] = [_("A test drive cannot start in the past.")]
    if not isinstance(ends_at, datetime) or (isinstance(starts_at, datetime) and ends_at <= starts_at):
        errors["ends_at"] = [_("It ends after it starts.")]
    elif isinstance(starts_at, datetime) and ends_at - starts_at > timedelta(hours=MAX_TEST_DRIVE_HOURS):
        errors["ends_at"] = [_("At most %(h)s hours.") % {"h": MAX_TEST_DRIVE_HOURS}]
    if errors:
        raise ApplicationError(_("The test drive was not booked."), fields=errors)
    drive = TestDrive(
        lead=lead,
        vehicle=vehicle,
        consultant=lead.owner or (actor if not actor.is_service_account else None),
        starts_at=starts_at,
        ends_at=ends_at,
    )
    try:
        with transaction.atomic():
            drive.save()
    except IntegrityError:
        raise ApplicationError(
            _("This car is booked at that time."),
            code="booked",
            fields={"starts_at": [_("The car is booked at that time; choose another slot or car.")]},
            status_code=409,
        ) from None
    _event(
        lead,
        LeadEvent.Kind.TEST_DRIVE,
        actor,
        f"{_('Booked')} {vehicle} {timezone.localtime(starts_at):%Y-%m-%d %H:%M}",
        test_drive=drive.pk,
        status=TestDrive.Status.BOOKED,
    )
    return drive


TEST_DRIVE_OUTCOMES = (TestDrive.Status.DONE, TestDrive.Status.NO_SHOW, TestDrive.Status.CANCELLED)


@transaction.atomic
def test_drive_record(
    *,
    actor: Membership,
    drive: TestDrive,
    status: str,
    licence_number: str = "",
    licence_expiry: date | None = None,
    licence_consent: bool = False,
    feedback: str = "",
    rating: int | None = None,
    agreement: Any = None,
) -> TestDrive:
    """What came of a booking. A drive that happened needs the driving licence (with consent) valid
    on the day; its signed agreement may be attached (PDF or photo, at most 10 MB)."""
    drive = TestDrive.objects.select_for_update().select_related("lead__customer", "vehicle").get(pk=drive.pk)
    _check_work(actor, drive.lead)
    if drive.status != TestDrive.Status.BOOKED:
        raise ApplicationError(_("This test drive is recorded already."), code="recorded", status_code=409)
    errors: dict[str, list[str]] = {}
    if status not in TEST_DRIVE_OUTCOMES:
        errors["status"] = [_("Not an outcome.")]
    if status == TestDrive.Status.DONE:
        licence_number = (licence_number or "").strip().upper()
        if not licence_number:
            errors["licence_number"] = [_("A test drive needs the driver's licence number.")]
        elif not (6 <= len(licence_number) <= 20 and licence_number.isalnum()):
            errors["licence_number"] = [_("6–20 letters and digits.")]
        if not licence_consent:
            errors["licence_consent"] = [_("The driver must agree to the licence being recorded.")]
        if licence_expiry is None:
            errors["licence_expiry"] = [_("Say until when the licence is valid.")]
        elif licence_expiry < timezone.localdate(drive.starts_at):
            errors["licence_expiry"] = [_("The licence had expired on the day of the drive.")]
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5):
            errors["rating"] = [_("From 1 to 5.")]
    if len(feedback or "") > 2000:
        errors["feedback"] = [_("At most 2,000 characters.")]
    content_type = ""
    if agreement is not None:
        try:
            content_type = check_agreement(agreement)
        except ApplicationError as error:
            errors.update(error.fields)
    if errors:
        raise ApplicationError(_("The test drive was not recorded."), fields=errors)
    drive.status = status
    drive.feedback = (feedback or "").strip()
    if status == TestDrive.Status.DONE:
        drive.licence_number, drive.licence_expiry, drive.licence_consent = licence_number, licence_expiry, True
        drive.rating = rating
        drive.driven_at = drive.starts_at
        if agreement is not None:
            drive.agreement = agreement
            drive.agreement_type = content_type
    drive.save()
    lead = _locked(drive.lead)
    _event(
        lead,
        LeadEvent.Kind.TEST_DRIVE,
        actor,
        f"{drive.get_status_display()} · {drive.vehicle}",
        test_drive=drive.pk,
        status=status,
        rating=drive.rating,
    )
    if status == TestDrive.Status.DONE:
        if lead.is_open:
            _advance(lead, Stage.TEST_DRIVE, drive.starts_at)
            _advance(lead, Stage.VISITED, drive.starts_at)  # a drive is at the showroom: a visit too
        _touch(lead, drive.starts_at)
        _save(lead)
        _replan(lead, actor)
        touchpoint_log(
            actor=actor,
            customer=lead.customer,
            channel=Touchpoint.Channel.TEST_DRIVE,
            outcome=Touchpoint.Outcome.REACHED,
            direction=Touchpoint.Direction.INBOUND,
            notes=f"{_('Test drive')}: {drive.vehicle}\n{drive.feedback}".strip(),
            occurred_at=min(drive.starts_at, timezone.now()),
        )
    return drive


# --- quotes -----------------------------------------------------------------------------------------

QUOTE_MONEY = ("list_price", "discount", "trade_in_value", "insurance", "fees", "down_payment")
QUOTE_TEXT = ("brand", "series", "trim", "colour", "trade_in_vehicle", "note")


def _money(value: Any, field: str, errors: dict[str, list[str]]) -> Decimal:
    if value in (None, ""):
        return ZERO
    if isinstance(value, bool):
        errors[field] = [_("Enter an amount.")]
        return ZERO
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors[field] = [_("Enter an amount.")]
        return ZERO
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e10"):
        errors[field] = [_("Enter an amount of at least 0.")]
        return ZERO
    if amount != amount.quantize(CENT):
        errors[field] = [_("At most two decimal places.")]
    return amount.quantize(CENT)


def quote_totals(data: dict[str, Any]) -> dict[str, Any]:
    """The quote's figures (docs/sales.md#quotes), each rounded half up to the cent:

    vehicle price = list price − discount; accessories total = Σ accessory prices;
    total = vehicle price + accessories + insurance + fees − trade-in appraisal (never below 0);
    loan = total − down payment (with a loan); monthly payment = the annuity of the loan over the
    term at the monthly rate (loan ÷ term at 0 %). Raises ApplicationError naming each bad field."""
    errors: dict[str, list[str]] = {}
    values = {field: _money(data.get(field), field, errors) for field in QUOTE_MONEY}
    if data.get("list_price") in (None, ""):
        errors["list_price"] = [_("Enter the list price.")]
    accessories = data.get("accessories") or []
    clean_accessories = []
    if not isinstance(accessories, list) or len(accessories) > 30:
        errors["accessories"] = [_("A list of at most 30 accessories with a name and a price.")]
        accessories = []
    for item in accessories:
        if not isinstance(item, dict) or not str(item.get("name", "")).strip():
            errors["accessories"] = [_("Each accessory needs a name and a price.")]
            continue
        price = _money(item.get("price"), "accessories", errors)
        clean_accessories.append({"name": str(item["name"]).strip()[:80], "price": str(price)})
    if values["discount"] > values["list_price"]:
        errors["discount"] = [_("The discount is more than the list price.")]
    accessories_total = sum((Decimal(i["price"]) for i in clean_accessories), ZERO)
    vehicle_price = values["list_price"] - values["discount"]
    gross = vehicle_price + accessories_total + values["insurance"] + values["fees"]
    total = gross - values["trade_in_value"]
    if total < 0:
        errors["trade_in_value"] = [_("The trade-in is worth more than the purchase: the total would be negative.")]
    financed = bool(data.get("financed"))
    term, rate = data.get("term_months"), data.get("monthly_rate")
    loan = monthly = ZERO
    if financed:
        if isinstance(term, bool) or not isinstance(term, int) or not 6 <= term <= 84:
            errors["term_months"] = [_("A loan of 6 to 84 months.")]
        try:
            rate = Decimal(str(rate if rate not in (None, "") else "0"))
            if not rate.is_finite() or not ZERO <= rate <= Decimal("5"):
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            errors["monthly_rate"] = [_("A monthly rate from 0 to 5 %.")]
            rate = ZERO
        if values["down_payment"] > max(total, ZERO):
            errors["down_payment"] = [_("The down payment is more than the total.")]
        if not errors and isinstance(term, int):
            loan = total - values["down_payment"]
            r = rate / Decimal(100)
            monthly = loan / term if r == 0 else loan * r / (1 - (1 + r) ** -term)
    else:
        values["down_payment"] = ZERO
    if errors:
        raise ApplicationError(_("The quote cannot be saved."), fields=errors)
    return {
        **values,
        "accessories": clean_accessories,
        "accessories_total": accessories_total.quantize(CENT, ROUND_HALF_UP),
        "vehicle_price": vehicle_price.quantize(CENT, ROUND_HALF_UP),
        "total": total.quantize(CENT, ROUND_HALF_UP),
        "financed": financed,
        "term_months": term if financed else None,
        "monthly_rate": rate if financed else None,
        "loan_amount": loan.quantize(CENT, ROUND_HALF_UP),
        "monthly_payment": Decimal(monthly).quantize(CENT, ROUND_HALF_UP),
    }


@transaction.atomic
def quote_create(*, actor: Membership, lead: Lead, data: dict[str, Any]) -> Quote:
    """A new version of the lead's offer (the earlier ones stay as they were)."""
    _check_work(actor, lead)
    lead = _locked(lead)
    _check_open(lead)
    errors: dict[str, list[str]] = {}
    text = {}
    for field in QUOTE_TEXT:
        value = data.get(field) or ""
        if not isinstance(value, str):
            errors[field] = [_("Enter text.")]
            value = ""
        text[field] = value.strip()
    for field in ("brand", "series"):
        if not text[field]:
            errors[field] = [_("Required.")]
    valid_until = data.get("valid_until")
    if valid_until is not None and (not isinstance(valid_until, date) or valid_until < timezone.localdate()):
        errors["valid_until"] = [_("Today or a later day.")]
    try:
        totals = quote_totals(data)
    except ApplicationError as error:
        errors.update(error.fields)
        totals = {}
    if errors:
        raise ApplicationError(_("The quote cannot be saved."), fields=errors)
    version = (Quote.objects.filter(lead=lead).aggregate(m=Max("version"))["m"] or 0) + 1
    quote = Quote(lead=lead, version=version, valid_until=valid_until, created_by=actor, **text, **totals)
    try:
        quote.full_clean(exclude=["tenant", "lead"])
    except ValidationError as error:
        raise ApplicationError(_("The quote cannot be saved."), fields=error.message_dict) from None
    quote.save()
    now = timezone.now()
    _advance(lead, Stage.NEGOTIATION, now)
    _touch(lead, now)
    _event(
        lead,
        LeadEvent.Kind.QUOTE,
        actor,
        f"v{version} {quote.brand} {quote.series} {quote.total}",
        quote=quote.pk,
        total=str(quote.total),
    )
    _save(lead)
    _replan(lead, actor)
    return quote


# --- order, delivery --------------------------------------------------------------------------------


@transaction.atomic
def lead_order(
    *, actor: Membership, lead: Lead, quote: Quote, deposit: Any, expected_delivery_on: date | None = None
) -> Lead:
    """订单: the person signs for a quote and pays a deposit."""
    _check_work(actor, lead)
    lead = _locked(lead)
    _check_open(lead)
    errors: dict[str, list[str]] = {}
    if quote.lead_id != lead.pk:
        errors["quote"] = [_("Not a quote of this lead.")]
    amount = _money(deposit, "deposit", errors)
    if "deposit" not in errors:
        if amount <= 0:
            errors["deposit"] = [_("An order needs a deposit.")]
        elif amount > quote.total:
            errors["deposit"] = [_("The deposit is more than the quote's total.")]
    if expected_delivery_on is not None and (
        not isinstance(expected_delivery_on, date) or expected_delivery_on < timezone.localdate()
    ):
        errors["expected_delivery_on"] = [_("Today or a later day.")]
    if lead.stage == Stage.ORDERED:
        errors["quote"] = [_("This lead has ordered already.")]
    if errors:
        raise ApplicationError(_("The order was not taken."), fields=errors)
    now = timezone.now()
    lead.deposit, lead.order_quote, lead.expected_delivery_on = amount, quote, expected_delivery_on
    _advance(lead, Stage.ORDERED, now)
    _touch(lead, now)
    _event(lead, LeadEvent.Kind.ORDER, actor, f"{quote} · {_('deposit')} {amount}", quote=quote.pk, deposit=str(amount))
    _save(lead)
    _replan(lead, actor)
    return lead


@transaction.atomic
def lead_deliver(
    *,
    actor: Membership,
    lead: Lead,
    vin: str,
    plate: str = "",
    delivered_on: date | None = None,
    amount: Any = None,
    mileage_km: int | None = None,
) -> Lead:
    """交车, in one transaction: the person's vehicle (VIN checked as everywhere) and the completed
    vehicle-sale order for the quote's total (or `amount`); the lead is closed as delivered. The
    post-delivery follow-ups and survey then fire from the order as for every sale."""
    _check_work(actor, lead)
    lead = _locked(lead)
    if lead.stage != Stage.ORDERED or lead.order_quote_id is None:
        raise ApplicationError(
            _("Only an ordered lead can be delivered."), code="not_ordered", fields={"stage": [_("Not ordered.")]}
        )
    quote = Quote.objects.get(pk=lead.order_quote_id)
    delivered_on = delivered_on or timezone.localdate()
    errors: dict[str, list[str]] = {}
    if not isinstance(delivered_on, date) or delivered_on > timezone.localdate():
        errors["delivered_on"] = [_("Not in the future.")]
    elif delivered_on < timezone.localdate(lead.ordered_at or lead.created_at):
        errors["delivered_on"] = [_("Not before the order.")]
    price = quote.total if amount in (None, "") else _money(amount, "amount", errors)
    if errors:
        raise ApplicationError(_("The car was not delivered."), fields=errors)
    customer = lead.customer
    seller = lead.owner or actor
    try:
        with transaction.atomic():
            vehicle = vehicle_create(
                actor=actor,
                customer=customer,
                data={
                    "vin": vin,
                    "plate": plate,
                    "brand": quote.brand,
                    "series": quote.series,
                    "model_name": quote.trim,
                    "colour": quote.colour,
                    "purchase_date": delivered_on,
                },
                mileage_km=mileage_km,
            )
    except ValidationError as error:
        raise ApplicationError(_("The car was not delivered."), fields=error.message_dict) from None
    order = order_create(
        actor=actor,
        customer=customer,
        data={
            "kind": Order.Kind.VEHICLE_SALE,
            "status": Order.Status.COMPLETED,
            "ordered_on": delivered_on,
            "amount": price,
            "vehicle": vehicle,
            "staff": seller if not seller.is_service_account else None,
        },
    )
    if customer.owner_id is None and not seller.is_service_account:
        prospect_owner_follow(customer=customer, owner=seller)
    now = timezone.now()
    lead.vehicle, lead.sale_order = vehicle, order
    _advance(lead, Stage.DELIVERED, now)
    lead.closed_at, lead.next_followup_on = now, None
    _event(lead, LeadEvent.Kind.DELIVERY, actor, f"{vehicle.vin} · {price}", vehicle=vehicle.pk, order=order.pk)
    _save(lead)
    _replan(lead, actor)
    return lead


# --- defeat, reopening ------------------------------------------------------------------------------


@transaction.atomic
def lead_defeat(
    *,
    actor: Membership,
    lead: Lead,
    reason: DefeatReason | None,
    note: str = "",
    competitor_brand: str = "",
    competitor_model: str = "",
) -> Lead:
    """战败: report the lead lost. It counts once a manager approves (at once when a manager reports
    it, or when the dealership needs no approval); until then it stays open and waits."""
    _check_work(actor, lead)
    lead = _locked(lead)
    _check_open(lead)
    errors: dict[str, list[str]] = {}
    if reason is None or not reason.is_active:
        errors["reason"] = [_("Say why the lead is lost.")]
    elif reason.needs_competitor and not competitor_brand.strip():
        errors["competitor_brand"] = [_("Say which brand they bought.")]
    if len(note) > 300:
        errors["note"] = [_("At most 300 characters.")]
    if lead.defeat_status == DefeatStatus.PENDING:
        errors["reason"] = [_("A defeat is waiting for approval already.")]
    if lead.stage == Stage.ORDERED:
        errors["reason"] = [_("The lead has ordered: an order is not a defeat.")]
    if errors:
        raise ApplicationError(_("The defeat was not reported."), fields=errors)
    lead.defeat_reason, lead.defeat_note = reason, note.strip()
    lead.competitor_brand, lead.competitor_model = competitor_brand.strip(), competitor_model.strip()
    lead.defeat_requested_at, lead.defeat_requested_by = timezone.now(), actor
    lead.defeat_status = DefeatStatus.PENDING
    _event(
        lead,
        LeadEvent.Kind.DEFEAT_REQUESTED,
        actor,
        str(reason),
        reason=reason.code if reason else "",
        note=note[:300],
        competitor=f"{competitor_brand} {competitor_model}".strip(),
    )
    if actor.can("sales.manage") or not sales_settings().defeat_needs_approval:
        _defeat_close(lead, actor)
    else:
        notify(
            recipients=_managers(),
            kind="lead_defeat",
            title=_("Defeat to approve: %(name)s · %(reason)s") % {"name": lead.name, "reason": reason},
            url=lead_url(lead),
            key=f"lead_defeat:{lead.pk}:{lead.defeat_requested_at.isoformat()}",
        )
    _save(lead)
    _replan(lead, actor)
    return lead


def _defeat_close(lead: Lead, actor: Membership) -> None:
    lead.defeat_status = DefeatStatus.APPROVED
    lead.stage = Stage.DEFEATED
    lead.closed_at, lead.next_followup_on = timezone.now(), None
    _event(lead, LeadEvent.Kind.DEFEAT_APPROVED, actor, str(lead.defeat_reason))


@transaction.atomic
def lead_defeat_decide(*, actor: Membership, lead: Lead, approve: bool, note: str = "") -> Lead:
    """战败审核: a manager approves the reported defeat (the lead closes) or rejects it (it stays open)."""
    require(actor, "sales.manage", _("Only a manager approves a defeat."))
    lead = _locked(lead)
    if lead.defeat_status != DefeatStatus.PENDING:
        raise ApplicationError(_("No defeat is waiting for approval."), code="no_defeat", status_code=409)
    if approve:
        _defeat_close(lead, actor)
    else:
        if not note.strip():
            raise ApplicationError(_("Say why the lead is not lost."), fields={"note": [_("Required.")]})
        lead.defeat_status = DefeatStatus.REJECTED
        _event(lead, LeadEvent.Kind.DEFEAT_REJECTED, actor, note.strip()[:300])
    _save(lead)
    _replan(lead, actor)
    _notify_owner(
        lead,
        "lead_defeat",
        (_("Defeat approved: %(name)s") if approve else _("Defeat rejected: %(name)s")) % {"name": lead.name},
    )
    return lead


@transaction.atomic
def lead_reopen(*, actor: Membership, lead: Lead, note: str = "") -> Lead:
    """A manager reopens a defeated lead: back at the furthest stage it reached, its cadence restarted."""
    require(actor, "sales.manage", _("Only a manager reopens a lead."))
    lead = _locked(lead)
    if lead.stage != Stage.DEFEATED:
        raise ApplicationError(_("Only a defeated lead can be reopened."), code="not_defeated", status_code=409)
    if Lead.objects.filter(customer=lead.customer, stage__in=OPEN_STAGES).exclude(pk=lead.pk).exists():
        raise ApplicationError(_("This person has another open lead."), code="open_lead", status_code=409)
    reached = [
        stage
        for stage, field in (
            (Stage.CONTACTED, "first_contact_at"),
            (Stage.INVITED, "invited_at"),
            (Stage.VISITED, "visited_at"),
            (Stage.TEST_DRIVE, "test_drive_at"),
            (Stage.NEGOTIATION, "quoted_at"),
        )
        if getattr(lead, field) is not None
    ]
    lead.stage = reached[-1] if reached else Stage.NEW
    lead.defeat_status = DefeatStatus.NONE
    lead.closed_at, lead.dormant_since = None, None
    _cadence_from(lead, timezone.localdate() - timedelta(days=sales_settings().cadence_days(lead.level)))
    _event(lead, LeadEvent.Kind.REOPENED, actor, note.strip()[:300], stage=lead.stage)
    _save(lead)
    _replan(lead, actor)
    return lead


@transaction.atomic
def leads_hand_over(
    *, actor: Membership, from_member: Membership, to_member: Membership | None, meta: Any = None
) -> int:
    """A consultant leaves or changes desk (the staff page's hand-over): every open lead they hold goes
    to the colleague taking over, or to the pool when that colleague does not sell."""
    if not (actor.can("sales.manage") or actor.can("users.manage")):
        raise NotAllowed(_("Only a manager gives leads out or takes them back."))
    if to_member is not None and not _is_consultant(to_member):
        to_member = None
    moved = 0
    for lead in Lead.objects.filter(owner=from_member, stage__in=OPEN_STAGES).select_related("customer"):
        _assign(lead, to_member, actor, _("Handed over"))
        _save(lead)
        _replan(lead, actor)
        moved += 1
    return moved
