"""What sales contributes to the extension points of the kernel, customers and follow-ups."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.core.home import HomeCard, home_cards
from crm.core.nightly import NightlyStep, nightly_steps
from crm.core.notifications import NotificationKind, notification_kinds
from crm.tenancy.handover import MemberHandover, member_handovers
from customers.panels import CustomerPanel, customer_panels
from customers.records import MergeHandler, merge_handlers
from customers.timeline import TimelineSource, timeline_sources
from followups.subjects import FollowupSubject, followup_subjects
from sales import customer_views, nightly, selectors, services

# independent of follow-ups.schedule: the lead follow-ups are planned and cancelled by this step alone
nightly_steps.register(NightlyStep(name="sales.leads", run=nightly.leads_nightly))
home_cards.register(
    HomeCard(name="sales", after=("customers",), template="sales/_home_card.html", context=selectors.sales_home_card)
)
customer_panels.register(
    CustomerPanel(
        name="sales",
        after=("followups",),
        template="sales/_customer_panel.html",
        context=selectors.customer_sales_panel,
    )
)
timeline_sources.register(TimelineSource(name="sales", entries=customer_views.lead_entries))
merge_handlers.register(MergeHandler(name="sales", merge=customer_views.leads_merge))
member_handovers.register(
    MemberHandover(
        name="sales",
        label=_("Open leads"),
        count=selectors.lead_count_owned_by,
        hand_over=services.leads_hand_over,
    )
)
followup_subjects.register(
    FollowupSubject(
        name="sales",
        reason="lead",
        url=lambda followup: reverse("sales:lead_of_customer", args=[followup.customer_id]),
        attempt_logged=services.lead_attempt_logged,
    )
)
notification_kinds.register(NotificationKind(name="lead_assigned", label=_("Leads given to me")))
notification_kinds.register(NotificationKind(name="lead_enquiry", label=_("My leads enquiring again")))
notification_kinds.register(NotificationKind(name="lead_conflict", label=_("Lead ownership conflicts")))
notification_kinds.register(NotificationKind(name="lead_defeat", label=_("Lead defeats to approve and decided")))
