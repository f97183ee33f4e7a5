from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "crm.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        import crm.api.schema  # noqa: F401 - registers the OpenAPI authentication extensions
