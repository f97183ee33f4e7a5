"""Exporting a filtered customer list: same rows and masking as on screen, audited, never a 500."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from crm.tenancy.models import AuditAction, AuditEvent
from customers.models import LifecycleStage
from tests.factories import CustomerFactory


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_a_manager_exports_csv_with_numbers_of_others_customers_masked(dealer_a, web, in_tenant):
    response = web(dealer_a.manager).get("/customers/export/", {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    header, *rows = csv_rows(response)
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    values = list(row.values())
    assert "138****5678" in values and "+8613812345678" not in values
    assert "110***********002X" in values  # the ID number, masked too
    assert "机密客户DEALERA" in values and "EXT-DEALERA" in values
    with in_tenant(dealer_a):
        event = AuditEvent.objects.get(action=AuditAction.CUSTOMERS_EXPORTED)
    assert event.actor_id == dealer_a.manager.user_id
    assert event.data["count"] == 1 and event.data["format"] == "csv"


def test_an_export_honours_the_list_filters_and_records_them(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        CustomerFactory(name="张三", lifecycle_stage=LifecycleStage.LOYAL, tags=["车友会"])
        CustomerFactory(name="李四", lifecycle_stage=LifecycleStage.LOYAL)
        CustomerFactory(name="王五", lifecycle_stage=LifecycleStage.LOST)
    client = web(dealer_a.manager)

    loyal = csv_rows(client.get("/customers/export/", {"lifecycle_stage": "loyal", "sort": "name"}))[1:]
    tagged = csv_rows(client.get("/customers/export/", {"stage": "loyal", "tag": "车友会"}))[1:]
    searched = csv_rows(client.get("/customers/export/", {"q": "王五"}))[1:]

    assert sorted(r[1] for r in loyal) == ["张三", "李四"]
    assert [r[1] for r in tagged] == ["张三"]
    assert [r[1] for r in searched] == ["王五"]
    with in_tenant(dealer_a):
        filters = [
            e.data["filters"] for e in AuditEvent.objects.filter(action=AuditAction.CUSTOMERS_EXPORTED).order_by("id")
        ]
    assert filters[0] == {"lifecycle_stage": "loyal", "sort": "name"}
    assert filters[1] == {"lifecycle_stage": "loyal", "tag": "车友会", "sort": "newest"}
    assert filters[2] == {"q": "王*", "sort": "newest"}  # a search may be a phone number: kept masked


def test_an_xlsx_export_is_a_workbook_with_the_same_masking(dealer_a, web):
    response = web(dealer_a.agent).get("/customers/export/", {"format": "xlsx"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert len(rows) == 2
    assert "138****5678" in rows[1] and "+8613812345678" not in rows[1]


def test_an_owner_sees_full_numbers_in_the_export_of_their_own_customers(dealer_a, web, in_tenant):
    # a manager who owns a customer gets that customer's number in full, like on screen
    with in_tenant(dealer_a):
        CustomerFactory(name="经理的客户", mobile="+8613911112222", owner=dealer_a.manager)
    rows = csv_rows(web(dealer_a.manager).get("/customers/export/", {"sort": "name"}))[1:]
    by_name = {r[1]: r for r in rows}
    assert "+8613911112222" in by_name["经理的客户"] and "138****5678" in by_name["机密客户DEALERA"]


@pytest.mark.parametrize("persona", ["consultant", "consultant2", "advisor", "auditor", "admin"])
def test_anyone_without_the_export_right_gets_403(dealer_a, web, in_tenant, persona):
    response = web(getattr(dealer_a, persona)).get("/customers/export/", {"format": "csv"})
    assert response.status_code == 403
    assert "机密客户DEALERA" not in response.content.decode()
    with in_tenant(dealer_a):
        assert not AuditEvent.objects.filter(action=AuditAction.CUSTOMERS_EXPORTED).exists()


@pytest.mark.parametrize(
    "params",
    [
        {"format": "pdf"},
        {"lifecycle_stage": "vip"},
        {"owner": "abc"},
        {"owner": "-3"},
        {"last_visit_from": "2026-13-01"},
        {"last_visit_from": "2026-02-01", "last_visit_to": "2026-01-01"},
        {"sort": "id; drop table"},
        {"consent": "fax"},
        {"tag": "x" * 31},
    ],
)
def test_bad_filters_give_a_400_page_not_a_500(dealer_a, web, in_tenant, params):
    response = web(dealer_a.manager).get("/customers/export/", params)
    assert response.status_code == 400
    assert 'data-testid="export-error"' in response.content.decode()
    with in_tenant(dealer_a):
        assert not AuditEvent.objects.filter(action=AuditAction.CUSTOMERS_EXPORTED).exists()


def test_an_export_only_lists_our_own_dealerships_customers(dealer_a, dealer_b, web):
    rows = csv_rows(web(dealer_b.manager).get("/customers/export/", {"q": "机密客户DEALERA"}))
    assert rows[1:] == []
    rows = csv_rows(web(dealer_b.manager).get("/customers/export/", {"owner": dealer_a.consultant.pk}))
    assert rows[1:] == []
    everything = csv_rows(web(dealer_b.manager).get("/customers/export/"))
    assert [r[1] for r in everything[1:]] == ["机密客户DEALERB"]


def test_cells_that_look_like_formulas_are_exported_as_text(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        CustomerFactory(name='=HYPERLINK("http://x")', address="+cmd|' /C calc'!A0")
    rows = csv_rows(web(dealer_a.manager).get("/customers/export/", {"q": "="}))
    names = {r[1] for r in rows[1:]}
    assert '\'=HYPERLINK("http://x")' in names
    workbook = load_workbook(
        io.BytesIO(b"".join(web(dealer_a.manager).get("/customers/export/", {"format": "xlsx"}).streaming_content))
    )
    cells = [c for row in workbook.worksheets[0].iter_rows() for c in row if str(c.value).startswith("=HYPER")]
    assert cells and all(c.data_type == "s" for c in cells)


def test_an_exported_file_can_be_mapped_back_by_the_import(dealer_a, web):
    from customers.imports import auto_mapping

    header = csv_rows(web(dealer_a.manager).get("/customers/export/", HTTP_ACCEPT_LANGUAGE="en"))[0]
    mapping = auto_mapping(kind="customers", headers=header)
    assert {"external_id", "name", "mobile", "gender", "birthday", "id_number", "city", "source"} <= set(mapping)
