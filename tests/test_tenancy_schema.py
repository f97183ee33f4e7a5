"""Schema checks: every table with tenant_id is protected; the app role cannot step around RLS.

These read the live catalogue of the test database, so a table added later without a policy,
without NOT NULL on tenant_id, or with a unique constraint not led by tenant_id fails here.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db


def _tenant_tables(cursor) -> list[str]:  # type: ignore[no-untyped-def]
    cursor.execute(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'tenant_id' "
        "ORDER BY table_name"
    )
    return [row[0] for row in cursor.fetchall()]


def test_there_are_tenant_tables_to_check(owner_cursor):
    tables = _tenant_tables(owner_cursor)
    assert {"customers_customer", "tenancy_membership", "tenancy_auditevent", "core_nightlyrun"} <= set(tables)


def test_every_table_with_tenant_id_has_forced_row_level_security(owner_cursor):
    owner_cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relrowsecurity AND c.relforcerowsecurity"
    )
    forced = {row[0] for row in owner_cursor.fetchall()}
    missing = sorted(set(_tenant_tables(owner_cursor)) - forced)
    assert missing == [], f"tables without ENABLE + FORCE ROW LEVEL SECURITY: {missing}"


def test_every_table_with_tenant_id_has_the_tenant_policy(owner_cursor):
    owner_cursor.execute("SELECT tablename, qual, with_check FROM pg_policies WHERE policyname = 'tenant_isolation'")
    policies = {row[0]: (row[1], row[2]) for row in owner_cursor.fetchall()}
    for table in _tenant_tables(owner_cursor):
        assert table in policies, f"{table} has no tenant_isolation policy"
        using, check = policies[table]
        for expression in (using, check):
            assert "tenant_id" in expression and "app.tenant_id" in expression, (
                f"{table}: unexpected policy {expression}"
            )


def test_tenant_id_is_not_null_everywhere(owner_cursor):
    owner_cursor.execute(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND column_name = 'tenant_id' AND is_nullable = 'YES'"
    )
    assert owner_cursor.fetchall() == []


def test_unique_constraints_on_tenant_tables_lead_with_tenant_id(owner_cursor):
    owner_cursor.execute(
        """
        SELECT t.relname, i.relname, a.attname
          FROM pg_index x
          JOIN pg_class t ON t.oid = x.indrelid
          JOIN pg_class i ON i.oid = x.indexrelid
          JOIN pg_namespace n ON n.oid = t.relnamespace
          LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
         WHERE n.nspname = 'public' AND x.indisunique AND NOT x.indisprimary
        """
    )
    tenant_tables = set(_tenant_tables(owner_cursor))
    offenders = [
        (table, index, first)
        for table, index, first in owner_cursor.fetchall()
        if table in tenant_tables and first != "tenant_id"
    ]
    assert offenders == [], f"unique indexes not led by tenant_id: {offenders}"


def test_the_app_role_owns_nothing_and_cannot_bypass_rls():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (user,) = cursor.fetchone()
        assert user == settings.CRM_DB_APP_ROLE
        cursor.execute("SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False, False)
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = current_user"
        )
        assert cursor.fetchone() == (0,)


def test_the_app_role_cannot_disable_row_level_security():
    from django.db.utils import ProgrammingError

    with pytest.raises(ProgrammingError), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE customers_customer DISABLE ROW LEVEL SECURITY")


def test_the_audit_log_is_append_only_for_the_app_role(dealer_a, in_tenant):
    from django.db.utils import ProgrammingError

    from crm.tenancy.models import AuditEvent

    with in_tenant(dealer_a):
        assert AuditEvent.objects.exists()
        with pytest.raises(ProgrammingError):
            AuditEvent.objects.update(summary="rewritten")
    with in_tenant(dealer_a), pytest.raises(ProgrammingError):
        AuditEvent.objects.all().delete()


def test_every_data_migration_reads_and_writes_through_the_migration_s_own_connection():
    """`migrate` runs as the owner role (the `owner` alias) inside one transaction per migration. A
    RunPython that queries through a model's default manager uses the application connection
    instead, which waits for the migration's own locks and hangs `make demo` on an existing
    database (tenancy 0006 did, on its ALTER TABLE). Every `.objects` in a migration therefore goes
    through `.using(schema_editor.connection.alias)`, and every `.save(` names `using=`."""
    import re
    from pathlib import Path

    root = Path(settings.BASE_DIR)
    offenders = []
    for path in sorted(root.glob("**/migrations/0*.py")):
        if ".venv" in path.parts or "node_modules" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"\.objects\.(?!using\()", code) or re.search(r"\.save\((?![^)]*using=)", code):
                offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert offenders == []
