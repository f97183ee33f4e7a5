"""The outbox: every message to a customer (survey invitations, reminders, greetings) is written here
first, in the same transaction as what caused it, and sent afterwards by a task that retries. A
message is never lost because a gateway was down, and never sent twice because a job ran twice."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.tenancy.models import TenantOwnedModel


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    WECHAT = "wechat", _("WeChat")
    EMAIL = "email", _("Email")


class OutboxMessage(TenantOwnedModel):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed for good")
        CANCELLED = "cancelled", _("Cancelled")

    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    to = models.CharField(_("to"), max_length=254)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("message"), max_length=2000)
    # What sent it, e.g. "survey_invitation:42": the sender is told when the message went out.
    purpose = models.CharField(_("purpose"), max_length=60, blank=True)
    # One message per key: a job that runs twice writes it once.
    key = models.CharField(max_length=120, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("outgoing message")
        verbose_name_plural = _("outgoing messages")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], condition=~models.Q(key=""), name="outbox_key_unique")
        ]
        indexes = [models.Index(fields=["tenant", "status", "next_attempt_at"], name="outbox_due")]

    def __str__(self) -> str:
        return f"{self.channel} → {self.to} ({self.status})"
