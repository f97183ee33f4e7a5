from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "crm.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        import crm.api.schema  # noqa: F401 - registers the OpenAPI authentication extensions
        from crm.core import checks  # noqa: F401 - checks register themselves
        from crm.core.extensions import discover

        discover()  # every app's hooks.py: its contributions to the extension points
