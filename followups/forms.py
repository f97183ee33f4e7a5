"""Forms of the follow-up pages: the outcome of a call, hand-over and cancel, the filters of the
list and the calendar, the team period, planning by hand, and the dealership's rules."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from django import forms
from django.contrib.postgres.forms import SimpleArrayField
from django.db.models import Q
from django.forms import BoundField
from django.utils.translation import gettext_lazy as _

from crm.core.forms import DateRangeForm
from crm.tenancy.forms import MemberChoiceField
from crm.tenancy.models import Membership
from crm.tenancy.roles import CAPABILITIES
from crm.tenancy.selectors import members_who_can
from customers.models import Customer, Vehicle
from followups.models import Channel, Disposition, Followup, FollowupSettings, Reason, Status
from followups.selectors import FOLLOWUP_SORTS

MONTH = re.compile(r"^(\d{4})-(\d{2})$")
# the calendar pages that can be shown: the arithmetic of the month around a date stays in range
FIRST_YEAR, LAST_YEAR = 2000, 2999


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class OutcomeForm(forms.Form):
    """What came of a call or visit. The one-click buttons of the queue send `disposition` only."""

    disposition = forms.ChoiceField(label=_("Outcome"), choices=Disposition.choices)
    notes = forms.CharField(label=_("Notes"), required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))
    callback_on = forms.DateField(
        label=_("Call back on"),
        required=False,
        widget=_date_input(),
        help_text=_("Only for “Call back later”: the day the customer asked for."),
    )
    next = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)


class AssignForm(forms.Form):
    assignee = MemberChoiceField(
        label=_("Hand over to"),
        queryset=Membership.objects.none(),
        required=False,
        empty_label=_("Nobody: back to the pool"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = members_who_can("followups.work")  # type: ignore[attr-defined]


class CancelForm(forms.Form):
    note = forms.CharField(label=_("Why is it cancelled"), max_length=300)


class QueuePersonForm(forms.Form):
    """A manager opens a colleague's queue (?assignee=<membership id>)."""

    assignee = MemberChoiceField(
        label=_("Whose queue"), queryset=Membership.objects.none(), required=False, empty_label=_("Mine")
    )
    tab = forms.ChoiceField(choices=[("mine", "mine"), ("pool", "pool")], required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = members_who_can("followups.work")  # type: ignore[attr-defined]


class CalendarForm(forms.Form):
    month = forms.CharField(label=_("Month"), required=False, max_length=7)
    assignee = forms.ChoiceField(label=_("Whose follow-ups"), required=False)

    def __init__(self, *args: Any, viewer: Membership, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices: list[tuple[str, Any]] = []
        if viewer.can("followups.work"):
            choices.append(("", _("Mine")))
        if viewer.can("followups.view_all"):
            choices.append(("team", _("The whole team")))
        if viewer.can("followups.manage"):
            choices += [(str(m.pk), m.display_name) for m in members_who_can("followups.work") if m.pk != viewer.pk]
        self.fields["assignee"].choices = choices  # type: ignore[attr-defined]
        self.people = (
            {str(m.pk): m for m in members_who_can("followups.work")} if viewer.can("followups.manage") else {}
        )

    def clean_month(self) -> date | None:
        value: str = self.cleaned_data.get("month") or ""
        if not value:
            return None
        match = MONTH.match(value.strip())
        if match is None or not 1 <= int(match.group(2)) <= 12:
            raise forms.ValidationError(_("Give a month as YYYY-MM, e.g. 2026-03."))
        year = int(match.group(1))
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise forms.ValidationError(
                _("Choose a month between %(first)s and %(last)s.")
                % {
                    "first": FIRST_YEAR,
                    "last": LAST_YEAR,
                }
            )
        return date(year, int(match.group(2)), 1)


ACTIVE = "active"
POOL = "pool"


class ListFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("All statuses")), (ACTIVE, _("Open or to retry")), *Status.choices],
    )
    reason = forms.ChoiceField(label=_("Reason"), required=False, choices=[("", _("All reasons")), *Reason.choices])
    assignee = forms.ChoiceField(label=_("Held by"), required=False)
    scheduled_from = forms.DateField(label=_("Scheduled from"), required=False, widget=_date_input())
    scheduled_to = forms.DateField(label=_("Scheduled to"), required=False, widget=_date_input())
    overdue = forms.BooleanField(label=_("Overdue only"), required=False)
    customer = forms.IntegerField(required=False, min_value=1, max_value=2**62, widget=forms.HiddenInput)
    sort = forms.ChoiceField(required=False, choices=[("", ""), *((k, k) for k in FOLLOWUP_SORTS)])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.people = {str(m.pk): m for m in members_who_can("followups.work")}
        self.fields["assignee"].choices = [  # type: ignore[attr-defined]
            ("", _("Anyone")),
            (POOL, _("Nobody (the pool)")),
            *[(pk, m.display_name) for pk, m in self.people.items()],
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("scheduled_from"), cleaned.get("scheduled_to")
        if start and end and start > end:
            self.add_error("scheduled_to", _("The end is before the start."))
        return cleaned


class TeamPeriodForm(DateRangeForm):
    """The period the completion figures cover."""


class HandOverForm(forms.Form):
    from_member = MemberChoiceField(label=_("Everything open held by"), queryset=Membership.objects.none())
    to_member = MemberChoiceField(
        label=_("Goes to"), queryset=Membership.objects.none(), required=False, empty_label=_("Nobody: the pool")
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # from: anyone whose role may hold follow-ups, also a colleague who has left, and whoever
        # holds open ones now (a role changed since); not the system admin or the auditor
        holders = Followup.objects.filter(status__in=[Status.OPEN, Status.NO_ANSWER]).values("assignee_id")
        self.fields["from_member"].queryset = (  # type: ignore[attr-defined]
            Membership.objects.filter(is_service_account=False)
            .filter(Q(role__in=list(CAPABILITIES["followups.work"][1])) | Q(pk__in=holders))
            .select_related("user")
            .order_by("-is_active", "user__last_name", "user__first_name")
        )
        self.fields["to_member"].queryset = members_who_can("followups.work")  # type: ignore[attr-defined]


class PlanForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=Reason.choices, initial=Reason.MANUAL)
    due_from = forms.DateField(label=_("Call on"), widget=_date_input())
    due_until = forms.DateField(
        label=_("Latest day"),
        required=False,
        widget=_date_input(),
        help_text=_("Empty: the dealership's usual window."),
    )
    vehicle = forms.ModelChoiceField(
        label=_("Vehicle"), queryset=Vehicle.objects.none(), required=False, empty_label=_("No particular vehicle")
    )
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices, initial=Channel.CALL)
    note = forms.CharField(label=_("What to talk about"), required=False, max_length=300)
    assignee = MemberChoiceField(
        label=_("Who makes it"), queryset=Membership.objects.none(), required=False, empty_label=_("Me")
    )

    def __init__(self, *args: Any, customer: Customer, may_assign: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["vehicle"].queryset = customer.vehicles.order_by("-purchase_date", "-id")  # type: ignore[attr-defined]
        if may_assign:
            self.fields["assignee"].queryset = members_who_can("followups.work")  # type: ignore[attr-defined]
        else:
            del self.fields["assignee"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("due_from"), cleaned.get("due_until")
        if start and end and start > end:
            self.add_error("due_until", _("The latest day cannot be before the earliest."))
        return cleaned


class DayListField(SimpleArrayField):
    """Days like 1,7,30 — also with the full-width comma or 、 an IME types, and spaces around them."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            value = re.sub(r"[,，、;；\s]+", ",", value).strip(",")
        return super().to_python(value)


class SettingsForm(forms.ModelForm):
    FIELDSETS: list[tuple[Any, list[str]]] = [
        (_("After delivery"), ["delivery_enabled", "delivery_days", "delivery_channel"]),
        (
            _("Maintenance reminders"),
            [
                "maintenance_enabled",
                "maintenance_months",
                "maintenance_km",
                "maintenance_lead_days",
                "maintenance_channel",
            ],
        ),
        (_("After service"), ["service_enabled", "service_after_days", "service_channel"]),
        (
            _("Warranty and insurance"),
            ["warranty_enabled", "warranty_lead_days", "insurance_enabled", "insurance_lead_days", "expiry_channel"],
        ),
        (_("Birthdays"), ["birthday_enabled", "birthday_lead_days", "birthday_channel"]),
        (
            _("Regular calls by value tier"),
            [
                "cadence_enabled",
                "cadence_key_days",
                "cadence_consolidate_days",
                "cadence_maintain_days",
                "cadence_exit_days",
                "cadence_channel",
            ],
        ),
        (_("Win-back"), ["win_back_enabled", "win_back_months"]),
        (_("Complaints"), ["complaint_enabled"]),
        (_("Working the queue"), ["window_days", "max_attempts", "retry_after_days", "daily_cap", "owner_calls"]),
    ]

    class Meta:
        model = FollowupSettings
        fields = [
            "delivery_enabled",
            "delivery_days",
            "delivery_channel",
            "maintenance_enabled",
            "maintenance_months",
            "maintenance_km",
            "maintenance_lead_days",
            "maintenance_channel",
            "service_enabled",
            "service_after_days",
            "service_channel",
            "warranty_enabled",
            "warranty_lead_days",
            "insurance_enabled",
            "insurance_lead_days",
            "expiry_channel",
            "birthday_enabled",
            "birthday_lead_days",
            "birthday_channel",
            "cadence_enabled",
            "cadence_key_days",
            "cadence_consolidate_days",
            "cadence_maintain_days",
            "cadence_exit_days",
            "cadence_channel",
            "win_back_enabled",
            "win_back_months",
            "complaint_enabled",
            "window_days",
            "max_attempts",
            "retry_after_days",
            "daily_cap",
            "owner_calls",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        days = self.fields["delivery_days"]
        self.fields["delivery_days"] = DayListField(
            forms.IntegerField(min_value=1, max_value=365),
            max_length=6,
            label=days.label,
            help_text=days.help_text,
        )

    def fieldsets(self) -> list[tuple[Any, list[BoundField]]]:
        return [(title, [self[name] for name in names]) for title, names in self.FIELDSETS]
