"""Cell values: what a DMS export puts in a cell, turned into the stored form.

Each `parse_*` takes a raw cell (text from a CSV, or what openpyxl read: numbers, dates) and returns
the normalised value, None for a blank cell, or raises ValidationError with the message the user
sees. The alias tables map the words DMS exports use to the models' choices.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import TextChoices
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from openpyxl.utils.datetime import from_excel

from customers.models import Customer, Order
from customers.validators import (
    normalize_cn_mobile,
    normalize_person_name,
    normalize_plate,
    validate_id_number,
    validate_vin,
)

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


def person_name_parser(max_length: int) -> Callable[[Any], str | None]:
    """A person's name, cleaned the one way names are (normalize_person_name), then its length checked."""
    text_of = _text_parser(max_length)

    def parse(raw: Any) -> str | None:
        text = _cell_or_none(raw)
        return None if text is None else text_of(normalize_person_name(text))

    return parse


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


CONSENT_YES = frozenset(("是", "同意", "允许", "可以", "接受", "愿意", "y", "yes", "true", "1", "√", "✓", "✔"))
CONSENT_NO = frozenset(
    ("否", "不同意", "不允许", "不可以", "拒绝", "不接受", "不愿意", "n", "no", "false", "0", "×", "✗", "x")
)


def parse_consent(raw: Any) -> bool | None:
    """A consent column: yes (是/同意/Y/1/√ …), no (否/不同意/N/0/× …), or None for a blank cell
    (the stored consent stays; a new customer has none)."""
    text = _cell_or_none(raw)
    if text is None:
        return None
    key = text.lower()
    if key in CONSENT_YES:
        return True
    if key in CONSENT_NO:
        return False
    raise ValidationError(_("Unknown value %(value)s; use 是 or 否 (yes or no).") % {"value": text})


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
