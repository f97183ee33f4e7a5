from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MessagingConfig(AppConfig):
    name = "crm.messaging"
    label = "messaging"
    verbose_name = _("Messages to customers")
    default_auto_field = "django.db.models.BigAutoField"
