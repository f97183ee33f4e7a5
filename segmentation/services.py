"""Writes of segmentation: settings, "recompute now", and keeping values right when customers merge.

The nightly recomputation itself is `segmentation.engine.segmentation_recompute`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError
from crm.core.models import NightlyRun
from crm.core.nightly import nightly_runs_abandon
from crm.core.tasks import nightly_tenant_task
from crm.tenancy.access import require
from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.models import AuditAction, Membership, Tenant, settings_assign
from customers.models import Customer
from segmentation.engine import settings_for_tenant
from segmentation.models import SegmentationSettings, ValueHistory
from segmentation.nightly import STEP

SETTINGS_FIELDS = (
    "scoring_mode",
    "window_months",
    "recency_days",
    "frequency_limits",
    "monetary_limits",
    "share_key",
    "share_consolidate",
    "share_maintain",
    "share_exit",
    "red_list_effect",
    "dormant_after_days",
    "lost_after_days",
    "loyal_min_orders",
    "strategy_key",
    "strategy_consolidate",
    "strategy_maintain",
    "strategy_exit",
)


@transaction.atomic
def settings_update(
    *, actor: Membership, data: dict[str, Any], meta: RequestMeta | None = None
) -> SegmentationSettings:
    """Change how the dealership is scored and tiered; takes effect at the next run."""
    require(actor, "segmentation.manage", _("Only managers may change segmentation settings."))
    settings = SegmentationSettings.objects.select_for_update().get(pk=settings_for_tenant().pk)
    before = {field: _plain(getattr(settings, field)) for field in SETTINGS_FIELDS}
    settings_assign(settings, data, fields=SETTINGS_FIELDS, invalid=_("Check the highlighted settings."))
    settings.save()
    after = {field: _plain(getattr(settings, field)) for field in SETTINGS_FIELDS}
    changed = {k: {"from": before[k], "to": after[k]} for k in SETTINGS_FIELDS if before[k] != after[k]}
    if changed:
        audit_record(
            action=AuditAction.SEGMENTATION_SETTINGS_CHANGED,
            actor=actor.user,
            summary=", ".join(sorted(changed)),
            data=changed,
            meta=meta,
        )
    return settings


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [str(v) for v in value]
    return value if isinstance(value, (int, bool)) or value is None else str(value)


@transaction.atomic
def segmentation_request_run(*, actor: Membership, meta: RequestMeta | None = None) -> None:
    """ "Recompute now": queue the segmentation step for the actor's dealership."""
    require(actor, "segmentation.manage", _("Only managers may start a recomputation."))
    nightly_runs_abandon()  # a killed worker's records do not count as a run in progress
    if NightlyRun.objects.filter(step=STEP, status=NightlyRun.Status.RUNNING).exists():
        raise ApplicationError(_("A recomputation is running already; wait for it to finish."), code="run_in_progress")
    audit_record(action=AuditAction.NIGHTLY_STARTED, actor=actor.user, summary=STEP, data={"step": STEP}, meta=meta)
    tenant_id = actor.tenant_id
    transaction.on_commit(
        lambda: nightly_tenant_task.delay(tenant_id=tenant_id, trigger=NightlyRun.Trigger.MANUAL, only=[STEP])
    )


def value_merge(*, survivor: Customer, duplicate: Customer) -> dict[str, int]:
    """Merge hook: the duplicate's open history period ends today. Its values row stays, out of
    sight (pages list live customers only), until the next run takes it out of the distribution and
    deletes it; the survivor is re-aggregated then too (the moved orders and the merge marked both)."""
    today = timezone.localtime(timezone.now(), Tenant.objects.get(pk=survivor.tenant_id).zone).date()
    removed = 0
    ValueHistory.objects.filter(customer=duplicate, valid_to__isnull=True, valid_from__gte=today).delete()
    closed = ValueHistory.objects.filter(customer=duplicate, valid_to__isnull=True).update(valid_to=today)
    return {"customer_values": removed, "value_history_closed": closed}
