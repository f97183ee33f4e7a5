"""Customer information accuracy (客户信息准确率): scores, the refresh, snapshots, the nightly step, the page."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from crm.core import nightly
from crm.core.models import NightlyRun
from crm.core.nightly import nightly_run_tenant, nightly_steps
from customers import quality
from customers.models import Customer, DataQualitySnapshot, Vehicle
from customers.nightly import data_quality_recompute
from customers.quality import (
    ISSUES,
    customer_quality_refresh,
    dealership_quality_snapshot,
    quality_score_for,
    quality_summary,
    quality_worst_first,
)
from customers.validators import (
    normalize_cn_mobile,
    validate_e164_mobile,
    validate_id_number,
    validate_vin,
    vin_check_digit,
)
from tests.factories import CustomerFactory, VehicleFactory

_mobiles = itertools.count(1)
_vins = itertools.count(1)


def unique_mobile() -> str:
    return f"+86137{next(_mobiles):08d}"


def valid_vin() -> str:
    body = f"LSVAB2BM{0}K{next(_vins):07d}"
    return body[:8] + vin_check_digit(body) + body[9:]


def complete(**fields: Any) -> Customer:
    """A customer with nothing to fix, except what `fields` override."""
    values: dict[str, Any] = {
        "name": "完整客户",
        "mobile": unique_mobile(),
        "birthday": date(1985, 3, 1),
        "address": "深南大道1001号",
        "id_number": "",
    }
    return CustomerFactory(**(values | fields))


def scored(customer: Customer) -> tuple[int | None, list[str]]:
    customer.refresh_from_db()
    return customer.quality_score, customer.quality_issues


def test_the_weights_add_up_to_100_and_the_score_has_a_floor():
    assert sum(issue.weight for issue in ISSUES) == 100
    assert len({issue.code for issue in ISSUES}) == len(ISSUES)
    assert quality_score_for([]) == 100
    assert quality_score_for(["missing_birthday", "invalid_vin"]) == 75
    assert quality_score_for([issue.code for issue in ISSUES]) == 0
    assert quality_score_for([issue.code for issue in ISSUES] * 2) == 0  # never below 0


@pytest.mark.parametrize(
    ("fields", "issues"),
    [
        ({}, []),
        ({"mobile": ""}, ["missing_mobile"]),
        ({"mobile": "   "}, ["missing_mobile"]),
        ({"mobile": "13800138000"}, ["invalid_mobile"]),  # not in E.164 form
        ({"mobile": "+8612345678901"}, ["invalid_mobile"]),  # no mainland mobile starts with 12
        ({"mobile": "+8675588888888"}, ["invalid_mobile"]),  # a Shenzhen landline
        ({"mobile": "+86138001380001"}, ["invalid_mobile"]),  # one digit too many
        ({"mobile": "+85291234567"}, []),  # Hong Kong, validated at entry: fine
        ({"mobile": "+8613800138000 "}, ["invalid_mobile"]),
        ({"name": "  "}, ["missing_name"]),
        ({"birthday": None}, ["missing_birthday"]),
        ({"birthday": None, "kind": Customer.Kind.COMPANY}, []),  # companies have no birthday
        ({"address": ""}, ["missing_address"]),
        ({"id_number": "11010519491231002X"}, []),
        ({"id_number": "110105194912310021"}, ["invalid_id_number"]),  # wrong check character
        ({"id_number": "11010519491231002x"}, ["invalid_id_number"]),  # stored lower-case: refused at entry
        ({"id_number": "110105491231002"}, ["invalid_id_number"]),  # the old 15-digit form
        (
            {"mobile": "", "name": "", "birthday": None, "address": "", "id_number": "123"},
            ["missing_mobile", "missing_name", "missing_birthday", "missing_address", "invalid_id_number"],
        ),
    ],
)
def test_each_issue_takes_off_its_weight(fields, issues, dealer_a, in_tenant):
    with in_tenant(dealer_a):
        customer = complete(**fields)
        customer_quality_refresh()
        score, found = scored(customer)
    assert found == issues
    assert score == 100 - sum(quality.ISSUES_BY_CODE[code].weight for code in issues)


def test_a_vehicle_with_an_invalid_vin_marks_its_owner_only(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        owner, other = complete(), complete()
        VehicleFactory(customer=owner, vin=valid_vin())
        bad = valid_vin()
        VehicleFactory(customer=owner, vin=bad[:8] + ("0" if bad[8] != "0" else "1") + bad[9:])
        VehicleFactory(customer=other, vin=valid_vin())
        customer_quality_refresh()
        assert scored(owner) == (85, ["invalid_vin"])
        assert scored(other) == (100, [])


def test_the_worst_combination_scores_25(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        worst = complete(mobile="13800000000", name="", birthday=None, address="", id_number="1")
        complete(mobile="13800000000")  # the same invalid number: a duplicate too
        VehicleFactory(customer=worst, vin="I" * 17)
        customer_quality_refresh()
        score, issues = scored(worst)
    assert set(issues) == {issue.code for issue in ISSUES} - {"missing_mobile"}
    assert score == 25 == quality_score_for(issues)


def test_customers_sharing_a_mobile_are_both_flagged_but_not_across_dealerships(dealer_a, dealer_b, in_tenant):
    shared, across = unique_mobile(), unique_mobile()
    with in_tenant(dealer_a):
        first, second, alone = complete(mobile=shared), complete(mobile=shared), complete(mobile=across)
    with in_tenant(dealer_b):
        in_b = complete(mobile=across)  # the same person may be a customer of two dealerships
        customer_quality_refresh()
        assert scored(in_b) == (100, [])
    with in_tenant(dealer_a):
        customer_quality_refresh()
        assert scored(first) == scored(second) == (90, ["duplicate_mobile"])
        assert scored(alone) == (100, [])


def test_a_merged_tombstone_is_skipped_and_is_no_duplicate(dealer_a, in_tenant):
    mobile = unique_mobile()
    with in_tenant(dealer_a):
        survivor = complete(mobile=mobile)
        tombstone = complete(mobile=mobile, merged_into=survivor, name="")
        customer_quality_refresh()
        assert scored(survivor) == (100, [])
        assert scored(tombstone) == (None, [])


def _vin_samples() -> list[str]:
    rng = random.Random(2026)
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    samples = ["LVGBE40K8PG000002", "1M8GDM9AXKP042788", "11111111111111111"]
    for n in range(120):
        body = "".join(rng.choice(alphabet) for _ in range(17))
        if n % 2:  # half with the right check digit (some of them X)
            body = body[:8] + vin_check_digit(body) + body[9:]
        samples.append(body)
    samples += [
        "LVGBE40K9PG000002",  # check digit off by one
        "LVGBE40K8PG00000",  # 16 characters
        "LVGBE40K8PGO00002",  # the letter O
        "LVGBE40I8PG000002",  # the letter I
        "lvgbe40k8pg000002",  # lower case: the validator upper-cases, so valid
        "LVGBE40K8PG 00002",
        "",
    ]
    return samples


def _is_valid(validator: Any, value: str) -> bool:
    try:
        validator(value)
    except ValidationError:
        return False
    return True


def test_vin_checks_agree_with_the_validator(dealer_a, in_tenant):
    samples = list(dict.fromkeys(_vin_samples()))
    with in_tenant(dealer_a):
        owners = {}
        for vin in samples:
            owners[vin] = complete()
            Vehicle.objects.bulk_create([Vehicle(customer=owners[vin], vin=vin, brand="测试")])
        customer_quality_refresh()
        flagged = {vin for vin, c in owners.items() if "invalid_vin" in scored(c)[1]}
    expected = {vin for vin in samples if not _is_valid(validate_vin, vin)}
    assert flagged == expected
    assert 20 < len(expected) < len(samples) - 20  # both kinds are well represented


def _id_samples() -> list[str]:
    rng = random.Random(11643)
    samples = ["11010519491231002X", "440305199001011234", "110105491231002", "11010519491231002x", "", "X" * 18]
    for n in range(120):
        body = "".join(rng.choice("0123456789") for _ in range(17))
        total = sum(int(d) * w for d, w in zip(body, quality._ID_WEIGHTS, strict=True))
        check = "10X98765432"[total % 11] if n % 2 else rng.choice("0123456789X")
        samples.append(body + check)
    return samples


def test_id_number_checks_agree_with_the_validator(dealer_a, in_tenant):
    samples = list(dict.fromkeys(_id_samples()))
    with in_tenant(dealer_a):
        holders = {value: complete(id_number=value) for value in samples}
        customer_quality_refresh()
        flagged = {value for value, c in holders.items() if "invalid_id_number" in scored(c)[1]}
    expected = {value for value in samples if value and not _is_valid(validate_id_number, value)}
    assert flagged == expected
    assert 20 < len(expected) < len(samples) - 20


def test_mobile_checks_agree_with_the_validator_on_entered_numbers(dealer_a, in_tenant):
    entered = ["13800138000", "+86 139 0000 1111", "15912345678", "19912345678", "+852 9123 4567", "+1 650 253 0000"]
    stored = [normalize_cn_mobile(value) for value in entered]  # what the app stores
    refused = ["+8613800138000x", "+86075588888888", "+8610123", "8613800138000", "+86 13800138000"]
    assert all(_is_valid(validate_e164_mobile, v) for v in stored)
    assert not any(_is_valid(validate_e164_mobile, v) for v in refused)
    with in_tenant(dealer_a):
        holders = {value: complete(mobile=value) for value in stored + refused}
        customer_quality_refresh()
        flagged = {value for value, c in holders.items() if "invalid_mobile" in scored(c)[1]}
    assert flagged == set(refused)


def test_a_refresh_of_some_customers_leaves_the_others_alone(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        one, two, three = complete(address=""), complete(birthday=None), complete()
        assert customer_quality_refresh(customer_ids=[one.pk, two.pk]) == 2
        assert scored(one) == (90, ["missing_address"])
        assert scored(two) == (90, ["missing_birthday"])
        assert scored(three) == (None, [])
        assert customer_quality_refresh(customer_ids=[]) == 0
        # the whole dealership: the persona customer and `three`; one and two are unchanged
        assert customer_quality_refresh() == 2
        assert scored(three) == (100, [])


def test_a_refresh_of_one_customer_rescores_the_customers_sharing_its_mobile(dealer_a, in_tenant):
    shared, old = unique_mobile(), unique_mobile()
    with in_tenant(dealer_a):
        twin, other_twin = complete(mobile=shared), complete(mobile=shared)
        customer_quality_refresh()
        newcomer = complete(mobile=shared)
        assert customer_quality_refresh(customer_ids=[newcomer.pk]) == 1  # the twins were flagged already
        assert scored(newcomer) == (90, ["duplicate_mobile"])

        # an edit moves a customer off a shared number: the caller passes the old number
        edited, left_behind = complete(mobile=old), complete(mobile=old)
        customer_quality_refresh(customer_ids=[edited.pk, left_behind.pk])
        Customer.objects.filter(pk=edited.pk).update(mobile=unique_mobile())
        assert customer_quality_refresh(customer_ids=[edited.pk], mobiles=[old]) == 2
        assert scored(edited) == scored(left_behind) == (100, [])
        assert scored(twin) == scored(other_twin) == (90, ["duplicate_mobile"])


def test_only_rows_that_change_are_written(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        customers = [complete(address="" if n % 2 else "某路1号") for n in range(6)]
        written = customer_quality_refresh()
        assert written == Customer.objects.count() == 7
        assert customer_quality_refresh() == 0
        stamps = dict(Customer.objects.values_list("pk", "updated_at"))
        assert customer_quality_refresh(customer_ids=[c.pk for c in customers]) == 0
        Customer.objects.filter(pk=customers[1].pk).update(address="补上了")
        assert customer_quality_refresh() == 1
        assert scored(customers[1]) == (100, [])
        # a score is no edit: updated_at is left alone
        assert dict(Customer.objects.values_list("pk", "updated_at")) == stamps


_MAINLAND = re.compile(r"\+861[3-9][0-9]{9}")
_FOREIGN = re.compile(r"\+[1-9][0-9]{6,14}")


def expected_issues(customer: Customer, mobile_counts: Counter[str], vins: list[str]) -> list[str]:
    """The rule, written again in Python with the app's validators, to check the SQL against."""
    mobile = customer.mobile
    found = set()
    if not mobile.strip():
        found.add("missing_mobile")
    elif not (_MAINLAND.fullmatch(mobile) or (_FOREIGN.fullmatch(mobile) and not mobile.startswith("+86"))):
        found.add("invalid_mobile")
    if mobile.strip() and mobile_counts[mobile] > 1:
        found.add("duplicate_mobile")
    if not customer.name.strip():
        found.add("missing_name")
    if customer.kind == Customer.Kind.INDIVIDUAL and customer.birthday is None:
        found.add("missing_birthday")
    if not customer.address.strip():
        found.add("missing_address")
    if any(not _is_valid(validate_vin, vin) for vin in vins):
        found.add("invalid_vin")
    if customer.id_number and not _is_valid(validate_id_number, customer.id_number):
        found.add("invalid_id_number")
    return [issue.code for issue in ISSUES if issue.code in found]


def _random_dealership(rng: random.Random, size: int) -> None:
    shared = [unique_mobile() for _ in range(5)]
    for _n in range(size):
        fields: dict[str, Any] = {}
        roll = rng.random
        if roll() < 0.15:
            fields["mobile"] = rng.choice(["", "13800000000", "+8612000000000", rng.choice(shared)])
        if roll() < 0.1:
            fields["name"] = ""
        if roll() < 0.4:
            fields["birthday"] = None
        if roll() < 0.2:
            fields["kind"] = Customer.Kind.COMPANY
        if roll() < 0.4:
            fields["address"] = ""
        if roll() < 0.2:
            fields["id_number"] = rng.choice(["11010519491231002X", "110105194912310021", "12345"])
        customer = complete(**fields)
        if roll() < 0.4:
            vin = valid_vin()
            if roll() < 0.3:
                vin = vin[:8] + ("X" if vin[8] != "X" else "0") + vin[9:]
            Vehicle.objects.bulk_create([Vehicle(customer=customer, vin=vin, brand="测试")])
    survivor = Customer.objects.order_by("pk").first()
    assert survivor is not None
    complete(mobile=survivor.mobile, merged_into=survivor)  # a tombstone: counted nowhere


def test_scores_and_the_snapshot_agree_with_an_independent_computation(dealer_a, dealer_b, in_tenant):
    with in_tenant(dealer_b):
        _random_dealership(random.Random(7), 30)  # a neighbour whose numbers must not mix in
        customer_quality_refresh()
    with in_tenant(dealer_a):
        _random_dealership(random.Random(3), 150)
        customer_quality_refresh()
        snapshot = dealership_quality_snapshot(on=date(2026, 11, 23))
        live = list(Customer.objects.filter(merged_into__isnull=True))
        counts = Counter(c.mobile for c in live)
        vins: dict[int, list[str]] = {}
        for customer_id, vin in Vehicle.objects.values_list("customer_id", "vin"):
            vins.setdefault(customer_id, []).append(vin)
    expected = {c.pk: expected_issues(c, counts, vins.get(c.pk, [])) for c in live}
    assert {c.pk: c.quality_issues for c in live} == expected
    assert {c.pk: c.quality_score for c in live} == {pk: quality_score_for(i) for pk, i in expected.items()}
    scores = [quality_score_for(issues) for issues in expected.values()]
    assert snapshot.customers == len(live) == 151
    assert snapshot.accurate == sum(1 for s in scores if s == 100)
    assert snapshot.average_score == (Decimal(sum(scores)) / len(scores)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    issue_counts = Counter(code for issues in expected.values() for code in issues)
    assert snapshot.issue_counts == dict(issue_counts)
    assert {"duplicate_mobile", "invalid_vin", "invalid_mobile", "missing_mobile"} <= set(issue_counts)


def test_the_snapshot_is_one_row_per_day_and_is_overwritten(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        customer_quality_refresh()
        dealership_quality_snapshot(on=date(2026, 11, 22))
        complete()
        customer_quality_refresh()
        again = dealership_quality_snapshot(on=date(2026, 11, 22))
        assert DataQualitySnapshot.objects.count() == 1
        assert (again.customers, again.accurate) == (2, 1)


def test_the_step_is_found_by_the_nightly_pipeline():
    assert "customers.data_quality" in [step.name for step in nightly_steps.contributions()]


def test_the_nightly_step_rescores_and_writes_the_snapshot(dealer_a, dealer_b, in_tenant, monkeypatch):
    with in_tenant(dealer_a):
        customer = complete(address="")
    with nightly.nightly_steps.replaced(nightly.NightlyStep(name="customers.data_quality", run=data_quality_recompute)):
        runs = nightly_run_tenant(
            tenant_id=dealer_a.tenant.pk,
            trigger="command",
            run_date=date(2026, 11, 23),
            only=["customers.data_quality"],
        )
    assert [(r.step, r.status, r.rows) for r in runs] == [("customers.data_quality", "succeeded", 3)]
    with in_tenant(dealer_a):
        assert scored(customer) == (90, ["missing_address"])
        snapshot = DataQualitySnapshot.objects.get()
        assert (snapshot.computed_on, snapshot.customers, snapshot.accurate) == (date(2026, 11, 23), 2, 0)
    again = nightly_run_tenant(
        tenant_id=dealer_a.tenant.pk, trigger="command", run_date=date(2026, 11, 23), only=["customers.data_quality"]
    )
    assert again[0].rows == 1  # nothing changed: only the snapshot was written again
    with in_tenant(dealer_b):
        assert not DataQualitySnapshot.objects.exists()
        assert not NightlyRun.objects.exists()
        assert Customer.objects.get().quality_score is None


# ---------------------------------------------------------------------------------------------
# The page


def _page(client: Any, **params: Any) -> str:
    response = client.get("/customers/quality/", params)
    assert response.status_code == 200
    return str(response.content.decode())


def _order_on_page(page: str, customers: list[Customer]) -> list[int]:
    positions = {c.pk: page.find(f'data-customer="{c.pk}"') for c in customers}
    return [pk for pk, at in sorted(positions.items(), key=lambda item: item[1]) if at >= 0]


def test_the_page_lists_what_to_fix_worst_first(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        fine = complete(name="没问题")
        mild = complete(name="缺生日", birthday=None, owner=dealer_a.consultant2)
        bad = complete(name="很多问题", birthday=None, address="", mobile="")
        customer_quality_refresh()
        dealership_quality_snapshot(on=date(2026, 11, 22))
    page = _page(web(dealer_a.manager))
    persona = dealer_a.objects["customer"]
    assert _order_on_page(page, [fine, mild, bad, persona]) == [bad.pk, persona.pk, mild.pk]
    assert "客户信息准确率" in page or "Customer information accuracy" in page
    assert 'data-testid="quality-accuracy">25.0%' in page  # 1 of 4 without issues
    assert f"/customers/{bad.pk}/" in page and "李博" in page  # link to the record, owner's name
    assert 'data-testid="quality-trend"' in page
    for customer in (fine, mild, bad, persona):  # no numbers, not even masked ones
        if customer.mobile:
            assert customer.mobile[3:] not in page and f"{customer.mobile[3:6]}****" not in page


def test_the_page_filters_by_issue(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        no_vin = complete(name="车架号错")
        VehicleFactory(customer=no_vin, vin="LVGBE40K9PG000002")
        no_address = complete(name="没地址", address="")
        customer_quality_refresh()
    client = web(dealer_a.manager)
    page = _page(client, issue="invalid_vin")
    assert _order_on_page(page, [no_vin, no_address]) == [no_vin.pk]
    assert 'class="button button-primary" href="?issue=invalid_vin"' in page  # the chip shows it is on
    assert _order_on_page(_page(client, issue="nonsense"), [no_vin, no_address]) == [no_vin.pk, no_address.pk]
    rows = client.get("/customers/quality/", {"issue": "missing_address"}, headers={"HX-Request": "true"})
    assert rows.status_code == 200 and "<html" not in rows.content.decode()
    assert _order_on_page(rows.content.decode(), [no_vin, no_address]) == [no_address.pk]


def test_pages_go_on_without_counting(dealer_a, web, in_tenant, monkeypatch):
    monkeypatch.setattr(quality, "PAGE_SIZE", 2)
    with in_tenant(dealer_a):
        extra = [complete(address="") for _ in range(2)]
        customer_quality_refresh()
    client = web(dealer_a.manager)
    first, second = _page(client), _page(client, page=2)
    assert 'data-testid="quality-next"' in first and 'data-testid="quality-next"' not in second
    everyone = [*extra, dealer_a.objects["customer"]]
    assert len(_order_on_page(first, everyone)) == 2 and len(_order_on_page(second, everyone)) == 1
    assert _order_on_page(_page(client, page="x"), everyone) == _order_on_page(first, everyone)
    assert _order_on_page(_page(client, page=str(10**30)), everyone) == []  # past the end: empty, no error


def test_a_consultant_sees_only_their_own_customers_issues(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        mine = complete(name="鲍勃的客户", address="", owner=dealer_a.consultant2)
        customer_quality_refresh()
    page = _page(web(dealer_a.consultant2))
    assert _order_on_page(page, [mine, dealer_a.objects["customer"]]) == [mine.pk]
    assert dealer_a.objects["customer"].name not in page
    assert 'data-testid="quality-accuracy">0.0%' in page  # one customer in Bob's book, with an issue
    assert 'data-testid="quality-trend"' not in page  # the dealership's trend is not his book's
    with in_tenant(dealer_a):
        summary = quality_summary(viewer=dealer_a.consultant2)
        assert (summary.customers, summary.accurate) == (1, 0)
        assert [c.pk for c in quality_worst_first(viewer=dealer_a.consultant).rows] == [dealer_a.objects["customer"].pk]


def test_a_tenant_admin_without_customer_visibility_gets_403(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        customer_quality_refresh()
    response = web(dealer_a.admin).get("/customers/quality/")
    assert response.status_code == 403
    assert dealer_a.objects["customer"].name not in response.content.decode()


@pytest.mark.parametrize("role", ["manager", "agent", "auditor", "consultant", "advisor"])
def test_roles_that_see_customers_open_the_page(role, dealer_a, web):
    assert web(getattr(dealer_a, role)).get("/customers/quality/").status_code == 200


def test_another_dealership_sees_none_of_our_customers(dealer_a, dealer_b, web, in_tenant):
    with in_tenant(dealer_a):
        ours = complete(name="甲店的问题客户", address="")
        customer_quality_refresh()
        dealership_quality_snapshot(on=date(2026, 11, 22))
    with in_tenant(dealer_b):
        customer_quality_refresh()
    page = _page(web(dealer_b.manager))
    assert ours.name not in page and dealer_a.objects["customer"].name not in page
    assert dealer_b.objects["customer"].name in page
    assert 'data-testid="quality-trend"' not in page  # B has no snapshot; A's is not shown
    with in_tenant(dealer_b):
        assert quality_summary(viewer=dealer_b.manager).customers == 1


def test_the_page_refuses_writes(dealer_a, web):
    assert web(dealer_a.manager).post("/customers/quality/").status_code == 405
