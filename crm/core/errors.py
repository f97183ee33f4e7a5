"""The one error type services raise. The API maps it to one JSON shape; pages show its message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class ApplicationError(Exception):
    """A rule of the business was broken by the request; safe to show to the user.

    `fields` maps a field name to its messages, so forms and API clients can point at the input.
    """

    status_code = 400

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        fields: Mapping[str, Sequence[str]] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = str(message)
        self.code = code
        self.fields = {name: [str(m) for m in msgs] for name, msgs in (fields or {}).items()}
        if status_code is not None:
            self.status_code = status_code


class NotAllowed(ApplicationError):
    status_code = 403

    def __init__(self, message: str, *, code: str = "permission_denied") -> None:
        super().__init__(message, code=code)
