"""Forms of the segmentation pages: settings, list filters, the migration dates."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.contrib.postgres.forms import SimpleArrayField
from django.utils.translation import gettext_lazy as _

from customers.models import LifecycleStage
from segmentation.models import Segment, SegmentationSettings, Tier
from segmentation.selectors import NOT_TIERED, ValueFilters
from segmentation.services import SETTINGS_FIELDS

SCORES = [("", "—"), *[(str(n), str(n)) for n in range(1, 6)]]


class SettingsForm(forms.ModelForm):
    recency_days = SimpleArrayField(
        forms.IntegerField(min_value=0),
        max_length=4,
        required=False,
        label=_("Recency limits (days)"),
        help_text=_("Thresholds scoring: four rising limits, e.g. 30,90,180,365 (score 5 within 30 days)."),
    )
    frequency_limits = SimpleArrayField(
        forms.IntegerField(min_value=0),
        max_length=4,
        required=False,
        label=_("Frequency limits (orders)"),
        help_text=_("Four rising limits, e.g. 2,4,6,10 (score 5 from 10 orders in the window)."),
    )
    monetary_limits = SimpleArrayField(
        forms.DecimalField(min_value=0, max_digits=14, decimal_places=2),
        max_length=4,
        required=False,
        label=_("Monetary limits (CNY)"),
        help_text=_("Four rising limits, e.g. 5000,20000,80000,200000."),
    )

    class Meta:
        model = SegmentationSettings
        fields = list(SETTINGS_FIELDS)
        widgets = {
            "strategy_key": forms.Textarea(attrs={"rows": 2}),
            "strategy_consolidate": forms.Textarea(attrs={"rows": 2}),
            "strategy_maintain": forms.Textarea(attrs={"rows": 2}),
            "strategy_exit": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for tier in Tier:
            self.fields[f"strategy_{tier}"].help_text = _("Leave empty to show the standard strategy.")

    def _post_clean(self) -> None:
        # Validation is the service's (settings_update runs full_clean and reports per field).
        pass

    def service_data(self) -> dict[str, Any]:
        return {field: self.cleaned_data[field] for field in SETTINGS_FIELDS if field in self.cleaned_data}


class ValueFilterForm(forms.Form):
    tier = forms.ChoiceField(
        required=False,
        choices=[("", _("All tiers")), *Tier.choices, (NOT_TIERED, _("Not tiered (no purchase yet)"))],
        label=_("Value tier"),
    )
    segment = forms.ChoiceField(required=False, choices=[("", _("All segments")), *Segment.choices], label=_("Segment"))
    r = forms.TypedChoiceField(required=False, choices=SCORES, coerce=int, empty_value=None, label="R")
    f = forms.TypedChoiceField(required=False, choices=SCORES, coerce=int, empty_value=None, label="F")
    m = forms.TypedChoiceField(required=False, choices=SCORES, coerce=int, empty_value=None, label="M")
    lifecycle_stage = forms.ChoiceField(
        required=False, choices=[("", _("All stages")), *LifecycleStage.choices], label=_("Lifecycle stage")
    )
    from_date = forms.DateField(required=False, widget=forms.HiddenInput)
    from_tier = forms.CharField(required=False, max_length=12, widget=forms.HiddenInput)
    to_date = forms.DateField(required=False, widget=forms.HiddenInput)
    to_tier = forms.CharField(required=False, max_length=12, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for field in ("from_tier", "to_tier"):
            value = cleaned.get(field) or ""
            if value and value != NOT_TIERED and value not in Tier.values:
                self.add_error(field, _("Unknown tier."))
        return cleaned

    def filters(self) -> ValueFilters:
        data = self.cleaned_data

        def tier(value: str | None) -> str | None:
            return None if not value else ("" if value == NOT_TIERED else value)

        return ValueFilters(
            tier=tier(data.get("tier")),
            segment=data.get("segment") or None,
            r=data.get("r"),
            f=data.get("f"),
            m=data.get("m"),
            lifecycle_stage=data.get("lifecycle_stage") or "",
            from_date=data.get("from_date"),
            from_tier=tier(data.get("from_tier")) if data.get("from_date") else None,
            to_date=data.get("to_date"),
            to_tier=tier(data.get("to_tier")) if data.get("to_date") else None,
        )


class MigrationForm(forms.Form):
    from_date = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    to_date = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start: date | None = cleaned.get("from_date")
        end: date | None = cleaned.get("to_date")
        if start and end and start > end:
            self.add_error("to_date", _("The end is before the start."))
        return cleaned
