from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class CharacterClassValidator:
    """At least three of: lower-case, upper-case, digits, symbols."""

    def validate(self, password: str, user: Any = None) -> None:
        classes = [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
        if sum(classes) < 3:
            raise ValidationError(
                _("Use at least three of: lower-case letters, upper-case letters, digits and symbols."),
                code="password_too_simple",
            )

    def get_help_text(self) -> str:
        return _("Use at least three of: lower-case letters, upper-case letters, digits and symbols.")
