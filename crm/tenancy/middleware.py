"""Per-request tenancy: one transaction per request, the tenant taken from the session's membership.

API requests with a Bearer credential get their tenant from the credential instead, inside
DRF authentication (crm.tenancy.authentication), still within this request's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation
from rest_framework.views import APIView

from crm.tenancy.context import request_tenant_scope, tenant_activate, tenant_deactivate
from crm.tenancy.selectors import membership_for_user, user_tenants

SESSION_TENANT_KEY = "crm_tenant_id"


def _self_guarded_prefixes() -> tuple[str, ...]:
    """Paths that handle authentication themselves (Django admin: is_staff; the API: DRF)."""
    return (f"/{settings.ADMIN_URL}", "/api/", settings.STATIC_URL)


def _activate_session_membership(request: HttpRequest, user_id: int) -> None:
    tenant_id = request.session.get(SESSION_TENANT_KEY)
    candidates = [ut.tenant_id for ut in user_tenants(user_id=user_id)]
    if tenant_id not in candidates:
        tenant_id = candidates[0] if candidates else None
    if tenant_id is None:
        request.session.pop(SESSION_TENANT_KEY, None)
        return
    tenant_activate(tenant_id)
    membership = membership_for_user(user_id=user_id)
    if membership is None:
        tenant_deactivate()
        request.session.pop(SESSION_TENANT_KEY, None)
        return
    if request.session.get(SESSION_TENANT_KEY) != tenant_id:
        request.session[SESSION_TENANT_KEY] = tenant_id
    request.membership = membership  # type: ignore[attr-defined]
    request.tenant = membership.tenant  # type: ignore[attr-defined]
    timezone.activate(membership.tenant.zone)  # times show in the dealership's own time zone
    # Staff language: the person's saved choice, else the dealership's default; LocaleMiddleware has
    # already taken the browser's (cookie, Accept-Language) for anyone with neither.
    language = getattr(request.user, "preferred_language", "") or membership.tenant.locale
    if language:
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()


def public_language_activate(request: HttpRequest, tenant: Any) -> None:
    """A public page (complaint form, survey, RSVP) speaks the dealership's default language unless
    the visitor chose one with the language switch (its cookie)."""
    if not request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME):
        translation.activate(tenant.locale)
        request.LANGUAGE_CODE = translation.get_language()


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None  # type: ignore[attr-defined]
        request.tenant = None  # type: ignore[attr-defined]
        try:
            with request_tenant_scope(), transaction.atomic():
                if request.user.is_authenticated:
                    _activate_session_membership(request, int(request.user.pk))
                response = self.get_response(request)
                if getattr(response, "streaming", False) and not getattr(response, "crm_tenant_safe", False):
                    # The request's transaction (and its tenant) ends when this block does;
                    # see crm.tenancy.context.stream_in_tenant for streaming that reads rows.
                    raise RuntimeError("Streaming responses must render inside their own tenant_context().")
                return response
        finally:
            timezone.deactivate()


def _is_drf_view(view_func: Any) -> bool:
    view_class = getattr(view_func, "cls", None)
    return isinstance(view_class, type) and issubclass(view_class, APIView)


class LoginRequiredMiddleware:
    """Every staff page needs a signed-in user with an active membership, unless marked otherwise.

    `@login_not_required` (Django's) opens a page to everyone (sign-in, public forms);
    `@membership_not_required` (ours) to any signed-in user (choosing a dealership).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if request.path.startswith(_self_guarded_prefixes()) or _is_drf_view(view_func):
            return None
        if not getattr(view_func, "login_required", True):
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if not getattr(view_func, "membership_required", True):
            return None
        if request.membership is None:  # type: ignore[attr-defined]
            return render(request, "tenancy/no_membership.html", status=403)
        return None


def membership_not_required(view_func: Any) -> Any:
    view_func.membership_required = False
    return view_func
