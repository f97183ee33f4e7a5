"""Writing to the outbox and sending what is due (with retries)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.messaging.channels import ChannelNotConfigured, DeliveryError, PermanentDeliveryError, adapter_for
from crm.messaging.models import OutboxMessage
from crm.tenancy.context import tenant_context

logger = logging.getLogger(__name__)

# Minutes to wait after the n-th failed attempt; after the last, the message fails for good.
RETRY_MINUTES = (1, 5, 15, 60, 240, 720)
# Senders are told when their message went out (or failed for good): purpose prefix -> fn(message).
SENT_HOOKS: dict[str, Callable[[OutboxMessage], None]] = {}
FAILED_HOOKS: dict[str, Callable[[OutboxMessage], None]] = {}


def outbox_enqueue(
    *,
    channel: str,
    to: str,
    body: str,
    subject: str = "",
    purpose: str = "",
    key: str = "",
    send_at: datetime | None = None,
) -> OutboxMessage | None:
    """Queue a message (in the caller's transaction). With `key`, a second call queues nothing."""
    message = OutboxMessage(
        channel=channel,
        to=to,
        subject=subject,
        body=body,
        purpose=purpose,
        key=key,
        next_attempt_at=send_at or timezone.now(),
    )
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:
        return None
    return message


def outbox_cancel(*, purpose: str) -> int:
    return OutboxMessage.objects.filter(purpose=purpose, status=OutboxMessage.Status.PENDING).update(
        status=OutboxMessage.Status.CANCELLED
    )


def _hook(hooks: dict[str, Callable[[OutboxMessage], None]], message: OutboxMessage) -> None:
    prefix = message.purpose.split(":", 1)[0]
    if prefix in hooks:
        hooks[prefix](message)


def outbox_send_due(*, tenant_id: int, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Send one dealership's due messages, each in its own transaction with its row locked (SKIP
    LOCKED: two workers never send the same message). Delivery is at least once: a worker killed
    between the gateway's answer and the commit sends that one message again."""
    now = now or timezone.now()
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for _ in range(limit):
        with tenant_context(tenant_id):
            message = (
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now)
                .order_by("next_attempt_at", "id")
                .first()
            )
            if message is None:
                break
            counts[_attempt(message, now)] += 1
    if counts["failed"]:
        logger.warning("outbox: %s message(s) of dealership %s failed for good", counts["failed"], tenant_id)
    return counts


def _attempt(message: OutboxMessage, now: datetime) -> str:
    message.attempts += 1
    outcome = "sent"
    try:
        try:
            adapter_for(message.channel).send(to=message.to, subject=message.subject, text=message.body)
        except DeliveryError:
            raise
        except Exception as error:  # an adapter's bug must not block the whole outbox
            logger.exception("outbox: %s adapter failed on message %s", message.channel, message.pk)
            raise DeliveryError(f"{type(error).__name__}: {error}") from error
    except PermanentDeliveryError as error:
        message.status, message.last_error, outcome = OutboxMessage.Status.FAILED, str(error)[:500], "failed"
    except DeliveryError as error:
        message.last_error = str(error)[:500]
        if message.attempts > len(RETRY_MINUTES) and not isinstance(error, ChannelNotConfigured):
            message.status, outcome = OutboxMessage.Status.FAILED, "failed"
        else:
            wait = RETRY_MINUTES[min(message.attempts, len(RETRY_MINUTES)) - 1]
            message.next_attempt_at, outcome = now + timedelta(minutes=wait), "retry"
    else:
        message.status, message.sent_at, message.last_error = OutboxMessage.Status.SENT, timezone.now(), ""
    message.save()
    if outcome == "sent":
        _hook(SENT_HOOKS, message)
    elif outcome == "failed":
        _hook(FAILED_HOOKS, message)
    return outcome
