"""Shared pieces of every API view: the caller's membership and request metadata."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from crm.tenancy.audit import RequestMeta
from crm.tenancy.models import Membership


class TenantAPIMixin:
    """Gives views `self.membership` (never None past the permission check) and `self.meta`."""

    api_area: str | None = None
    required_capability: str | dict[str, str] | None = None

    @property
    def schema_generation(self) -> bool:
        """True while drf-spectacular inspects the view (no request, no tenant)."""
        return bool(getattr(self, "swagger_fake_view", False))

    @property
    def _drf_request(self) -> Request:
        request: Request = self.request  # type: ignore[attr-defined]
        return request

    @property
    def membership(self) -> Membership:
        membership: Membership = self._drf_request._request.membership  # type: ignore[attr-defined]
        return membership

    @property
    def meta(self) -> RequestMeta:
        return RequestMeta.from_request(self._drf_request._request)

    def get_serializer_context(self) -> dict[str, Any]:
        context: dict[str, Any] = super().get_serializer_context()  # type: ignore[misc]
        context["membership"] = getattr(self._drf_request._request, "membership", None)
        return context
