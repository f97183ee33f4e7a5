"""What the customers app contributes to the kernel's extension points (imported once at start-up)."""

from django.utils.translation import gettext_lazy as _

from crm.core.home import HomeCard, home_cards
from crm.core.nightly import NightlyStep, nightly_steps
from crm.tenancy.handover import MemberHandover, member_handovers
from customers import nightly, selectors, services, tasks, timeline

# the import tasks are queued by name (customers.imports never imports its tasks module): registered here
assert tasks.import_validate_task.name and tasks.import_commit_task.name

nightly_steps.register(
    # after segmentation: the night's order as managers knew it (the step reads nothing segmentation writes)
    NightlyStep(name="customers.data_quality", after=("segmentation.rfm",), run=nightly.data_quality_recompute)
)
home_cards.register(
    HomeCard(name="customers", template="customers/_home_card.html", context=selectors.customer_home_card)
)
member_handovers.register(
    MemberHandover(
        name="customers",
        label=_("Customers assigned"),
        count=selectors.customer_count_owned_by,
        hand_over=services.customers_reassign,
    )
)
timeline.timeline_sources.register(timeline.TimelineSource(name="touchpoints", entries=timeline.touchpoint_entries))
timeline.timeline_sources.register(timeline.TimelineSource(name="orders", entries=timeline.order_entries))
timeline.timeline_sources.register(timeline.TimelineSource(name="ownership", entries=timeline.ownership_entries))
