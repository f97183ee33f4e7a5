"""Bulk lead intake (the API's bulk endpoint, up to 1,000 leads a call), set-based.

`leads_capture_bulk` gives the results `services.lead_capture` gives called row by row, in order
(docs/sales.md#capture): the same leads, customers, events, follow-ups and round-robin turns, with
a fixed number of statements per batch instead of ~57 per lead. Each row is checked by
`services._clean_capture`; then, per run of ordinary rows (a *segment*):

- one read of the leads with the rows' (source system, external id) and one of the enquiries that
  joined an open lead under them: those rows are `existing`;
- one read of the live customers with the rows' mobiles (mobile or second mobile) and one of the
  open leads of those mobiles or customers;
- a row that meets an open lead, or a person (mobile, customer) or external id an earlier row of the
  segment took, is an enquiry on that lead: it goes through `lead_capture` after the segment's
  leads are written (it uses no round-robin turn, so the order of turns is the row-by-row order);
- the others are written together in one savepoint: the new prospects (customers_create_prospects),
  the leads, their "created" and "assigned" events, the round-robin's new times, their follow-ups
  (one statement) and one "lead_assigned" notification per consultant. A unique clash there (a
  concurrent capture of the same person or external id) rolls the savepoint back and the segment's
  rows go through `lead_capture` one by one, which resolves the race as it does for one lead.

A row `lead_capture` would treat specially (a referral, an explicit owner, an appointment) ends the
segment and goes through `lead_capture` on its own, between the segments before and after it: such
rows are rare in an intake, and this keeps every round-robin turn in row order.

Known differences from row-by-row capture, none of them a rule: the batch's rows share one capture
time; a consultant given several leads is told once per batch ("%(n)s new leads"); the lead
follow-ups are planned by followups_plan_from, which records no `created_by` (row by row: the actor);
a known person's left-over open lead follow-up (none exists normally: closing a lead cancels it) is
cancelled and planned anew even when it was for the same day and consultant. The leads and events
are inserted by customers.records.insert_new_rows (one array per column), as the prospects are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.business_time import BusinessCalendar, NoBusinessHours
from crm.core.errors import ApplicationError
from crm.core.notifications import notify
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import Membership, Tenant
from crm.tenancy.roles import Role
from customers.models import Customer, ListFlag
from customers.records import customers_create_prospects, insert_new_rows
from followups.models import Channel
from followups.models import Reason as FollowupReason
from followups.services import consent_allows, followups_cancel_for, followups_plan_from
from sales import services
from sales.models import (
    ONLINE_SOURCES,
    OPEN_STAGES,
    TIMEFRAME_LEVEL,
    Lead,
    LeadEvent,
    Level,
    SalesSettings,
    Source,
    Stage,
    Timeframe,
)

EXTERNAL_ID_LENGTH = 64
KEY_SOURCE_SYSTEM = "idempotency-key"  # as sales/apis.py
KEY_EXTERNAL_PREFIX = "key:"  # an Idempotency-Key's external id (sales/apis.py): replayed by its enquiry too
LEAD_EXCLUDE = ["tenant", "customer", "owner", "referrer", "order_quote", "defeat_reason"]  # as services._save


@dataclass(frozen=True)
class RowResult:
    index: int
    status: str  # "created", "existing" (captured before, or joined the person's open lead) or "error"
    lead: Lead | None = None
    notice: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Row:
    index: int
    data: dict[str, Any]
    clean: dict[str, Any]

    @property
    def pair(self) -> tuple[str, str] | None:
        external_id = self.clean.get("external_id", "")
        return (self.clean.get("source_system", ""), external_id) if external_id else None


def _error(index: int, errors: dict[str, list[str]]) -> RowResult:
    return RowResult(index=index, status="error", errors=errors)


def _application_error(index: int, error: ApplicationError) -> RowResult:
    return _error(index, error.fields or {"non_field_errors": [error.message]})


def _keyed(prefix: str, index: int) -> str:
    value = f"{prefix}{index}"
    return value if len(value) <= EXTERNAL_ID_LENGTH else hashlib.sha256(value.encode()).hexdigest()


@transaction.atomic
def leads_capture_bulk(
    *, actor: Membership, rows: list[dict[str, Any]], idempotency_prefix: str = ""
) -> list[RowResult]:
    """Capture `rows` as `services.lead_capture` would one by one, in order; one result per row.

    With `idempotency_prefix`, a row without external_id is keyed `<prefix><index>` (hashed past 64
    characters) under its source system or "idempotency-key", so the same batch again creates
    nothing. An external id starting "key:" (an API Idempotency-Key) also finds the enquiry it
    recorded on an open lead, as the API's single capture does."""
    results: dict[int, RowResult] = {}
    ordinary: list[_Row] = []
    segments: list[list[_Row] | _Row] = []  # runs of ordinary rows, and the special rows between them
    for index, data in enumerate(rows):
        data = dict(data)
        if idempotency_prefix and not data.get("external_id"):
            data["external_id"] = _keyed(idempotency_prefix, index)
            data["source_system"] = data.get("source_system") or KEY_SOURCE_SYSTEM
        try:
            clean = services._clean_capture(data)
        except ApplicationError as error:
            results[index] = _application_error(index, error)
            continue
        row = _Row(index=index, data=data, clean=clean)
        if not actor.can("sales.work") or _special(clean):
            if ordinary:
                segments.append(ordinary)
                ordinary = []
            segments.append(row)
        else:
            ordinary.append(row)
    if ordinary:
        segments.append(ordinary)
    made: list[Lead] = []  # the leads the segments wrote together
    for segment in segments:
        if isinstance(segment, _Row):
            results[segment.index] = _slow(actor, segment)
        else:
            results.update(_segment(actor, segment, made))
    _notify_owners(actor, made)
    return [results[index] for index in range(len(rows))]


def _special(clean: dict[str, Any]) -> bool:
    return (
        clean.get("referrer") is not None
        or clean.get("owner") is not None
        or bool(clean.get("appointment_at"))
        or clean["source"] == Source.REFERRAL
    )


def _key_replay(row: _Row) -> Lead | None:
    """As sales/apis.py: the open lead a keyed request joined before (its enquiry carries the key)."""
    external_id = row.clean.get("external_id", "")
    if not external_id.startswith(KEY_EXTERNAL_PREFIX):
        return None
    event = (
        LeadEvent.objects.filter(kind=LeadEvent.Kind.ENQUIRY, data__external_id=external_id)
        .select_related("lead")
        .first()
    )
    return event.lead if event is not None else None


def _slow(actor: Membership, row: _Row) -> RowResult:
    """One row through lead_capture, in its own savepoint (a failed row leaves no trace)."""
    try:
        with transaction.atomic():
            replayed = _key_replay(row)
            if replayed is not None:
                return RowResult(index=row.index, status="existing", lead=replayed)
            captured = services.lead_capture(actor=actor, data=row.data)
    except ApplicationError as error:
        return _application_error(row.index, error)
    except ValidationError as error:
        if hasattr(error, "error_dict"):
            return _error(row.index, {k: [str(m) for m in v] for k, v in error.message_dict.items()})
        return _error(row.index, {"non_field_errors": [str(m) for m in error.messages]})
    except DataError:
        return _error(row.index, {"non_field_errors": ["A value is out of the range this field accepts."]})
    return RowResult(
        index=row.index,
        status="created" if captured.created else "existing",
        lead=captured.lead,
        notice=captured.notice,
    )


@dataclass
class _New:
    row: _Row
    lead: Lead
    customer: Customer | None  # None: a new prospect, made with the batch


def _segment(actor: Membership, rows: list[_Row], made: list[Lead]) -> dict[int, RowResult]:
    results: dict[int, RowResult] = {}
    # --- captured before: by (source system, external id), or the enquiry that joined an open lead
    pairs = {row.pair for row in rows if row.pair is not None}
    by_pair: dict[tuple[str, str], Lead] = {}
    joined_pair: dict[tuple[str, str], Lead] = {}
    joined_key: dict[str, Lead] = {}
    if pairs:
        systems, ids = {p[0] for p in pairs}, {p[1] for p in pairs}
        for lead in Lead.objects.filter(source_system__in=systems, external_id__in=ids):
            by_pair.setdefault((lead.source_system, lead.external_id), lead)
        for event in (
            LeadEvent.objects.filter(kind=LeadEvent.Kind.ENQUIRY, data__external_id__in=sorted(ids))
            .select_related("lead")
            .order_by("at", "id")
        ):
            external_id = event.data.get("external_id", "")
            joined_key.setdefault(external_id, event.lead)
            joined_pair.setdefault((event.data.get("source_system"), external_id), event.lead)
    # --- the people: live customers by mobile (first by id), open leads by mobile or customer
    fresh = [row for row in rows if row.pair is None or not _captured_before(row, by_pair, joined_pair, joined_key)]
    mobiles = {row.clean["mobile"] for row in fresh}
    by_mobile: dict[str, Customer] = {}
    if mobiles:
        for match in (
            Customer.objects.filter(Q(mobile__in=mobiles) | Q(mobile_secondary__in=mobiles), merged_into__isnull=True)
            .select_related("owner__user")
            .order_by("pk")
        ):
            for mobile in (match.mobile, match.mobile_secondary):
                if mobile in mobiles:
                    by_mobile.setdefault(mobile, match)
    open_mobiles: set[str] = set()
    open_customers: set[int] = set()
    if mobiles:
        known = {customer.pk for customer in by_mobile.values()}
        for mobile, customer_id in Lead.objects.filter(
            Q(mobile__in=mobiles) | Q(customer_id__in=known), stage__in=OPEN_STAGES
        ).values_list("mobile", "customer_id"):
            open_mobiles.add(mobile)
            open_customers.add(customer_id)
    # --- each row in order: captured before, an enquiry on a lead (later), an error, or a new lead
    settings = services.sales_settings()
    at = timezone.now()
    may_create_customers = actor.can("customers.edit")
    taken_mobiles: set[str] = set()
    taken_customers: set[int] = set()
    taken_pairs: set[tuple[str, str]] = set()
    later: list[_Row] = []
    new: list[_New] = []
    robin: _Robin | None = None
    for row in rows:
        clean, pair = row.clean, row.pair
        if pair is not None and pair in taken_pairs:
            later.append(row)  # the same external id as an earlier row: that row's lead
            continue
        earlier = _captured_before(row, by_pair, joined_pair, joined_key) if pair is not None else None
        if earlier is not None:
            results[row.index] = RowResult(index=row.index, status="existing", lead=earlier)
            continue
        mobile = clean["mobile"]
        customer = by_mobile.get(mobile)
        if (
            customer is not None
            and customer.list_flag == ListFlag.BLACK
            and customer.pk not in open_customers
            and mobile not in open_mobiles
        ):
            results[row.index] = _error(row.index, _black_listed())
            continue
        taken = mobile in taken_mobiles or (customer is not None and customer.pk in taken_customers)
        taken_mobiles.add(mobile)
        if customer is not None:
            taken_customers.add(customer.pk)
        if pair is not None:
            taken_pairs.add(pair)
        if taken or mobile in open_mobiles or (customer is not None and customer.pk in open_customers):
            later.append(row)  # an enquiry on the person's (open or just made) lead
            continue
        if customer is None and not may_create_customers:
            later.append(row)  # lead_capture says why not
            continue
        lead = _lead(clean, at=at, settings=settings)
        try:
            lead.full_clean(exclude=LEAD_EXCLUDE, validate_constraints=False)
        except ValidationError as error:
            results[row.index] = _error(
                row.index,
                ApplicationError(_("The lead cannot be saved."), fields=error.message_dict).fields,
            )
            continue
        # the owner, by services._owner_for's rules (an explicit owner is a special row)
        owner: Membership | None
        if customer is not None and services._is_consultant(customer.owner):
            owner = customer.owner
        elif actor.role == Role.SALES_CONSULTANT:
            owner = actor
        elif settings.auto_assign:
            robin = robin or _Robin()
            owner = robin.pick(brand=clean.get("brand", ""))
        else:
            owner = None
        lead.owner = owner
        lead.assigned_at = at if owner is not None else None
        new.append(_New(row=row, lead=lead, customer=customer))
    if new:
        try:
            with transaction.atomic():
                _write(actor, new, at=at, settings=settings, robin=robin)
        except (IntegrityError, ApplicationError, ValidationError):
            # a concurrent capture took a person or an external id (or a check failed): row by row,
            # in order, as lead_capture resolves it for one lead
            return {row.index: _slow(actor, row) for row in rows}
    for entry in new:
        results[entry.row.index] = RowResult(index=entry.row.index, status="created", lead=entry.lead)
        made.append(entry.lead)
    for row in later:
        results[row.index] = _slow(actor, row)
    return results


def _captured_before(
    row: _Row,
    by_pair: dict[tuple[str, str], Lead],
    joined_pair: dict[tuple[str, str], Lead],
    joined_key: dict[str, Lead],
) -> Lead | None:
    pair = row.pair
    assert pair is not None
    if pair[1].startswith(KEY_EXTERNAL_PREFIX) and pair[1] in joined_key:
        return joined_key[pair[1]]  # the API's key replay comes first
    return by_pair.get(pair) or joined_pair.get(pair)


def _black_listed() -> dict[str, list[str]]:
    return ApplicationError(
        _("This person is on the black list."), code="black_listed", fields={"mobile": [_("On the black list.")]}
    ).fields


class _Robin(services.RoundRobin):
    """services.RoundRobin, each turn's time strictly after the last, so that turns taken within one
    microsecond keep their order as one-by-one captures do."""

    def __init__(self) -> None:
        super().__init__()
        self.last: datetime | None = None

    def pick(self, *, brand: str, exclude_id: int | None = None) -> Membership | None:
        member = super().pick(brand=brand, exclude_id=exclude_id)
        if member is not None:
            duty = next(d for d in self.duties if d.member_id == member.pk)
            if self.last is not None and duty.last_assigned_at is not None and duty.last_assigned_at <= self.last:
                duty.last_assigned_at = self.last + timedelta(microseconds=1)
            self.last = duty.last_assigned_at
        return member


def _lead(clean: dict[str, Any], *, at: datetime, settings: SalesSettings) -> Lead:
    """The lead lead_capture builds for a row (its stage by source, milestones, level, cadence)."""
    level = clean.get("level") or TIMEFRAME_LEVEL[Timeframe(clean["timeframe"])]
    lead = Lead(
        level=level,
        created_at=at,
        updated_at=at,
        **{k: v for k, v in clean.items() if k not in ("owner", "level", "appointment_at", "referrer")},
    )
    today = timezone.localdate(at)
    if clean["source"] in (Source.WALK_IN, Source.PHONE):
        # services._advance to visited / contacted: a contact at once (response 0), then services._touch
        lead.first_contact_at = at
        lead.response_minutes = 0
        lead.response_due_at = None
        if clean["source"] == Source.WALK_IN:
            lead.visited_at = at
            lead.stage = Stage.VISITED
        else:
            lead.stage = Stage.CONTACTED
        lead.last_contact_at = at
        lead.dormant_since = None
        lead.next_followup_on = today + timedelta(days=settings.cadence_days(level))
    else:
        lead.next_followup_on = today  # the first call is due on the day of capture
    return lead


def _write(
    actor: Membership, new: list[_New], *, at: datetime, settings: SalesSettings, robin: services.RoundRobin | None
) -> None:
    known = [entry.customer for entry in new if entry.customer is not None]
    # the new prospects, as customer_create makes them for lead_capture
    prospects = [entry for entry in new if entry.customer is None]
    made = customers_create_prospects(
        actor=actor,
        rows=[
            {
                "name": entry.row.clean["name"],
                "mobile": entry.row.clean["mobile"],
                "source": services._CUSTOMER_SOURCE.get(entry.row.clean["source"], Customer.Source.OTHER),
                "owner": entry.lead.owner,
                # they left the number to be called about their enquiry; SMS and WeChat are not assumed
                "consent_call": True,
            }
            for entry in prospects
        ],
    )
    for entry, customer in zip(prospects, made, strict=True):
        entry.customer = customer
    due = _response_due(at, settings) if any(e.lead.source in ONLINE_SOURCES and e.lead.owner for e in new) else None
    for entry in new:
        assert entry.customer is not None
        entry.lead.customer = entry.customer
        if entry.lead.source in ONLINE_SOURCES and entry.lead.assigned_at is not None:
            entry.lead.response_due_at = due
    insert_new_rows([entry.lead for entry in new])
    if robin is not None:
        robin.flush()
    by = actor if not actor.is_service_account else None
    events: list[LeadEvent] = []
    for entry in new:
        lead = entry.lead
        events.append(
            LeadEvent(
                lead=lead,
                kind=LeadEvent.Kind.CREATED,
                at=at,
                actor=by,
                summary=str(Source(lead.source).label)[:300],
                data={"source": lead.source},
            )
        )
        if lead.owner is not None:
            events.append(
                LeadEvent(
                    lead=lead,
                    kind=LeadEvent.Kind.ASSIGNED,
                    at=at,
                    actor=by,
                    to_owner=lead.owner,
                    summary=lead.owner.display_name[:300],
                    data={},
                )
            )
    insert_new_rows(events)
    _plan_followups([entry.lead for entry in new], known=known)


def _response_due(at: datetime, settings: SalesSettings) -> datetime | None:
    """services._response_due for a lead given out at `at`: the batch's leads share it."""
    tenant = Tenant.objects.get(pk=require_tenant_id())
    try:
        return BusinessCalendar.for_tenant(tenant).add_minutes(at, settings.response_minutes)
    except NoBusinessHours:
        return None


def _plan_followups(leads: list[Lead], *, known: Iterable[Customer]) -> None:
    """services._replan for new leads, set-based: a known person's open lead follow-up (of a closed
    lead) is cancelled, and a lead with a consultant gets its one follow-up on its next follow-up day."""
    customer_ids = sorted({customer.pk for customer in known})
    if customer_ids:
        followups_cancel_for(reason=FollowupReason.LEAD, customer_ids=customer_ids, note=_("Planned again."))
    planned = [lead for lead in leads if lead.owner_id is not None and lead.next_followup_on is not None]
    if not planned:
        return
    followups_plan_from(
        select_sql="""
            SELECT v.customer_id, 'lead', v.source_key, v.note, v.due_from, v.assignee_id, v.channel, v.priority
            FROM unnest(%(customers)s::bigint[], %(keys)s::text[], %(notes)s::text[], %(days)s::date[],
                        %(owners)s::bigint[], %(channels)s::text[], %(priorities)s::int[])
                 AS v(customer_id, source_key, note, due_from, assignee_id, channel, priority)
        """,
        params={
            "customers": [lead.customer_id for lead in planned],
            "keys": [f"lead:{lead.pk}:{lead.next_followup_on}:bulk" for lead in planned],
            "notes": [
                (_("Lead %(level)s · %(model)s") % {"level": lead.level, "model": lead.series or lead.brand or "-"})[
                    :300
                ]
                for lead in planned
            ],
            "days": [lead.next_followup_on for lead in planned],
            "owners": [lead.owner_id for lead in planned],
            "channels": [
                Channel.CALL if consent_allows(lead.customer, Channel.CALL) else Channel.VISIT for lead in planned
            ],
            "priorities": [services.LEVEL_PRIORITY[Level(lead.level)] for lead in planned],
        },
    )


def _notify_owners(actor: Membership, leads: list[Lead]) -> None:
    """One "lead_assigned" per consultant per batch (never the one capturing)."""
    given: dict[int, list[Lead]] = {}
    for lead in leads:
        if lead.owner is not None and lead.owner.pk != actor.pk:
            given.setdefault(lead.owner.pk, []).append(lead)
    batch = leads[0].pk if leads else 0
    for owned in given.values():
        owner = owned[0].owner
        assert owner is not None
        if len(owned) == 1:
            title = _("New lead: %(name)s") % {"name": owned[0].name}
            url = services.lead_url(owned[0])
        else:
            title = _("%(n)s new leads given to you") % {"n": len(owned)}
            url = reverse("sales:today")
        notify(
            recipients=[owner], kind="lead_assigned", title=title, url=url, key=f"lead_assigned:bulk:{batch}:{owner.pk}"
        )
