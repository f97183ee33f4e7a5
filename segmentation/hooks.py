"""What segmentation contributes to the extension points of the kernel and of customers."""

from crm.core.nightly import NightlyStep, nightly_steps
from customers.panels import CustomerPanel, customer_panels
from customers.records import MergeHandler, merge_handlers
from segmentation import nightly, selectors, services

nightly_steps.register(NightlyStep(name=nightly.STEP, run=nightly.segmentation_nightly))
customer_panels.register(
    CustomerPanel(
        name="segmentation", template="segmentation/_customer_panel.html", context=selectors.customer_value_panel
    )
)
merge_handlers.register(MergeHandler(name="segmentation", merge=services.value_merge))
