"""In-app notifications (the bell in the header), e-mailed as well when asked.

    notify(recipients=[membership], kind="sla_warning", title=…, body=…, url=…, key="ticket:7:warn", email=True)

`key` makes a notification idempotent per recipient: a retried job never notifies twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from crm.core.models import Notification
from crm.tenancy.models import Membership


def notify(
    *,
    recipients: Iterable[Membership],
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    key: str = "",
    email: bool = False,
) -> list[Notification]:
    created: list[Notification] = []
    for recipient in {m.pk: m for m in recipients if m.is_active and not m.is_service_account}.values():
        try:
            with transaction.atomic():
                created.append(
                    Notification.objects.create(
                        recipient=recipient, kind=kind, title=title[:200], body=body, url=url, key=key
                    )
                )
        except IntegrityError:
            continue  # notified already under this key
        address = recipient.user.email
        if email and address:
            message = f"{body}\n\n{settings.CRM_SITE_URL}{url}" if url else body
            transaction.on_commit(_mailer(title, message, address))
    return created


def _mailer(subject: str, message: str, address: str) -> Callable[[], None]:
    def send() -> None:
        send_mail(subject, message, None, [address], fail_silently=True)

    return send


def inbox(*, member: Membership) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=member).order_by("-created_at", "-id")


def unread_count(*, member: Membership) -> int:
    return Notification.objects.filter(recipient=member, read_at__isnull=True).count()


def notifications_mark_read(*, member: Membership, ids: list[int] | None = None) -> int:
    unread = Notification.objects.filter(recipient=member, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())
