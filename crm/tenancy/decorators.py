from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crm.tenancy.models import Membership


def membership_of(request: HttpRequest) -> Membership:
    """The active membership the middleware put on the request (pages behind the login guard)."""
    membership: Membership | None = getattr(request, "membership", None)
    if membership is None:
        raise PermissionDenied("No active membership.")
    return membership


def require_capability(capability: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Staff page guard: the active membership must hold `capability` (403 page otherwise)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = getattr(request, "membership", None)
            if membership is None or not membership.can(capability):
                return render(request, "403.html", status=403)
            return view(request, *args, **kwargs)

        wrapped.required_capability = capability  # type: ignore[attr-defined]
        return wrapped

    return decorator
