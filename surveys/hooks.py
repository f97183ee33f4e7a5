"""What surveys contributes to the extension points of the kernel, customers, complaints and segmentation."""

from django.utils.translation import gettext_lazy as _

from complaints.services import TicketClosedHandler, ticket_closed_handlers
from crm.core.nightly import NightlyStep, nightly_steps
from crm.core.notifications import NotificationKind, notification_kinds
from customers.panels import CustomerPanel, customer_panels
from customers.timeline import TimelineSource, timeline_sources
from segmentation.engine import LifecycleSignal, lifecycle_signals
from surveys import nightly, selectors, services

nightly_steps.register(NightlyStep(name="surveys.schedule", run=nightly.surveys_nightly))
customer_panels.register(
    CustomerPanel(
        name="surveys",
        after=("followups",),
        template="surveys/_customer_panel.html",
        context=selectors.customer_survey_panel,
    )
)
timeline_sources.register(TimelineSource(name="surveys", entries=selectors.response_timeline))
# a closed complaint is followed by its satisfaction survey
ticket_closed_handlers.register(
    TicketClosedHandler(name="surveys.after_complaint", handle=services.survey_after_complaint)
)
# Segmentation's lifecycle: the latest answered survey says satisfied (4–5) or not (1–2).
lifecycle_signals.register(
    LifecycleSignal(
        name="surveys",
        sql="""SELECT DISTINCT ON (r.customer_id) r.customer_id, r.overall >= 4, r.overall <= 2, 0
                 FROM surveys_response r
                WHERE r.tenant_id = %(tenant)s AND r.overall IS NOT NULL
                ORDER BY r.customer_id, r.submitted_at DESC""",
    )
)
# A low score asks for a call back: urgent (first in the inbox, cannot be turned off).
notification_kinds.register(NotificationKind(name="survey_low_score", label=_("Low survey scores"), urgent=True))
