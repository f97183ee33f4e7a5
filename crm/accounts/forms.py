from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.accounts.models import SecurityEvent
from crm.accounts.services import security_event_record, sign_in_locked_until
from crm.tenancy.audit import RequestMeta

LOCKED_MESSAGE = _("Too many failed attempts. This account is locked until %(until)s.")


class LockoutMixin:
    """Refuses locked accounts before checking the password, and logs every failure.

    Shared by the staff sign-in and the Django admin's, so neither is a way around the other.
    """

    request: Any
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        meta = RequestMeta.from_request(self.request)
        locked_until = sign_in_locked_until(username=username) if username else None
        if locked_until is not None:
            security_event_record(kind=SecurityEvent.Kind.LOCKED_OUT, username=username, meta=meta)
            until = timezone.localtime(locked_until).strftime("%H:%M")
            raise forms.ValidationError(LOCKED_MESSAGE, code="locked", params={"until": until})
        try:
            return super().clean()  # type: ignore[misc,no-any-return]
        except forms.ValidationError:
            # Right password but not allowed here (inactive, not staff for the admin): not a guess.
            if getattr(self, "user_cache", None) is None:
                security_event_record(kind=SecurityEvent.Kind.SIGN_IN_FAILED, username=username, meta=meta)
            raise


class SignInForm(LockoutMixin, AuthenticationForm):
    username = forms.CharField(
        label=_("Email or username"),
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username", "autocapitalize": "none"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The email/username or password is not right. Please try again."),
    }


class AdminSignInForm(LockoutMixin, AdminAuthenticationForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        user = self.get_user()
        if user is None:  # a field was missing: the form reports it
            return cleaned
        security_event_record(
            kind=SecurityEvent.Kind.SIGN_IN,
            username=user.get_username(),
            user=user,
            meta=RequestMeta.from_request(self.request),
        )
        return cleaned
