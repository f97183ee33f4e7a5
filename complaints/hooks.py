"""What complaints contributes to the extension points of the kernel and of customers."""

from django.utils.translation import gettext_lazy as _

from complaints import customer_views, selectors
from crm.core.home import HomeCard, home_cards
from crm.core.notifications import NotificationKind, notification_kinds
from customers.records import MergeHandler, merge_handlers
from customers.timeline import TimelineSource, timeline_sources

home_cards.register(
    HomeCard(
        name="complaints",
        after=("customers",),
        template="complaints/_home_cards.html",
        context=selectors.complaint_home_cards,
    )
)
timeline_sources.register(TimelineSource(name="complaints", entries=customer_views.complaint_entries))
merge_handlers.register(MergeHandler(name="complaints", merge=customer_views.tickets_merge))

# SLA warnings and breaches are urgent: first in the inbox, never digested, cannot be turned off.
notification_kinds.register(NotificationKind(name="sla_warning", label=_("Complaint SLA warnings"), urgent=True))
notification_kinds.register(NotificationKind(name="sla_breach", label=_("Complaint SLA breaches"), urgent=True))
notification_kinds.register(NotificationKind(name="ticket_unassigned", label=_("New complaints waiting for an owner")))
notification_kinds.register(NotificationKind(name="ticket_assigned", label=_("Complaints given to me")))
notification_kinds.register(NotificationKind(name="ticket_step", label=_("Steps of complaints I work on or watch")))
