"""Turning what people (and DMS exports) type into the stored form, with field-level errors."""

from __future__ import annotations

import itertools
import unicodedata
from typing import Any

from django.core.exceptions import ValidationError
from pypinyin import Style, pinyin

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


NAME_INITIALS_MAX_VARIANTS = 16


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def search_text(value: str) -> str:
    """A name or a search query as names are searched: NFKC (full-width ＡＢ１ → AB1), without white
    space, A-Z in lower case (only those: the database folds the stored names the same way)."""
    return "".join(unicodedata.normalize("NFKC", value).split()).translate(_ASCII_LOWER)


def name_initials(name: str) -> str:
    """The pinyin initials of a name, each way its polyphonic characters can be read, space-separated:
    重庆 → "cq zq", 曾伟 → "zw cw". The first variant is pypinyin's reading of the whole name (with its
    phrase dictionary: 重庆 is chóngqìng); then variants with one character read another way (each
    reading pypinyin lists for it), then two, and so on, at most NAME_INITIALS_MAX_VARIANTS. A Latin
    letter or digit stays itself (lower case); anything else is dropped. Empty when the name has no
    Chinese character."""
    key = search_text(name)
    if not any(_is_han(char) for char in key):
        return ""
    first: list[str] = []
    others: list[list[str]] = []
    readings = pinyin(key, style=Style.NORMAL, errors=_each_character)
    chars = [char for char in key if _is_han(char) or (char.isascii() and char.isalnum())]
    for char, reading in zip(chars, readings, strict=False):
        letter = (reading[0][:1] or char).lower()
        first.append(letter)
        if _is_han(char):
            every = pinyin(char, style=Style.NORMAL, heteronym=True)[0]
            others.append([r[0] for r in dict.fromkeys(every) if r and r[0] != letter])
        else:
            others.append([])
    variants = ["".join(first)]
    for count in range(1, len(first) + 1):
        for positions in itertools.combinations([i for i, o in enumerate(others) if o], count):
            for letters in itertools.product(*(others[i] for i in positions)):
                variant = list(first)
                for position, letter in zip(positions, letters, strict=True):
                    variant[position] = letter
                variants.append("".join(variant))
                if len(dict.fromkeys(variants)) >= NAME_INITIALS_MAX_VARIANTS:
                    return " ".join(list(dict.fromkeys(variants))[:NAME_INITIALS_MAX_VARIANTS])
    return " ".join(dict.fromkeys(variants))


def _each_character(text: str) -> Any:
    return list(text)  # pypinyin: one item per character that has no pinyin (Latin letters, digits)


def _is_han(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\U00020000" <= char <= "\U0002ffff"
