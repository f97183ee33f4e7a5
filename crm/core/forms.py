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


class NotificationFilterForm(forms.Form):
    """The notifications page's filter: one kind (blank: all) and unread only."""

    kind = forms.ChoiceField(label=_("Kind"), required=False)
    unread = forms.BooleanField(label=_("Unread only"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from crm.core.notifications import kind_choices

        super().__init__(*args, **kwargs)
        kind = self.fields["kind"]
        assert isinstance(kind, forms.ChoiceField)
        kind.choices = [("", _("All kinds")), *kind_choices()]


class NotificationPreferencesForm(forms.Form):
    """One box per kind: checked = the member gets it. Urgent kinds are shown checked and locked."""

    def __init__(self, *args: Any, preferences: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for pref in preferences:
            help_text = _("Urgent: always on, first in the list.") if pref["urgent"] else ""
            if pref["digest"]:
                help_text = _("Sent as one daily digest.")
            self.fields[pref["kind"]] = forms.BooleanField(
                label=pref["label"],
                required=False,
                initial=pref["enabled"],
                disabled=bool(pref["urgent"]),
                help_text=help_text,
            )
        self.urgent = {p["kind"] for p in preferences if p["urgent"]}

    def turned_off(self) -> list[str]:
        return [name for name, value in self.cleaned_data.items() if not value and name not in self.urgent]
