"""SLA check: beat calls the fan-out every 5 minutes; each dealership's check runs on its own."""

from __future__ import annotations

from celery import shared_task

from complaints.services import sla_check
from crm.tenancy.tasks import tenant_fan_out, tenant_task


@tenant_task(name="complaints.sla_check_tenant", autoretry_for=(OSError,), retry_backoff=10, max_retries=3)
def sla_check_tenant_task(*, tenant_id: int) -> dict[str, int]:
    """Warn at 80%, escalate at breach; safe to run twice (each stage is claimed once)."""
    return sla_check()


@shared_task(name="complaints.sla_check_fan_out")
def sla_check_fan_out_task() -> list[int]:
    return tenant_fan_out(sla_check_tenant_task)
