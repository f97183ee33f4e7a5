"""DRF authentication: Bearer credentials (integrations, personal tokens) and browser sessions."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.request import Request

from crm.tenancy.context import tenant_activate, tenant_deactivate
from crm.tenancy.credentials import parse_raw_key
from crm.tenancy.services import credential_authenticate


class ApiCredentialAuthentication(BaseAuthentication):
    """`Authorization: Bearer crmk_…` — the tenant comes from the verified credential only."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword:
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <key>'.")
        raw_key = auth[1].decode("latin-1")
        tenant_id = parse_raw_key(raw_key)
        if tenant_id is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        django_request: HttpRequest = request._request
        tenant_activate(tenant_id)
        credential = credential_authenticate(raw_key=raw_key)
        if credential is None or not credential.membership.tenant.is_active:
            tenant_deactivate()
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.")
        membership = credential.membership
        django_request.membership = membership  # type: ignore[attr-defined]
        django_request.tenant = membership.tenant  # type: ignore[attr-defined]
        django_request.credential = credential  # type: ignore[attr-defined]
        timezone.activate(membership.tenant.zone)
        return (membership.user, credential)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class TenantSessionAuthentication(SessionAuthentication):
    """The browser's session; the membership was activated by TenantMiddleware. CSRF enforced."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        request._request.credential = None  # type: ignore[attr-defined]
        return result
