"""What the dashboards app contributes: its nightly step, after every step whose results it reads."""

from crm.core.nightly import NightlyStep, nightly_steps
from dashboards import nightly

nightly_steps.register(
    NightlyStep(
        name="dashboards.figures",
        # tonight's tiers and stages, balances and care points, follow-ups, scores, invitations
        after=(
            "segmentation.rfm",
            "loyalty.care",
            "followups.schedule",
            "customers.data_quality",
            "surveys.schedule",
        ),
        run=nightly.dashboards_nightly,
    )
)
