"""What complaints contributes to the extension points of the kernel and of customers."""

from complaints import customer_views, selectors
from crm.core.home import HomeCard, home_cards
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
