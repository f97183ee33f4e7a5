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


# --- What every operation can answer, and what a body may hold ------------------------------------

ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error shape of the API.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "description": "Input name → messages (nested names as `a.b`, `a[0]`).",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}

ERROR_RESPONSES = {
    "400": "Input refused: a field error, a business rule (an unknown id, a duplicate), a bad query value "
    "or cursor, a body that is not JSON (`parse_error`).",
    "401": "No or an unknown credential (`not_authenticated`, `authentication_failed`).",
    "403": "The credential's scope or the member's role does not allow it (`permission_denied`).",
    "404": "Nothing with that id in the caller's dealership and visibility (`not_found`).",
    "429": "Too many requests for the credential or user (`throttled`); see Retry-After.",
    "503": "A dependency (the database) is unavailable for a moment (`service_unavailable`); see Retry-After.",
}
BODY_ERROR_RESPONSES = {
    "409": "The record's state does not allow it now (a closed follow-up, a ticket past that step).",
    "413": "The body is larger than the server accepts (`request_too_large`).",
    "415": "The body's media type is not JSON, a form or multipart (`unsupported_media_type`).",
}


def _strict_request_components() -> set[str]:
    """Component names of the request bodies that refuse keys they do not write (StrictInput)."""
    from crm.api.serializers import StrictInput

    names: set[str] = set()
    pending = list(StrictInput.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        base = cls.__name__.removesuffix("Serializer")
        names |= {f"{base}Request", f"Patched{base}Request"}
    return names


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error responses every operation can give (in the one
    error shape), and `additionalProperties: false` on bodies whose extra keys are refused."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            writes = "requestBody" in operation or method in ("post", "put", "patch", "delete")
            extra = {**ERROR_RESPONSES, **(BODY_ERROR_RESPONSES if writes else {})}
            for status, description in extra.items():
                responses.setdefault(status, {"description": description, "content": reference})
    for name in _strict_request_components() & set(components):
        components[name]["additionalProperties"] = False
    return result
