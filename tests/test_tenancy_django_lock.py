"""The Django lock: the scoped manager fails closed and rows never cross dealerships."""

from __future__ import annotations

import pytest
from django.db import transaction

from crm.tenancy.context import CrossTenantWrite, TenantNotSet, current_tenant_id, tenant_context
from crm.tenancy.models import Membership
from customers.models import Customer


def test_manager_raises_when_no_tenant_is_active(dealer_a):
    with pytest.raises(TenantNotSet):
        list(Customer.objects.all())
    with pytest.raises(TenantNotSet):
        Membership.objects.count()


def test_manager_filters_to_the_active_tenant(dealer_a, dealer_b, in_tenant):
    with in_tenant(dealer_a):
        names = set(Customer.objects.values_list("name", flat=True))
    assert names == {dealer_a.objects["customer"].name}
    with in_tenant(dealer_b):
        assert not Customer.objects.filter(pk=dealer_a.objects["customer"].pk).exists()


def test_related_managers_are_scoped_too(dealer_a, dealer_b, in_tenant):
    customer_a = dealer_a.objects["customer"]
    with in_tenant(dealer_b):
        assert list(customer_a.vehicles.all()) == []
    with in_tenant(dealer_a):
        assert [v.vin for v in customer_a.vehicles.all()] == [dealer_a.objects["vehicle"].vin]


def test_save_fills_the_tenant_from_the_context(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        customer = Customer.objects.create(name="新客户")
    assert customer.tenant_id == dealer_a.tenant.pk


def test_saving_without_a_tenant_is_refused(db):
    with pytest.raises(TenantNotSet):
        Customer(name="无主").save()


def test_a_row_cannot_be_saved_into_another_tenant(dealer_a, dealer_b, in_tenant):
    customer_a = dealer_a.objects["customer"]
    with in_tenant(dealer_b), pytest.raises(CrossTenantWrite):
        customer_a.name = "hijacked"
        customer_a.save()
    with in_tenant(dealer_a):
        assert Customer.objects.get(pk=customer_a.pk).name != "hijacked"


def test_queryset_update_cannot_change_the_tenant(dealer_a, dealer_b, in_tenant):
    with in_tenant(dealer_a), pytest.raises(CrossTenantWrite):
        Customer.objects.update(tenant_id=dealer_b.tenant.pk)


def test_bulk_create_refuses_rows_of_another_tenant(dealer_a, dealer_b, in_tenant):
    with in_tenant(dealer_a), pytest.raises(CrossTenantWrite):
        Customer.objects.bulk_create([Customer(name="x", tenant_id=dealer_b.tenant.pk)])


def test_links_into_another_dealership_are_refused(dealer_a, dealer_b, in_tenant):
    from customers.models import Vehicle

    with in_tenant(dealer_b), pytest.raises(CrossTenantWrite):
        Vehicle(customer=dealer_a.objects["customer"], vin="LVGBE40K8PG000003", brand="x").save()


def test_nested_contexts_restore_the_outer_tenant(dealer_a, dealer_b, in_tenant):
    with in_tenant(dealer_a):
        with in_tenant(dealer_b):
            assert current_tenant_id() == dealer_b.tenant.pk
            assert Customer.objects.get().name == dealer_b.objects["customer"].name
        assert current_tenant_id() == dealer_a.tenant.pk
        # the database lock was handed back as well: raw SQL sees A again
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM customers_customer")
            assert [r[0] for r in cursor.fetchall()] == [dealer_a.objects["customer"].name]
    assert current_tenant_id() is None


def test_an_error_inside_a_context_still_resets_it(dealer_a, in_tenant):
    with pytest.raises(ZeroDivisionError), in_tenant(dealer_a):
        1 / 0  # noqa: B018
    assert current_tenant_id() is None
    with transaction.atomic():
        pass


def test_tenant_context_rejects_a_non_integer_id(db):
    with pytest.raises(TypeError), tenant_context("1"):  # type: ignore[arg-type]
        pass


def test_a_raw_foreign_key_id_into_another_dealership_is_refused(dealer_a, dealer_b, in_tenant):
    from customers.models import Vehicle

    other_customer_id = dealer_a.objects["customer"].pk
    with in_tenant(dealer_b):
        with pytest.raises(CrossTenantWrite):
            Vehicle(customer_id=other_customer_id, vin="LVGBE40K8PG000003", brand="x").save()
        with pytest.raises(CrossTenantWrite):
            Vehicle.objects.bulk_create([Vehicle(customer_id=other_customer_id, vin="LVGBE40K8PG000003", brand="x")])
        with pytest.raises(CrossTenantWrite):
            Customer.objects.update(owner_id=dealer_a.consultant.pk)
        with pytest.raises(CrossTenantWrite):
            customer = Customer.objects.get()
            customer.owner_id = dealer_a.consultant.pk
            Customer.objects.bulk_update([customer], ["owner"])
        assert Customer.objects.get().owner_id == dealer_b.consultant.pk


def test_links_inside_the_dealership_by_raw_id_still_work(dealer_a, in_tenant):
    from customers.models import Vehicle

    with in_tenant(dealer_a):
        Vehicle(customer_id=dealer_a.objects["customer"].pk, vin="LVGBE40K8PG000003", brand="x").save()
        assert Customer.objects.update(owner_id=dealer_a.consultant2.pk) == 1


def test_the_system_checks_reject_tenant_models_that_break_the_rules():
    from django.db import models

    from crm.tenancy.checks import tenant_models_follow_the_rules
    from crm.tenancy.models import TenantOwnedModel

    assert tenant_models_follow_the_rules() == []

    class Tag(TenantOwnedModel):
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "customers"
            constraints = [models.UniqueConstraint(fields=["name"], name="tag_name_unique")]

    class Tagged(TenantOwnedModel):
        tags = models.ManyToManyField(Tag)

        class Meta:
            app_label = "customers"

    try:
        ids = {error.id for error in tenant_models_follow_the_rules()}
        assert ids == {"tenancy.E001", "tenancy.E002"}
    finally:
        from django.apps import apps

        for name in ("tag", "tagged", "tagged_tags"):
            apps.all_models["customers"].pop(name, None)
        apps.clear_cache()
