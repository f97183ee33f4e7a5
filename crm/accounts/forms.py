from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.accounts.models import SecurityEvent
from crm.accounts.services import security_event_record, sign_in_locked_until
from crm.tenancy.audit import RequestMeta


class SignInForm(AuthenticationForm):
    username = forms.CharField(
        label=_("Email or username"),
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username", "autocapitalize": "none"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The email/username or password is not right. Please try again."),
        "locked": _("Too many failed attempts. This account is locked until %(until)s."),
    }

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        meta = RequestMeta.from_request(self.request)
        locked_until = sign_in_locked_until(username=username) if username else None
        if locked_until is not None:
            security_event_record(kind=SecurityEvent.Kind.LOCKED_OUT, username=username, meta=meta)
            until = timezone.localtime(locked_until).strftime("%H:%M")
            raise forms.ValidationError(self.error_messages["locked"], code="locked", params={"until": until})
        try:
            return super().clean()
        except forms.ValidationError:
            security_event_record(kind=SecurityEvent.Kind.SIGN_IN_FAILED, username=username, meta=meta)
            raise
