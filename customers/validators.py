"""Validation and normalisation of Chinese mobile numbers, VINs, plates and ID numbers."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_RE = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")

PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_RE = re.compile(rf"^([{PLATE_PROVINCES}])([A-Z])·?([A-HJ-NP-Z0-9]{{5,6}})$")


def normalize_cn_mobile(value: str) -> str:
    """Return the number in E.164 (+86…); mainland China is the default region."""
    raw = re.sub(r"[\s\-()]", "", value or "")
    try:
        number = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _("%(value)s is not a phone number."), params={"value": value}, code="invalid_mobile"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("%(value)s is not a valid phone number."), params={"value": value}, code="invalid_mobile"
        )
    if number.country_code == 86 and phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise ValidationError(_("%(value)s is not a mobile number."), params={"value": value}, code="invalid_mobile")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate_e164_mobile(value: str) -> None:
    if normalize_cn_mobile(value) != value:
        raise ValidationError(_("Store mobile numbers in E.164 form (+86…)."), code="invalid_mobile")


def mask_email(value: str) -> str:
    """wang.li@example.com -> w***@example.com"""
    if not value or "@" not in value:
        return "*" * len(value or "")
    local, domain = value.split("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_mobile(value: str) -> str:
    """+8613812345678 -> 138****5678 (the national number, middle four hidden)."""
    if not value:
        return ""
    national = value[3:] if value.startswith("+86") else value.lstrip("+")
    if len(national) < 7:
        return "*" * len(national)
    return f"{national[:3]}****{national[-4:]}"


def mask_id_number(value: str) -> str:
    if not value:
        return ""
    return f"{value[:3]}{'*' * (len(value) - 7)}{value[-4:]}" if len(value) > 7 else "*" * len(value)


def vin_check_digit(vin: str) -> str:
    total = sum(_VIN_VALUES[ch] * weight for ch, weight in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def validate_vin(value: str) -> None:
    vin = (value or "").upper()
    if not _VIN_RE.match(vin):
        raise ValidationError(
            _("A VIN has 17 characters: digits and capital letters except I, O and Q."), code="invalid_vin"
        )
    if vin[8] != vin_check_digit(vin):
        raise ValidationError(_("The VIN's check digit (9th character) does not match."), code="invalid_vin")


def normalize_person_name(value: str) -> str:
    """The one way a person's name is cleaned (customers, complaint contacts, imports; leads later):
    Unicode NFKC (full-width letters and spaces become ordinary ones), every control and format
    character dropped (zero-width spaces and joiners, bidi marks, soft hyphens, BOM), runs of white
    space folded to one space, ends trimmed. A name with nothing visible left is refused."""
    text = unicodedata.normalize("NFKC", value)
    text = "".join(char for char in text if not unicodedata.category(char).startswith("C") or char in "\t\n")
    text = " ".join(text.split())
    if not text:
        raise ValidationError(_("Enter a name with at least one visible character."), code="invisible")
    return text


def normalize_plate(value: str) -> str:
    """粤b12345 / 粤B 12345 / 粤B·12345 -> 粤B·12345."""
    compact = re.sub(r"[\s·.\-]", "", value or "").upper()
    match = _PLATE_RE.match(compact)
    if not match:
        raise ValidationError(
            _("%(value)s is not a Chinese plate such as 粤B·12345."), params={"value": value}, code="invalid_plate"
        )
    return f"{match.group(1)}{match.group(2)}·{match.group(3)}"


def validate_plate(value: str) -> None:
    if normalize_plate(value) != value:
        raise ValidationError(_("Store plates as 粤B·12345."), code="invalid_plate")


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def validate_id_number(value: str) -> None:
    """Mainland resident ID (18 characters, GB 11643 check character)."""
    if not re.match(r"^\d{17}[\dX]$", value or ""):
        raise ValidationError(_("An ID number has 17 digits and a check character."), code="invalid_id_number")
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != value[17]:
        raise ValidationError(_("The ID number's check character does not match."), code="invalid_id_number")
