"""DRF permissions: an active membership, the capability the view names, and the credential's scope."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from crm.tenancy.models import ApiCredential, Membership


def request_membership(request: Request) -> Membership | None:
    return getattr(request._request, "membership", None)


class HasTenantMembership(BasePermission):
    """Authenticated, with an active membership in the active tenant; scope checked for credentials.

    Views declare `api_area` (for scopes) and optionally `required_capability` (a string, or a
    dict of HTTP method -> capability).
    """

    message = "You need an active role in this dealership."

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = request_membership(request)
        if not request.user or not request.user.is_authenticated or membership is None or not membership.is_active:
            return False
        credential: ApiCredential | None = getattr(request._request, "credential", None)
        area = getattr(view, "api_area", None)
        if credential is not None:
            if area is None:
                return False
            if not credential.allows(area, write=request.method not in SAFE_METHODS):
                self.message = (
                    f"This API key lacks the scope {area}:{'read' if request.method in SAFE_METHODS else 'write'}."
                )
                return False
        capability = getattr(view, "required_capability", None)
        if isinstance(capability, dict):
            capability = capability.get(request.method or "GET", capability.get("*"))
        if capability and not membership.can(capability):
            self.message = "Your role may not do this."
            return False
        return True
