"""Sign-in, sign-out, choosing a password from an invitation, and switching dealership."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from crm.accounts.forms import SignInForm
from crm.accounts.models import SecurityEvent, User
from crm.accounts.services import security_event_record
from crm.core.errors import ApplicationError
from crm.core.forms import NotificationPreferencesForm, form_errors_from
from crm.core.notifications import notification_preferences, notification_preferences_set
from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.context import tenant_context
from crm.tenancy.decorators import membership_of
from crm.tenancy.middleware import SESSION_TENANT_KEY, membership_not_required
from crm.tenancy.models import AuditAction
from crm.tenancy.selectors import user_tenants


@method_decorator(login_not_required, name="dispatch")
class SignInView(auth_views.LoginView):
    template_name = "accounts/sign_in.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        user = form.get_user()
        meta = RequestMeta.from_request(self.request)
        security_event_record(
            kind=SecurityEvent.Kind.SIGN_IN, username=form.cleaned_data["username"], user=user, meta=meta
        )
        tenants = user_tenants(user_id=user.pk)
        if tenants:
            first = tenants[0]
            self.request.session[SESSION_TENANT_KEY] = first.tenant_id
            with tenant_context(first.tenant_id):
                audit_record(action=AuditAction.SIGNED_IN, actor=user, summary=user.get_username(), meta=meta)
        if user.preferred_language:
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, user.preferred_language, samesite="Lax")
        return response


class SignOutView(auth_views.LogoutView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            security_event_record(
                kind=SecurityEvent.Kind.SIGN_OUT,
                username=request.user.get_username(),
                user=request.user,
                meta=RequestMeta.from_request(request),
            )
        return super().post(request, *args, **kwargs)


sign_out = membership_not_required(SignOutView.as_view())


@method_decorator(login_not_required, name="dispatch")
class SetPasswordView(auth_views.PasswordResetConfirmView):
    """Invitation and reset links land here; the token dies once a password is chosen."""

    template_name = "accounts/set_password.html"
    success_url = reverse_lazy("accounts:login")
    post_reset_login = False

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        security_event_record(
            kind=SecurityEvent.Kind.PASSWORD_SET,
            username=form.user.get_username(),
            user=form.user,
            meta=RequestMeta.from_request(self.request),
        )
        messages.success(self.request, _("Your password is set. Please sign in."))
        return response


@method_decorator(login_not_required, name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


@method_decorator(login_not_required, name="dispatch")
class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


@require_POST
@membership_not_required
def switch_tenant(request: HttpRequest) -> HttpResponse:
    """Switch the active dealership to another one the user belongs to."""
    try:
        tenant_id = int(request.POST.get("tenant", ""))
    except ValueError:
        tenant_id = -1
    user_id: int = request.user.pk  # type: ignore[assignment] # signed in: the page requires it
    allowed = {ut.tenant_id: ut for ut in user_tenants(user_id=user_id)}
    if tenant_id not in allowed:
        messages.error(request, _("You do not belong to that dealership."))
        return redirect("home")
    request.session[SESSION_TENANT_KEY] = tenant_id
    with tenant_context(tenant_id):
        audit_record(
            action=AuditAction.TENANT_SWITCHED,
            actor=request.user,  # type: ignore[arg-type]
            summary=allowed[tenant_id].tenant_name,
            meta=RequestMeta.from_request(request),
        )
    messages.success(request, _("Now working in %(name)s.") % {"name": allowed[tenant_id].tenant_name})
    return HttpResponseRedirect(reverse_lazy("home"))


@membership_not_required
def no_membership(request: HttpRequest) -> HttpResponse:
    return render(request, "tenancy/no_membership.html", status=403)


def notification_preferences_page(request: HttpRequest) -> HttpResponse:
    """Which kinds of notification the member gets in this dealership (urgent ones always)."""
    membership = membership_of(request)
    preferences = notification_preferences(member=membership)
    # an empty POST is a choice too (every box unticked), so bound by the method, not the data
    form = NotificationPreferencesForm(request.POST if request.method == "POST" else None, preferences=preferences)
    if request.method == "POST" and form.is_valid():
        try:
            notification_preferences_set(member=membership, turned_off=form.turned_off())
        except ApplicationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, _("Your notification choices are saved."))
            return redirect("accounts:notification_preferences")
    status = 400 if form.errors else 200
    return render(request, "accounts/notification_preferences.html", {"form": form}, status=status)


@login_not_required
@membership_not_required
@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """The language switch: Django's set_language (the cookie, back to the page), and for a person
    signed in their saved choice, which wins over the dealership's default from then on, in every
    browser (docs/configuration.md, "Languages")."""
    response = set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        User.objects.filter(pk=request.user.pk).update(preferred_language=language)
    return response
