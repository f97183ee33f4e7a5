"""Sign-in hardening: lockout after repeated failures, and the sign-in log."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from crm.accounts.models import SecurityEvent
from crm.tenancy.audit import RequestMeta


def _key(username: str) -> str:
    return (username or "").strip().lower()[:254]


def sign_in_locked_until(*, username: str) -> datetime | None:
    """When the account is locked: LOGIN_FAILURE_LIMIT failures since the last success, in the window."""
    window_start = timezone.now() - timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    events = list(
        SecurityEvent.objects.filter(
            username=_key(username),
            created_at__gte=window_start,
            kind__in=[SecurityEvent.Kind.SIGN_IN, SecurityEvent.Kind.SIGN_IN_FAILED, SecurityEvent.Kind.PASSWORD_SET],
        ).order_by("-created_at")[: settings.LOGIN_FAILURE_LIMIT]
    )
    if len(events) < settings.LOGIN_FAILURE_LIMIT or any(e.kind != SecurityEvent.Kind.SIGN_IN_FAILED for e in events):
        return None
    return events[0].created_at + timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)


def security_event_record(
    *, kind: str, username: str, user: Any = None, meta: RequestMeta | None = None
) -> SecurityEvent:
    meta = meta or RequestMeta()
    return SecurityEvent.objects.create(
        kind=kind, username=_key(username), user=user, ip_address=meta.ip_address, user_agent=meta.user_agent
    )
