from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = pgettext_lazy("programme", "Loyalty")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from complaints.services import TICKET_CLOSED_HOOKS
        from customers.panels import customer_panel
        from customers.records import MERGE_HOOKS
        from customers.timeline import timeline_source
        from loyalty import selectors, services

        # points promised as complaint compensation land on the ledger when the ticket closes
        TICKET_CLOSED_HOOKS.append(services.complaint_compensation_credit)
        MERGE_HOOKS.append(services.members_merge)
        customer_panel("loyalty", template="loyalty/_member_card.html", order=20)(selectors.customer_member_card)
        timeline_source("loyalty")(selectors.ledger_timeline)
