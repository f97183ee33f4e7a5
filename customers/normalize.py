"""Turning what people (and DMS exports) type into the stored form, with field-level errors."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from customers.validators import normalize_cn_mobile, normalize_person_name, normalize_plate

NORMALIZERS = {
    "name": normalize_person_name,
    "mobile": normalize_cn_mobile,
    "mobile_secondary": normalize_cn_mobile,
    "plate": normalize_plate,
    "vin": lambda value: value.strip().upper(),
    "id_number": lambda value: value.strip().upper(),
}


def normalize_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Normalise known fields in place-free fashion; raises ValidationError keyed by field."""
    cleaned = dict(data)
    errors: dict[str, list[str]] = {}
    for field, normalize in NORMALIZERS.items():
        value = cleaned.get(field)
        if isinstance(value, str):
            value = value.strip()
            if not value:
                cleaned[field] = ""
                continue
            try:
                cleaned[field] = normalize(value)
            except ValidationError as error:
                errors[field] = list(error.messages)
    if errors:
        raise ValidationError(errors)
    return cleaned
