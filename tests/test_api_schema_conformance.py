"""The OpenAPI schema says what the API answers: schemathesis sends generated requests to every
operation and fails on a 5xx, a status code the schema does not document, a response body that
does not match the schema, or a content type it does not declare.

Each operation runs twice over: with an integration key that holds every scope, and with a
manager's session (cookie and CSRF header), since the two go through different authentication and
permission classes. The requests go in process to the WSGI application, inside the test's
transaction (nothing is committed), with a fixed seed and a bounded number of examples, so the run
is deterministic and takes about a minute.

Business-rule refusals (400 for an unknown id in a body, 409 for a state) are expected answers
to generated data and are not failures; they must only be documented, which the status-code check
sees to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 4
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def _wsgi_requests_keep_the_test_transaction() -> Iterator[None]:
    """A real WSGI request closes 'old' connections at its start and end; inside a test's
    transaction that would close the test's own connection. Django's test client disconnects the
    same handler for the same reason."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def integration_key(dealer_a, in_tenant) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """An integration key of dealership A that holds every scope."""
    from crm.tenancy.models import ApiCredential
    from crm.tenancy.roles import API_SCOPES
    from crm.tenancy.services import credential_create

    with in_tenant(dealer_a):
        _, raw_key = credential_create(
            actor=dealer_a.admin, kind=ApiCredential.Kind.INTEGRATION, name="schemathesis", scopes=list(API_SCOPES)
        )
    return {"headers": {"Authorization": f"Bearer {raw_key}"}, "cookies": {}}


@pytest.fixture
def manager_session(dealer_a) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A signed-in manager of dealership A: the session cookie, and the CSRF cookie and header."""
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client

    from crm.tenancy.middleware import SESSION_TENANT_KEY

    client = Client()
    client.force_login(dealer_a.manager.user)
    session = client.session
    session[SESSION_TENANT_KEY] = dealer_a.manager.tenant_id
    session.save()
    csrf = _get_new_csrf_string()
    return {
        "headers": {"X-CSRFToken": csrf, "Referer": "https://localhost/"},
        "cookies": {"sessionid": session.session_key, "csrftoken": csrf},
    }


def _served_schema() -> dict[str, Any]:
    """The schema exactly as GET /api/v1/schema/ serves it, built without a request through the
    middleware (collection runs before any database is open)."""
    from django.test import RequestFactory

    from config.api import PublicSchemaView

    response = PublicSchemaView.as_view(api_version="v1")(RequestFactory().get("/api/v1/schema/?format=json"))
    response.render()
    return json.loads(response.content)


def _load_schema() -> Any:
    from config.wsgi import application

    loaded = schemathesis.openapi.from_dict(_served_schema())
    loaded.app = application
    return loaded


schema = _load_schema()


BOUNDED = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@BOUNDED
def test_every_operation_answers_as_the_schema_says_to_an_integration_key(  # type: ignore[no-untyped-def]
    case, integration_key, _wsgi_requests_keep_the_test_transaction
):
    case.call_and_validate(headers=integration_key["headers"], cookies=integration_key["cookies"], checks=CHECKS)


@schema.parametrize()
@BOUNDED
def test_every_operation_answers_as_the_schema_says_to_a_manager_session(  # type: ignore[no-untyped-def]
    case, manager_session, _wsgi_requests_keep_the_test_transaction
):
    case.call_and_validate(headers=manager_session["headers"], cookies=manager_session["cookies"], checks=CHECKS)
