"""What each kind of file holds: its fields, their parsers, the header texts that map to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

from customers.imports.cells import (
    CUSTOMER_KIND_ALIASES,
    GENDER_ALIASES,
    ORDER_KIND_ALIASES,
    ORDER_STATUS_ALIASES,
    SOURCE_ALIASES,
    _choice_parser,
    _text_parser,
    parse_amount,
    parse_consent,
    parse_date,
    parse_id_number,
    parse_km,
    parse_mobile,
    parse_model_year,
    parse_plate,
    parse_vin,
    person_name_parser,
)
from customers.models import Customer, ImportJob, Order, Vehicle


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


def _field_max_length(model: type[models.Model], name: str) -> int:
    max_length = model._meta.get_field(name).max_length  # type: ignore[union-attr]
    assert max_length is not None
    return int(max_length)


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
        _f(
            "name",
            gettext_lazy("Name"),
            person_name_parser(_field_max_length(Customer, "name")),
            "姓名|客户姓名|客户名称|名称|name|customer name",
            required=True,
        ),
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
        _f("consent_call", gettext_lazy("May call"), parse_consent,
           "同意电话|允许电话|同意电话回访|接受电话回访|可电话联系|may call|consent call|call consent", sql="boolean"),
        _f("consent_sms", gettext_lazy("May text"), parse_consent,
           "同意短信|允许短信|接收短信|短信授权|may text|consent sms|sms consent", sql="boolean"),
        _f("consent_wechat", gettext_lazy("May WeChat"), parse_consent,
           "同意微信|允许微信|接收微信|微信授权|may wechat|consent wechat|wechat consent", sql="boolean"),
        _f("consent_email", gettext_lazy("May email"), parse_consent,
           "同意邮件|允许邮件|接收邮件|邮件授权|may email|consent email|email consent", sql="boolean"),
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
