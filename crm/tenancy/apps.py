from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenancyConfig(AppConfig):
    name = "crm.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy and access"

    def ready(self) -> None:
        from crm.tenancy import checks, rls  # noqa: F401 - checks register themselves

        # Row-level security is applied to every tenant-owned table after each migrate, so a
        # model added later is protected without anyone remembering to write a policy.
        post_migrate.connect(rls.apply_after_migrate, dispatch_uid="crm.tenancy.rls")
