"""Sales on the customer page: the lead's story in the timeline, the leads panel, and leads
following a merge (contributed in hooks.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _

from crm.tenancy.models import Membership
from customers.timeline import TimelineEntry
from sales.models import OPEN_STAGES, DefeatReason, DefeatStatus, Lead, LeadEvent, Stage
from sales.selectors import lead_visible_to

# Calls, visits and drives are the person's touchpoints already; the timeline adds the rest.
TIMELINE_KINDS = (
    LeadEvent.Kind.CREATED,
    LeadEvent.Kind.ENQUIRY,
    LeadEvent.Kind.ASSIGNED,
    LeadEvent.Kind.RECLAIMED,
    LeadEvent.Kind.STAGE,
    LeadEvent.Kind.TEST_DRIVE,
    LeadEvent.Kind.QUOTE,
    LeadEvent.Kind.ORDER,
    LeadEvent.Kind.DELIVERY,
    LeadEvent.Kind.DEFEAT_REQUESTED,
    LeadEvent.Kind.DEFEAT_APPROVED,
    LeadEvent.Kind.REOPENED,
)


def lead_entries(*, customer: Any, viewer: Membership, limit: int) -> Iterable[TimelineEntry]:
    """The person's lead history; a link to the lead only for those who may open it."""
    visible = set(lead_visible_to(viewer=viewer).filter(customer=customer).values_list("pk", flat=True))
    events = (
        LeadEvent.objects.filter(lead__customer=customer, kind__in=TIMELINE_KINDS)
        .select_related("lead", "actor__user")
        .order_by("-at", "-id")[:limit]
    )
    for event in events:
        yield TimelineEntry(
            at=event.at,
            kind="lead",
            title=_("Lead: %(what)s") % {"what": event.get_kind_display()},
            detail=event.summary,
            url=reverse("sales:lead", args=[event.lead_id]) if event.lead_id in visible else None,
            staff=event.actor.display_name if event.actor else "",
        )


def leads_merge(*, survivor: Any, duplicate: Any) -> dict[str, int]:
    """Merge hook: the duplicate's leads belong to the survivor. Where both have an open lead, the
    duplicate's is closed as lost with the reason "other" (its history stays, on the survivor)."""
    closed = 0
    if Lead.objects.filter(customer=survivor, stage__in=OPEN_STAGES).exists():
        other = DefeatReason.objects.filter(code="other").first()
        if other is None:
            other = DefeatReason.objects.create(code="other", label="其他 / Other", position=99)
        closed = Lead.objects.filter(customer=duplicate, stage__in=OPEN_STAGES).update(
            stage=Stage.DEFEATED,
            defeat_status=DefeatStatus.APPROVED,
            defeat_reason=other,
            defeat_note=_("Customer merged."),
            next_followup_on=None,
        )
    moved = Lead.objects.filter(customer=duplicate).update(customer=survivor)
    Lead.objects.filter(referrer=duplicate).update(referrer=survivor)
    return {"leads": moved, "leads_closed": closed}
