"""Every service that changes a dealership's settings takes a value as its field means it, whatever
Python type a JSON client or a script sends (whole numbers for amounts, numbers as text), and answers
anything else with a field-level ApplicationError that leaves the saved settings as they were. One
shared mechanism does this (crm.tenancy.models.settings_assign); issue 23 item 5 found the
segmentation settings crashing with AttributeError on `monetary_limits=[5000, 20000, 80000, 200000]`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from complaints.services import complaint_settings, complaint_settings_update
from crm.core.errors import ApplicationError
from followups.services import followup_settings, followup_settings_update
from loyalty.services import programme, programme_update
from segmentation.engine import settings_for_tenant
from segmentation.services import settings_update as segmentation_settings_update
from surveys.services import settings_update as survey_settings_update
from surveys.services import survey_settings

pytestmark = pytest.mark.django_db


def test_segmentation_takes_whole_numbers_and_numbers_as_text_for_its_limits(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        saved = segmentation_settings_update(
            actor=dealer_a.manager,
            data={
                "scoring_mode": "thresholds",
                "monetary_limits": [5000, 20000, "80000", 200000.5],
                "recency_days": ["30", 90, 365, 730],
                "frequency_limits": [1, 2, 4, 6],
                "window_months": "24",
            },
        )
        stored = type(saved).objects.get(pk=saved.pk)
    assert stored.monetary_limits == [Decimal("5000"), Decimal("20000"), Decimal("80000"), Decimal("200000.50")]
    assert stored.recency_days == [30, 90, 365, 730] and stored.window_months == 24


BAD_SEGMENTATION = [
    ({"monetary_limits": [5000, "lots", 80000, 200000]}, "monetary_limits"),
    ({"monetary_limits": [{"a": 1}, 2, 3, 4]}, "monetary_limits"),
    ({"monetary_limits": 5000}, "monetary_limits"),
    ({"recency_days": [30, None, 365, 730]}, "recency_days"),
    ({"window_months": [12]}, "window_months"),
    ({"window_months": "twelve"}, "window_months"),
    ({"share_key": True}, "share_key"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("data", "field"), BAD_SEGMENTATION)
def test_segmentation_refuses_what_its_fields_cannot_take_with_a_field_error(dealer_a, in_tenant, data, field):
    with in_tenant(dealer_a):
        before = settings_for_tenant()
        with pytest.raises(ApplicationError) as refused:
            segmentation_settings_update(actor=dealer_a.manager, data=data)
        after = type(before).objects.get(pk=before.pk)
    assert refused.value.fields.get(field)
    assert (after.monetary_limits, after.recency_days, after.window_months, after.share_key) == (
        before.monetary_limits,
        before.recency_days,
        before.window_months,
        before.share_key,
    )


SERVICES: list[tuple[str, Any, Any, dict[str, Any], dict[str, Any]]] = [
    # (name, update, read, good data as a script sends it → stored values, bad data)
    (
        "complaints",
        complaint_settings_update,
        complaint_settings,
        {"reopen_window_days": "14", "follow_up_after_days": 3},
        {"reopen_window_days": {"days": 3}},
    ),
    (
        "followups",
        followup_settings_update,
        followup_settings,
        {"daily_cap": "40", "window_days": 7},
        {"daily_cap": [40]},
    ),
    (
        "surveys",
        survey_settings_update,
        survey_settings,
        {"min_days_between": "30"},
        {"min_days_between": "often"},
    ),
    (
        "loyalty",
        programme_update,
        programme,
        {"expiry_months": "18"},
        {"expiry_months": 1.5},
    ),
]


@pytest.mark.parametrize(("name", "update", "read", "good", "bad"), SERVICES, ids=[s[0] for s in SERVICES])
def test_every_settings_service_converts_values_and_refuses_junk_per_field(
    dealer_a, in_tenant, name, update, read, good, bad
):
    with in_tenant(dealer_a):
        update(actor=dealer_a.manager, data=good)
        row = read()
        stored = type(row).objects.get(pk=row.pk)
        for field, value in good.items():
            assert getattr(stored, field) == int(value), (name, field)
        with pytest.raises(ApplicationError) as refused:
            update(actor=dealer_a.manager, data=bad)
        again = type(row).objects.get(pk=row.pk)
    (field,) = bad
    assert refused.value.fields.get(field), (name, refused.value.fields)
    assert getattr(again, field) == getattr(stored, field)
