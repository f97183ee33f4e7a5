from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The wiring as an installed app only so that `manage.py seed_demo` (config/management/) is found."""

    name = "config"
    label = "config"
    verbose_name = "Configuration"
