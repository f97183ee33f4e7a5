from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ComplaintsConfig(AppConfig):
    name = "complaints"
    verbose_name = _("Complaints")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from complaints import customer_views
        from customers.records import MERGE_HOOKS

        MERGE_HOOKS.append(customer_views.tickets_merge)
