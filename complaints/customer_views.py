"""Complaints on the customer page: timeline entries (opened, closed) and moving tickets on merge
(contributed in hooks.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _

from complaints.models import Ticket
from complaints.selectors import ticket_visible_to
from crm.tenancy.models import Membership
from customers.timeline import TimelineEntry


def complaint_entries(*, customer: Any, viewer: Membership, limit: int) -> Iterable[TimelineEntry]:
    """Tickets about this customer that the viewer may open (their own or all, by role)."""
    if not (viewer.can("complaints.view_all") or viewer.can("complaints.work")):
        return
    tickets = ticket_visible_to(viewer=viewer).filter(customer=customer).order_by("-opened_at")[:limit]
    for ticket in tickets:
        url = reverse("complaints:detail", args=[ticket.pk])
        yield TimelineEntry(
            at=ticket.opened_at,
            kind="complaint",
            title=_("Complaint %(number)s: %(subject)s") % {"number": ticket.number, "subject": ticket.subject},
            detail=f"{ticket.category.name} · {ticket.get_severity_display()} · {ticket.get_status_display()}",
            url=url,
            staff=ticket.assignee.display_name if ticket.assignee else "",
        )
        if ticket.resolved_at:
            yield TimelineEntry(
                at=ticket.resolved_at,
                kind="complaint",
                title=_("Complaint %(number)s closed") % {"number": ticket.number},
                detail=ticket.resolution,
                url=url,
            )


def tickets_merge(*, survivor: Any, duplicate: Any) -> dict[str, int]:
    """Merge hook: the duplicate's tickets belong to the survivor from now on."""
    return {"tickets": Ticket.objects.filter(customer=duplicate).update(customer=survivor)}
