from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from customers.validators import (
    normalize_cn_mobile,
    normalize_plate,
    validate_id_number,
    validate_vin,
    vin_check_digit,
)


@pytest.mark.parametrize("raw", ["13812345678", "138 1234 5678", "+86 138-1234-5678", "8613812345678"])
def test_mainland_mobiles_normalise_to_e164(raw):
    assert normalize_cn_mobile(raw) == "+8613812345678"


@pytest.mark.parametrize("raw", ["12345", "1381234567", "02088888888", "hello"])
def test_invalid_or_landline_numbers_are_refused(raw):
    with pytest.raises(ValidationError):
        normalize_cn_mobile(raw)


def test_vin_check_digit_matches_the_iso_3779_example():
    assert vin_check_digit("1M8GDM9AXKP042788") == "X"
    validate_vin("1M8GDM9AXKP042788")


@pytest.mark.parametrize("vin", ["1M8GDM9A1KP042788", "1M8GDM9AXKP04278", "IM8GDM9AXKP042788"])
def test_bad_vins_are_refused(vin):
    with pytest.raises(ValidationError):
        validate_vin(vin)


@pytest.mark.parametrize(
    ("raw", "plate"), [("粤b12345", "粤B·12345"), ("粤B 12345", "粤B·12345"), ("京AD12345", "京A·D12345")]
)
def test_plates_normalise(raw, plate):
    assert normalize_plate(raw) == plate


@pytest.mark.parametrize("raw", ["B12345", "粤B1234", "XX·12345", "粤BO1234"])
def test_bad_plates_are_refused(raw):
    with pytest.raises(ValidationError):
        normalize_plate(raw)


def test_id_number_check_character():
    validate_id_number("11010519491231002X")
    with pytest.raises(ValidationError):
        validate_id_number("110105194912310021")
