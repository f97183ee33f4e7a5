"""The database lock: PostgreSQL row-level security on every tenant-owned table.

Applied after every `migrate` (idempotently), on the connection that ran the migrations —
the owning role. For each concrete `TenantOwnedModel` table:

    ALTER TABLE t ENABLE ROW LEVEL SECURITY;  ALTER TABLE t FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON t
        USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint)
        WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint);

and grants the application role (DATABASE_URL's user) the table privileges it needs — never
ownership, never BYPASSRLS. With no tenant set the expression is NULL, so nothing is visible.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

POLICY_NAME = "tenant_isolation"
TENANT_EXPRESSION = "NULLIF(current_setting('app.tenant_id', true), '')::bigint"


def tenant_owned_tables() -> list[tuple[str, bool]]:
    """(table name, append-only) for every concrete, managed tenant-owned model, M2M tables included."""
    from crm.tenancy.models import TenantOwnedModel

    tables: list[tuple[str, bool]] = []
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.managed or model._meta.proxy:
            continue
        if issubclass(model, TenantOwnedModel):
            tables.append((model._meta.db_table, model.rls_append_only))
    return sorted(set(tables))


def _quote(connection: BaseDatabaseWrapper, name: str) -> str:
    return connection.ops.quote_name(name)


def apply_row_level_security(connection: BaseDatabaseWrapper) -> None:
    app_role = settings.CRM_DB_APP_ROLE
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
            "(SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass('django_migrations'))"
        )
        current_user, is_superuser, schema_owner = cursor.fetchone()
        if not is_superuser and current_user != schema_owner:
            # Not the owning role (e.g. the app role after a test flush): nothing to apply, and
            # it could not anyway. Migrations always run as the owner (crm/core/.../migrate.py).
            return
        grant_to_app = bool(app_role) and app_role != current_user
        if grant_to_app:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role])
            grant_to_app = cursor.fetchone() is not None
        existing = set(connection.introspection.table_names(cursor))
        for table, _append_only in tenant_owned_tables():
            if table not in existing:
                continue
            t = _quote(connection, table)
            cursor.execute(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
            cursor.execute(f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY")
            cursor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {t}")
            cursor.execute(
                f"CREATE POLICY {POLICY_NAME} ON {t} USING (tenant_id = {TENANT_EXPRESSION}) "
                f"WITH CHECK (tenant_id = {TENANT_EXPRESSION})"
            )
        if grant_to_app:
            role = _quote(connection, app_role)
            cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
            cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
            cursor.execute(f"GRANT EXECUTE ON FUNCTION crm_user_memberships(bigint) TO {role}")
            for table, append_only in tenant_owned_tables():
                if append_only and table in existing:
                    cursor.execute(f"REVOKE UPDATE, DELETE ON {_quote(connection, table)} FROM {role}")
            # The app must not rewrite migration history.
            cursor.execute(f"REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {role}")


def apply_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    # post_migrate fires once per app; applying for all tables each time is idempotent and cheap.
    if sender.label != "tenancy":
        return
    apply_row_level_security(connections[using])
