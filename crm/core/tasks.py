"""Thin tasks: the nightly fan-out, one nightly run per tenant, and broker health probes."""

from __future__ import annotations

import os
import socket
from datetime import date
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from crm.core.models import NightlyRun
from crm.core.nightly import nightly_run_tenant, tenants_due_tonight
from crm.core.notifications import notifications_digest
from crm.tenancy.models import Membership
from crm.tenancy.tasks import tenant_fan_out, tenant_task


@shared_task(name="core.nightly_fan_out")
def nightly_fan_out_task() -> list[int]:
    """Beat calls this every 15 minutes; it queues a run for each dealership at its local night."""
    queued = []
    for tenant_id, local_date in tenants_due_tonight():
        # Between queueing and the run record appearing, later beat ticks must not queue again.
        if cache.add(f"nightly-queued:{tenant_id}:{local_date.isoformat()}", 1, timeout=60 * 60 * 6):
            nightly_tenant_task.delay(tenant_id=tenant_id, trigger=NightlyRun.Trigger.SCHEDULE)
            queued.append(tenant_id)
    return queued


# A failed step (a deadlock, a lost connection, a worker restart) is retried on its own, with the
# same business date, after 1, 2 and 4 minutes; the steps are idempotent.
STEP_RETRIES = 3


def step_retry_delay(retries: int) -> int:
    return int(60 * 2**retries)


@shared_task(
    name="core.nightly_tenant",
    bind=True,
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=5,
)
def nightly_tenant_task(
    self: Any,
    *,
    tenant_id: int,
    trigger: str = NightlyRun.Trigger.SCHEDULE,
    only: list[str] | None = None,
    run_date: str | None = None,
) -> list[dict[str, Any]]:
    day = date.fromisoformat(run_date) if run_date else None
    runs = nightly_run_tenant(tenant_id=int(tenant_id), trigger=trigger, only=only, run_date=day)
    failed = [r.step for r in runs if r.status == NightlyRun.Status.FAILED]
    # In-process (no broker, tasks eager and propagating): nothing to wait with; the run is recorded
    # as failed and the next night, or "Recompute now", runs it again.
    in_process = self.request.is_eager and settings.CELERY_TASK_EAGER_PROPAGATES
    if failed and not in_process and self.request.retries < STEP_RETRIES:
        raise self.retry(
            kwargs={
                "tenant_id": tenant_id,
                "trigger": trigger,
                "only": failed,
                "run_date": runs[0].run_date.isoformat(),
            },
            countdown=step_retry_delay(self.request.retries),
            max_retries=STEP_RETRIES,
        )
    return [{"step": r.step, "status": r.status, "rows": r.rows} for r in runs]


@shared_task(name="core.notifications_digest_fan_out")
def notifications_digest_fan_out_task() -> list[int]:
    """Beat calls this every 15 minutes; each dealership's digests are made once its local 07:00 has
    passed (a run before that, or a second one, finds nothing waiting)."""
    return tenant_fan_out(notifications_digest_task)


@tenant_task(name="core.notifications_digest")
def notifications_digest_task(*, tenant_id: int) -> int:
    return notifications_digest()


@shared_task(name="core.ping")
def ping_task(payload: str) -> dict[str, Any]:
    """Round trip through the broker: used by the broker test and by operators checking workers."""
    return {"echo": payload, "worker": socket.gethostname(), "pid": os.getpid()}


@tenant_task(name="core.tenant_probe")
def tenant_probe_task(*, tenant_id: int) -> dict[str, Any]:
    """Shows what a worker sees inside one tenant: both locks are set for the body only."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.tenant_id', true), current_user")
        guc, db_user = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM tenancy_membership")
        (raw_rows,) = cursor.fetchone()
    return {
        "tenant_id": tenant_id,
        "guc": guc,
        "db_user": db_user,
        "raw_sql_memberships": raw_rows,
        "orm_memberships": Membership.objects.count(),
    }
