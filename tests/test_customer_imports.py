"""Importing customers, vehicles and orders from DMS files: check first, then all or nothing."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from openpyxl import Workbook

from crm.core.errors import ApplicationError, NotAllowed
from crm.tenancy.context import tenant_context
from crm.tenancy.models import AuditAction, AuditEvent
from customers import imports
from customers.models import ConsentChange, Customer, ImportJob, MileageReading, Order, Vehicle, VehicleOwnership
from customers.tasks import import_commit_task
from customers.validators import vin_check_digit

CUSTOMER_HEADERS = [
    "客户编号",
    "客户姓名",
    "手机号码",
    "性别",
    "出生日期",
    "身份证号",
    "省份",
    "城市",
    "详细地址",
    "客户来源",
]
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(n: int) -> str:
    body = f"44030519{80 + n % 20:02d}0101{n % 1000:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]


def vin(n: int) -> str:
    body = f"LSVAM4187C{n:07d}"
    return body[:8] + vin_check_digit(body) + body[9:]


def mobile(n: int) -> str:
    return f"137{n:08d}"


def customer_row(n: int, **overrides: Any) -> list[Any]:
    row = {
        "客户编号": f"C{n:05d}",
        "客户姓名": f"客户{n}",
        "手机号码": mobile(n),
        "性别": "男" if n % 2 else "女",
        "出生日期": "1985/3/7",
        "身份证号": id_number(n),
        "省份": "广东省",
        "城市": "深圳市",
        "详细地址": f"南山区科技园{n}号",
        "客户来源": "展厅",
    } | overrides
    return [row[h] for h in CUSTOMER_HEADERS]


def csv_bytes(rows: list[list[Any]], *, encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def run(django_capture_on_commit_callbacks, in_tenant):
    """Upload a file as a member and let the queued tasks run; the job comes back refreshed."""

    def upload(member, content: bytes, name: str, kind: str = "customers") -> ImportJob:
        with django_capture_on_commit_callbacks(execute=True), tenant_context(member.tenant_id):
            job = imports.import_job_create(actor=member, kind=kind, upload=SimpleUploadedFile(name, content))
        with tenant_context(member.tenant_id):
            job.refresh_from_db()
        return job

    def commit(member, job: ImportJob) -> ImportJob:
        with django_capture_on_commit_callbacks(execute=True), tenant_context(member.tenant_id):
            imports.import_job_request_commit(actor=member, job=job)
        with tenant_context(member.tenant_id):
            job.refresh_from_db()
        return job

    def upload_and_commit(member, content: bytes, name: str, kind: str = "customers") -> ImportJob:
        job = upload(member, content, name, kind)
        assert job.status == ImportJob.Status.READY, job.errors
        return commit(member, job)

    upload.commit = commit  # type: ignore[attr-defined]
    upload.all = upload_and_commit  # type: ignore[attr-defined]
    return upload


def counts(dealer) -> dict[str, int]:
    with tenant_context(dealer.tenant.pk):
        return {
            model.__name__: model.objects.count()
            for model in (Customer, Vehicle, Order, MileageReading, VehicleOwnership)
        }


def row_versions(dealer) -> dict[str, list[tuple[int, str]]]:
    """Every row's id and xmin: a row that was written (even with the same values) gets a new xmin."""
    versions = {}
    with tenant_context(dealer.tenant.pk), connection.cursor() as cursor:
        for table in (
            "customers_customer",
            "customers_vehicle",
            "customers_order",
            "customers_mileagereading",
            "customers_vehicleownership",
        ):
            cursor.execute(f"SELECT id, xmin::text FROM {table} ORDER BY id")
            versions[table] = cursor.fetchall()
    return versions


# --- the preview lists every bad row, and nothing is written --------------------------------------


def test_a_file_with_three_bad_rows_lists_exactly_those_three_and_writes_nothing(dealer_a, run, in_tenant):
    rows = [CUSTOMER_HEADERS] + [customer_row(n) for n in range(1, 8)]
    rows[2] = customer_row(2, 手机号码="1380000")  # Excel row 3
    rows[4] = customer_row(4, 身份证号="440305198001010011")  # row 5: wrong check character
    rows[6] = customer_row(6, 出生日期="2026-02-30")  # row 7: no such day
    before = counts(dealer_a)

    job = run(dealer_a.manager, csv_bytes(rows), "客户导出.csv")

    assert job.status == ImportJob.Status.INVALID
    assert job.total_rows == 7 and job.error_count == 3
    assert [(e["row"], e["column"]) for e in job.errors] == [(3, "手机号码"), (5, "身份证号"), (7, "出生日期")]
    assert "1380000" in job.errors[0]["message"]
    assert "check character" in job.errors[1]["message"] or "校验" in job.errors[1]["message"]
    assert counts(dealer_a) == before
    with in_tenant(dealer_a), pytest.raises(ApplicationError):
        imports.import_job_request_commit(actor=dealer_a.manager, job=job)
    with in_tenant(dealer_a):
        assert not Customer.objects.filter(external_id__startswith="C0000").exists()
        assert not AuditEvent.objects.filter(action=AuditAction.CUSTOMERS_IMPORTED).exists()


def test_the_three_bad_rows_are_shown_on_the_job_page(dealer_a, run, web):
    rows = [CUSTOMER_HEADERS] + [customer_row(n) for n in range(1, 8)]
    rows[2] = customer_row(2, 手机号码="1380000")
    rows[4] = customer_row(4, 身份证号="440305198001010011")
    rows[6] = customer_row(6, 出生日期="2026-02-30")
    job = run(dealer_a.manager, csv_bytes(rows), "bad.csv")

    page = web(dealer_a.manager).get(f"/customers/imports/{job.pk}/")

    assert page.status_code == 200
    body = page.content.decode()
    assert body.count('data-testid="import-error"') == 3
    assert 'data-testid="import-commit"' not in body


def test_duplicates_inside_a_file_are_errors_pointing_at_the_first_row(dealer_a, run):
    rows = [CUSTOMER_HEADERS, customer_row(1), customer_row(2), customer_row(1, 客户姓名="又一个")]
    job = run(dealer_a.manager, csv_bytes(rows), "dups.csv")
    assert job.status == ImportJob.Status.INVALID
    assert job.errors == [{"row": 4, "column": "客户编号", "message": job.errors[0]["message"]}]
    assert "2" in job.errors[0]["message"]


def test_required_columns_must_be_mapped(dealer_a, run):
    rows = [["客户编号", "手机号码"], ["C1", "13700000001"]]
    job = run(dealer_a.manager, csv_bytes(rows), "no-name.csv")
    assert job.status == ImportJob.Status.INVALID
    assert [e["row"] for e in job.errors] == [1] and job.errors[0]["column"] in ("Name", "名称", "姓名")


# --- formats and encodings ----------------------------------------------------------------------


def test_a_utf8_csv_with_a_bom_and_chinese_headers_imports(dealer_a, run, in_tenant):
    rows = [CUSTOMER_HEADERS, customer_row(1), customer_row(2, 性别="", 客户来源="")]
    job = run.all(dealer_a.manager, csv_bytes(rows), "dms.csv")

    assert job.status == ImportJob.Status.DONE
    assert job.result["created"] == 2 and job.result["updated"] == 0
    with in_tenant(dealer_a):
        first = Customer.objects.get(external_id="C00001")
        second = Customer.objects.get(external_id="C00002")
    assert first.name == "客户1" and first.mobile == "+8613700000001" and first.gender == "male"
    assert first.birthday == date(1985, 3, 7) and first.id_number == id_number(1) and first.source == "walk_in"
    assert second.gender == "" and second.source == Customer.Source.DMS
    assert first.owner_id is None and first.tenant_id == dealer_a.tenant.pk


def test_a_gb18030_csv_imports(dealer_a, run, in_tenant):
    rows = [CUSTOMER_HEADERS, customer_row(1, 详细地址="福田区深南大道𠀋号"), customer_row(2)]
    content = csv_bytes(rows, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")
    job = run.all(dealer_a.manager, content, "gbk导出.csv")
    assert job.status == ImportJob.Status.DONE and job.result["created"] == 2
    with in_tenant(dealer_a):
        assert Customer.objects.get(external_id="C00001").address == "福田区深南大道𠀋号"


def test_a_utf8_header_over_gbk_rows_is_refused_as_mixed_encodings_naming_the_lines(dealer_a, run, in_tenant):
    header = csv_bytes([CUSTOMER_HEADERS], encoding="utf-8")
    rows = csv_bytes([customer_row(n) for n in range(1, 9)], encoding="gbk")
    job = run(dealer_a.manager, header + rows, "mixed.csv")

    assert job.status == ImportJob.Status.INVALID
    assert len(job.errors) == 1, job.errors
    assert job.errors[0]["row"] == 2 and job.errors[0]["column"] == ""  # the file's error, not a mapping one
    message = job.errors[0]["message"]
    assert "GBK" in message and ("line 1;" in message or "行号：1；" in message)  # English or Chinese
    assert "line 2, 3, 4, 5, 6 and 3 more." in message or "行号：2, 3, 4, 5, 6（另有 3 行）。" in message
    with in_tenant(dealer_a):
        assert not Customer.objects.filter(external_id="C00001").exists()


def test_a_gbk_file_whose_short_lines_look_like_utf8_is_not_called_mixed(dealer_a, run):
    # "模" in GBK is C4 A3, a valid two-byte UTF-8 sequence ("ģ"): not a sign of UTF-8 text
    only_mo = customer_row(1, 客户姓名="模", 性别="", 省份="", 城市="", 详细地址="1", 客户来源="")
    rows = [CUSTOMER_HEADERS, only_mo, customer_row(2)]
    content = csv_bytes(rows, encoding="gbk")
    assert content.splitlines()[1].decode("utf-8") == ",".join(str(c) for c in only_mo).replace("模", "ģ")
    job = run.all(dealer_a.manager, content, "gbk.csv")
    assert job.status == ImportJob.Status.DONE and job.result["created"] == 2


def test_a_utf8_csv_without_bom_and_with_semicolons_imports(dealer_a, run):
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";").writerows([CUSTOMER_HEADERS, customer_row(1)])
    job = run.all(dealer_a.manager, buffer.getvalue().encode("utf-8"), "plain.csv")
    assert job.status == ImportJob.Status.DONE and job.result["created"] == 1


def test_an_xlsx_with_a_title_row_excel_dates_and_numbers_imports(dealer_a, run, in_tenant):
    rows = [
        ["客户信息导出 2026-01-31"],  # a title line above the header, as DMS exports have
        CUSTOMER_HEADERS,
        customer_row(1, 出生日期=datetime(1990, 12, 1), 手机号码=int(mobile(1))),
        customer_row(2, 出生日期=20000229.0, 性别="女士"),
    ]
    job = run.all(dealer_a.manager, xlsx_bytes(rows), "导出.xlsx")

    assert job.status == ImportJob.Status.DONE, job.result
    assert job.mapping["header_row"] == 2
    with in_tenant(dealer_a):
        first = Customer.objects.get(external_id="C00001")
        second = Customer.objects.get(external_id="C00002")
    assert first.birthday == date(1990, 12, 1) and first.mobile == "+8613700000001"
    assert second.birthday == date(2000, 2, 29) and second.gender == "female"


def test_xlsx_errors_use_the_spreadsheets_row_numbers(dealer_a, run):
    rows = [["导出"], [], CUSTOMER_HEADERS, customer_row(1), [], customer_row(2, 手机号码="12345")]
    job = run(dealer_a.manager, xlsx_bytes(rows), "gaps.xlsx")
    assert job.status == ImportJob.Status.INVALID
    assert [(e["row"], e["column"]) for e in job.errors] == [(6, "手机号码")]


def test_values_are_parsed_the_way_dms_exports_write_them():
    assert imports.parse_date("2026-01-31") == date(2026, 1, 31)
    assert imports.parse_date("2026/1/31") == date(2026, 1, 31)
    assert imports.parse_date("20260131") == date(2026, 1, 31)
    assert imports.parse_date("2026年1月31日") == date(2026, 1, 31)
    assert imports.parse_date("2026-01-31 00:00:00") == date(2026, 1, 31)
    assert imports.parse_date(46053) == date(2026, 1, 31)  # an Excel serial
    assert imports.parse_date("") is None
    assert imports.parse_amount("¥1,234.50") == Decimal("1234.50")
    assert imports.parse_amount("￥88元") == Decimal("88.00")
    assert imports.parse_amount(1234.5) == Decimal("1234.50")
    assert imports.parse_km("12,345 km") == 12345
    assert imports.parse_mobile('="138 1234 5678"') == "+8613812345678"
    for bad_date in ("31/01/2026", "2026-13-01", "soon"):
        with pytest.raises(imports.ValidationError):
            imports.parse_date(bad_date)
    for bad_amount in ("-5", "1.234", "abc"):
        with pytest.raises(imports.ValidationError):
            imports.parse_amount(bad_amount)


def test_headers_are_detected_in_chinese_and_english():
    headers = ["订单号", "客户ID", "车架号", "业务类型", "结算日期", "实收金额(元)", "状态", "进厂里程（km）"]
    assert imports.auto_mapping(kind="orders", headers=headers) == {
        "external_id": 0,
        "customer_external_id": 1,
        "vin": 2,
        "kind": 3,
        "ordered_on": 4,
        "amount": 5,
        "status": 6,
        "mileage_km": 7,
    }
    english = ["DMS id", "Name", "Mobile", "Gender", "Source"]
    assert imports.auto_mapping(kind="customers", headers=english) == {
        "external_id": 0,
        "name": 1,
        "mobile": 2,
        "gender": 3,
        "source": 4,
    }


# --- upserts: idempotent, updates what changed ------------------------------------------------------


def test_importing_the_same_file_again_reports_everything_unchanged_and_writes_nothing(dealer_a, run):
    content = csv_bytes([CUSTOMER_HEADERS] + [customer_row(n) for n in range(1, 6)])
    first = run.all(dealer_a.manager, content, "dms.csv")
    assert first.result["created"] == 5
    before = row_versions(dealer_a)

    again = run.all(dealer_a.manager, content, "dms.csv")

    assert again.status == ImportJob.Status.DONE
    assert (again.result["created"], again.result["updated"], again.result["unchanged"]) == (0, 0, 5)
    assert row_versions(dealer_a) == before


def test_a_changed_row_is_updated_and_a_blank_cell_keeps_the_stored_value(dealer_a, run, in_tenant):
    run.all(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS] + [customer_row(n) for n in range(1, 4)]), "v1.csv")
    changed = [CUSTOMER_HEADERS, customer_row(1), customer_row(2, 城市="广州市", 手机号码=""), customer_row(3)]

    job = run.all(dealer_a.manager, csv_bytes(changed), "v2.csv")

    assert (job.result["created"], job.result["updated"], job.result["unchanged"]) == (0, 1, 2)
    with in_tenant(dealer_a):
        customer = Customer.objects.get(external_id="C00002")
    assert customer.city == "广州市" and customer.mobile == "+8613700000002"


def test_customers_then_vehicles_then_orders_resolve_their_references(dealer_a, run, in_tenant):
    run.all(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1), customer_row(2)]), "c.csv")
    vehicles = [
        ["车架号", "客户编号", "品牌", "车系", "车牌号", "购车日期", "行驶里程"],
        [vin(1), "C00001", "上汽大众", "帕萨特", "粤b 12345", "2023-06-18", "31,200"],
        [vin(2), "C00002", "上汽大众", "途观L", "", "2024/1/5", ""],
    ]
    vehicle_job = run.all(dealer_a.manager, csv_bytes(vehicles), "v.csv", "vehicles")
    assert vehicle_job.result["created"] == 2 and vehicle_job.result["mileage_readings"] == 1
    orders = [
        ["工单号", "客户编号", "车架号", "工单类型", "结算日期", "结算金额", "状态", "里程"],
        ["RO-1", "C00001", vin(1), "保养", "2025-03-01", "¥1,280.00", "已结算", "20000"],
        ["RO-2", "C00001", vin(1), "维修", "2025-09-12", "3500", "冲销", "26000"],
        ["SO-9", "C00002", "", "整车销售", "20240105", "219,900", "", ""],
        ["RO-3", "C00002", vin(2), "首保", "2024-07-01", "0", "", "5000"],
    ]
    order_job = run.all(dealer_a.manager, csv_bytes(orders), "o.csv", "orders")

    assert order_job.status == ImportJob.Status.DONE, order_job.result
    assert order_job.result["created"] == 4 and order_job.result["mileage_readings"] == 3
    with in_tenant(dealer_a):
        first = Customer.objects.get(external_id="C00001")
        passat = Vehicle.objects.get(vin=vin(1))
        assert passat.customer_id == first.pk and passat.plate == "粤B·12345"
        assert passat.mileage_km == 31200  # the latest reading: the one the vehicle file gave today
        assert Vehicle.objects.get(vin=vin(2)).mileage_km == 5000  # from its order
        assert VehicleOwnership.objects.get(vehicle=passat, ended_on__isnull=True).started_on == date(2023, 6, 18)
        readings = list(MileageReading.objects.filter(vehicle=passat).order_by("read_on").values_list("km", "source"))
        assert readings == [(20000, "import"), (26000, "import"), (31200, "import")]
        ro1 = Order.objects.get(external_id="RO-1")
        assert ro1.amount == Decimal("1280.00") and ro1.kind == "maintenance" and ro1.vehicle_id == passat.pk
        assert Order.objects.get(external_id="SO-9").status == "completed"
        # the reversed order does not count as a visit
        assert first.last_visit_on == date(2025, 3, 1)
        assert Customer.objects.get(external_id="C00002").last_visit_on == date(2024, 7, 1)

    again = run.all(dealer_a.manager, csv_bytes(orders), "o.csv", "orders")
    assert (again.result["created"], again.result["updated"], again.result["unchanged"]) == (0, 0, 4)


def test_unknown_references_are_errors(dealer_a, run):
    vehicles = [["车架号", "客户编号", "品牌"], [vin(1), "NOPE", "大众"]]
    job = run(dealer_a.manager, csv_bytes(vehicles), "v.csv", "vehicles")
    assert [(e["row"], e["column"]) for e in job.errors] == [(2, "客户编号")]
    orders = [
        ["单号", "客户编号", "车架号", "类型", "日期", "金额"],
        ["X1", "EXT-DEALERA", vin(99), "保养", "2025-01-01", "1"],
    ]
    job = run(dealer_a.manager, csv_bytes(orders), "o.csv", "orders")
    assert [(e["row"], e["column"]) for e in job.errors] == [(2, "车架号")]


def test_a_vehicle_that_changes_hands_in_the_file_gets_a_new_ownership(dealer_a, run, in_tenant):
    run.all(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1), customer_row(2)]), "c.csv")
    header = ["车架号", "客户编号", "品牌"]
    run.all(dealer_a.manager, csv_bytes([header, [vin(1), "C00001", "大众"]]), "v1.csv", "vehicles")
    job = run.all(dealer_a.manager, csv_bytes([header, [vin(1), "C00002", "大众"]]), "v2.csv", "vehicles")
    assert job.result["updated"] == 1 and job.result["changed_hands"] == 1
    with in_tenant(dealer_a):
        vehicle = Vehicle.objects.get(vin=vin(1))
        owners = list(
            VehicleOwnership.objects.filter(vehicle=vehicle)
            .order_by("id")
            .values_list("customer__external_id", "ended_on")
        )
        assert vehicle.customer.external_id == "C00002"
    assert owners[0][0] == "C00001" and owners[0][1] is not None and owners[1] == ("C00002", None)


def test_a_merged_customers_dms_id_resolves_to_the_survivor(dealer_a, run, in_tenant):
    run.all(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1), customer_row(2)]), "c.csv")
    with in_tenant(dealer_a):
        survivor = Customer.objects.get(external_id="C00001")
        Customer.objects.filter(external_id="C00002").update(merged_into=survivor)
    vehicles = [["车架号", "客户编号", "品牌"], [vin(5), "C00002", "大众"]]
    run.all(dealer_a.manager, csv_bytes(vehicles), "v.csv", "vehicles")
    changed = run.all(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(2, 城市="珠海市")]), "c2.csv")
    with in_tenant(dealer_a):
        assert Vehicle.objects.get(vin=vin(5)).customer_id == survivor.pk
        survivor.refresh_from_db()
        assert survivor.city == "珠海市" and changed.result["updated"] == 1
        assert Customer.objects.get(external_id="C00002").city == "深圳市"  # the tombstone is left alone
    both = run(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1), customer_row(2)]), "both.csv")
    assert [(e["row"], e["column"]) for e in both.errors] == [(3, "客户编号")]


# --- all or nothing -------------------------------------------------------------------------------


def test_a_failure_in_the_middle_of_the_commit_writes_nothing_and_marks_the_job_failed(
    dealer_a, run, in_tenant, monkeypatch
):
    run.all(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1)]), "c.csv")
    orders = [["单号", "客户编号", "类型", "日期", "金额", "里程"], ["A1", "C00001", "保养", "2025-01-01", "100", ""]]
    orders += [[f"B{n}", "C00001", "维修", "2025-02-01", "200", ""] for n in range(50)]
    job = run(dealer_a.manager, csv_bytes(orders), "o.csv", "orders")
    assert job.status == ImportJob.Status.READY
    before, versions = counts(dealer_a), row_versions(dealer_a)

    def explode(**kwargs: Any) -> int:  # after the orders were inserted
        raise RuntimeError("disk full")

    monkeypatch.setattr(imports.commit, "customers_refresh_last_visit_from", explode)
    job = run.commit(dealer_a.manager, job)

    assert job.status == ImportJob.Status.FAILED
    assert "RuntimeError" in job.result["error"]
    assert counts(dealer_a) == before and row_versions(dealer_a) == versions
    with in_tenant(dealer_a):
        assert not AuditEvent.objects.filter(action=AuditAction.CUSTOMERS_IMPORTED, target_id=str(job.pk)).exists()


def test_a_file_that_no_longer_passes_when_committed_is_refused_whole(dealer_a, run, in_tenant):
    run.all(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1), customer_row(2)]), "c.csv")
    vehicles = [["车架号", "客户编号", "品牌"], [vin(1), "C00001", "大众"], [vin(2), "C00002", "大众"]]
    job = run(dealer_a.manager, csv_bytes(vehicles), "v.csv", "vehicles")
    assert job.status == ImportJob.Status.READY
    with in_tenant(dealer_a):
        Customer.objects.filter(external_id="C00002").update(external_id="C-RENUMBERED")

    job = run.commit(dealer_a.manager, job)

    assert job.status == ImportJob.Status.INVALID
    assert [(e["row"], e["column"]) for e in job.errors] == [(3, "客户编号")]
    with in_tenant(dealer_a):
        assert not Vehicle.objects.filter(vin__in=[vin(1), vin(2)]).exists()


def test_an_unexpected_error_while_checking_is_reported_on_the_job(dealer_a, run, monkeypatch):
    def explode(self: Any, rows: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(imports._Scanner, "resolve", explode)
    job = run(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1)]), "c.csv")
    assert job.status == ImportJob.Status.INVALID
    assert job.errors[0]["row"] is None and "RuntimeError" in job.errors[0]["message"]


def test_a_commit_task_for_a_job_that_is_done_does_nothing(dealer_a, run):
    job = run.all(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1)]), "c.csv")
    versions = row_versions(dealer_a)
    assert import_commit_task.delay(tenant_id=dealer_a.tenant.pk, job_id=job.pk).get() == "done"
    assert row_versions(dealer_a) == versions
    with tenant_context(dealer_a.tenant.pk):
        assert AuditEvent.objects.filter(action=AuditAction.CUSTOMERS_IMPORTED).count() == 1


def test_a_successful_import_is_audited_with_its_counts_and_who_started_it(dealer_a, run, in_tenant):
    job = run(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1), customer_row(2)]), "c.csv")
    job = run.commit(dealer_a.agent, job)  # a colleague presses Import
    with in_tenant(dealer_a):
        event = AuditEvent.objects.get(action=AuditAction.CUSTOMERS_IMPORTED)
    assert event.actor_id == dealer_a.agent.user_id and event.target_id == str(job.pk)
    assert event.data["created"] == 2 and event.data["kind"] == "customers" and event.data["file"] == "c.csv"


# --- who may import, and tenancy ------------------------------------------------------------------


def test_a_consultant_cannot_import(dealer_a, web, in_tenant):
    client = web(dealer_a.consultant)
    assert client.get("/customers/imports/").status_code == 403
    upload = SimpleUploadedFile("c.csv", csv_bytes([CUSTOMER_HEADERS, customer_row(1)]))
    assert client.post("/customers/imports/new/", {"kind": "customers", "file": upload}).status_code == 403
    with in_tenant(dealer_a):
        assert not ImportJob.objects.exclude(original_name__startswith="机密导入").exists()  # persona job aside
        with pytest.raises(NotAllowed):
            imports.import_job_create(
                actor=dealer_a.consultant, kind="customers", upload=SimpleUploadedFile("c.csv", b"a,b\n1,2\n")
            )


def test_an_import_in_another_dealership_cannot_touch_or_reference_ours(dealer_a, dealer_b, run, in_tenant, web):
    a_customer = dealer_a.objects["customer"]
    a_vehicle = dealer_a.objects["vehicle"]
    before = row_versions(dealer_a)
    vehicles = [["车架号", "客户编号", "品牌"], [vin(7), "EXT-DEALERA", "大众"]]
    refused = run(dealer_b.manager, csv_bytes(vehicles), "v.csv", "vehicles")
    assert [(e["row"], e["column"]) for e in refused.errors] == [(2, "客户编号")]
    orders = [
        ["单号", "客户编号", "车架号", "类型", "日期", "金额"],
        ["X", a_customer.external_id, a_vehicle.vin, "保养", "2025-01-01", "1"],
    ]
    refused = run(dealer_b.manager, csv_bytes(orders), "o.csv", "orders")
    assert [(e["row"], e["column"]) for e in refused.errors] == [(2, "客户编号"), (2, "车架号")]
    same_id = customer_row(1, 客户编号=a_customer.external_id, 客户姓名="乙店的客户")
    job = run.all(dealer_b.manager, csv_bytes([CUSTOMER_HEADERS, same_id]), "b.csv")
    assert job.result["created"] == 1  # B gets a customer of its own with that DMS id

    assert row_versions(dealer_a) == before
    with in_tenant(dealer_a):
        assert Customer.objects.get(pk=a_customer.pk).name == a_customer.name
    assert web(dealer_a.manager).get(f"/customers/imports/{job.pk}/").status_code == 404


def test_a_consultant_style_viewer_sees_only_their_own_imports(dealer_a, run, in_tenant):
    job = run(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1)]), "c.csv")
    with in_tenant(dealer_a):
        persona_job = dealer_a.objects["import_job"]
        assert list(imports.import_jobs_visible_to(viewer=dealer_a.agent).exclude(pk=persona_job.pk)) == [job]
        assert list(imports.import_jobs_visible_to(viewer=dealer_a.admin)) == []  # admin: own imports only
        assert list(imports.import_jobs_visible_to(viewer=dealer_a.consultant)) == []


# --- the sample files in tests/fixtures/imports (also handy for trying the pages by hand) --------------

FIXTURES = Path(__file__).parent / "fixtures" / "imports"


def test_the_sample_files_import_in_order_and_the_bad_one_shows_its_three_rows(dealer_a, run, in_tenant):
    bad = run(dealer_a.manager, (FIXTURES / "customers-three-bad-rows.csv").read_bytes(), "bad.csv")
    assert [(e["row"], e["column"]) for e in bad.errors] == [(2, "手机号码"), (3, "身份证号"), (5, "出生日期")]
    for name, kind, created in (
        ("customers-gb18030.csv", "customers", 4),
        ("vehicles.csv", "vehicles", 3),
        ("orders.csv", "orders", 5),
    ):
        job = run.all(dealer_a.manager, (FIXTURES / name).read_bytes(), name, kind)
        assert job.status == ImportJob.Status.DONE and job.result["created"] == created, (name, job.result)
    again = run.all(dealer_a.manager, (FIXTURES / "customers.csv").read_bytes(), "customers.csv")
    assert again.result["unchanged"] == 4
    with in_tenant(dealer_a):
        company = Customer.objects.get(external_id="KH2026004")
        assert company.last_visit_on == date(2025, 11, 5) and company.source == "phone"
        assert Vehicle.objects.get(plate="粤A·6K789").customer.name == "李晓燕"


# --- uploads --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("customers.txt", b"a,b\n", ".csv"),
        ("customers.xlsx", "客户编号,姓名\n".encode(), "Excel"),
        ("customers.csv", b"PK\x03\x04rest-of-a-zip", ".xlsx"),
        ("customers.csv", b"", "empty"),
        ("customers.xls", b"\xd0\xcf\x11\xe0", ".csv"),
    ],
)
def test_files_that_are_not_csv_or_xlsx_get_a_field_error_not_a_500(dealer_a, web, in_tenant, name, content, expected):
    response = web(dealer_a.manager).post(
        "/customers/imports/new/",
        {"kind": "customers", "file": SimpleUploadedFile(name, content)},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="error"' in body
    with in_tenant(dealer_a):
        assert not ImportJob.objects.exclude(original_name__startswith="机密导入").exists()  # persona job aside


def test_a_file_over_the_size_limit_is_refused(dealer_a, web, in_tenant, monkeypatch):
    monkeypatch.setattr(imports.files, "MAX_UPLOAD_BYTES", 100)
    content = csv_bytes([CUSTOMER_HEADERS] + [customer_row(n) for n in range(1, 5)])
    response = web(dealer_a.manager).post(
        "/customers/imports/new/", {"kind": "customers", "file": SimpleUploadedFile("big.csv", content)}
    )
    assert response.status_code == 200 and 'class="error"' in response.content.decode()
    with in_tenant(dealer_a):
        assert not ImportJob.objects.exclude(original_name__startswith="机密导入").exists()  # persona job aside


def test_an_oversized_upload_is_stopped_while_it_arrives(dealer_a, web, in_tenant, monkeypatch):
    from django.test import Client

    monkeypatch.setattr(imports.files, "MAX_UPLOAD_BYTES", 64 * 1024)
    client = web(dealer_a.manager)
    token_client = Client(enforce_csrf_checks=True)
    token_client.cookies = client.cookies
    page = token_client.get("/customers/imports/new/")
    token = page.context["csrf_token"]
    content = csv_bytes([CUSTOMER_HEADERS] + [customer_row(n) for n in range(1, 2000)])
    assert len(content) > 64 * 1024
    response = token_client.post(
        "/customers/imports/new/",
        {"kind": "customers", "file": SimpleUploadedFile("big.csv", content), "csrfmiddlewaretoken": str(token)},
    )
    assert response.status_code == 200 and response.content.decode().count('class="error"') == 1
    refused = token_client.post("/customers/imports/new/", {"kind": "customers"})
    assert refused.status_code == 403  # CSRF is still checked
    with in_tenant(dealer_a):
        assert not ImportJob.objects.exclude(original_name__startswith="机密导入").exists()  # persona job aside


def test_a_post_without_a_file_shows_the_form_again(dealer_a, web):
    response = web(dealer_a.manager).post("/customers/imports/new/", {"kind": "nonsense"})
    assert response.status_code == 200 and response.content.decode().count('class="error"') == 2
    response = web(dealer_a.manager).post("/customers/imports/new/", {})
    assert response.status_code == 200 and response.content.decode().count('class="error"') == 2


# --- pages: upload → preview → commit ------------------------------------------------------------


def test_upload_preview_and_commit_through_the_pages(dealer_a, web, in_tenant, django_capture_on_commit_callbacks):
    client = web(dealer_a.manager)
    rows = [["编号", "客户姓名", "联系方式"], ["C1", "王先生", "13700000001"], ["C2", "李女士", "13700000002"]]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/customers/imports/new/", {"kind": "customers", "file": SimpleUploadedFile("客户.csv", csv_bytes(rows))}
        )
    assert response.status_code == 302
    job_url = response["Location"]
    page = client.get(job_url).content.decode()
    # "编号" is not a known header: the DMS id is not mapped, so the file cannot be imported yet
    assert 'data-status="invalid"' in page and 'data-testid="import-commit"' not in page
    assert "王先生" in page  # the preview of the first rows

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(job_url, {"external_id": "0", "name": "1", "mobile": "2"})
    assert response.status_code == 302
    page = client.get(job_url).content.decode()
    assert 'data-status="ready"' in page and 'data-testid="import-commit"' in page
    progress = client.get(job_url + "progress/", HTTP_HX_REQUEST="true")
    assert progress.status_code == 200 and progress["HX-Refresh"] == "true"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(job_url + "commit/")
    assert response.status_code == 302
    page = client.get(job_url).content.decode()
    assert 'data-status="done"' in page and 'data-testid="import-result"' in page
    with in_tenant(dealer_a):
        assert Customer.objects.get(external_id="C2").mobile == "+8613700000002"
    assert "客户.csv" in client.get("/customers/imports/").content.decode()
    # committing twice is refused politely
    assert client.post(job_url + "commit/").status_code == 302


def test_a_mapping_that_uses_one_column_twice_is_refused_on_the_form(dealer_a, run, web):
    job = run(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1)]), "c.csv")
    response = web(dealer_a.manager).post(f"/customers/imports/{job.pk}/", {"external_id": "0", "name": "0"})
    assert response.status_code == 400 and 'class="error"' in response.content.decode()


def test_the_progress_bar_polls_while_a_job_runs(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        job = ImportJob.objects.create(
            kind="customers",
            status=ImportJob.Status.IMPORTING,
            file="imports/x.csv",
            original_name="x.csv",
            created_by=dealer_a.manager.user,
            total_rows=1000,
            processed_rows=250,
        )
    response = web(dealer_a.manager).get(f"/customers/imports/{job.pk}/progress/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert 'hx-trigger="every 2s"' in body and 'value="250"' in body and "HX-Refresh" not in response


# --- big files: streamed, chunked, progress visible -------------------------------------------------


def big_customer_file(n: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CUSTOMER_HEADERS)
    for i in range(1, n + 1):
        writer.writerow(customer_row(i))
    return buffer.getvalue().encode("utf-8-sig")


def test_the_reader_yields_rows_lazily():
    content = big_customer_file(5000)
    stream = io.BytesIO(content)
    with imports.SheetReader(stream, filename="big.csv") as reader:
        rows = reader.rows()
        first = [next(rows) for _ in range(3)]
        assert stream.tell() < len(content) // 10  # read only a little of the file so far
    assert first[0][0] == 1 and first[0][1][0] == "客户编号" and first[2][1][0] == "C00002"
    assert reader.estimated_rows == 5001


def test_a_5000_row_file_validates_and_commits(dealer_a, run, in_tenant):
    job = run.all(dealer_a.manager, big_customer_file(5000), "big.csv")
    assert job.status == ImportJob.Status.DONE
    assert job.total_rows == job.processed_rows == 5000 and job.result["created"] == 5000
    with in_tenant(dealer_a):
        assert Customer.objects.filter(external_id__startswith="C").count() == 5000


@pytest.mark.django_db(transaction=True)
def test_progress_is_visible_to_others_while_the_check_runs(
    dealer_a, in_tenant, monkeypatch, owner_cursor, settings, tmp_path
):
    """With real commits: another connection sees processed_rows grow while the scan's transaction is open."""
    monkeypatch.setattr(imports.progress, "PROGRESS_EVERY_ROWS", 1000)
    monkeypatch.setattr(imports.progress, "PROGRESS_MIN_SECONDS", 0)
    monkeypatch.setattr(imports.validation, "CHUNK_ROWS", 1000)
    seen: list[tuple[int, int]] = []
    original = imports._Progress.write

    def write_and_look(self: Any) -> None:
        original(self)
        owner_cursor.execute("SELECT processed_rows, total_rows FROM customers_importjob WHERE id = %s", [self.job_id])
        seen.append(owner_cursor.fetchone())

    monkeypatch.setattr(imports._Progress, "write", write_and_look)
    with in_tenant(dealer_a):
        job = imports.import_job_create(
            actor=dealer_a.manager, kind="customers", upload=SimpleUploadedFile("big.csv", big_customer_file(4000))
        )
    # the transaction above committed; on_commit queued the (eager) check, which ran right away
    with in_tenant(dealer_a):
        job.refresh_from_db()
    assert job.status == ImportJob.Status.READY and job.total_rows == 4000
    assert seen[:3] == [(1000, 4001), (2000, 4001), (3000, 4001)]


# --- consent ------------------------------------------------------------------------------------


def test_imported_customers_without_a_consent_column_have_not_consented(dealer_a, run, in_tenant):
    job = run.all(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1)]), "no-consent.csv")
    assert job.status == ImportJob.Status.DONE
    with in_tenant(dealer_a):
        customer = Customer.objects.get(external_id="C00001")
        assert not (customer.consent_call or customer.consent_sms or customer.consent_wechat or customer.consent_email)
        assert not ConsentChange.objects.filter(customer=customer).exists()


def test_consent_columns_are_imported_and_each_change_is_recorded_once(dealer_a, run, in_tenant):
    headers = [*CUSTOMER_HEADERS, "同意电话回访", "同意短信", "同意微信"]
    rows = [
        headers,
        [*customer_row(1), "是", "否", ""],
        [*customer_row(2), "", "", ""],
        [*customer_row(3), "Y", "√", "1"],
    ]
    job = run.all(dealer_a.manager, csv_bytes(rows), "consent.csv")
    assert job.status == ImportJob.Status.DONE, job.errors
    assert job.result["consent_changes"] == 2
    with in_tenant(dealer_a):
        one, two, three = (Customer.objects.get(external_id=f"C0000{n}") for n in (1, 2, 3))
        assert (one.consent_call, one.consent_sms, one.consent_wechat) == (True, False, False)
        assert (two.consent_call, two.consent_sms, two.consent_wechat) == (False, False, False)
        assert (three.consent_call, three.consent_sms, three.consent_wechat) == (True, True, True)
        changes = {c.customer_id: c for c in ConsentChange.objects.filter(import_job=job)}
    assert set(changes) == {one.pk, three.pk}
    assert changes[one.pk].changed == ["call"] and changes[three.pk].changed == ["call", "sms", "wechat"]
    assert changes[one.pk].via == "import" and changes[one.pk].set_by_id == dealer_a.manager.user_id

    # the same file again changes nothing; a withdrawal (否) is one change, a blank keeps the consent
    again = run.all(dealer_a.manager, csv_bytes(rows), "consent.csv")
    assert again.result["consent_changes"] == 0 and again.result["unchanged"] == 3
    withdrawn = [headers, [*customer_row(3), "", "否", ""]]
    third = run.all(dealer_a.manager, csv_bytes(withdrawn), "withdrawn.csv")
    assert third.result["consent_changes"] == 1
    with in_tenant(dealer_a):
        three.refresh_from_db()
        assert (three.consent_call, three.consent_sms, three.consent_wechat) == (True, False, True)
        assert ConsentChange.objects.get(import_job=third).changed == ["sms"]


def test_an_unknown_consent_value_is_a_row_error(dealer_a, run):
    rows = [[*CUSTOMER_HEADERS, "同意短信"], [*customer_row(1), "也许"]]
    job = run(dealer_a.manager, csv_bytes(rows), "maybe.csv")
    assert job.status == ImportJob.Status.INVALID
    assert [(e["row"], e["column"]) for e in job.errors] == [(2, "同意短信")]


def test_imported_customers_are_found_by_name_part_and_pinyin_initials(dealer_a, run, in_tenant):
    from customers import selectors

    rows = [CUSTOMER_HEADERS, customer_row(1, 客户姓名="曾小贤"), customer_row(2, 客户姓名="胡一菲")]
    job = run.all(dealer_a.manager, csv_bytes(rows), "names.csv")
    assert job.status == ImportJob.Status.DONE
    with in_tenant(dealer_a):
        zeng = Customer.objects.get(external_id="C00001")
        assert "zxx" in zeng.name_initials.split()
        for query in ("zxx", "小贤", "hyf"):
            found = set(
                selectors.customer_search(Customer.objects.all(), query=query).values_list("external_id", flat=True)
            )
            assert found == {"C00001" if query != "hyf" else "C00002"}, query
    # a changed name in a second file moves the search terms with it
    run.all(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1, 客户姓名="陈美嘉")]), "renamed.csv")
    with in_tenant(dealer_a):
        assert not selectors.customer_search(Customer.objects.all(), query="zxx").exists()
        assert selectors.customer_search(Customer.objects.all(), query="cmj").get().external_id == "C00001"


# --- templates, error reports, importing the valid rows only -------------------------------------


@pytest.mark.parametrize("kind", ["customers", "vehicles", "orders"])
def test_the_template_of_each_kind_has_a_column_the_import_maps_to_every_field(dealer_a, web, kind):
    from openpyxl import load_workbook

    response = web(dealer_a.manager).get(f"/customers/imports/template/{kind}.xlsx")
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    headers = [cell.value for cell in next(workbook.worksheets[0].iter_rows(max_row=1))]
    assert imports.auto_mapping(kind=kind, headers=headers) == {
        f.name: i for i, f in enumerate(imports.import_kind(kind).fields)
    }
    assert len(workbook.worksheets) == 2  # the second sheet explains the columns


def test_a_filled_in_template_imports_and_templates_need_the_import_capability(dealer_a, web, run, in_tenant):
    response = web(dealer_a.manager).get("/customers/imports/template/customers.xlsx")
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    workbook.worksheets[0].append(["T-1", "模板客户", "13700009999"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    job = run.all(dealer_a.manager, buffer.getvalue(), "template.xlsx")
    assert job.status == ImportJob.Status.DONE and job.result["created"] == 1
    assert web(dealer_a.consultant).get("/customers/imports/template/customers.xlsx").status_code == 403
    assert web(dealer_a.manager).get("/customers/imports/template/nonsense.xlsx").status_code == 404


def _file_with_two_bad_rows() -> bytes:
    return csv_bytes(
        [
            CUSTOMER_HEADERS,
            customer_row(1),
            customer_row(2, 手机号码="12345"),
            customer_row(3),
            customer_row(4, 出生日期="not a date", 性别="?"),
        ]
    )


def test_the_error_report_lists_every_bad_row_as_the_file_has_it_with_what_is_wrong(dealer_a, web, run):
    job = run(dealer_a.manager, _file_with_two_bad_rows(), "bad.csv")
    assert job.status == ImportJob.Status.INVALID and job.error_count == 3
    response = web(dealer_a.manager).get(f"/customers/imports/{job.pk}/errors.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][2:] == CUSTOMER_HEADERS and len(rows) == 3
    assert rows[1][0] == "3" and rows[1][2:] == customer_row(2, 手机号码="12345") and "手机号码" in rows[1][1]
    assert rows[2][0] == "5" and "出生日期" in rows[2][1] and "性别" in rows[2][1]
    assert web(dealer_a.consultant).get(f"/customers/imports/{job.pk}/errors.csv").status_code == 403


def test_the_valid_rows_can_be_imported_on_explicit_choice_and_the_skipped_ones_stay_listed(
    dealer_a, web, run, in_tenant, django_capture_on_commit_callbacks
):
    job = run(dealer_a.manager, _file_with_two_bad_rows(), "bad.csv")
    client = web(dealer_a.manager)
    page = client.get(f"/customers/imports/{job.pk}/").content.decode()
    assert 'data-testid="import-skip-invalid"' in page and 'data-testid="import-error-report"' in page
    # without the confirmation nothing happens
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/customers/imports/{job.pk}/commit/", {"skip_invalid": "1"})
    with in_tenant(dealer_a):
        job.refresh_from_db()
        assert job.status == ImportJob.Status.INVALID and not Customer.objects.filter(external_id="C00001").exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/customers/imports/{job.pk}/commit/", {"skip_invalid": "1", "confirm_skip": "1"})
    assert response.status_code == 302
    with in_tenant(dealer_a):
        job.refresh_from_db()
        imported = set(Customer.objects.filter(external_id__startswith="C0000").values_list("external_id", flat=True))
    assert job.status == ImportJob.Status.DONE
    assert job.result["created"] == 2 and job.result["skipped_rows"] == 2 and imported == {"C00001", "C00003"}
    assert [e["row"] for e in job.errors] == [3, 5, 5] and job.error_count == 3
    page = client.get(f"/customers/imports/{job.pk}/").content.decode()
    assert 'data-testid="import-skipped"' in page and 'data-testid="import-error"' in page
    with in_tenant(dealer_a):
        audit = AuditEvent.objects.get(action=AuditAction.CUSTOMERS_IMPORTED, target_id=str(job.pk))
        assert audit.data["skipped_rows"] == 2


def test_skipping_is_refused_when_the_file_itself_has_a_problem(dealer_a, run, in_tenant):
    rows = [["编号", "客户姓名"], ["C1", "王先生"]]  # no DMS id column: a mapping problem
    job = run(dealer_a.manager, csv_bytes(rows), "unmapped.csv")
    assert job.status == ImportJob.Status.INVALID
    with in_tenant(dealer_a), pytest.raises(ApplicationError):
        imports.import_job_request_commit(actor=dealer_a.manager, job=job, skip_invalid=True)
    clean = run(dealer_a.manager, csv_bytes([CUSTOMER_HEADERS, customer_row(1)]), "clean.csv")
    with in_tenant(dealer_a), pytest.raises(NotAllowed):
        imports.import_job_request_commit(actor=dealer_a.consultant, job=clean, skip_invalid=True)


def test_skipping_is_refused_when_part_of_the_file_cannot_be_read(dealer_a, run, in_tenant):
    readable = csv_bytes([CUSTOMER_HEADERS, customer_row(1, 手机号码="12345"), customer_row(2)], encoding="utf-8")
    job = run(dealer_a.manager, readable + b"C00003,\xff\xfe\n", "torn.csv")
    assert job.status == ImportJob.Status.INVALID and any(not e["column"] for e in job.errors)
    with in_tenant(dealer_a), pytest.raises(ApplicationError):
        imports.import_job_request_commit(actor=dealer_a.manager, job=job, skip_invalid=True)
