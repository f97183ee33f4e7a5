"""Beat sends the outbox every minute, one task per dealership."""

from __future__ import annotations

from celery import shared_task

from crm.messaging.services import outbox_send_due
from crm.tenancy.tasks import tenant_fan_out


@shared_task(name="messaging.outbox_send", autoretry_for=(OSError,), retry_backoff=10, max_retries=3)
def outbox_send_task(*, tenant_id: int) -> dict[str, int]:
    """Each message in its own transaction (see outbox_send_due), so no tenant_task wrapper."""
    return outbox_send_due(tenant_id=int(tenant_id))


@shared_task(name="messaging.outbox_fan_out")
def outbox_fan_out_task() -> list[int]:
    return tenant_fan_out(outbox_send_task)
