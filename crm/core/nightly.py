"""The nightly pipeline: apps contribute steps; one run per tenant executes them in dependency order.

A step is a contribution to the extension point `nightly_steps` (crm/core/extensions.py), declared
in the app's hooks.py with the steps it must follow:

    nightly_steps.register(NightlyStep(name="followups.schedule", after=("segmentation.rfm",), run=...))

where `run(*, tenant_id: int, run_date: date, trigger: str = "") -> int` returns the rows written.
`manage.py run_nightly --plan` prints the night's order; a cycle or an unknown name stops start-up.

Each step runs in its own transaction inside `tenant_context` (both tenancy locks), guarded by
a transaction-level advisory lock so that one step runs at most once at a time per dealership.
Every step leaves a NightlyRun record (started, finished, rows, duration, error) that managers
see, closed in the step's own transaction. `manage.py run_nightly` runs the same code synchronously.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection
from django.utils import timezone

from crm.core.extensions import Contribution, ExtensionPoint
from crm.core.models import NightlyRun
from crm.tenancy.context import require_tenant_id, tenant_context
from crm.tenancy.models import Tenant

logger = logging.getLogger(__name__)

StepFunction = Callable[..., int]

# Between opening a step's record and taking its lock, and between two steps of one pipeline,
# milliseconds pass; a running record older than this with no transaction holding its lock is dead.
ABANDON_GRACE = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class NightlyStep(Contribution):
    run: StepFunction


nightly_steps: ExtensionPoint[NightlyStep] = ExtensionPoint("core.nightly_steps", NightlyStep)


def _try_step_lock(tenant_id: int, step: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s), %s)", [f"nightly:{step}", tenant_id])
        (locked,) = cursor.fetchone()
    return bool(locked)


def _steps_locked(tenant_id: int, steps: set[str]) -> set[str]:
    """The steps whose advisory lock for this dealership some live transaction holds (pg_locks: a
    two-key advisory lock keeps key 1 in classid, key 2 in objid, objsubid 2). A killed worker's
    connection is gone, and its transaction's locks with it."""
    if not steps:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT s.step FROM unnest(%s::text[]) AS s(step)
                WHERE EXISTS (SELECT 1 FROM pg_locks l
                               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                                 AND l.classid = (hashtext('nightly:' || s.step)::bigint & 4294967295)::oid
                                 AND l.objid = %s::bigint::oid)""",
            [sorted(steps), tenant_id],
        )
        return {step for (step,) in cursor.fetchall()}


def nightly_runs_abandon() -> int:
    """Mark `abandoned` the current dealership's running records that nothing is working on: a step's
    when no transaction holds its lock, a pipeline's when none of its steps is alive (both older than
    ABANDON_GRACE). Called at the start of every run and before "recompute now" checks for a run in
    progress, so a killed worker neither blocks nor confuses the next run. Returns records marked."""
    now = timezone.now()
    running = list(NightlyRun.objects.filter(status=NightlyRun.Status.RUNNING))
    if not running:
        return 0
    young = {run.pk for run in running if run.started_at >= now - ABANDON_GRACE}
    locked = _steps_locked(require_tenant_id(), {run.step for run in running if run.step != PIPELINE})
    step_alive = any(run.step != PIPELINE and (run.pk in young or run.step in locked) for run in running)
    dead = [
        run.pk
        for run in running
        if run.pk not in young and (not step_alive if run.step == PIPELINE else run.step not in locked)
    ]
    return NightlyRun.objects.filter(pk__in=dead, status=NightlyRun.Status.RUNNING).update(
        status=NightlyRun.Status.ABANDONED,
        error="Abandoned: the worker stopped before the step finished (no process held the step's lock).",
        finished_at=now,
    )


def tenant_local_date(tenant: Tenant) -> date:
    return timezone.localtime(timezone.now(), tenant.zone).date()


PIPELINE = "pipeline"  # the run record that spans all steps of one tenant's night


def _finish(run: NightlyRun, *, status: str, rows: int | None, error: str, started: float) -> None:
    """Close a record in the current transaction (the caller's tenant_context)."""
    run.status, run.rows, run.error = status, rows, error
    run.finished_at = timezone.now()
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.save(update_fields=["status", "rows", "error", "finished_at", "duration_ms"])


def nightly_run_tenant(
    *, tenant_id: int, trigger: str, run_date: date | None = None, only: list[str] | None = None
) -> list[NightlyRun]:
    """Run the registered steps for one dealership. Safe to repeat: steps are idempotent.

    Returns the step records; a "pipeline" record spans them (and is what the scheduler checks).
    One transaction opens the pipeline and the first step's record; each step's own transaction then
    closes its record (so "succeeded" commits with what the step wrote) and opens the next step's,
    or closes the pipeline after the last. A failed step's transaction rolls back; its record is
    closed as failed in a transaction of its own. N steps cost N + 1 commits.
    """
    tenant = Tenant.objects.get(pk=tenant_id)
    run_date = run_date or tenant_local_date(tenant)
    steps = [step for step in nightly_steps.contributions() if not only or step.name in only]
    pipeline_started = time.monotonic()
    runs: list[NightlyRun] = []

    def open_step(step: NightlyStep) -> NightlyRun:
        return NightlyRun.objects.create(step=step.name, run_date=run_date, trigger=trigger)

    def after(index: int) -> NightlyRun | None:
        """Open the next step's record (committed with this transaction, so "running" is visible while
        that step runs), or close the pipeline after the last step."""
        if index + 1 < len(steps):
            return open_step(steps[index + 1])
        failed = [r.step for r in runs if r.status == NightlyRun.Status.FAILED]
        _finish(
            pipeline,
            status=NightlyRun.Status.FAILED if failed else NightlyRun.Status.SUCCEEDED,
            rows=sum(r.rows or 0 for r in runs),
            error=f"Failed steps: {', '.join(failed)}" if failed else "",
            started=pipeline_started,
        )
        return None

    with tenant_context(tenant_id):
        nightly_runs_abandon()
        pipeline = NightlyRun.objects.create(step=PIPELINE, run_date=run_date, trigger=trigger)
        upcoming = open_step(steps[0]) if steps else after(-1)
    for index, step in enumerate(steps):
        run = upcoming
        assert run is not None
        runs.append(run)
        started = time.monotonic()
        try:
            with tenant_context(tenant_id):
                if _try_step_lock(tenant_id, step.name):
                    rows = step.run(tenant_id=tenant_id, run_date=run_date, trigger=trigger)
                    _finish(run, status=NightlyRun.Status.SUCCEEDED, rows=rows, error="", started=started)
                else:
                    _finish(run, status=NightlyRun.Status.SKIPPED, rows=None, error="", started=started)
                upcoming = after(index)
        except Exception:
            # Also a failure at commit (a deferred constraint): what the block set on `run` and
            # opened after it was rolled back with it, so both are written again here.
            logger.exception("nightly step %s failed for tenant %s", step.name, tenant_id)
            error = traceback.format_exc(limit=5)
            with tenant_context(tenant_id):
                _finish(run, status=NightlyRun.Status.FAILED, rows=None, error=error, started=started)
                upcoming = after(index)
    return runs


NIGHT_LOCAL_HOUR = 2


def tenants_due_tonight() -> list[tuple[int, date]]:
    """Active dealerships past their local 02:00 with no scheduled run for today yet.

    "Past" rather than "at": a night missed while beat was down is caught up on the next tick.
    """
    due: list[tuple[int, date]] = []
    for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
        local_now = timezone.localtime(timezone.now(), tenant.zone)
        if local_now.hour < NIGHT_LOCAL_HOUR:
            continue
        with tenant_context(tenant.pk):
            already = NightlyRun.objects.filter(
                step=PIPELINE, run_date=local_now.date(), trigger=NightlyRun.Trigger.SCHEDULE
            ).exists()
        if not already:
            due.append((tenant.pk, local_now.date()))
    return due
