"""Writing the tenant audit log. Every security-relevant service calls `audit_record` visibly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models
from django.http import HttpRequest

from crm.core.ratelimit import client_address
from crm.tenancy.models import AuditAction, AuditEvent


@dataclass(frozen=True)
class RequestMeta:
    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest | None) -> RequestMeta:
        if request is None:
            return cls()
        # REMOTE_ADDR, or the client a trusted proxy names (TRUSTED_PROXIES); a client-supplied
        # X-Forwarded-For from anyone else is ignored.
        return cls(
            ip_address=client_address(request) or None,
            user_agent=(request.META.get("HTTP_USER_AGENT") or "")[:300],
        )


def audit_record(
    *,
    action: AuditAction,
    actor: AbstractBaseUser | None,
    target: models.Model | None = None,
    summary: str = "",
    data: dict[str, Any] | None = None,
    meta: RequestMeta | None = None,
) -> AuditEvent:
    meta = meta or RequestMeta()
    event = AuditEvent(
        action=action,
        actor=actor,  # type: ignore[misc]
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        summary=summary[:300],
        data=data or {},
        ip_address=meta.ip_address,
        user_agent=meta.user_agent,
    )
    event.full_clean()
    event.save()
    return event
