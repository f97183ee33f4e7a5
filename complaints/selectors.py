"""Reads of complaint tickets: visibility, the queues, the public status check, the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from complaints.models import OPEN_STATUSES, ComplaintCategory, Status, Ticket, TicketEvent, TicketWatcher
from crm.core.period import Period
from crm.core.sql import fetch_dict, fetch_dicts
from crm.tenancy.models import Membership
from customers.models import Customer
from customers.validators import mask_mobile

SOON = timedelta(hours=4)  # "breaching soon": a target falls due within this much wall time


def ticket_visible_to(*, viewer: Membership) -> QuerySet[Ticket]:
    """All tickets for those who see all; otherwise the viewer's: assigned, watched, or about one of
    their own customers."""
    tickets = Ticket.objects.select_related("category", "assignee__user", "customer")
    if viewer.can("complaints.view_all"):
        return tickets
    if not viewer.can("complaints.work"):
        return tickets.none()
    watched = TicketWatcher.objects.filter(ticket=OuterRef("pk"), membership=viewer)
    return tickets.filter(Q(assignee=viewer) | Q(customer__owner=viewer) | Exists(watched))


QUEUES = ("mine", "team", "unassigned", "soon", "breached", "waiting", "follow_up", "closed", "all")
# The queue's sort keys (the Due and Number headers); "" = the queue's own order: soonest resolution
# due first in the open queues, newest first in the closed, follow-up and "all" queues.
TICKET_SORTS = {
    "due": ("resolution_due_at", "id"),
    "-due": ("-resolution_due_at", "-id"),
    "newest": ("-opened_at", "-id"),
    "oldest": ("opened_at", "id"),
}


@dataclass
class TicketFilters:
    queue: str = "mine"
    q: str = ""
    category: ComplaintCategory | None = None
    severity: str = ""
    status: str = ""
    assignee: Membership | None = None
    sort: str = ""  # a key of TICKET_SORTS, else the queue's own order


def ticket_queue(*, viewer: Membership, filters: TicketFilters, now: datetime | None = None) -> QuerySet[Ticket]:
    now = now or timezone.now()
    tickets = ticket_visible_to(viewer=viewer)
    open_ = Q(status__in=OPEN_STATUSES)
    due = Q(first_response_at__isnull=True, response_due_at__lte=now) | Q(resolution_due_at__lte=now)
    soon = Q(first_response_at__isnull=True, response_due_at__lte=now + SOON) | Q(resolution_due_at__lte=now + SOON)
    queue = filters.queue
    if queue == "mine":
        tickets = tickets.filter(open_, assignee=viewer)
    elif queue == "team":
        tickets = tickets.filter(open_)
    elif queue == "unassigned":
        tickets = tickets.filter(open_, assignee__isnull=True)
    elif queue == "soon":
        tickets = tickets.filter(open_, soon, paused_at__isnull=True).exclude(due)
    elif queue == "breached":
        tickets = tickets.filter(open_, due)
    elif queue == "waiting":
        tickets = tickets.filter(open_, paused_at__isnull=False)
    elif queue == "follow_up":
        tickets = tickets.filter(status=Status.CLOSED, follow_up_due_on__lte=timezone.localdate(now))
    elif queue == "closed":
        tickets = tickets.filter(status__in=[Status.CLOSED, Status.FOLLOWED_UP])
    if filters.q:
        q = filters.q.strip()
        tickets = tickets.filter(Q(number=q) | Q(subject__icontains=q) | Q(contact_name__startswith=q))
    if filters.category is not None:
        tickets = tickets.filter(category=filters.category)
    if filters.severity:
        tickets = tickets.filter(severity=filters.severity)
    if filters.status:
        tickets = tickets.filter(status=filters.status)
    if filters.assignee is not None:
        tickets = tickets.filter(assignee=filters.assignee)
    if filters.sort in TICKET_SORTS:
        return tickets.order_by(*TICKET_SORTS[filters.sort])
    order = ["resolution_due_at", "id"] if queue not in ("closed", "all", "follow_up") else ["-opened_at", "-id"]
    return tickets.order_by(*order)


def queue_counts(*, viewer: Membership, now: datetime | None = None) -> dict[str, int]:
    return {queue: ticket_queue(viewer=viewer, filters=TicketFilters(queue=queue), now=now).count() for queue in QUEUES}


def ticket_shows_full_mobile(*, viewer: Membership, ticket: Ticket) -> bool:
    """The contact's mobile in full only to the ticket's assignee, who calls the person back, and to
    integrations by role (their reads are audited): the customer page's rule (owner, integrations).
    Everyone else sees it masked and may reveal it with `ticket_reveal_mobile` (audited)."""
    return ticket.assignee_id == viewer.pk or viewer.can("customers.unmasked_bulk")


def ticket_contact_mobile(*, viewer: Membership, ticket: Ticket) -> str:
    if ticket_shows_full_mobile(viewer=viewer, ticket=ticket):
        return ticket.contact_mobile
    return mask_mobile(ticket.contact_mobile)


def complaint_home_cards(*, viewer: Membership) -> dict[str, Any] | None:
    """The home page's complaint figures: the viewer's open tickets and the overdue ones."""
    if not (viewer.can("complaints.work") or viewer.can("complaints.view_all")):
        return None
    return {
        "complaints_mine": ticket_queue(viewer=viewer, filters=TicketFilters(queue="mine")).count(),
        "complaints_breached": ticket_queue(viewer=viewer, filters=TicketFilters(queue="breached")).count(),
    }


def ticket_events(*, ticket: Ticket) -> QuerySet[TicketEvent]:
    return TicketEvent.objects.filter(ticket=ticket).select_related("actor__user").order_by("created_at", "id")


def ticket_for_customer(*, number: str, mobile: str) -> Ticket | None:
    """The public status check: both the acknowledgement number and the complainant's mobile must match."""
    return Ticket.objects.filter(number=number.strip(), contact_mobile=mobile).select_related("category").first()


def customer_tickets(*, customer: Customer) -> QuerySet[Ticket]:
    return Ticket.objects.filter(customer=customer).order_by("-opened_at")


# --- Metrics -----------------------------------------------------------------------------------------


def _percentiles_sql(column: str) -> str:
    return (
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {column}) AS median_{column.split('.')[-1]}, "
        f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {column}) AS p90_{column.split('.')[-1]}"
    )


def complaint_metrics(*, period: Period, zone: Any) -> dict[str, Any]:
    """Manager figures over tickets opened in the period (dates in the dealership's zone).

    Times are business minutes (waiting on the customer excluded): first response = opening to
    the end of "greet"; resolution = opening to closing. SLA compliance = share of tickets that
    met a target among those whose target has been decided (met, or missed)."""
    start, end = period.bounds(zone)
    base = """
        FROM complaints_ticket t
        LEFT JOIN complaints_complaintcategory c ON c.id = t.category_id
        WHERE t.opened_at >= %(start)s AND t.opened_at < %(end)s
    """
    figures = f"""
        count(*) AS tickets,
        count(*) FILTER (WHERE t.resolved_at IS NOT NULL) AS closed,
        {_percentiles_sql("t.response_minutes")},
        {_percentiles_sql("t.resolution_minutes")},
        avg(CASE WHEN t.first_response_at IS NOT NULL THEN (t.first_response_at <= t.response_due_at)::int
                 WHEN %(now)s > t.response_due_at AND t.paused_at IS NULL THEN 0 END) AS response_compliance,
        avg(CASE WHEN t.resolved_at IS NOT NULL
                 THEN (t.resolved_at <= t.resolution_due_at AND NOT t.resolution_failed)::int
                 WHEN %(now)s > t.resolution_due_at AND t.paused_at IS NULL THEN 0 END) AS resolution_compliance,
        avg((t.reopen_count > 0)::int) FILTER (WHERE t.resolved_at IS NOT NULL) AS reopen_rate,
        sum(t.compensation_amount) AS compensation_amount,
        sum(t.compensation_points) AS compensation_points
    """
    params = {"start": start, "end": end, "now": timezone.now()}
    result: dict[str, Any] = {}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {figures} {base}", params)
        result["overall"] = fetch_dict(cursor)
        cursor.execute(
            f"SELECT coalesce(c.name, '') AS label, {figures} {base} GROUP BY c.name ORDER BY count(*) DESC", params
        )
        result["by_category"] = fetch_dicts(cursor)
        cursor.execute(
            f"""SELECT t.assignee_id AS assignee_id, {figures} {base} GROUP BY t.assignee_id ORDER BY count(*) DESC""",
            params,
        )
        result["by_assignee"] = fetch_dicts(cursor)
        cursor.execute(
            f"""SELECT to_char(t.opened_at AT TIME ZONE %(tz)s, 'YYYY-MM') AS label, {figures} {base}
                 GROUP BY 1 ORDER BY 1""",
            params | {"tz": str(zone)},
        )
        result["by_month"] = fetch_dicts(cursor)
        cursor.execute("SELECT count(*) FROM customers_customer WHERE merged_into_id IS NULL")
        (customers,) = cursor.fetchone()
    names = {
        m.pk: m.display_name
        for m in Membership.objects.filter(
            pk__in=[r["assignee_id"] for r in result["by_assignee"] if r["assignee_id"]]
        ).select_related("user")
    }
    for row in result["by_assignee"]:
        row["label"] = names.get(row["assignee_id"], "")
    tickets = result["overall"]["tickets"]
    result["customers"] = customers
    result["per_100_customers"] = round(100 * tickets / customers, 2) if customers else None
    return result
