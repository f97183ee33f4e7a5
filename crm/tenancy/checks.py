"""System checks that keep new models inside the tenancy rules (run by `manage.py check` and tests)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core import checks


@checks.register(checks.Tags.models)
def tenant_models_follow_the_rules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from crm.tenancy.models import TenantOwnedModel

    errors: list[checks.CheckMessage] = []
    for model in apps.get_models():
        if not issubclass(model, TenantOwnedModel):
            continue
        for field in model._meta.local_many_to_many:
            through = field.remote_field.through
            if through is not None and through._meta.auto_created:
                errors.append(
                    checks.Error(
                        f"{model.__name__}.{field.name} uses an auto-created many-to-many table, which has no "
                        "tenant_id and so no row-level security.",
                        hint="Declare an explicit through= model that inherits TenantOwnedModel.",
                        obj=field,
                        id="tenancy.E001",
                    )
                )
        for constraint in model._meta.constraints:
            fields = getattr(constraint, "fields", ())
            if fields and fields[0] not in ("tenant", "tenant_id"):
                errors.append(
                    checks.Error(
                        f"{model.__name__}: constraint {constraint.name} does not lead with tenant.",
                        hint="Put 'tenant' first, so a constraint error never reveals another dealership's data.",
                        obj=model,
                        id="tenancy.E002",
                    )
                )
    return errors
