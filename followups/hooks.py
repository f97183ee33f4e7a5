"""What follow-ups contributes to the extension points of the kernel and of customers."""

from crm.core.nightly import NightlyStep, nightly_steps
from customers.panels import CustomerPanel, customer_panels
from customers.records import MergeHandler, merge_handlers
from followups import nightly, selectors, services

# after segmentation, so priorities and tier cadence use tonight's tiers; after loyalty levels
nightly_steps.register(
    NightlyStep(name="followups.schedule", after=("segmentation.rfm", "loyalty.levels"), run=nightly.followups_nightly)
)
customer_panels.register(
    CustomerPanel(
        name="followups",
        after=("loyalty",),
        template="followups/_customer_panel.html",
        context=selectors.customer_followup_panel,
    )
)
merge_handlers.register(MergeHandler(name="followups", merge=services.followups_merge))
