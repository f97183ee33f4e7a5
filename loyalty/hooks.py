"""What loyalty contributes to the extension points of the kernel, customers, complaints and segmentation."""

from django.utils.translation import gettext_lazy as _

from complaints.services import TicketClosedHandler, ticket_closed_handlers
from crm.core.nightly import NightlyStep, nightly_steps
from crm.core.notifications import NotificationKind, notification_kinds
from customers.panels import CustomerPanel, customer_panels
from customers.records import MergeHandler, merge_handlers
from customers.timeline import TimelineSource, timeline_sources
from loyalty import nightly, selectors, services
from segmentation.engine import LifecycleSignal, lifecycle_signals

# Earning before expiry, so a night's new points and reversals count before old points expire;
# levels after both; care greetings (birthday points, the member's level in the text) after levels.
nightly_steps.register(NightlyStep(name="loyalty.earn", run=nightly.loyalty_earn))
nightly_steps.register(
    NightlyStep(name="loyalty.points_expiry", after=("loyalty.earn",), run=nightly.loyalty_points_expiry)
)
nightly_steps.register(NightlyStep(name="loyalty.levels", after=("loyalty.points_expiry",), run=nightly.loyalty_levels))
nightly_steps.register(NightlyStep(name="loyalty.care", after=("loyalty.levels",), run=nightly.loyalty_care))

customer_panels.register(
    CustomerPanel(
        name="loyalty",
        after=("segmentation",),
        template="loyalty/_member_card.html",
        context=selectors.customer_member_card,
    )
)
timeline_sources.register(TimelineSource(name="loyalty", entries=selectors.ledger_timeline))
merge_handlers.register(MergeHandler(name="loyalty", merge=services.members_merge))
# points promised as complaint compensation land on the ledger when the ticket closes
ticket_closed_handlers.register(
    TicketClosedHandler(name="loyalty.compensation", handle=services.complaint_compensation_credit)
)
# Segmentation's lifecycle (rule 4, loyal): a member who referred someone who then bought a vehicle
# here (a rewarded referral whose sale order was not reversed); no satisfaction either way.
lifecycle_signals.register(
    LifecycleSignal(
        name="loyalty.referrals",
        sql="""SELECT m.customer_id, NULL::boolean, NULL::boolean, count(*)::integer
                 FROM loyalty_referral r
                 JOIN loyalty_member m ON m.id = r.referrer_id
                 JOIN customers_order o ON o.id = r.order_id
                WHERE r.tenant_id = %(tenant)s AND r.status = 'rewarded' AND o.status <> 'reversed'
                GROUP BY m.customer_id""",
    )
)
# The nightly batch changes many levels at once: the owner gets one daily digest, not one each.
notification_kinds.register(NotificationKind(name="loyalty_level", label=_("Membership level changes"), digest=True))
