"""Forms of the manager pages: the funnel's period and filters, giving a lead out, deciding a
conflict or a defeat, duty, and the rules; and the lead list's filters (sales.forms.LeadFilterForm)
read for its download."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.postgres.forms import SimpleArrayField
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core.forms import DateRangeForm
from crm.core.period import Period
from crm.tenancy.forms import MemberChoiceField
from crm.tenancy.models import Membership
from crm.tenancy.roles import Role
from sales.models import DefeatReason, DemoVehicle, SalesSettings, Source
from sales.selectors import FunnelFilters

LONGEST_DAYS = 3 * 366
SELLING_ROLES = [Role.SALES_CONSULTANT, Role.MANAGER]


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def sellers(*, active_only: bool = True) -> Any:
    """Who can own a lead: sales consultants and managers (the service's rule), by name."""
    people = Membership.objects.filter(is_service_account=False, role__in=SELLING_ROLES).select_related("user")
    if active_only:
        people = people.filter(is_active=True)
    return people.order_by("user__last_name", "user__first_name", "id")


class FunnelForm(DateRangeForm):
    """The funnel's period (leads captured in it) and its filters."""

    source = forms.ChoiceField(label=_("Source"), required=False, choices=[("", _("Any source")), *Source.choices])
    owner = MemberChoiceField(
        label=_("Consultant"), queryset=Membership.objects.none(), required=False, empty_label=_("Everyone")
    )
    series = forms.CharField(label=_("Model"), required=False, max_length=60)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = sellers(active_only=False)  # type: ignore[attr-defined]

    @staticmethod
    def defaults() -> dict[str, Any]:
        today = timezone.localdate()
        return {"start": today.replace(day=1), "end": today}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and (end - start).days >= LONGEST_DAYS:
            self.add_error("start", _("Choose at most three years."))
        return cleaned

    def funnel_filters(self) -> FunnelFilters:
        data = self.cleaned_data
        return FunnelFilters(
            period=Period(data["start"], data["end"]),
            source=data.get("source") or "",
            owner=data.get("owner"),
            series=(data.get("series") or "").strip(),
        )

    def query(self) -> dict[str, str]:
        """The valid values as they go into links (the download, the lead list's drill-downs)."""
        data = self.cleaned_data
        return {
            "start": data["start"].isoformat(),
            "end": data["end"].isoformat(),
            "source": data.get("source") or "",
            "owner": str(data["owner"].pk) if data.get("owner") else "",
            "series": (data.get("series") or "").strip(),
        }


class AssignForm(forms.Form):
    to = MemberChoiceField(
        label=_("Give to"),
        queryset=Membership.objects.none(),
        required=False,
        empty_label=_("Nobody: back to the pool"),
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=300)
    next = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to"].queryset = sellers()  # type: ignore[attr-defined]


class ConflictDecideForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Decision"),
        choices=[("owner", _("Stays with the owner")), ("claimant", _("Give to the claimant"))],
    )


class DefeatDecideForm(forms.Form):
    lead = forms.IntegerField(min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)
    decision = forms.ChoiceField(label=_("Decision"), choices=[("approve", _("Approve")), ("reject", _("Reject"))])
    note = forms.CharField(label=_("Why it is not lost"), required=False, max_length=300)


class DutyForm(forms.Form):
    member = forms.ModelChoiceField(queryset=Membership.objects.none(), widget=forms.HiddenInput)
    on_duty = forms.BooleanField(label=_("On duty"), required=False)
    brands = SimpleArrayField(
        forms.CharField(max_length=40),
        label=_("Brands"),
        required=False,
        max_length=20,
        help_text=_("Comma-separated; empty: every brand."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = sellers()  # type: ignore[attr-defined]


class SalesSettingsForm(forms.ModelForm):
    class Meta:
        model = SalesSettings
        fields = [
            "response_minutes",
            "reclaim_hours",
            "reclaim_overdue_days",
            "protection_days",
            "auto_assign",
            "assign_by_brand",
            "cadence_h_days",
            "cadence_a_days",
            "cadence_b_days",
            "cadence_c_days",
            "dormant_days",
            "wake_days",
            "defeat_needs_approval",
        ]


class DefeatReasonForm(forms.ModelForm):
    class Meta:
        model = DefeatReason
        fields = ["code", "label", "needs_competitor", "is_active"]
        help_texts = {"code": _("Letters, digits and dashes; an existing code changes that reason.")}

    def validate_unique(self) -> None:
        """An existing code is an edit of that reason (the service's rule), not a duplicate."""


class DemoVehicleForm(forms.ModelForm):
    class Meta:
        model = DemoVehicle
        fields = ["brand", "series", "trim", "plate", "vin", "is_active"]


class DemoVehicleStateForm(forms.Form):
    vehicle = forms.ModelChoiceField(queryset=DemoVehicle.objects.none(), widget=forms.HiddenInput)
    is_active = forms.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["vehicle"].queryset = DemoVehicle.objects.all()  # type: ignore[attr-defined]
