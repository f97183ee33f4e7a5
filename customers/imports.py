"""Import of customers, vehicles and orders from DMS files (CSV or XLSX).

The life of an `ImportJob`:

1. **Upload** (`import_job_create`): the file is checked (size, extension, content) and stored;
   validation is queued.
2. **Validate** (`import_validate`, a task): the file is streamed row by row. The header row is
   found and mapped to fields by known Chinese and English aliases (the user can change the
   mapping afterwards, `import_job_set_mapping`). Every row is normalised and validated with the
   project's validators; duplicates inside the file and references (customer DMS ids, VINs) are
   checked set-based, one chunk of rows at a time. Errors are kept as `{row, column, message}`
   with `row` the line number the user sees in Excel (header = 1). Nothing but the job is written.
3. **Commit** (`import_commit`, a task, after `import_job_request_commit`): the same scan runs
   again inside ONE transaction; valid rows are COPYed into a TEMP staging table and written with
   set-based SQL (update what differs, insert what is new). If the file no longer validates, or
   anything fails, the transaction is rolled back and nothing is written.

Upserts are keyed by DMS id (customers, orders) or VIN (vehicles), so importing the same file twice
changes nothing the second time. A blank cell never erases a stored value: only non-blank cells
are written. The scans never hold the whole file in memory; progress (`processed_rows`) is written
on a separate database connection so the progress bar moves while the long transaction is open.

Both tenancy locks hold for everything here: reads go through the tenant-scoped managers, and the
raw SQL runs under row-level security with an explicit `tenant_id` filter in every statement. Ids
written into foreign keys all come from those tenant-scoped reads, never from the file.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import logging
import re
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import PurePath
from typing import IO, Any, TypedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, models, transaction
from django.db.models import QuerySet, TextChoices
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import from_excel

from crm.core.errors import ApplicationError, NotAllowed
from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import AuditAction, Membership, Tenant
from customers.models import Customer, ImportJob, MileageReading, Order, Vehicle, VehicleOwnership
from customers.records import IN_PERSON
from customers.validators import normalize_cn_mobile, normalize_plate, validate_id_number, validate_vin

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# An XLSX is a zip: refuse archives that would inflate beyond this (zip bombs).
MAX_XLSX_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024
ALLOWED_EXTENSIONS = (".csv", ".xlsx")
MAX_STORED_ERRORS = 1000
CHUNK_ROWS = 2000  # rows per set-based reference check and per COPY
HEADER_SEARCH_ROWS = 10  # a title line or two above the header row is common in DMS exports
SAMPLE_ROWS = 5  # first data rows kept on the job to help the user check the mapping
PROGRESS_EVERY_ROWS = 2000
PROGRESS_MIN_SECONDS = 0.5
_SNIFF_BYTES = 64 * 1024


# ---------------------------------------------------------------------------------------------
# Cell values: what a DMS export puts in a cell, turned into the stored form
# ---------------------------------------------------------------------------------------------

_BLANKS = frozenset({"", "-", "--", "—", "/", "null", "none", "n/a", "无", "未知", "不详"})
_EXCEL_TEXT_TRICK = re.compile(r'^="(.*)"$')  # ="13812345678": Excel's way to keep digits as text
_INVISIBLE = str.maketrans({"\ufeff": None, "\u200b": None, "\u3000": " ", "\xa0": " "})


def cell_text(raw: Any) -> str:
    """The cell as trimmed text: numbers without a spurious '.0', dates as ISO dates."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "1" if raw else "0"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        return str(int(raw)) if raw.is_integer() and abs(raw) < 1e15 else repr(raw)
    if isinstance(raw, datetime):
        return raw.date().isoformat() if raw.time() == datetime.min.time() else raw.isoformat(" ")
    if isinstance(raw, date):
        return raw.isoformat()
    text = str(raw).translate(_INVISIBLE).strip()
    match = _EXCEL_TEXT_TRICK.match(text)
    return match.group(1).strip() if match else text


def _is_blank(text: str) -> bool:
    return text.lower() in _BLANKS


def _cell_or_none(raw: Any) -> str | None:
    text = cell_text(raw)
    return None if _is_blank(text) else text


def _text_parser(max_length: int) -> Callable[[Any], str | None]:
    def parse(raw: Any) -> str | None:
        text = _cell_or_none(raw)
        if text is not None and len(text) > max_length:
            raise ValidationError(_("At most %(n)d characters.") % {"n": max_length})
        return text

    return parse


def _field_max_length(model: type[models.Model], name: str) -> int:
    max_length = model._meta.get_field(name).max_length  # type: ignore[union-attr]
    assert max_length is not None
    return int(max_length)


def parse_mobile(raw: Any) -> str | None:
    text = _cell_or_none(raw)
    return None if text is None else normalize_cn_mobile(text)


def parse_id_number(raw: Any) -> str | None:
    text = _cell_or_none(raw)
    if text is None:
        return None
    text = text.replace(" ", "").upper()
    validate_id_number(text)
    return text


def parse_vin(raw: Any) -> str | None:
    text = _cell_or_none(raw)
    if text is None:
        return None
    text = re.sub(r"[\s\-]", "", text).upper()
    validate_vin(text)
    return text


def parse_plate(raw: Any) -> str | None:
    text = _cell_or_none(raw)
    return None if text is None else normalize_plate(text)


_DATE_SEPARATED = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def _date_or_error(year: int, month: int, day: int, shown: str) -> date:
    try:
        value = date(year, month, day)
    except ValueError:
        raise ValidationError(_("%(value)s is not a date that exists.") % {"value": shown}) from None
    if not 1900 <= value.year <= 2100:
        raise ValidationError(_("%(value)s is not a plausible date.") % {"value": shown})
    return value


def parse_date(raw: Any) -> date | None:
    """2026-01-31, 2026/1/31, 2026.1.31, 2026年1月31日, 20260131, or an Excel date (cell or serial)."""
    if isinstance(raw, datetime):
        return _date_or_error(raw.year, raw.month, raw.day, cell_text(raw))
    if isinstance(raw, date):
        return _date_or_error(raw.year, raw.month, raw.day, cell_text(raw))
    text = _cell_or_none(raw)
    if text is None:
        return None
    if match := _DATE_SEPARATED.match(text) or _DATE_COMPACT.match(text):
        return _date_or_error(int(match.group(1)), int(match.group(2)), int(match.group(3)), text)
    # An Excel serial (days since 1899-12-30) that lost its date format on the way.
    if re.fullmatch(r"\d{5}(\.\d+)?", text):
        serial = float(text)
        if 2 <= serial < 73051:  # 1900-01-01 … 2099-12-31
            value = from_excel(serial)
            return value.date() if isinstance(value, datetime) else None
    raise ValidationError(_("%(value)s is not a date; write it as 2026-01-31.") % {"value": text})


_AMOUNT_NOISE = re.compile(r"[¥￥,，\s]|元|rmb|cny", re.IGNORECASE)
_CENT = Decimal("0.01")
_AMOUNT_LIMIT = Decimal("10000000000")  # max_digits=12, decimal_places=2


def parse_amount(raw: Any) -> Decimal | None:
    """¥1,234.50 / 1234.5 / 1234元 → Decimal('1234.50'); never negative, at most two decimals."""
    if isinstance(raw, bool):
        raw = cell_text(raw)
    if isinstance(raw, int | float):
        value = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
        shown = cell_text(raw)
    else:
        text = _cell_or_none(raw)
        if text is None:
            return None
        shown = text
        try:
            value = Decimal(_AMOUNT_NOISE.sub("", text))
        except InvalidOperation:
            raise ValidationError(_("%(value)s is not an amount.") % {"value": shown}) from None
    if not value.is_finite():
        raise ValidationError(_("%(value)s is not an amount.") % {"value": shown})
    if value < 0:
        raise ValidationError(_("An amount cannot be negative."))
    if value.quantize(_CENT) != value:
        raise ValidationError(_("%(value)s has more than two decimal places.") % {"value": shown})
    if value >= _AMOUNT_LIMIT:
        raise ValidationError(_("%(value)s is too large.") % {"value": shown})
    return value.quantize(_CENT)


_KM_NOISE = re.compile(r"[,，\s]|km|公里|千米", re.IGNORECASE)
MAX_KM = 2_000_000


def parse_km(raw: Any) -> int | None:
    text = _cell_or_none(raw)
    if text is None:
        return None
    cleaned = _KM_NOISE.sub("", text)
    if not re.fullmatch(r"\d+(\.0+)?", cleaned):
        raise ValidationError(_("%(value)s is not a mileage in km.") % {"value": text})
    km = int(Decimal(cleaned))
    if km > MAX_KM:
        raise ValidationError(_("%(value)s km is not plausible.") % {"value": text})
    return km


def parse_model_year(raw: Any) -> int | None:
    text = _cell_or_none(raw)
    if text is None:
        return None
    match = re.fullmatch(r"(\d{4})\s*(款|年款|年)?", text)
    if not match or not 1950 <= int(match.group(1)) <= 2100:
        raise ValidationError(_("%(value)s is not a model year such as 2024.") % {"value": text})
    return int(match.group(1))


def _alias_key(text: str) -> str:
    return re.sub(r"[\s_\-]", "", text).lower()


@cache
def _choice_labels(choices: type[TextChoices]) -> dict[str, str]:
    """Each choice under its value and its label in every language we ship."""
    labels: dict[str, str] = {}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            for value, label in choices.choices:
                if value:
                    labels[_alias_key(str(label))] = value
    for value in choices.values:
        if value:
            labels[_alias_key(value)] = value
    return labels


def _choice_parser(
    choices: type[TextChoices], aliases: Mapping[str, str], accepted: Promise
) -> Callable[[Any], str | None]:
    known = {_alias_key(k): v for k, v in aliases.items()}

    def parse(raw: Any) -> str | None:
        text = _cell_or_none(raw)
        if text is None:
            return None
        key = _alias_key(text)
        value = known.get(key) or _choice_labels(choices).get(key)
        if value is None:
            raise ValidationError(
                _("Unknown value %(value)s; use one of: %(accepted)s.") % {"value": text, "accepted": accepted}
            )
        return value

    return parse


G, S, K, ST = Customer.Gender, Customer.Source, Order.Kind, Order.Status
GENDER_ALIASES = {
    **dict.fromkeys(("男", "男性", "先生", "m", "male"), G.MALE),
    **dict.fromkeys(("女", "女性", "女士", "f", "female"), G.FEMALE),
}
CUSTOMER_KIND_ALIASES = {
    **dict.fromkeys(("个人", "个人客户", "私人", "individual", "person"), Customer.Kind.INDIVIDUAL),
    **dict.fromkeys(
        ("公司", "企业", "单位", "集团", "公司客户", "企业客户", "company", "fleet"), Customer.Kind.COMPANY
    ),
}
SOURCE_ALIASES = {
    **dict.fromkeys(
        ("展厅", "到店", "自然到店", "进店", "来店", "展厅来店", "walk in", "walkin", "showroom"), S.WALK_IN
    ),
    **dict.fromkeys(("电话", "来电", "电话咨询", "400电话", "phone", "call"), S.PHONE),
    **dict.fromkeys(("官网", "网站", "厂家官网", "website", "web"), S.WEBSITE),
    **dict.fromkeys(("汽车之家", "懂车帝", "易车", "易车网", "太平洋汽车", "网络", "垂直媒体", "autohome"), S.AUTOHOME),
    **dict.fromkeys(("微信", "公众号", "小程序", "企业微信", "wechat"), S.WECHAT),
    **dict.fromkeys(("转介绍", "推荐", "介绍", "老客户推荐", "老带新", "referral"), S.REFERRAL),
    **dict.fromkeys(("活动", "车展", "外展", "试驾活动", "event"), S.EVENT),
    **dict.fromkeys(("dms", "系统导入", "dealer management system"), S.DMS),
    **dict.fromkeys(("其他", "其它", "other"), S.OTHER),
}
ORDER_KIND_ALIASES = {
    **dict.fromkeys(
        ("整车销售", "整车", "新车销售", "新车", "销售", "购车", "车辆销售", "sale", "sales"), K.VEHICLE_SALE
    ),
    **dict.fromkeys(("保养", "首保", "定保", "常规保养", "维护保养", "maintenance", "service"), K.MAINTENANCE),
    **dict.fromkeys(
        ("维修", "机修", "一般维修", "钣喷", "钣金", "喷漆", "事故车", "事故维修", "索赔", "保修"), K.REPAIR
    ),
    **dict.fromkeys(("配件", "零件", "配件销售", "parts"), K.PARTS),
    **dict.fromkeys(("精品", "装潢", "附件", "精品加装", "accessories"), K.ACCESSORIES),
    **dict.fromkeys(("保险", "续保", "车险", "insurance"), K.INSURANCE),
}
ORDER_STATUS_ALIASES = {
    **dict.fromkeys(
        ("已结算", "结算", "完成", "已完成", "已交车", "交车", "已出厂", "出厂", "已收款", "closed", "done", "settled"),
        ST.COMPLETED,
    ),
    **dict.fromkeys(
        ("冲销", "已冲销", "作废", "已作废", "退单", "取消", "已取消", "红冲", "cancelled", "canceled", "void"),
        ST.REVERSED,
    ),
    **dict.fromkeys(
        ("未结算", "在修", "维修中", "进行中", "开单", "已开单", "待结算", "in progress", "pending"), ST.OPEN
    ),
}


# ---------------------------------------------------------------------------------------------
# What each kind of file holds
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportField:
    """One target field: its parser, the header texts that map to it, its staging column type."""

    name: str
    label: Promise
    parse: Callable[[Any], Any]
    aliases: tuple[str, ...]
    required: bool = False
    sql_type: str = "text"


@dataclass(frozen=True)
class ImportKind:
    kind: str
    fields: tuple[ImportField, ...]
    key: str  # the field that identifies a row: its duplicates inside a file are errors
    resolved: tuple[str, ...]  # ids found while scanning (bigint staging columns)

    def field(self, name: str) -> ImportField:
        return next(f for f in self.fields if f.name == name)

    @property
    def required(self) -> tuple[ImportField, ...]:
        return tuple(f for f in self.fields if f.required)


def _aliases(text: str) -> tuple[str, ...]:
    return tuple(alias.strip() for alias in text.split("|"))


def _f(
    name: str, label: Promise, parse: Callable[[Any], Any], aliases: str, *, required: bool = False, sql: str = "text"
) -> ImportField:
    return ImportField(name, label, parse, _aliases(aliases), required=required, sql_type=sql)


CUSTOMER_REF = "客户编号|客户id|客户代码|车主编号|dms编号|customer id|customer no|customer dms id"
VIN = "车架号|vin|vin码|车辆识别代号|车辆识别号|车辆识别码"
MILEAGE = "里程|行驶里程|公里数|进厂里程|表显里程|mileage|km"
T = _text_parser


def _customers() -> ImportKind:
    def text(name: str) -> Callable[[Any], str | None]:
        return T(_field_max_length(Customer, name))

    gender = _choice_parser(Customer.Gender, GENDER_ALIASES, gettext_lazy("男 / 女"))
    kind = _choice_parser(Customer.Kind, CUSTOMER_KIND_ALIASES, gettext_lazy("个人 / 公司"))
    source = _choice_parser(
        Customer.Source,
        SOURCE_ALIASES,
        gettext_lazy("展厅 / 电话 / 官网 / 汽车之家 / 微信 / 转介绍 / 活动 / DMS / 其他"),
    )
    fields = (
        _f("external_id", gettext_lazy("DMS id"), text("external_id"),
           "客户编号|客户id|dms编号|客户代码|dms id|external id|customer id|customer no", required=True),
        _f("name", gettext_lazy("Name"), text("name"), "姓名|客户姓名|客户名称|名称|name|customer name", required=True),
        _f("mobile", gettext_lazy("Mobile"), parse_mobile,
           "手机|手机号|手机号码|联系电话|电话|移动电话|联系手机|mobile|phone|mobile phone"),
        _f("mobile_secondary", gettext_lazy("Second mobile"), parse_mobile,
           "备用手机|其他电话|备用电话|第二手机|second mobile|other phone"),
        _f("kind", gettext_lazy("Customer type"), kind, "客户类型|客户性质|个人/单位|customer type"),
        _f("gender", gettext_lazy("Gender"), gender, "性别|gender|sex"),
        _f("birthday", gettext_lazy("Birthday"), parse_date, "生日|出生日期|birthday|date of birth", sql="date"),
        _f("id_number", gettext_lazy("ID number"), parse_id_number,
           "身份证号|身份证|身份证号码|证件号码|证件号|id number"),
        _f("province", gettext_lazy("Province"), text("province"), "省|省份|province"),
        _f("city", gettext_lazy("City"), text("city"), "市|城市|city"),
        _f("district", gettext_lazy("District"), text("district"), "区|区县|区/县|district"),
        _f("address", gettext_lazy("Address"), text("address"), "地址|详细地址|联系地址|address"),
        _f("source", gettext_lazy("Source"), source, "来源|客户来源|线索来源|source"),
    )  # fmt: skip
    return ImportKind(ImportJob.Kind.CUSTOMERS, fields, key="external_id", resolved=("target_id",))


def _vehicles() -> ImportKind:
    def text(name: str) -> Callable[[Any], str | None]:
        return T(_field_max_length(Vehicle, name))

    fields = (
        _f("vin", gettext_lazy("VIN"), parse_vin, VIN, required=True),
        _f("customer_external_id", gettext_lazy("Customer DMS id"), T(64), CUSTOMER_REF, required=True),
        _f("brand", gettext_lazy("Brand"), text("brand"), "品牌|厂牌|brand|make", required=True),
        _f("plate", gettext_lazy("Plate"), parse_plate, "车牌|车牌号|车牌号码|plate|licence plate"),
        _f("series", gettext_lazy("Series"), text("series"), "车系|series"),
        _f("model_name", gettext_lazy("Model"), text("model_name"), "车型|车型名称|model"),
        _f("model_year", gettext_lazy("Model year"), parse_model_year, "年款|model year", sql="integer"),
        _f("colour", gettext_lazy("Colour"), text("colour"), "颜色|车身颜色|外观颜色|colour|color"),
        _f("purchase_date", gettext_lazy("Purchase date"), parse_date,
           "购车日期|开票日期|购买日期|交车日期|purchase date", sql="date"),
        _f("warranty_end", gettext_lazy("Warranty end"), parse_date,
           "保修到期|质保到期|保修截止日期|保修到期日|warranty end", sql="date"),
        _f("mileage_km", gettext_lazy("Mileage (km)"), parse_km, MILEAGE, sql="integer"),
        _f("external_id", gettext_lazy("Vehicle DMS id"), text("external_id"), "车辆编号|车辆id|vehicle id"),
    )  # fmt: skip
    return ImportKind(ImportJob.Kind.VEHICLES, fields, key="vin", resolved=("customer_id", "vehicle_id"))


def _orders() -> ImportKind:
    kind = _choice_parser(Order.Kind, ORDER_KIND_ALIASES, gettext_lazy("整车销售 / 保养 / 维修 / 配件 / 精品 / 保险"))
    status = _choice_parser(Order.Status, ORDER_STATUS_ALIASES, gettext_lazy("已结算 / 冲销 / 未结算"))
    fields = (
        _f("external_id", gettext_lazy("Order number"), T(_field_max_length(Order, "external_id")),
           "订单号|工单号|单号|单据号|结算单号|order no|order number|order id", required=True),
        _f("customer_external_id", gettext_lazy("Customer DMS id"), T(64), CUSTOMER_REF, required=True),
        _f("vin", gettext_lazy("VIN"), parse_vin, VIN),
        _f("kind", gettext_lazy("Type"), kind, "类型|业务类型|工单类型|订单类型|type|kind", required=True),
        _f("ordered_on", gettext_lazy("Date"), parse_date, "日期|开单日期|结算日期|订单日期|业务日期|date",
           required=True, sql="date"),
        _f("amount", gettext_lazy("Amount (CNY)"), parse_amount, "金额|结算金额|实收金额|订单金额|amount",
           required=True, sql="numeric(12,2)"),
        _f("status", gettext_lazy("Status"), status, "状态|结算状态|单据状态|status"),
        _f("mileage_km", gettext_lazy("Mileage (km)"), parse_km, MILEAGE, sql="integer"),
    )  # fmt: skip
    return ImportKind(
        ImportJob.Kind.ORDERS, fields, key="external_id", resolved=("customer_id", "vehicle_id", "order_id")
    )


@cache
def import_kinds() -> dict[str, ImportKind]:
    return {spec.kind: spec for spec in (_customers(), _vehicles(), _orders())}


def import_kind(kind: str) -> ImportKind:
    return import_kinds()[kind]


# ---------------------------------------------------------------------------------------------
# Header row and column mapping
# ---------------------------------------------------------------------------------------------

_BRACKETED = re.compile(r"[（(【\[].*?[）)】\]]")


def header_key(text: str) -> str:
    """Header text as compared with aliases: '客户姓名（必填）*' → '客户姓名', 'Mobile Phone' → 'mobilephone'."""
    text = _BRACKETED.sub("", cell_text(text).lower())
    return re.sub(r"[\s*:：_\-]", "", text)


@cache
def _alias_index(kind: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for spec_field in import_kind(kind).fields:
        for alias in (*spec_field.aliases, spec_field.name):
            index.setdefault(header_key(alias), spec_field.name)
    return index


def auto_mapping(*, kind: str, headers: Sequence[str]) -> dict[str, int]:
    """Target field → column index, from the header texts. The first column that matches wins."""
    index = _alias_index(kind)
    mapping: dict[str, int] = {}
    for position, header in enumerate(headers):
        name = index.get(header_key(header))
        if name is not None and name not in mapping:
            mapping[name] = position
    return mapping


def column_label(headers: Sequence[str], index: int) -> str:
    """What the user calls a column: its header text, or 'Column C' when the header cell is empty."""
    text = headers[index] if index < len(headers) else ""
    return text or _("Column %(letter)s") % {"letter": get_column_letter(index + 1)}


def mapping_problems(*, kind: str, headers: Sequence[str], fields: Mapping[str, int]) -> dict[str, list[str]]:
    """Field → messages for a mapping the user chose (or that was detected)."""
    spec = import_kind(kind)
    problems: dict[str, list[str]] = {}
    used: dict[int, str] = {}
    known = {f.name for f in spec.fields}
    for name, index in fields.items():
        if name not in known:
            problems.setdefault(name, []).append(_("Not a field of this kind of file."))
        elif not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(headers):
            problems.setdefault(name, []).append(_("Choose one of the file's columns."))
        elif index in used:
            problems.setdefault(name, []).append(_("That column is already used for another field."))
        else:
            used[index] = name
    for required in spec.required:
        if required.name not in fields:
            problems.setdefault(required.name, []).append(_("Required: choose the column that holds it."))
    return problems


# ---------------------------------------------------------------------------------------------
# Reading files as streams of rows
# ---------------------------------------------------------------------------------------------


class ImportFileError(Exception):
    """The file as a whole cannot be read (wrong format, encoding, broken archive)."""

    def __init__(self, message: str, *, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 (Excel's 'Unicode text'), else GB18030 (Chinese Excel)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


RowStream = Iterator[tuple[int, list[Any]]]


class SheetReader:
    """Streams `(row_number, cells)` from a CSV or XLSX file; row 1 is the file's first line.

    Use as a context manager. Nothing is read up front beyond a small sample (CSV) or the
    workbook's index and shared strings (XLSX, `openpyxl` read-only mode); `rows()` is lazy.
    `estimated_rows` is a cheap estimate for the progress bar (None when unknown).
    """

    def __init__(self, stream: IO[bytes], *, filename: str) -> None:
        self.stream = stream
        self.extension = PurePath(filename).suffix.lower()
        if self.extension not in ALLOWED_EXTENSIONS:
            raise ImportFileError(_("Only .csv and .xlsx files can be imported."))
        self.estimated_rows: int | None = None
        self._workbook: Any = None
        self._text: io.TextIOWrapper | None = None

    def __enter__(self) -> SheetReader:
        if self.extension == ".xlsx":
            self._open_xlsx()
        else:
            self._open_csv()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._workbook is not None:
            self._workbook.close()
        if self._text is not None:
            self._text.detach()  # the caller owns (and closes) the binary stream

    def _open_xlsx(self) -> None:
        try:
            self._workbook = load_workbook(self.stream, read_only=True, data_only=True)
            sheet = self._workbook.worksheets[0]
        except Exception as error:  # noqa: BLE001 - openpyxl raises many types for a broken file
            logger.info("unreadable xlsx: %r", error)
            raise ImportFileError(_("This is not an Excel workbook (.xlsx) that can be read.")) from None
        self.estimated_rows = sheet.max_row if isinstance(sheet.max_row, int) and sheet.max_row > 1 else None
        sheet.reset_dimensions()  # DMS exports often declare wrong dimensions; read every row there is
        self._sheet = sheet

    def _open_csv(self) -> None:
        sample = self.stream.read(_SNIFF_BYTES)
        self.stream.seek(0)
        if b"\x00" in sample and not sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise ImportFileError(_("This is not a CSV text file."))
        self.encoding = detect_encoding(sample)
        # count line breaks for the progress bar: a fast pass over bytes, never the whole file at once
        lines = 0
        while chunk := self.stream.read(1024 * 1024):
            lines += chunk.count(b"\n")
        self.stream.seek(0)
        self.estimated_rows = lines or None
        self._text = io.TextIOWrapper(self.stream, encoding=self.encoding, newline="")  # type: ignore[type-var]
        first_line = sample.decode(self.encoding, errors="ignore").splitlines()[:1]
        self.delimiter = _delimiter(first_line[0] if first_line else "")

    def rows(self) -> RowStream:
        if self._workbook is not None:
            yield from self._xlsx_rows()
        else:
            yield from self._csv_rows()

    def _xlsx_rows(self) -> RowStream:
        number = 0
        try:
            for number, values in enumerate(self._sheet.iter_rows(values_only=True), start=1):
                yield number, list(values)
        except Exception as error:  # noqa: BLE001 - a damaged archive or XML fails in many ways
            logger.info("broken xlsx at row %s: %r", number + 1, error)
            raise ImportFileError(_("The workbook is damaged and cannot be read to the end."), row=number + 1) from None

    def _csv_rows(self) -> RowStream:
        assert self._text is not None
        reader = csv.reader(self._text, delimiter=self.delimiter)
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise ImportFileError(
                    _("The file is not UTF-8 or GB18030 text; save it again as CSV (UTF-8)."), row=number + 1
                ) from None
            except csv.Error as error:
                raise ImportFileError(
                    _("This line cannot be read as CSV: %(error)s") % {"error": error}, row=number + 1
                ) from None
            number += 1
            yield number, cells


# ---------------------------------------------------------------------------------------------
# The scan: every row parsed, validated and resolved; the same code for both passes
# ---------------------------------------------------------------------------------------------


class RowError(TypedDict):
    row: int | None
    column: str
    message: str


class _ErrorLog:
    def __init__(self) -> None:
        self.stored: list[RowError] = []
        self.count = 0
        self.rows: set[int | None] = set()

    def add(self, row: int | None, column: str, message: str) -> None:
        self.count += 1
        self.rows.add(row)
        if len(self.stored) < MAX_STORED_ERRORS:
            self.stored.append({"row": row, "column": column, "message": message})


@dataclass
class _Row:
    number: int
    values: dict[str, Any]
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field name, message)

    def fail(self, name: str, message: str) -> None:
        self.errors.append((name, message))


@dataclass
class ScanResult:
    total_rows: int = 0
    errors: _ErrorLog = field(default_factory=_ErrorLog)
    headers: list[str] = field(default_factory=list)
    header_row: int | None = None
    fields: dict[str, int] = field(default_factory=dict)
    sample: list[list[str]] = field(default_factory=list)


def _messages(error: ValidationError) -> str:
    return " ".join(str(m) for m in error.messages)


def _parse_row(spec: ImportKind, fields: Mapping[str, int], number: int, cells: Sequence[Any]) -> _Row:
    row = _Row(number=number, values={})
    for spec_field in spec.fields:
        index = fields.get(spec_field.name)
        raw = cells[index] if index is not None and index < len(cells) else None
        try:
            value = spec_field.parse(raw) if index is not None else None
        except ValidationError as error:
            row.values[spec_field.name] = None
            row.fail(spec_field.name, _messages(error))
            continue
        if value is None and spec_field.required:
            row.fail(spec_field.name, _("Required."))
        row.values[spec_field.name] = value
    return row


def _customer_survivors(external_ids: Iterable[str]) -> dict[str, int]:
    """DMS id → id of the live customer it now means (a merged tombstone resolves to its survivor)."""
    wanted = sorted(set(external_ids))
    if not wanted:
        return {}
    tenant_id = require_tenant_id()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE chain(external_id, id, merged_into_id, depth) AS (
                SELECT c.external_id, c.id, c.merged_into_id, 0
                  FROM customers_customer c
                 WHERE c.tenant_id = %s AND c.external_id <> '' AND c.external_id = ANY(%s)
              UNION ALL
                SELECT chain.external_id, c.id, c.merged_into_id, chain.depth + 1
                  FROM chain JOIN customers_customer c ON c.tenant_id = %s AND c.id = chain.merged_into_id
                 WHERE chain.depth < 16
            )
            SELECT external_id, id FROM chain WHERE merged_into_id IS NULL
            """,
            [tenant_id, wanted, tenant_id],
        )
        return dict(cursor.fetchall())


class _Scanner:
    """Per-kind reference checks, run once per chunk of rows with one query per reference."""

    def __init__(self, spec: ImportKind) -> None:
        self.spec = spec
        self.seen_keys: dict[Any, int] = {}
        self.seen_targets: dict[int, int] = {}

    def check_duplicate(self, row: _Row) -> None:
        key = row.values.get(self.spec.key)
        if key is None:
            return
        first = self.seen_keys.setdefault(key, row.number)
        if first != row.number:
            row.fail(self.spec.key, _("Appears twice in this file: first in row %(row)d.") % {"row": first})

    def resolve(self, rows: list[_Row]) -> None:
        getattr(self, f"_resolve_{self.spec.kind}")(rows)

    def _resolve_customers(self, rows: list[_Row]) -> None:
        survivors = _customer_survivors(r.values["external_id"] for r in rows if r.values.get("external_id"))
        for row in rows:
            target = survivors.get(row.values.get("external_id") or "")
            row.values["target_id"] = target
            if target is None:
                continue
            first = self.seen_targets.setdefault(target, row.number)
            if first != row.number:
                row.fail(
                    "external_id",
                    _("Row %(row)d has the DMS id of the same customer (the records were merged).") % {"row": first},
                )

    def _resolve_owner(self, rows: list[_Row]) -> None:
        survivors = _customer_survivors(
            r.values["customer_external_id"] for r in rows if r.values.get("customer_external_id")
        )
        for row in rows:
            reference = row.values.get("customer_external_id")
            row.values["customer_id"] = survivors.get(reference) if reference else None
            if reference and row.values["customer_id"] is None:
                row.fail("customer_external_id", _("No customer with this DMS id."))

    def _vehicles_by_vin(self, rows: list[_Row]) -> dict[str, tuple[int, int, int | None]]:
        vins = {r.values["vin"] for r in rows if r.values.get("vin")}
        if not vins:
            return {}
        found = Vehicle.objects.filter(vin__in=vins).values_list("vin", "pk", "customer_id", "mileage_km")
        return {vin: (pk, customer_id, km) for vin, pk, customer_id, km in found}

    def _resolve_vehicles(self, rows: list[_Row]) -> None:
        self._resolve_owner(rows)
        existing = self._vehicles_by_vin(rows)
        for row in rows:
            vehicle = existing.get(row.values.get("vin") or "")
            row.values["vehicle_id"] = vehicle[0] if vehicle else None
            km = row.values.get("mileage_km")
            if vehicle and km is not None and vehicle[2] is not None and km < vehicle[2]:
                row.fail(
                    "mileage_km",
                    _("%(km)s km is less than the vehicle's recorded mileage (%(max)s km).")
                    % {"km": km, "max": vehicle[2]},
                )

    def _resolve_orders(self, rows: list[_Row]) -> None:
        self._resolve_owner(rows)
        vehicles = self._vehicles_by_vin(rows)
        # an order may name a vehicle its customer owned earlier (history before a sale or transfer)
        owned = set(
            VehicleOwnership.objects.filter(vehicle_id__in=[v[0] for v in vehicles.values()]).values_list(
                "vehicle_id", "customer_id"
            )
        )
        external_ids = {r.values["external_id"] for r in rows if r.values.get("external_id")}
        orders = dict(Order.objects.filter(external_id__in=external_ids).values_list("external_id", "pk"))
        for row in rows:
            row.values["order_id"] = orders.get(row.values.get("external_id") or "")
            vin = row.values.get("vin")
            vehicle = vehicles.get(vin) if vin else None
            row.values["vehicle_id"] = vehicle[0] if vehicle else None
            if vin and vehicle is None:
                row.fail("vin", _("No vehicle with this VIN."))
            customer_id = row.values.get("customer_id")
            if vehicle and customer_id and vehicle[1] != customer_id and (vehicle[0], customer_id) not in owned:
                row.fail("vin", _("This vehicle does not belong to this customer."))


ChunkSink = Callable[[list[_Row]], None]


def _locate_header(
    rows: RowStream, *, kind: str, header_row: int | None
) -> tuple[int, list[str], list[tuple[int, list[Any]]]]:
    """Find the header row: the known one, else the first of the first rows that names two known
    fields, else the first non-empty row. Returns it with the data rows read past it."""
    buffered: list[tuple[int, list[Any]]] = []
    for number, cells in rows:
        if header_row is not None:
            if number == header_row:
                return number, [cell_text(c) for c in cells], []
            continue
        if any(cell_text(c) for c in cells):
            buffered.append((number, cells))
            if len(buffered) >= HEADER_SEARCH_ROWS:
                break
    if not buffered:
        raise ImportFileError(_("The file is empty: there is no header row."))
    chosen = next(
        (item for item in buffered if len(auto_mapping(kind=kind, headers=[cell_text(c) for c in item[1]])) >= 2),
        buffered[0],
    )
    number, cells = chosen
    return number, [cell_text(c) for c in cells], [item for item in buffered if item[0] > number]


def scan_rows(
    rows: RowStream,
    *,
    kind: str,
    mapping: Mapping[str, Any],
    progress: _Progress | None = None,
    sink: ChunkSink | None = None,
) -> ScanResult:
    """Parse, validate and resolve every row. Valid rows go to `sink` one chunk at a time.

    `mapping` is the job's stored mapping: `header_row` and `fields` when known (a revalidation),
    else both are detected here. All errors, file-level ones included, end up in the result.
    """
    spec = import_kind(kind)
    result = ScanResult()
    try:
        result.header_row, result.headers, pending = _locate_header(
            rows, kind=kind, header_row=mapping.get("header_row")
        )
    except ImportFileError as error:
        result.errors.add(error.row, "", error.message)
        return result
    stored_fields = mapping.get("fields")
    result.fields = (
        {k: int(v) for k, v in stored_fields.items()}
        if isinstance(stored_fields, dict)
        else auto_mapping(kind=kind, headers=result.headers)
    )
    problems = mapping_problems(kind=kind, headers=result.headers, fields=result.fields)
    if problems:
        for name, messages in problems.items():
            label = str(spec.field(name).label) if any(f.name == name for f in spec.fields) else name
            for message in messages:
                result.errors.add(result.header_row, label, message)
        # still show the first rows: they help the user choose the right columns
        with contextlib.suppress(ImportFileError):
            for _number, cells in itertools.chain(pending, rows):
                if any(cell_text(c) for c in cells):
                    result.sample.append([cell_text(c)[:60] for c in cells[: len(result.headers)]])
                    if len(result.sample) >= SAMPLE_ROWS:
                        break
        return result

    scanner = _Scanner(spec)
    chunk: list[_Row] = []

    def flush() -> None:
        scanner.resolve(chunk)
        valid = []
        for row in chunk:
            for name, message in sorted(row.errors, key=lambda error: result.fields.get(error[0], -1)):
                index = result.fields.get(name)
                column = column_label(result.headers, index) if index is not None else str(spec.field(name).label)
                result.errors.add(row.number, column, message)
            if not row.errors:
                valid.append(row)
        if sink is not None and valid:
            sink(valid)
        if progress is not None:
            progress.advance(len(chunk))
        chunk.clear()

    try:
        for number, cells in itertools.chain(pending, rows):
            if not any(cell_text(c) for c in cells):
                continue  # blank lines are skipped, but keep their numbers
            result.total_rows += 1
            if len(result.sample) < SAMPLE_ROWS:
                result.sample.append([cell_text(c)[:60] for c in cells[: len(result.headers)]])
            row = _parse_row(spec, result.fields, number, cells)
            scanner.check_duplicate(row)
            chunk.append(row)
            if len(chunk) >= CHUNK_ROWS:
                flush()
    except ImportFileError as error:
        result.errors.add(error.row, "", error.message)
        return result
    flush()
    if result.total_rows == 0:
        result.errors.add(result.header_row, "", _("The file has a header row but no data rows."))
    return result


# ---------------------------------------------------------------------------------------------
# Progress, written where the progress bar can see it while the pass's transaction is open
# ---------------------------------------------------------------------------------------------


class _Progress:
    """Writes `processed_rows`/`total_rows` of one job on a database connection of its own.

    Each write is its own short transaction (the tenant set transaction-locally, as always), so
    pages polling the job see it move while the scan's transaction is still open. Best effort:
    a failure switches progress off and never breaks the import. The scan's own transaction must
    not write the job row until the pass ends, or these writes would wait for it.
    """

    def __init__(self, *, job_id: int, tenant_id: int, total: int) -> None:
        self.job_id, self.tenant_id, self.total = job_id, tenant_id, total
        self.processed = 0
        self._last_write = 0.0
        self._written = 0
        self._connection: Any = None
        self._broken = False

    def advance(self, rows: int) -> None:
        self.processed += rows
        if self.total and self.processed > self.total:
            self.total = self.processed
        due = self.processed - self._written >= PROGRESS_EVERY_ROWS
        if due and time.monotonic() - self._last_write >= PROGRESS_MIN_SECONDS:
            self.write()

    def write(self) -> None:
        if self._broken:
            return
        try:
            if self._connection is None:
                self._connection = connections.create_connection(DEFAULT_DB_ALIAS)
                self._connection.ensure_connection()
            raw = self._connection.connection
            with raw.transaction(), raw.cursor() as cursor:
                cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [str(self.tenant_id)])
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                cursor.execute(
                    "UPDATE customers_importjob SET processed_rows = %s, total_rows = %s "
                    "WHERE tenant_id = %s AND id = %s",
                    [self.processed, self.total, self.tenant_id, self.job_id],
                )
        except Exception as error:  # noqa: BLE001 - progress is advisory; the import goes on without it
            logger.warning("import %s: progress not written (%r); continuing without", self.job_id, error)
            self._broken = True
        self._written = self.processed
        self._last_write = time.monotonic()

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(DatabaseError):
                self._connection.close()
            self._connection = None


# ---------------------------------------------------------------------------------------------
# Services: upload, mapping, commit request
# ---------------------------------------------------------------------------------------------


def _require(actor: Membership, capability: str) -> None:
    if not actor.can(capability):
        raise NotAllowed(_("Your role may not do this."))


def upload_problems(upload: UploadedFile) -> list[str]:
    """Why an uploaded file cannot be imported (empty list: it can)."""
    name = upload.name or ""
    extension = PurePath(name).suffix.lower()
    if extension not in ALLOWED_EXTENSIONS:
        return [_("Only .csv and .xlsx files can be imported.")]
    size = upload.size or 0
    if size > MAX_UPLOAD_BYTES:
        return [_("The file is larger than %(mb)d MB.") % {"mb": MAX_UPLOAD_BYTES // (1024 * 1024)}]
    if size == 0:
        return [_("The file is empty.")]
    upload.seek(0)
    head = upload.read(_SNIFF_BYTES)
    upload.seek(0)
    is_zip = head.startswith(b"PK\x03\x04")
    if extension == ".xlsx":
        if not is_zip:
            return [_("This is not an Excel workbook (.xlsx). Older .xls files must be saved as .xlsx first.")]
        try:
            with zipfile.ZipFile(upload) as archive:
                names = set(archive.namelist())
                inflated = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return [_("This Excel workbook is damaged.")]
        finally:
            upload.seek(0)
        if "xl/workbook.xml" not in names:
            return [_("This is not an Excel workbook (.xlsx).")]
        if inflated > MAX_XLSX_UNCOMPRESSED_BYTES:
            return [_("This workbook is too large once unpacked.")]
        return []
    if is_zip or head.startswith(b"\xd0\xcf\x11\xe0"):  # a zip or an old binary .xls, renamed
        return [_("This is a spreadsheet, not a CSV text file; upload it with the .xlsx extension.")]
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return [_("This is not a CSV text file.")]
    return []


@transaction.atomic
def import_job_create(*, actor: Membership, kind: str, upload: UploadedFile, language: str = "") -> ImportJob:
    """Store an uploaded file as a new job and queue its validation."""
    _require(actor, "customers.import")
    if kind not in ImportJob.Kind.values:
        raise ApplicationError(_("Choose what the file holds."), fields={"kind": [_("Choose one of the list.")]})
    problems = upload_problems(upload)
    if problems:
        raise ApplicationError(problems[0], fields={"file": problems})
    original = PurePath(upload.name or "").name
    extension = PurePath(original).suffix.lower()
    job = ImportJob(
        kind=kind,
        status=ImportJob.Status.VALIDATING,
        original_name=original[:255],
        created_by=actor.user,
        mapping={"language": language or translation.get_language() or settings.LANGUAGE_CODE},
    )
    # the stored name is ours: nothing of the user's file name reaches the file system
    job.file.save(f"{uuid.uuid4().hex}{extension}", upload, save=False)
    job.save()
    _queue_validation(job)
    return job


def _queue_validation(job: ImportJob) -> None:
    from customers.tasks import import_validate_task

    tenant_id, job_id = job.tenant_id, job.pk
    # robust: the upload is stored whatever happens to the queue; a broker outage must not become a 500
    transaction.on_commit(lambda: import_validate_task.delay(tenant_id=tenant_id, job_id=job_id), robust=True)


@transaction.atomic
def import_job_set_mapping(*, actor: Membership, job: ImportJob, fields: Mapping[str, int]) -> ImportJob:
    """Use the columns the user chose, and check the whole file again with them."""
    _require(actor, "customers.import")
    # FAILED too: checking again is how a failed import is retried
    retryable = (ImportJob.Status.INVALID, ImportJob.Status.READY, ImportJob.Status.FAILED)
    if job.status not in retryable or "headers" not in job.mapping:
        raise ApplicationError(
            _("The mapping can only be changed after the file was checked and before it is imported.")
        )
    problems = mapping_problems(kind=job.kind, headers=job.mapping["headers"], fields=fields)
    if problems:
        raise ApplicationError(_("Check the column mapping."), fields=problems)
    job.mapping = {**job.mapping, "fields": dict(fields)}
    job.status = ImportJob.Status.VALIDATING
    job.errors, job.error_count, job.processed_rows, job.result = [], 0, 0, {}
    job.save(update_fields=["mapping", "status", "errors", "error_count", "processed_rows", "result"])
    _queue_validation(job)
    return job


@transaction.atomic
def import_job_request_commit(*, actor: Membership, job: ImportJob, meta: RequestMeta | None = None) -> ImportJob:
    """Queue the all-or-nothing import of a file that was checked without errors."""
    _require(actor, "customers.import")
    if job.status != ImportJob.Status.READY or job.error_count:
        raise ApplicationError(_("Only a file that was checked without errors can be imported."), code="not_ready")
    meta = meta or RequestMeta()
    # the commit runs in a task: keep who asked for it, and from where, for its audit entry
    job.mapping = {
        **job.mapping,
        "committed_by": actor.user_id,
        "request": {"ip_address": meta.ip_address, "user_agent": meta.user_agent},
    }
    job.status = ImportJob.Status.IMPORTING
    job.processed_rows = 0
    job.save(update_fields=["mapping", "status", "processed_rows"])
    from customers.tasks import import_commit_task

    tenant_id, job_id = job.tenant_id, job.pk
    transaction.on_commit(lambda: import_commit_task.delay(tenant_id=tenant_id, job_id=job_id), robust=True)
    return job


def import_jobs_visible_to(*, viewer: Membership) -> QuerySet[ImportJob]:
    """Imports the viewer may see: all of the dealership's for those who see every customer,
    else only their own (error lists quote the file's contents)."""
    jobs = ImportJob.objects.select_related("created_by").order_by("-created_at", "-id")
    if not viewer.can("customers.import"):
        return jobs.none()
    if viewer.can("customers.view_all"):
        return jobs
    return jobs.filter(created_by=viewer.user)


# ---------------------------------------------------------------------------------------------
# The validation pass
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _job_rows(job: ImportJob) -> Iterator[SheetReader]:
    with job.file.storage.open(job.file.name, "rb") as stored:
        stream = getattr(stored, "file", stored)
        with SheetReader(stream, filename=job.file.name) as reader:
            yield reader


def _run_scan(job: ImportJob, *, sink: ChunkSink | None) -> ScanResult:
    tenant_id = require_tenant_id()
    progress: _Progress | None = None
    try:
        with _job_rows(job) as reader:
            progress = _Progress(job_id=job.pk, tenant_id=tenant_id, total=job.total_rows or reader.estimated_rows or 0)
            rows = reader.rows()
            try:
                return scan_rows(rows, kind=job.kind, mapping=job.mapping, progress=progress, sink=sink)
            finally:
                rows.close()  # type: ignore[attr-defined]
    except ImportFileError as error:
        result = ScanResult()
        result.errors.add(error.row, "", error.message)
        return result
    except FileNotFoundError:
        result = ScanResult()
        result.errors.add(None, "", _("The uploaded file is no longer stored; upload it again."))
        return result
    finally:
        if progress is not None:
            progress.close()


def _language(job: ImportJob) -> str:
    language = job.mapping.get("language") if isinstance(job.mapping, dict) else None
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def import_validate(*, job_id: int) -> ImportJob | None:
    """Check every row of a job's file; status READY (no errors) or INVALID. Writes only the job.

    Does nothing for a job that is not waiting to be checked (a retried or duplicate task) or
    that no longer exists.
    """
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status != ImportJob.Status.VALIDATING:
        return job
    with translation.override(_language(job)):
        try:
            with transaction.atomic():
                result = _run_scan(job, sink=None)
        except Exception as error:  # reported on the job: without a broker this runs inside a request
            logger.exception("import %s: the check failed", job.pk)
            result = ScanResult()
            result.errors.add(
                None, "", _("The file could not be checked (%(reason)s). Try again.") % {"reason": type(error).__name__}
            )
    _store_scan(job, result)
    job.status = ImportJob.Status.INVALID if result.errors.count else ImportJob.Status.READY
    job.save(update_fields=["status", "mapping", "total_rows", "processed_rows", "error_count", "errors", "result"])
    return job


def _store_scan(job: ImportJob, result: ScanResult) -> None:
    if result.header_row is not None:
        job.mapping = {
            **job.mapping,
            "header_row": result.header_row,
            "headers": result.headers,
            "fields": result.fields,
            "sample": result.sample,
        }
    job.total_rows = job.processed_rows = result.total_rows
    job.error_count = result.errors.count
    job.errors = list(result.errors.stored)
    job.result = {
        "invalid_rows": len(result.errors.rows),
        "valid_rows": max(result.total_rows - len(result.errors.rows - {None, result.header_row}), 0),
    }


# ---------------------------------------------------------------------------------------------
# The commit pass: one transaction, COPY into a TEMP table, set-based upserts
# ---------------------------------------------------------------------------------------------


class _FileNoLongerValid(Exception):
    def __init__(self, result: ScanResult) -> None:
        super().__init__("the file no longer validates")
        self.result = result


# working columns of the staging table, filled by SQL after the COPY
_WORK_COLUMNS = (
    ("old_customer_id", "bigint"),
    ("old_vehicle_id", "bigint"),
    ("old_mileage", "integer"),
    ("old_ordered_on", "date"),
    ("is_new", "boolean NOT NULL DEFAULT false"),
    ("changed", "boolean NOT NULL DEFAULT false"),
    ("reading_changed", "boolean NOT NULL DEFAULT false"),
)


class _Stage:
    """A TEMP table (dropped at commit) holding one import's normalised, resolved rows."""

    def __init__(self, spec: ImportKind, job_id: int) -> None:
        self.table = f"import_stage_{int(job_id)}"
        self.columns = [("row_no", "integer")]
        self.columns += [(f.name, f.sql_type) for f in spec.fields]
        self.columns += [(name, "bigint") for name in spec.resolved]

    def create(self) -> None:
        columns = ", ".join(f"{name} {sql_type}" for name, sql_type in (*self.columns, *_WORK_COLUMNS))
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(f"CREATE TEMP TABLE {self.table} ({columns}) ON COMMIT DROP")

    def copy(self, rows: list[_Row]) -> None:
        names = [name for name, _type in self.columns]
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {self.table} ({', '.join(names)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row([row.number, *(row.values.get(name) for name in names[1:])])

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")


def _execute(sql: str, params: Sequence[Any] = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _scalar(sql: str, params: Sequence[Any] = ()) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        return row[0] if row else None


SqlExpr = str | tuple[str, Sequence[Any]]  # an SQL expression, with its parameters when it has any


def _insert_select(
    model: type[models.Model],
    *,
    exprs: Mapping[str, SqlExpr],
    source: str,
    tenant_id: int,
    now: datetime,
    returning: str = "",
) -> tuple[str, list[Any]]:
    """`INSERT INTO <model table> (every column) SELECT … FROM <source>`.

    Columns named in `exprs` take those SQL expressions (staging columns); every other column gets
    the model field's own default, so a column added to the model later needs no change here.
    """
    columns: list[str] = []
    selects: list[str] = []
    params: list[Any] = []
    for model_field in model._meta.concrete_fields:
        if model_field.primary_key or model_field.generated:  # the database computes generated columns
            continue
        columns.append(connection.ops.quote_name(model_field.column))
        if model_field.column in exprs:
            expr = exprs[model_field.column]
            sql_part, expr_params = (expr, ()) if isinstance(expr, str) else expr
            selects.append(sql_part)
            params.extend(expr_params)
            continue
        if model_field.column == "tenant_id":
            selects.append("%s")
            params.append(tenant_id)
            continue
        if getattr(model_field, "auto_now", False) or getattr(model_field, "auto_now_add", False):
            value: Any = now
        else:
            value = model_field.get_default()
        selects.append(f"%s::{model_field.db_type(connection)}")
        params.append(model_field.get_db_prep_save(value, connection))
    sql = f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(selects)} FROM {source}"
    if returning:
        sql += f" RETURNING {returning}"
    return sql, params


def _optional(model: type[models.Model], name: str) -> str:
    """The staging value, or the model's blank for a text column when the cell was empty."""
    column = f"s.{name}"
    model_field = model._meta.get_field(name)
    if isinstance(model_field, models.CharField) and not model_field.null:
        return f"COALESCE({column}, '')"
    return column


def _keep_unless_given(columns: Sequence[str]) -> tuple[str, str, str]:
    """SET list, old row and new row for an update where a blank (NULL) cell keeps the stored value."""
    sets = ", ".join(f"{c} = COALESCE(s.{c}, t.{c})" for c in columns)
    old = ", ".join(f"t.{c}" for c in columns)
    new = ", ".join(f"COALESCE(s.{c}, t.{c})" for c in columns)
    return sets, old, new


CUSTOMER_COLUMNS = (
    "name",
    "kind",
    "mobile",
    "mobile_secondary",
    "gender",
    "birthday",
    "id_number",
    "province",
    "city",
    "district",
    "address",
    "source",
)
VEHICLE_COLUMNS = (
    "plate",
    "brand",
    "series",
    "model_name",
    "model_year",
    "colour",
    "purchase_date",
    "warranty_end",
    "mileage_km",
    "external_id",
)


@dataclass(frozen=True)
class _Context:
    tenant_id: int
    today: date
    now: datetime
    zone: str


def _upsert_customers(stage: _Stage, ctx: _Context) -> dict[str, int]:
    t = stage.table
    sets, old, new = _keep_unless_given(CUSTOMER_COLUMNS)
    matched = int(_scalar(f"SELECT count(*) FROM {t} WHERE target_id IS NOT NULL"))
    updated = _execute(
        f"""
        WITH changed AS (
            UPDATE customers_customer t SET {sets}, updated_at = %s
              FROM {t} s
             WHERE t.tenant_id = %s AND t.id = s.target_id AND ROW({old}) IS DISTINCT FROM ROW({new})
            RETURNING t.id
        )
        UPDATE {t} s SET changed = true FROM changed WHERE s.target_id = changed.id
        """,
        [ctx.now, ctx.tenant_id],
    )
    exprs = {c: _optional(Customer, c) for c in CUSTOMER_COLUMNS} | {
        "external_id": "s.external_id",
        "kind": f"COALESCE(s.kind, '{Customer.Kind.INDIVIDUAL}')",
        "source": f"COALESCE(s.source, '{Customer.Source.DMS}')",
    }
    sql, params = _insert_select(
        Customer,
        exprs=exprs,
        source=f"{t} s WHERE s.target_id IS NULL ORDER BY s.row_no",
        tenant_id=ctx.tenant_id,
        now=ctx.now,
    )
    created = _execute(sql, params)
    return {"created": created, "updated": updated, "unchanged": matched - updated}


def _upsert_vehicles(stage: _Stage, ctx: _Context) -> dict[str, int]:
    t, tenant = stage.table, ctx.tenant_id
    _execute(
        f"UPDATE {t} s SET old_customer_id = v.customer_id, old_mileage = v.mileage_km "
        "FROM customers_vehicle v WHERE v.tenant_id = %s AND v.id = s.vehicle_id",
        [tenant],
    )
    matched = int(_scalar(f"SELECT count(*) FROM {t} WHERE vehicle_id IS NOT NULL"))
    sets, old, new = _keep_unless_given(VEHICLE_COLUMNS)
    updated = _execute(
        f"""
        WITH changed AS (
            UPDATE customers_vehicle t SET customer_id = s.customer_id, {sets}
              FROM {t} s
             WHERE t.tenant_id = %s AND t.id = s.vehicle_id
               AND ROW(t.customer_id, {old}) IS DISTINCT FROM ROW(s.customer_id, {new})
            RETURNING t.id
        )
        UPDATE {t} s SET changed = true FROM changed WHERE s.vehicle_id = changed.id
        """,
        [tenant],
    )
    # a vehicle that changed hands: the open ownership ends today and a new one starts
    transferred = f"{t} s WHERE s.changed AND s.old_customer_id <> s.customer_id"
    _execute(
        f"UPDATE customers_vehicleownership o SET ended_on = %s FROM {t} s "
        "WHERE o.tenant_id = %s AND o.vehicle_id = s.vehicle_id AND o.ended_on IS NULL "
        "AND s.changed AND s.old_customer_id <> s.customer_id",
        [ctx.today, tenant],
    )
    sql, params = _insert_select(
        VehicleOwnership,
        exprs={
            "vehicle_id": "s.vehicle_id",
            "customer_id": "s.customer_id",
            "started_on": ("%s::date", [ctx.today]),
            "ended_on": "NULL",
        },
        source=transferred,
        tenant_id=tenant,
        now=ctx.now,
    )
    changed_hands = _execute(sql, params)

    exprs = {c: _optional(Vehicle, c) for c in VEHICLE_COLUMNS} | {
        "customer_id": "s.customer_id",
        "vin": "s.vin",
        "brand": "s.brand",
    }
    sql, params = _insert_select(
        Vehicle,
        exprs=exprs,
        source=f"{t} s WHERE s.vehicle_id IS NULL ORDER BY s.row_no",
        tenant_id=tenant,
        now=ctx.now,
        returning="id, vin",
    )
    created = _execute(
        f"WITH inserted AS ({sql}) UPDATE {t} s SET vehicle_id = inserted.id, is_new = true "
        "FROM inserted WHERE s.vin = inserted.vin",
        params,
    )
    sql, params = _insert_select(
        VehicleOwnership,
        exprs={
            "vehicle_id": "s.vehicle_id",
            "customer_id": "s.customer_id",
            "started_on": ("COALESCE(s.purchase_date, %s::date)", [ctx.today]),
            "ended_on": "NULL",
        },
        source=f"{t} s WHERE s.is_new",
        tenant_id=tenant,
        now=ctx.now,
    )
    _execute(sql, params)
    # an odometer reading for every mileage that is new to us, dated today
    sql, params = _insert_select(
        MileageReading,
        exprs={
            "vehicle_id": "s.vehicle_id",
            "read_on": ("%s::date", [ctx.today]),
            "km": "s.mileage_km",
            "source": f"'{MileageReading.Source.IMPORT}'",
            "order_id": "NULL",
        },
        source=f"{t} s WHERE s.mileage_km IS NOT NULL "
        "AND (s.is_new OR (s.changed AND s.old_mileage IS DISTINCT FROM s.mileage_km))",
        tenant_id=tenant,
        now=ctx.now,
    )
    readings = _execute(sql, params)
    return {
        "created": created,
        "updated": updated,
        "unchanged": matched - updated,
        "changed_hands": changed_hands,
        "mileage_readings": readings,
    }


def _upsert_orders(stage: _Stage, ctx: _Context) -> dict[str, int]:
    t, tenant = stage.table, ctx.tenant_id
    _execute(
        f"UPDATE {t} s SET old_customer_id = o.customer_id, old_vehicle_id = o.vehicle_id, "
        "old_mileage = o.mileage_km, old_ordered_on = o.ordered_on "
        "FROM customers_order o WHERE o.tenant_id = %s AND o.id = s.order_id",
        [tenant],
    )
    matched = int(_scalar(f"SELECT count(*) FROM {t} WHERE order_id IS NOT NULL"))
    old = "t.customer_id, t.vehicle_id, t.kind, t.status, t.ordered_on, t.amount, t.mileage_km"
    new = (
        "s.customer_id, COALESCE(s.vehicle_id, t.vehicle_id), s.kind, COALESCE(s.status, t.status), "
        "s.ordered_on, s.amount, COALESCE(s.mileage_km, t.mileage_km)"
    )
    updated = _execute(
        f"""
        WITH changed AS (
            UPDATE customers_order t
               SET customer_id = s.customer_id, vehicle_id = COALESCE(s.vehicle_id, t.vehicle_id), kind = s.kind,
                   status = COALESCE(s.status, t.status), ordered_on = s.ordered_on, amount = s.amount,
                   mileage_km = COALESCE(s.mileage_km, t.mileage_km)
              FROM {t} s
             WHERE t.tenant_id = %s AND t.id = s.order_id AND ROW({old}) IS DISTINCT FROM ROW({new})
            RETURNING t.id
        )
        UPDATE {t} s SET changed = true FROM changed WHERE s.order_id = changed.id
        """,
        [tenant],
    )
    exprs = {
        "customer_id": "s.customer_id",
        "vehicle_id": "s.vehicle_id",
        "kind": "s.kind",
        "status": f"COALESCE(s.status, '{Order.Status.COMPLETED}')",
        "ordered_on": "s.ordered_on",
        "amount": "s.amount",
        "mileage_km": "s.mileage_km",
        "external_id": "s.external_id",
    }
    sql, params = _insert_select(
        Order,
        exprs=exprs,
        source=f"{t} s WHERE s.order_id IS NULL ORDER BY s.row_no",
        tenant_id=tenant,
        now=ctx.now,
        returning="id, external_id",
    )
    created = _execute(
        f"WITH inserted AS ({sql}) UPDATE {t} s SET order_id = inserted.id, is_new = true "
        "FROM inserted WHERE s.external_id = inserted.external_id",
        params,
    )
    # odometer readings follow the order: new orders add one, changed ones replace theirs
    vehicle = "COALESCE(s.vehicle_id, s.old_vehicle_id)"
    km = "COALESCE(s.mileage_km, s.old_mileage)"
    _execute(
        f"UPDATE {t} s SET reading_changed = true WHERE s.is_new OR (s.changed AND "
        f"ROW(s.old_vehicle_id, s.old_mileage, s.old_ordered_on) IS DISTINCT FROM ROW({vehicle}, {km}, s.ordered_on))"
    )
    _execute(
        f"DELETE FROM customers_mileagereading r USING {t} s "
        "WHERE r.tenant_id = %s AND r.order_id = s.order_id AND s.reading_changed AND NOT s.is_new",
        [tenant],
    )
    sql, params = _insert_select(
        MileageReading,
        exprs={
            "vehicle_id": vehicle,
            "read_on": "s.ordered_on",
            "km": km,
            "source": f"'{MileageReading.Source.IMPORT}'",
            "order_id": "s.order_id",
        },
        source=f"{t} s WHERE s.reading_changed AND {vehicle} IS NOT NULL AND {km} IS NOT NULL",
        tenant_id=tenant,
        now=ctx.now,
    )
    readings = _execute(sql, params)
    # vehicles show their latest reading, as mileage_record() keeps it
    _execute(
        f"""
        WITH touched AS (
            SELECT {vehicle} AS id FROM {t} s WHERE s.reading_changed
            UNION SELECT s.old_vehicle_id FROM {t} s WHERE s.reading_changed
        ), latest AS (
            SELECT DISTINCT ON (r.vehicle_id) r.vehicle_id, r.km
              FROM customers_mileagereading r
             WHERE r.tenant_id = %s AND r.vehicle_id IN (SELECT id FROM touched WHERE id IS NOT NULL)
             ORDER BY r.vehicle_id, r.read_on DESC, r.km DESC
        )
        UPDATE customers_vehicle v SET mileage_km = latest.km FROM latest
         WHERE v.tenant_id = %s AND v.id = latest.vehicle_id AND v.mileage_km IS DISTINCT FROM latest.km
        """,
        [tenant, tenant],
    )
    refreshed = customers_refresh_last_visit_from(
        touched_sql=f"SELECT s.customer_id FROM {t} s WHERE s.is_new OR s.changed "
        f"UNION SELECT s.old_customer_id FROM {t} s WHERE s.changed AND s.old_customer_id IS NOT NULL",
        ctx=ctx,
    )
    return {
        "created": created,
        "updated": updated,
        "unchanged": matched - updated,
        "mileage_readings": readings,
        "last_visits_changed": refreshed,
    }


def customers_refresh_last_visit_from(*, touched_sql: str, ctx: _Context) -> int:
    """Set-based `customer_refresh_last_visit` for the customer ids `touched_sql` selects: the latest
    non-reversed order or in-person contact (a date in the dealership's time zone). Returns rows changed."""
    return _execute(
        f"""
        WITH touched AS (SELECT DISTINCT id FROM ({touched_sql}) ids(id) WHERE id IS NOT NULL),
        orders AS (
            SELECT o.customer_id, max(o.ordered_on) AS last
              FROM customers_order o
             WHERE o.tenant_id = %s AND o.status <> %s AND o.customer_id IN (SELECT id FROM touched)
             GROUP BY o.customer_id
        ), visits AS (
            SELECT p.customer_id, max((p.occurred_at AT TIME ZONE %s)::date) AS last
              FROM customers_touchpoint p
             WHERE p.tenant_id = %s AND p.channel = ANY(%s) AND p.customer_id IN (SELECT id FROM touched)
             GROUP BY p.customer_id
        ), latest AS (
            SELECT touched.id, GREATEST(orders.last, visits.last) AS last
              FROM touched
              LEFT JOIN orders ON orders.customer_id = touched.id
              LEFT JOIN visits ON visits.customer_id = touched.id
        )
        UPDATE customers_customer c SET last_visit_on = latest.last FROM latest
         WHERE c.tenant_id = %s AND c.id = latest.id AND c.last_visit_on IS DISTINCT FROM latest.last
        """,
        [
            ctx.tenant_id,
            Order.Status.REVERSED,
            ctx.zone,
            ctx.tenant_id,
            [str(channel) for channel in IN_PERSON],
            ctx.tenant_id,
        ],
    )


UPSERTS: dict[str, Callable[[_Stage, _Context], dict[str, int]]] = {
    ImportJob.Kind.CUSTOMERS: _upsert_customers,
    ImportJob.Kind.VEHICLES: _upsert_vehicles,
    ImportJob.Kind.ORDERS: _upsert_orders,
}
# one import at a time per dealership: a second commit waits for the first (advisory lock key)
_LOCK_NAMESPACE = 0x494D50  # "IMP"


def _write_rows(job: ImportJob) -> dict[str, int]:
    """Scan again, COPY the valid rows into the stage, upsert. Raises when the file has errors now."""
    tenant = Tenant.objects.get(pk=require_tenant_id())
    now = timezone.now()
    ctx = _Context(tenant_id=tenant.pk, today=now.astimezone(tenant.zone).date(), now=now, zone=tenant.time_zone)
    spec = import_kind(job.kind)
    stage = _Stage(spec, job.pk)
    stage.create()
    result = _run_scan(job, sink=stage.copy)
    if result.errors.count:
        raise _FileNoLongerValid(result)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {stage.table}")
    counts = UPSERTS[job.kind](stage, ctx)
    stage.drop()
    # Data-quality scores of imported records are computed by the nightly step (or "Recompute
    # now"): a whole-dealership rescore inside this long transaction would hold it far longer.
    counts["rows"] = result.total_rows
    committed_by = get_user_model().objects.filter(pk=job.mapping.get("committed_by")).first()
    request = job.mapping.get("request") or {}
    audit_record(
        action=AuditAction.CUSTOMERS_IMPORTED,
        actor=committed_by or job.created_by,
        target=job,
        summary=_("%(file)s: %(created)d new, %(updated)d updated, %(unchanged)d unchanged")
        % {"file": job.original_name, **counts},
        data={"kind": job.kind, "job": job.pk, "file": job.original_name, **counts},
        meta=RequestMeta(ip_address=request.get("ip_address"), user_agent=request.get("user_agent") or ""),
    )
    return counts


def import_commit(*, job_id: int) -> ImportJob | None:
    """Write a checked file all-or-nothing. Status DONE with counts, INVALID when the file no longer
    passes (the database changed since the check), FAILED on any other error; in both of the
    latter, nothing was written. Does nothing for a job that is not IMPORTING (safe to retry).
    """
    tenant_id = require_tenant_id()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_NAMESPACE, f"tenant:{tenant_id}"])
    job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None or job.status != ImportJob.Status.IMPORTING:
        return job
    with translation.override(_language(job)):
        try:
            with transaction.atomic():
                counts = _write_rows(job)
        except _FileNoLongerValid as rejected:
            _store_scan(job, rejected.result)
            job.status = ImportJob.Status.INVALID
            job.save(
                update_fields=["status", "mapping", "total_rows", "processed_rows", "error_count", "errors", "result"]
            )
            return job
        except Exception as error:  # whatever failed, the savepoint rolled it all back
            logger.exception("import %s failed", job.pk)
            job.status = ImportJob.Status.FAILED
            job.result = {
                "error": _(
                    "The import failed and nothing was written (%(reason)s). Try again, or ask an administrator."
                )
                % {"reason": type(error).__name__}
            }
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "result", "finished_at"])
            return job
    job.status = ImportJob.Status.DONE
    job.result = counts
    job.processed_rows = job.total_rows = counts["rows"]
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "result", "processed_rows", "total_rows", "finished_at"])
    return job
