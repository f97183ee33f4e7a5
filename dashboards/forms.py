from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core.forms import DateRangeForm
from crm.core.period import EARLIEST, LATEST
from crm.tenancy.models import Membership
from crm.tenancy.roles import Role

CONSULTANT_ROLES = [Role.SALES_CONSULTANT]
ADVISOR_ROLES = [Role.SERVICE_ADVISOR]
LONGEST_DAYS = 3 * 366


def staff_choices(roles: list[Any]) -> Any:
    return Membership.objects.filter(is_service_account=False, role__in=roles).select_related("user")


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        label: str = obj.display_name
        return label if obj.is_active else f"{label} ({_('inactive')})"


class DashboardForm(DateRangeForm):
    """The period, its comparison (the same number of days just before, unless given) and filters."""

    compare_start = forms.DateField(
        label=_("Compare from"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    compare_end = forms.DateField(
        label=_("Compare to"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    consultant = StaffChoiceField(queryset=Membership.objects.none(), required=False, label=_("Sales consultant"))
    advisor = StaffChoiceField(queryset=Membership.objects.none(), required=False, label=_("Service advisor"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["consultant"].queryset = staff_choices(CONSULTANT_ROLES)  # type: ignore[attr-defined]
        self.fields["advisor"].queryset = staff_choices(ADVISOR_ROLES)  # type: ignore[attr-defined]

    @staticmethod
    def defaults() -> dict[str, Any]:
        today = timezone.localdate()
        return {"start": today.replace(day=1), "end": today}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()  # start and end: the shared period rule
        for name in ("compare_start", "compare_end"):
            day = cleaned.get(name)
            if day and not (EARLIEST <= day <= LATEST):
                self.add_error(name, _("Choose a date between 2000 and 2099."))
                cleaned.pop(name, None)
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and (end - start).days >= LONGEST_DAYS:
            self.add_error("start", _("Choose at most three years."))
        compare_start, compare_end = cleaned.get("compare_start"), cleaned.get("compare_end")
        if bool(compare_start) != bool(compare_end):
            self.add_error(
                "compare_end" if compare_start else "compare_start", _("Give both comparison dates, or neither.")
            )
        elif compare_start and compare_end and compare_start > compare_end:
            self.add_error("compare_end", _("The end is before the start."))
        elif compare_start and compare_end and (compare_end - compare_start).days >= LONGEST_DAYS:
            self.add_error("compare_start", _("Choose at most three years."))
        return cleaned


class DrillForm(DashboardForm):
    figure = forms.CharField(max_length=20)
    value = forms.CharField(max_length=20, required=False)
