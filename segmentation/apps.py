from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentationConfig(AppConfig):
    name = "segmentation"
    verbose_name = _("Segmentation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from customers.panels import customer_panel
        from customers.records import MERGE_HOOKS
        from segmentation import selectors, services

        MERGE_HOOKS.append(services.value_merge)
        customer_panel("segmentation", template="segmentation/_customer_panel.html", order=10)(
            selectors.customer_value_panel
        )
