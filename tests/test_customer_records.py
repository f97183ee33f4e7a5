"""Customer record services: normalisation, ownership, contacts, vehicles, orders, bulk upsert, merge, search."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.core.errors import ApplicationError, NotAllowed
from crm.tenancy.models import AuditEvent
from customers import records, selectors
from customers.models import ConsentChange, Customer, MileageReading, Order, Touchpoint, Vehicle, VehicleOwnership
from tests.factories import CustomerFactory, OrderFactory, VehicleFactory, _vin


def test_create_normalises_numbers_and_puts_a_consultants_customer_in_their_book(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        customer = records.customer_create(
            actor=dealer_a.consultant, data={"name": "赵新", "mobile": "138 0013 8000", "tags": ["VIP"]}
        )
        assert (customer.mobile, customer.owner_id) == ("+8613800138000", dealer_a.consultant.pk)


def test_bad_input_names_the_field_and_writes_nothing(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        with pytest.raises(ValidationError) as error:
            records.customer_create(actor=dealer_a.manager, data={"name": "x", "mobile": "12345", "id_number": "123"})
        assert {"mobile"} <= set(error.value.message_dict)
        assert not Customer.objects.filter(name="x").exists()


def test_a_consultant_cannot_put_a_customer_in_a_colleagues_book(dealer_a, in_tenant):
    with in_tenant(dealer_a), pytest.raises(NotAllowed):
        records.customer_create(actor=dealer_a.consultant, data={"name": "x", "owner": dealer_a.consultant2})


def test_the_black_list_needs_a_reason_and_a_permitted_role(dealer_a, in_tenant):
    customer = dealer_a.objects["customer"]
    with in_tenant(dealer_a):
        with pytest.raises(ApplicationError):
            records.customer_set_list_flag(actor=dealer_a.manager, customer=customer, flag="black", reason=" ")
        with pytest.raises(NotAllowed):
            records.customer_set_list_flag(actor=dealer_a.consultant, customer=customer, flag="black", reason="骗贷")
        records.customer_set_list_flag(actor=dealer_a.agent, customer=customer, flag="black", reason="恶意拖欠")
        customer.refresh_from_db()
        assert (customer.list_flag, customer.list_set_by_id) == ("black", dealer_a.agent.user_id)
        assert AuditEvent.objects.filter(action="customer_listed").exists()


def test_in_person_contacts_and_orders_move_the_last_visit(dealer_a, in_tenant):
    customer = dealer_a.objects["customer"]
    with in_tenant(dealer_a):
        records.touchpoint_log(actor=dealer_a.consultant, customer=customer, channel="call", outcome="reached")
        customer.refresh_from_db()
        assert customer.last_visit_on is None  # a phone call is not a visit
        records.touchpoint_log(actor=dealer_a.consultant, customer=customer, channel="showroom", outcome="reached")
        customer.refresh_from_db()
        assert customer.last_visit_on == timezone.localdate()
        order = records.order_create(
            actor=dealer_a.manager,
            customer=customer,
            data={"kind": "maintenance", "ordered_on": date(2030, 1, 1), "amount": Decimal("500")},
        )
        customer.refresh_from_db()
        assert customer.last_visit_on == date(2030, 1, 1)
        records.order_reverse(actor=dealer_a.manager, order=order)
        customer.refresh_from_db()
        assert customer.last_visit_on == timezone.localdate()  # a reversed order counts for nothing


def test_a_contact_cannot_be_in_the_future_or_about_someone_elses_vehicle(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        other = CustomerFactory()
        with pytest.raises(ApplicationError):
            records.touchpoint_log(
                actor=dealer_a.consultant,
                customer=dealer_a.objects["customer"],
                channel="call",
                outcome="reached",
                occurred_at=timezone.now() + timedelta(days=1),
            )
        with pytest.raises(ApplicationError):
            records.touchpoint_log(
                actor=dealer_a.consultant,
                customer=other,
                channel="call",
                outcome="reached",
                vehicle=dealer_a.objects["vehicle"],
            )
        assert Touchpoint.objects.count() == 1  # only the persona's own contact


def test_vehicles_keep_ownership_history_and_mileage_over_time(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        buyer = CustomerFactory()
        vehicle = records.vehicle_create(
            actor=dealer_a.manager,
            customer=buyer,
            data={"vin": _vin(424242), "plate": "粤b 88888", "brand": "广汽丰田", "purchase_date": date(2024, 1, 5)},
            mileage_km=1200,
        )
        assert vehicle.plate == "粤B·88888" and vehicle.mileage_km == 1200
        records.mileage_record(vehicle=vehicle, km=15000, read_on=date(2025, 1, 5), source="manual")
        with pytest.raises(ApplicationError):
            records.mileage_record(vehicle=vehicle, km=9000, read_on=date(2025, 6, 1), source="manual")
        second = CustomerFactory()
        records.vehicle_transfer(actor=dealer_a.manager, vehicle=vehicle, new_owner=second, on=date(2025, 7, 1))
        history = list(
            VehicleOwnership.objects.filter(vehicle=vehicle)
            .order_by("started_on")
            .values_list("customer_id", "ended_on")
        )
        assert history == [(buyer.pk, date(2025, 7, 1)), (second.pk, None)]
        assert Vehicle.objects.get(pk=vehicle.pk).customer_id == second.pk
        assert MileageReading.objects.filter(vehicle=vehicle).count() == 2


def test_bulk_upsert_is_idempotent_and_reports_each_item(dealer_a, in_tenant):
    customer = dealer_a.objects["customer"]
    items = [
        {
            "external_id": "RO-1",
            "customer_external_id": customer.external_id,
            "kind": "maintenance",
            "ordered_on": "2026-03-01",
            "amount": "680.00",
            "vin": dealer_a.objects["vehicle"].vin,
            "mileage_km": 20000,
        },
        {
            "external_id": "RO-2",
            "customer_external_id": "NOPE",
            "kind": "repair",
            "ordered_on": "2026-03-02",
            "amount": "1",
        },
        {
            "external_id": "RO-3",
            "customer_external_id": customer.external_id,
            "kind": "teleport",
            "ordered_on": "2026-03-02",
            "amount": "1",
        },
    ]
    with in_tenant(dealer_a):
        first = records.orders_bulk_upsert(actor=dealer_a.manager, items=items)
        assert [r["status"] for r in first] == ["created", "error", "error"]
        assert "customer_external_id" in first[1]["errors"] and "kind" in first[2]["errors"]
        again = records.orders_bulk_upsert(actor=dealer_a.manager, items=items[:1])
        assert again[0]["status"] == "unchanged"
        changed = records.orders_bulk_upsert(actor=dealer_a.manager, items=[{**items[0], "amount": "700.00"}])
        assert changed[0]["status"] == "updated"
        assert Order.objects.get(external_id="RO-1").amount == Decimal("700.00")
        with pytest.raises(ApplicationError):
            records.orders_bulk_upsert(actor=dealer_a.manager, items=[items[0]] * 1001)


def test_merge_moves_all_history_and_leaves_a_tombstone_that_resolves(dealer_a, in_tenant):
    survivor = dealer_a.objects["customer"]
    with in_tenant(dealer_a):
        duplicate = CustomerFactory(
            name="重复", mobile="+8613912340000", external_id="DMS-OLD", birthday=date(1990, 1, 1)
        )
        VehicleFactory(customer=duplicate)
        OrderFactory(customer=duplicate)
        records.touchpoint_log(actor=dealer_a.agent, customer=duplicate, channel="visit", outcome="reached")
        records.customer_merge(actor=dealer_a.agent, survivor=survivor, duplicate=duplicate)
        survivor.refresh_from_db()
        assert survivor.vehicles.count() == 2 and survivor.orders.count() == 2 and survivor.touchpoints.count() == 2
        assert survivor.birthday == date(1990, 1, 1)  # blanks filled from the duplicate
        assert Customer.objects.get(pk=duplicate.pk).merged_into_id == survivor.pk
        assert duplicate.pk not in set(
            selectors.customer_visible_to(viewer=dealer_a.manager).values_list("pk", flat=True)
        )
        # an order pushed later for the merged record's DMS id lands on the survivor
        duplicate_ext = "DMS-OLD"
        assert survivor.external_id != duplicate_ext  # the survivor kept its own id
        Customer.objects.filter(pk=duplicate.pk).update(external_id=duplicate_ext)
        result = records.orders_bulk_upsert(
            actor=dealer_a.manager,
            items=[
                {
                    "external_id": "RO-9",
                    "customer_external_id": duplicate_ext,
                    "kind": "parts",
                    "ordered_on": "2026-01-01",
                    "amount": "10",
                }
            ],
        )
        assert Order.objects.get(pk=result[0]["id"]).customer_id == survivor.pk
        with pytest.raises(ApplicationError):
            records.customer_merge(actor=dealer_a.agent, survivor=survivor, duplicate=duplicate)
        with pytest.raises(NotAllowed):
            records.customer_merge(actor=dealer_a.consultant, survivor=survivor, duplicate=CustomerFactory())


@pytest.mark.parametrize(
    "query",
    [
        "粤B·A1234",
        "粤BA1234",
        "LFV2A21K3R3000001",
        "3000001",
        "5678",
        "+8613812345678",
        "13812345678",
        "机密",
        "EXT-DEALERA",
    ],
)
def test_search_finds_the_customer_by_every_shape(dealer_a, in_tenant, query):
    with in_tenant(dealer_a):
        found = selectors.customer_search(Customer.objects.all(), query=query)
        assert list(found.values_list("pk", flat=True)) == [dealer_a.objects["customer"].pk]


def test_search_for_nothing_known_finds_nothing(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        for query in ("粤C·99999", "0000", "不存在", "ZZZZZZ9"):
            assert not selectors.customer_search(Customer.objects.all(), query=query).exists(), query


def test_list_filters(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        old = CustomerFactory(
            owner=dealer_a.consultant, tags=["二胎"], consent_email=True, last_visit_on=date(2024, 1, 1)
        )
        CustomerFactory(owner=dealer_a.consultant2, last_visit_on=date(2026, 1, 1))
        filters = selectors.CustomerFilters(
            tag="二胎", consent="email", last_visit_to=date(2025, 1, 1), owner=dealer_a.consultant.pk
        )
        assert list(selectors.customer_list(viewer=dealer_a.manager, filters=filters)) == [old]
        assert set(selectors.customer_list(viewer=dealer_a.consultant, filters=selectors.CustomerFilters())) == {
            dealer_a.objects["customer"],
            old,
        }


# --- consent (PIPL: given, never assumed) ----------------------------------------------------------


def test_a_new_customer_has_no_consent_unless_given_and_nothing_is_recorded_for_none(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        customer = records.customer_create(actor=dealer_a.manager, data={"name": "未同意"})
        assert (customer.consent_call, customer.consent_sms, customer.consent_wechat, customer.consent_email) == (
            False,
            False,
            False,
            False,
        )
        assert not ConsentChange.objects.filter(customer=customer).exists()
        assert Customer().consent_call is False and Customer().consent_sms is False


def test_consent_given_and_withdrawn_is_recorded_with_who_when_and_how(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        customer = records.customer_create(actor=dealer_a.consultant, data={"name": "同意短信", "consent_sms": True})
        records.customer_update(
            actor=dealer_a.manager, customer=customer, data={"consent_sms": False, "consent_call": True}, via="api"
        )
        records.customer_update(actor=dealer_a.manager, customer=customer, data={"city": "深圳市"})
        changes = list(ConsentChange.objects.filter(customer=customer).order_by("recorded_at", "id"))
    assert [(c.changed, c.via, c.set_by_id) for c in changes] == [
        (["sms"], "form", dealer_a.consultant.user_id),
        (["call", "sms"], "api", dealer_a.manager.user_id),
    ]
    assert (changes[1].consent_call, changes[1].consent_sms) == (True, False)
    assert changes[0].recorded_at <= changes[1].recorded_at


# --- search by tails, substrings and pinyin initials ---------------------------------------------


@pytest.mark.parametrize("query", ["ZRU92", "zru92", "ＺＲＵ９２", "U92", "BZRU92", "b·zru92", "B ZRU92"])
def test_search_finds_a_plate_by_its_tail_in_any_case_and_width(dealer_a, in_tenant, query):
    with in_tenant(dealer_a):
        owner = CustomerFactory(name="尾号客户")
        VehicleFactory(customer=owner, plate="粤B·ZRU92")
        VehicleFactory(plate="粤B·ZRU93")
        found = selectors.customer_search(Customer.objects.all(), query=query)
        assert list(found.values_list("pk", flat=True)) == [owner.pk]


def test_search_finds_an_all_digit_plate_tail_and_a_vin_tail_with_letters(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        owner = CustomerFactory(name="数字车牌", mobile="")
        vehicle = VehicleFactory(customer=owner, plate="粤B·70415")
        assert set(selectors.customer_search(Customer.objects.all(), query="0415").values_list("pk", flat=True)) >= {
            owner.pk
        }
        tail = vehicle.vin[-8:].lower()
        assert owner.pk in selectors.customer_search(Customer.objects.all(), query=tail).values_list("pk", flat=True)


@pytest.mark.parametrize("query", ["客户", "密客", "dealera", "ＤＥＡＬＥＲＡ", "户DEA", "机密客户DEALERA"])
def test_search_finds_a_name_by_any_part_of_it(dealer_a, in_tenant, query):
    with in_tenant(dealer_a):
        found = selectors.customer_search(Customer.objects.all(), query=query)
        assert dealer_a.objects["customer"].pk in found.values_list("pk", flat=True)


def test_search_finds_chinese_names_by_pinyin_initials_of_every_reading(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        zeng = records.customer_create(actor=dealer_a.manager, data={"name": "曾伟明"})
        assert zeng.name_initials.split()[:2] == ["cwm", "zwm"]
        for query in ("zwm", "ZWM", "cwm", "zw", "ｚｗ"):
            found = selectors.customer_search(Customer.objects.all(), query=query)
            assert zeng.pk in found.values_list("pk", flat=True), query
        # initials match from the first character; a renamed customer is found by the new name only
        assert zeng.pk not in selectors.customer_search(Customer.objects.all(), query="wm").values_list("pk", flat=True)
        records.customer_update(actor=dealer_a.manager, customer=zeng, data={"name": "李娜"})
        assert zeng.pk not in selectors.customer_search(Customer.objects.all(), query="zwm").values_list(
            "pk", flat=True
        )
        assert zeng.pk not in selectors.customer_search(Customer.objects.all(), query="伟明").values_list(
            "pk", flat=True
        )
        assert zeng.pk in selectors.customer_search(Customer.objects.all(), query="ln").values_list("pk", flat=True)


def test_bulk_written_customers_get_their_initials_from_the_nightly_step(dealer_a, in_tenant):
    from customers.nightly import data_quality_recompute

    with in_tenant(dealer_a):
        Customer.objects.bulk_create([Customer(name="张三丰")])
        bulk = Customer.objects.get(name="张三丰")
        assert bulk.name_initials is None
        assert bulk.pk in selectors.customer_search(Customer.objects.all(), query="三丰").values_list("pk", flat=True)
        data_quality_recompute(tenant_id=dealer_a.tenant.pk, run_date=date(2026, 12, 7))
        assert bulk.pk in selectors.customer_search(Customer.objects.all(), query="zsf").values_list("pk", flat=True)


def test_name_and_tail_searches_are_index_conditions_under_row_level_security(dealer_a, in_tenant):
    from django.db import connection

    with in_tenant(dealer_a), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in ("伟明", "ZRU92", "0415"):
            ids = selectors.customer_search_ids(query=query)
            sql, params = ids.query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Index Cond" in plan and "^@" in plan.split("Index Cond", 1)[1], plan
            assert "Filter: (" not in plan or "^@" not in plan.split("Filter: (", 1)[1].split("\n")[0], plan


def test_a_name_search_with_more_matches_than_are_inlined_still_lists_them_all(dealer_a, in_tenant, monkeypatch):
    monkeypatch.setattr(selectors, "SEARCH_IDS_INLINE", 3)
    with in_tenant(dealer_a):
        many = {CustomerFactory(name=f"批量{i}号").pk for i in range(6)}
        found = set(selectors.customer_search(Customer.objects.all(), query="批量").values_list("pk", flat=True))
        assert found == many
        found = set(selectors.customer_search(Customer.objects.all(), query="号").values_list("pk", flat=True))
        assert many <= found
