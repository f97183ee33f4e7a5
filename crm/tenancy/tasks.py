"""Running Celery task bodies for one tenant, with both locks set and reset afterwards."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from celery import shared_task
from celery.app.task import Task

from crm.tenancy.context import tenant_context

R = TypeVar("R")


def tenant_task(name: str, **celery_options: Any) -> Callable[[Callable[..., R]], Task]:  # type: ignore[type-arg]
    """Declare a task whose body runs for one tenant: `fn(*, tenant_id, **kwargs)`.

    The body runs inside `tenant_context(tenant_id)`: the ContextVar and the transaction-local
    RLS setting are set for exactly its duration, so a worker process reused for the next task
    (of another tenant) starts clean.
    """

    def decorator(fn: Callable[..., R]) -> Task:  # type: ignore[type-arg]
        @shared_task(name=name, **celery_options)
        @wraps(fn)
        def run(*, tenant_id: int, **kwargs: Any) -> R:
            with tenant_context(int(tenant_id)):
                return fn(tenant_id=int(tenant_id), **kwargs)

        return run  # type: ignore[no-any-return]

    return decorator


def tenant_fan_out(task: Task, **kwargs: Any) -> list[int]:  # type: ignore[type-arg]
    """Queue `task` once for every active dealership. Returns the tenant ids queued."""
    from crm.tenancy.models import Tenant

    tenant_ids = list(Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        task.delay(tenant_id=tenant_id, **kwargs)
    return tenant_ids
