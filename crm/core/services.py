"""Writes of the shared core: starting a nightly run by hand."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError, NotAllowed
from crm.core.models import NightlyRun
from crm.core.nightly import PIPELINE, nightly_runs_abandon
from crm.core.tasks import nightly_tenant_task
from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.models import AuditAction, Membership


@transaction.atomic
def nightly_request_run(*, actor: Membership, meta: RequestMeta | None = None) -> None:
    """Queue the nightly pipeline for the actor's dealership now ("recompute now")."""
    if not actor.can("nightly.run"):
        raise NotAllowed(_("Your role may not start nightly runs."))
    nightly_runs_abandon()  # a killed worker's records do not count as a run in progress
    if NightlyRun.objects.filter(step=PIPELINE, status=NightlyRun.Status.RUNNING).exists():
        raise ApplicationError(_("A run is in progress already; wait for it to finish."), code="run_in_progress")
    audit_record(action=AuditAction.NIGHTLY_STARTED, actor=actor.user, summary=actor.tenant.name, meta=meta)
    tenant_id = actor.tenant_id
    transaction.on_commit(lambda: nightly_tenant_task.delay(tenant_id=tenant_id, trigger=NightlyRun.Trigger.MANUAL))
