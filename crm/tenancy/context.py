"""The current tenant: one ContextVar for the Django lock, one transaction-local GUC for RLS.

Both are set together by `tenant_context()` (jobs, commands, tests) or by the request
middleware plus `tenant_activate()` (web and API). Neither is ever taken from a value the
client alone controls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

_current_tenant_id: ContextVar[int | None] = ContextVar("crm_current_tenant_id", default=None)

GUC_NAME = "app.tenant_id"


class TenantNotSet(RuntimeError):
    """A tenant-owned table was touched with no tenant active: fail closed."""


class CrossTenantWrite(RuntimeError):
    """An attempt to write a row for a tenant other than the active one."""


def current_tenant_id() -> int | None:
    return _current_tenant_id.get()


def require_tenant_id() -> int:
    tenant_id = _current_tenant_id.get()
    if tenant_id is None:
        raise TenantNotSet("No tenant is active. Run this inside tenant_context(tenant_id).")
    return tenant_id


def _set_database_tenant(tenant_id: int | None, using: str = DEFAULT_DB_ALIAS) -> None:
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("The RLS tenant is transaction-local: set it inside transaction.atomic().")
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [GUC_NAME, "" if tenant_id is None else str(tenant_id)])


@contextmanager
def tenant_context(tenant_id: int, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the block for one tenant with both locks set, and reset both afterwards.

    Opens a transaction (or a savepoint inside an outer one): the RLS setting is
    transaction-local, so it cannot survive on a pooled or persistent connection.
    """
    if not isinstance(tenant_id, int) or isinstance(tenant_id, bool):
        raise TypeError(f"tenant_id must be an int, not {type(tenant_id).__name__}")
    previous = _current_tenant_id.get()
    token = _current_tenant_id.set(tenant_id)
    try:
        with transaction.atomic(using=using):
            _set_database_tenant(tenant_id, using)
            yield
        connection = connections[using]
        # Nested inside an outer transaction: hand the outer block its own tenant back.
        if connection.in_atomic_block and not connection.needs_rollback:
            _set_database_tenant(previous, using)
    finally:
        _current_tenant_id.reset(token)


@contextmanager
def request_tenant_scope() -> Iterator[None]:
    """Scope for one request: whatever tenant gets activated inside is forgotten afterwards."""
    token = _current_tenant_id.set(None)
    try:
        yield
    finally:
        _current_tenant_id.reset(token)


def stream_in_tenant(tenant_id: int, chunks: Iterator[Any]) -> Iterator[Any]:
    """Wrap a generator that reads tenant data for a StreamingHttpResponse.

    The response body is produced after the request's transaction has closed, so the generator
    runs inside a tenant_context of its own. Mark the response `crm_tenant_safe = True`.
    """
    with tenant_context(tenant_id):
        yield from chunks


def tenant_activate(tenant_id: int, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Activate a tenant for the rest of the current request (inside request_tenant_scope)."""
    _current_tenant_id.set(tenant_id)
    _set_database_tenant(tenant_id, using)


def tenant_deactivate(*, using: str = DEFAULT_DB_ALIAS) -> None:
    _current_tenant_id.set(None)
    _set_database_tenant(None, using)
