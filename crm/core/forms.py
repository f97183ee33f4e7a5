"""Helpers shared by the staff pages' forms."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms import BaseForm
from django.utils.translation import gettext_lazy as _

from crm.core.errors import ApplicationError
from crm.core.period import period_errors


def form_errors_from(form: BaseForm, error: ValidationError | ApplicationError) -> None:
    """Put a service's field errors on the form's fields (or on the form when unknown)."""
    if isinstance(error, ApplicationError):
        fields: dict[str, list[str]] = error.fields
        if not fields:
            form.add_error(None, error.message)
    else:
        fields = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
    for field, messages_ in fields.items():
        for message in messages_:
            form.add_error(field if field in form.fields else None, message)


class DateRangeForm(forms.Form):
    """From and to dates (both included), the end not before the start: report pages' period."""

    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    end = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, message in period_errors(cleaned.get("start"), cleaned.get("end")).items():
            self.add_error(name, message)
            cleaned.pop(name, None)
        return cleaned
