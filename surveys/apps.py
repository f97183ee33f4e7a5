from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SurveysConfig(AppConfig):
    name = "surveys"
    verbose_name = _("Surveys")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from complaints.services import TICKET_CLOSED_HOOKS
        from customers.panels import customer_panel
        from segmentation.engine import lifecycle_signal
        from surveys import selectors, services

        TICKET_CLOSED_HOOKS.append(services.survey_after_complaint)
        customer_panel("surveys", template="surveys/_customer_panel.html", order=30)(selectors.customer_survey_panel)
        # Segmentation's lifecycle: the latest answered survey says satisfied (4–5) or not (1–2).
        lifecycle_signal(
            "surveys",
            """SELECT DISTINCT ON (r.customer_id) r.customer_id, r.overall >= 4, r.overall <= 2, 0
                 FROM surveys_response r
                WHERE r.tenant_id = %(tenant)s AND r.overall IS NOT NULL
                ORDER BY r.customer_id, r.submitted_at DESC""",
        )
