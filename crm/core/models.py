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
        ABANDONED = "abandoned", _("Abandoned (the worker stopped before it finished)")

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
        indexes = [
            models.Index(fields=["tenant", "step", "-started_at"], name="nightlyrun_tenant_step_time"),
            # The scheduler's "is tonight's pipeline recorded" check, every 15 minutes per dealership.
            models.Index(fields=["tenant", "step", "run_date"], name="nightlyrun_tenant_step_date"),
            # The stale-run sweep at the start of every night and the "already running" checks: the few
            # running records, not years of finished ones.
            models.Index(
                fields=["tenant", "started_at"],
                condition=models.Q(status="running"),
                name="nightlyrun_running",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step} {self.run_date} {self.status}"


class Notification(TenantOwnedModel):
    """An in-app message to one staff member (the bell in the header); also e-mailed when asked."""

    recipient = models.ForeignKey("tenancy.Membership", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=40)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("message"), blank=True, max_length=2000)
    url = models.CharField(_("link"), max_length=300, blank=True)
    # Deduplication: one notification per (recipient, key); retries of a job never notify twice.
    key = models.CharField(max_length=120, blank=True)
    # Copied from the kind when made (crm/core/notifications.py): unread urgent ones come first.
    urgent = models.BooleanField(_("urgent"), default=False)
    # A daily digest of one kind: its local date, and how many events it holds (its DigestItems).
    digest_date = models.DateField(_("digest of"), null=True, blank=True)
    item_count = models.PositiveIntegerField(_("events"), default=1)
    created_at = models.DateTimeField(_("time"), default=timezone.now, editable=False)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "recipient", "key"], condition=~models.Q(key=""), name="notification_once_per_key"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "recipient", "read_at", "-created_at"], name="notification_inbox"),
            # The kind filter of the inbox and of "mark all read" for one kind.
            models.Index(fields=["tenant", "recipient", "kind", "-created_at"], name="notification_inbox_kind"),
        ]

    def __str__(self) -> str:
        return self.title


class DigestItem(TenantOwnedModel):
    """One event of a digested kind (an automatic level change…), waiting for the recipient's next
    daily digest; `digest` is the notification that delivered it."""

    recipient = models.ForeignKey("tenancy.Membership", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=40)
    title = models.CharField(_("title"), max_length=200)
    url = models.CharField(_("link"), max_length=300, blank=True)
    key = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, editable=False)
    digest = models.ForeignKey(Notification, on_delete=models.CASCADE, null=True, blank=True, related_name="items")

    class Meta:
        verbose_name = _("digest item")
        verbose_name_plural = _("digest items")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "recipient", "key"], condition=~models.Q(key=""), name="digestitem_once_per_key"
            ),
        ]
        indexes = [
            # The digest run reads only what is still waiting, however many were delivered before.
            models.Index(
                fields=["tenant", "created_at"], condition=models.Q(digest__isnull=True), name="digest_pending"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class NotificationOptOut(TenantOwnedModel):
    """A kind of notification one staff member turned off (no row: they get it). Urgent kinds
    cannot be turned off (crm/core/notifications.py refuses them)."""

    member = models.ForeignKey("tenancy.Membership", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=40)

    class Meta:
        verbose_name = _("notification turned off")
        verbose_name_plural = _("notifications turned off")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member", "kind"], name="notification_optout_once"),
        ]

    def __str__(self) -> str:
        return self.kind


class RateLimitCounter(models.Model):
    """Attempts per client and window, shared by every process when there is no Redis
    (crm/core/ratelimit.py). Not tenant-owned: the key names the dealership and the address."""

    key = models.CharField(max_length=200, unique=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="ratelimit_expires")]

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
