"""Teach drf-spectacular our authentication classes so the docs show how to authenticate."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiCredentialScheme(OpenApiAuthenticationExtension):
    target_class = "crm.tenancy.authentication.ApiCredentialAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "crmk_<tenant>_<secret> (integration key) or crmt_… (personal token)",
        }


class TenantSessionScheme(OpenApiAuthenticationExtension):
    target_class = "crm.tenancy.authentication.TenantSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
