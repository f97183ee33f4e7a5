"""In-app notifications (the bell in the header), e-mailed as well when asked.

    notify(recipients=[membership], kind="sla_warning", title=…, body=…, url=…, key="ticket:7:warn", email=True)

Every kind is declared once, by the app that sends it, in its hooks.py:

    notification_kinds.register(NotificationKind(name="sla_warning", label=_("SLA warnings"), urgent=True))

- **urgent** kinds are never digested and cannot be turned off; unread, they come first in the inbox;
- **digest** kinds (automatic events such as nightly level changes) are not delivered one by one:
  each event waits as a DigestItem, and `notifications_digest()` (the beat task
  `core.notifications_digest_fan_out`, every 15 minutes) turns a recipient's waiting events of one
  kind into one notification a day, after DIGEST_LOCAL_HOUR in the dealership's time zone;
- every other kind is delivered at once; a member may turn any non-urgent kind off
  (NotificationOptOut): they then get nothing of it, neither in the app nor by e-mail.

`key` makes a notification (or a digest item) idempotent per recipient: a retried job never
notifies twice. docs/notifications.md states every rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError
from crm.core.extensions import Contribution, ExtensionPoint
from crm.core.models import DigestItem, Notification, NotificationOptOut
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import Membership, Tenant

# A day's digest is made once local time (Tenant.time_zone) is past 07:00: after the night's
# automatic work (from 02:00), before the working day.
DIGEST_LOCAL_HOUR = 7
# The titles a digest's text lists; the page and the API list every item with its link.
DIGEST_BODY_LINES = 20


@dataclass(frozen=True, kw_only=True)
class NotificationKind(Contribution):
    """A kind of notification: its name (Notification.kind), what staff call it, and how it is
    delivered. Urgent kinds cannot also be digested."""

    label: str | Promise
    urgent: bool = False
    digest: bool = False

    def __post_init__(self) -> None:
        if self.urgent and self.digest:
            raise ImproperlyConfigured(f"notification kind {self.name!r}: an urgent kind is never digested")


notification_kinds: ExtensionPoint[NotificationKind] = ExtensionPoint("core.notification_kinds", NotificationKind)


def notification_kind(name: str) -> NotificationKind:
    kind = notification_kinds.get(name)
    if kind is None:
        raise ImproperlyConfigured(f"notification kind {name!r} is not registered (core.notification_kinds)")
    return kind


def kind_choices() -> list[tuple[str, str]]:
    """(name, label) of every registered kind, by label."""
    return sorted(((k.name, str(k.label)) for k in notification_kinds.contributions()), key=lambda c: c[1])


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
    """Tell each active staff member (service accounts never) who has not turned `kind` off.
    Returns the notifications made now; a digest kind's events wait for the daily digest instead
    (and are never e-mailed one by one)."""
    spec = notification_kind(kind)
    members = {m.pk: m for m in recipients if m.is_active and not m.is_service_account}
    if not spec.urgent and members:
        off = set(NotificationOptOut.objects.filter(kind=kind, member__in=members).values_list("member_id", flat=True))
        members = {pk: m for pk, m in members.items() if pk not in off}
    created: list[Notification] = []
    for recipient in members.values():
        try:
            with transaction.atomic():
                if spec.digest:
                    DigestItem.objects.create(recipient=recipient, kind=kind, title=title[:200], url=url, key=key)
                    continue
                created.append(
                    Notification.objects.create(
                        recipient=recipient,
                        kind=kind,
                        title=title[:200],
                        body=body,
                        url=url,
                        key=key,
                        urgent=spec.urgent,
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


# --- The daily digest --------------------------------------------------------------------------------


def digest_cutoff(*, tenant: Tenant, now: datetime) -> tuple[date, datetime]:
    """The digest day and its cut-off: the latest local date whose DIGEST_LOCAL_HOUR has passed."""
    local = timezone.localtime(now, tenant.zone)
    day = local.date() if local.hour >= DIGEST_LOCAL_HOUR else local.date() - timedelta(days=1)
    return day, timezone.make_aware(datetime.combine(day, time(DIGEST_LOCAL_HOUR)), tenant.zone)


def notifications_digest(*, now: datetime | None = None) -> int:
    """Make the current dealership's digests: per recipient and kind, one notification holding every
    waiting event created before the cut-off (digest_cutoff). Events created later wait for the next
    day's. Safe to repeat: a second run finds nothing waiting. Returns the notifications written."""
    tenant = Tenant.objects.get(pk=require_tenant_id())
    day, cutoff = digest_cutoff(tenant=tenant, now=now or timezone.now())
    waiting = DigestItem.objects.filter(digest__isnull=True, created_at__lt=cutoff).select_for_update()
    groups: dict[tuple[int, str], list[int]] = {}
    for pk, recipient_id, kind in waiting.order_by("created_at", "id").values_list("pk", "recipient_id", "kind"):
        groups.setdefault((recipient_id, kind), []).append(pk)
    if not groups:
        return 0
    members = Membership.objects.in_bulk({recipient_id for recipient_id, _kind in groups})
    written = 0
    with translation.override(tenant.locale):
        for (recipient_id, kind), item_ids in groups.items():
            spec = notification_kinds.get(kind)  # None: a kind no longer registered keeps its name
            digest, made = Notification.objects.get_or_create(
                recipient=members[recipient_id],
                key=f"digest:{kind}:{day.isoformat()}",
                defaults={"kind": kind, "title": "", "digest_date": day, "created_at": cutoff},
            )
            DigestItem.objects.filter(pk__in=item_ids).update(digest=digest)
            titles = list(DigestItem.objects.filter(digest=digest).values_list("title", flat=True))
            label = str(spec.label) if spec else kind
            digest.title = (_("Daily digest: %(kind)s (%(count)d)") % {"kind": label, "count": len(titles)})[:200]
            more = len(titles) - DIGEST_BODY_LINES
            lines = titles[:DIGEST_BODY_LINES] + ([_("… and %(count)d more") % {"count": more}] if more > 0 else [])
            digest.body = "\n".join(lines)[:2000]
            digest.item_count = len(titles)
            if not made:
                digest.read_at = None  # late events joined a digest already read: show it again
            digest.save(update_fields=["title", "body", "item_count", "read_at"])
            written += 1
    return written


# --- The inbox ---------------------------------------------------------------------------------------


def inbox(*, member: Membership, kind: str = "", unread: bool | None = None) -> QuerySet[Notification]:
    """The member's notifications: unread urgent ones first, then the rest, newest first."""
    items = Notification.objects.filter(recipient=member)
    if kind:
        items = items.filter(kind=kind)
    if unread is not None:
        items = items.filter(read_at__isnull=unread)
    pinned = Case(When(urgent=True, read_at__isnull=True, then=Value(0)), default=Value(1), output_field=IntegerField())
    return items.annotate(pinned=pinned).order_by("pinned", "-created_at", "-id")


def unread_count(*, member: Membership) -> int:
    return Notification.objects.filter(recipient=member, read_at__isnull=True).count()


def notifications_mark_read(*, member: Membership, ids: list[int] | None = None, kind: str = "") -> int:
    """Mark the member's unread notifications read: all of them, those of one kind, or those ids.
    Returns how many were marked."""
    unread = Notification.objects.filter(recipient=member, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    if kind:
        unread = unread.filter(kind=kind)
    return unread.update(read_at=timezone.now())


# --- Preferences -------------------------------------------------------------------------------------


def notification_preferences(*, member: Membership) -> list[dict[str, object]]:
    """Every kind with whether the member gets it; urgent kinds are always on."""
    off = set(NotificationOptOut.objects.filter(member=member).values_list("kind", flat=True))
    kinds = sorted(notification_kinds.contributions(), key=lambda k: (not k.urgent, str(k.label)))
    return [
        {
            "kind": k.name,
            "label": str(k.label),
            "urgent": k.urgent,
            "digest": k.digest,
            "enabled": k.urgent or k.name not in off,
        }
        for k in kinds
    ]


def notification_preferences_set(*, member: Membership, turned_off: Iterable[str]) -> list[dict[str, object]]:
    """The member gets every kind except `turned_off` (replacing their earlier choice). An unknown
    kind, or an urgent one, is a field error on `turned_off`."""
    wanted = set(turned_off)
    unknown = sorted(k for k in wanted if notification_kinds.get(k) is None)
    urgent = sorted(k for k in wanted - set(unknown) if notification_kind(k).urgent)
    if unknown:
        raise ApplicationError(
            _("Check the highlighted fields."),
            fields={"turned_off": [_("Unknown kind: %(kinds)s.") % {"kinds": ", ".join(unknown)}]},
        )
    if urgent:
        raise ApplicationError(
            _("Check the highlighted fields."),
            fields={"turned_off": [_("Urgent kinds cannot be turned off: %(kinds)s.") % {"kinds": ", ".join(urgent)}]},
        )
    NotificationOptOut.objects.filter(member=member).exclude(kind__in=wanted).delete()
    have = set(NotificationOptOut.objects.filter(member=member).values_list("kind", flat=True))
    NotificationOptOut.objects.bulk_create(
        [NotificationOptOut(tenant_id=member.tenant_id, member=member, kind=k) for k in sorted(wanted - have)]
    )
    return notification_preferences(member=member)
