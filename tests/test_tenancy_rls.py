"""The database lock on its own: raw SQL as the application role, no Django manager involved."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from crm.tenancy.rls import tenant_owned_tables


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        return int(cursor.fetchone()[0])


def _set_tenant(tenant_id: int | None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.tenant_id', %s, true)", ["" if tenant_id is None else str(tenant_id)])


def test_with_no_tenant_set_raw_sql_sees_zero_rows_in_every_tenant_table(dealer_a, dealer_b):
    tables = [table for table, _append in tenant_owned_tables()]
    with transaction.atomic():
        _set_tenant(dealer_a.tenant.pk)
        populated = [table for table in tables if _count(table)]
    assert {"customers_customer", "tenancy_membership", "tenancy_apicredential", "tenancy_auditevent"} <= set(populated)
    with transaction.atomic():
        _set_tenant(None)
        assert {table: _count(table) for table in tables} == dict.fromkeys(tables, 0)
    for table in tables:  # outside any transaction, too
        assert _count(table) == 0, table


def test_raw_sql_sees_only_the_tenant_set_in_the_transaction(dealer_a, dealer_b):
    with transaction.atomic():
        _set_tenant(dealer_a.tenant.pk)
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT tenant_id FROM customers_customer")
            assert cursor.fetchall() == [(dealer_a.tenant.pk,)]
            cursor.execute("SELECT count(*) FROM customers_customer WHERE id = %s", [dealer_b.objects["customer"].pk])
            assert cursor.fetchone() == (0,)


def test_rls_refuses_to_write_a_row_for_another_tenant(dealer_a, dealer_b):
    with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
        _set_tenant(dealer_b.tenant.pk)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO customers_customer (tenant_id, kind, name, mobile, id_number, gender, province, "
                "city, district, address, source, consent_call, consent_sms, consent_wechat, consent_email, "
                "relationship_class, lifecycle_stage, list_flag, list_reason, churn_reason, tags, external_id, "
                "created_at, updated_at) "
                "VALUES (%s, 'individual', 'x', '', '', '', '', '', '', '', 'walk_in', true, true, true, false, "
                "'potential', 'prospect', '', '', '', '{}', '', now(), now())",
                [dealer_a.tenant.pk],
            )


def test_rls_refuses_to_move_a_row_to_another_tenant(dealer_a, dealer_b, in_tenant):
    with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
        _set_tenant(dealer_a.tenant.pk)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE customers_customer SET tenant_id = %s", [dealer_b.tenant.pk])
    with in_tenant(dealer_a):
        from customers.models import Customer

        assert Customer.objects.count() == 1


def test_updates_and_deletes_cannot_reach_other_tenants_rows(dealer_a, dealer_b, in_tenant):
    with transaction.atomic():
        _set_tenant(dealer_b.tenant.pk)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE customers_customer SET name = 'pwned' WHERE id = %s", [dealer_a.objects["customer"].pk]
            )
            assert cursor.rowcount == 0
            cursor.execute("DELETE FROM customers_order WHERE id = %s", [dealer_a.objects["order"].pk])
            assert cursor.rowcount == 0
    with in_tenant(dealer_a):
        from customers.models import Customer, Order

        assert Customer.objects.get().name == dealer_a.objects["customer"].name
        assert Order.objects.count() == 1


def test_the_setting_is_transaction_local(dealer_a):
    with transaction.atomic():
        _set_tenant(dealer_a.tenant.pk)
        assert _count("customers_customer") == 1
    # the test's own outer transaction is still open (pytest-django), so use a savepoint check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(current_setting('app.tenant_id', true), '')")
        value = cursor.fetchone()[0]
    # inside the test transaction the savepoint release keeps it; real requests end the
    # transaction — tests/test_tenancy_reuse.py proves that with real commits.
    assert value in ("", str(dealer_a.tenant.pk))


def test_the_membership_lookup_function_returns_only_the_users_own_rows(dealer_a, dealer_b):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tenant_id, role FROM crm_user_memberships(%s)", [dealer_a.manager.user_id])
        assert cursor.fetchall() == [(dealer_a.tenant.pk, "manager")]
