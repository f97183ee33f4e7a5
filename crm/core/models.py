"""Records of nightly runs, visible to managers."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.tenancy.models import TenantOwnedModel


class NightlyRun(TenantOwnedModel):
    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped (another run was in progress)")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Nightly schedule")
        MANUAL = "manual", _("Started by hand")
        COMMAND = "command", _("Command line")

    step = models.CharField(_("step"), max_length=80)
    run_date = models.DateField(_("business date"))
    trigger = models.CharField(_("trigger"), max_length=12, choices=Trigger.choices)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    rows = models.BigIntegerField(_("rows"), null=True, blank=True)
    duration_ms = models.BigIntegerField(_("duration (ms)"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("nightly run")
        verbose_name_plural = _("nightly runs")
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["tenant", "step", "-started_at"], name="nightlyrun_tenant_step_time")]

    def __str__(self) -> str:
        return f"{self.step} {self.run_date} {self.status}"
