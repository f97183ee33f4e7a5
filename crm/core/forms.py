"""Helpers shared by the staff pages' forms."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.forms import BaseForm

from crm.core.errors import ApplicationError


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
