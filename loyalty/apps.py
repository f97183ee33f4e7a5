from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = pgettext_lazy("programme", "Loyalty")
    default_auto_field = "django.db.models.BigAutoField"
