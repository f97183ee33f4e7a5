from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FollowupsConfig(AppConfig):
    name = "followups"
    verbose_name = _("Follow-ups")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from customers.panels import customer_panel
        from customers.records import MERGE_HOOKS
        from followups import selectors, services

        MERGE_HOOKS.append(services.followups_merge)
        customer_panel("followups", template="followups/_customer_panel.html", order=30)(
            selectors.customer_followup_panel
        )
