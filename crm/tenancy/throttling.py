"""Rate limits per API key and per signed-in user (shared through the Redis cache in production)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class CredentialRateThrottle(SimpleRateThrottle):
    scope = "credential"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        credential = getattr(request._request, "credential", None)
        if credential is None:
            return None
        # Each integration key has its own budget; a person's personal tokens share one, so
        # creating more tokens does not raise anyone's limit.
        ident = f"user-{credential.membership.user_id}" if credential.kind == "personal" else f"key-{credential.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class UserRateThrottle(SimpleRateThrottle):
    scope = "user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if getattr(request._request, "credential", None) is not None:
            return None  # counted per key by CredentialRateThrottle
        if not request.user or not request.user.is_authenticated:
            return self.cache_format % {"scope": "anon", "ident": self.get_ident(request)}
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
