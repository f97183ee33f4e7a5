"""Forms of the complaint pages (staff) and the public complaint form."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from complaints.models import Channel, ComplaintCategory, Severity, Status
from complaints.selectors import QUEUES, TICKET_SORTS, TicketFilters
from crm.core.forms import DateRangeForm
from crm.tenancy.forms import MemberChoiceField
from crm.tenancy.models import Membership
from crm.tenancy.selectors import members_who_can


def _categories(active_only: bool = True) -> Any:
    categories = ComplaintCategory.objects.order_by("position", "name")
    return categories.filter(is_active=True) if active_only else categories


class TicketForm(forms.Form):
    contact_name = forms.CharField(label=_("Contact name"), max_length=100)
    contact_mobile = forms.CharField(label=_("Contact mobile"), max_length=20)
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices)
    category = forms.ModelChoiceField(
        label=_("Category"), queryset=ComplaintCategory.objects.none(), empty_label=_("Choose a category")
    )
    severity = forms.ChoiceField(label=_("Severity"), choices=Severity.choices, initial=Severity.NORMAL)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    description = forms.CharField(label=_("What happened"), widget=forms.Textarea(attrs={"rows": 5}), max_length=8000)
    assignee = MemberChoiceField(label=_("Assignee"), queryset=Membership.objects.none(), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = _categories()  # type: ignore[attr-defined]
        self.fields["assignee"].queryset = members_who_can("complaints.work")  # type: ignore[attr-defined]
        self.fields["assignee"].help_text = _("Empty: you.")


class AdvanceForm(forms.Form):
    to_status = forms.ChoiceField(choices=Status.choices, widget=forms.HiddenInput)
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)


class CloseForm(AdvanceForm):
    root_cause = forms.CharField(label=_("Root cause"), widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)
    resolution = forms.CharField(label=_("Resolution"), widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)
    compensation_amount = forms.DecimalField(
        label=_("Compensation (CNY)"), min_value=Decimal("0"), max_digits=10, decimal_places=2, initial=Decimal("0")
    )
    compensation_points = forms.IntegerField(label=_("Compensation (loyalty points)"), min_value=0, initial=0)
    compensation_note = forms.CharField(label=_("Compensation details"), max_length=300, required=False)


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)


class AssignForm(forms.Form):
    assignee = MemberChoiceField(label=_("Assignee"), queryset=Membership.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = members_who_can("complaints.work")  # type: ignore[attr-defined]


class AttachForm(forms.Form):
    file = forms.FileField(
        label=_("File"), help_text=_("Photo (JPG, PNG), PDF or recording (MP3, M4A, MP4), 10 MB at most.")
    )


class QueueForm(forms.Form):
    queue = forms.ChoiceField(choices=[(q, q) for q in QUEUES], required=False)
    q = forms.CharField(required=False, max_length=100, label=_("Search"))
    category = forms.ModelChoiceField(queryset=ComplaintCategory.objects.none(), required=False, label=_("Category"))
    severity = forms.ChoiceField(choices=[("", _("All severities")), *Severity.choices], required=False)
    status = forms.ChoiceField(choices=[("", _("All steps")), *Status.choices], required=False)
    sort = forms.ChoiceField(choices=[("", ""), *((k, k) for k in TICKET_SORTS)], required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["category"]
        field.queryset = _categories(active_only=False)  # type: ignore[attr-defined]
        field.empty_label = _("All categories")  # type: ignore[attr-defined]

    def filters(self) -> TicketFilters:
        data = self.cleaned_data
        return TicketFilters(
            queue=data.get("queue") or "mine",
            q=data.get("q") or "",
            category=data.get("category"),
            severity=data.get("severity") or "",
            status=data.get("status") or "",
            sort=data.get("sort") or "",
        )


class SettingsForm(forms.Form):
    reopen_window_days = forms.IntegerField(
        label=_("Reopen window (days)"),
        min_value=0,
        max_value=365,
        help_text=_("A ticket reopened within this many days of closing counts as not resolved."),
    )
    follow_up_after_days = forms.IntegerField(label=_("Follow-up call after (days)"), min_value=0, max_value=60)
    public_form_enabled = forms.BooleanField(label=_("Public complaint form"), required=False)


class CategoryForm(forms.Form):
    code = forms.SlugField(label=_("Code"), max_length=40)
    name = forms.CharField(label=_("Name"), max_length=60)
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)


class SlaPolicyForm(forms.Form):
    severity = forms.ChoiceField(label=_("Severity"), choices=Severity.choices)
    category = forms.ModelChoiceField(
        label=_("Category"), queryset=ComplaintCategory.objects.none(), required=False, empty_label=_("Any category")
    )
    first_response_minutes = forms.IntegerField(label=_("First response within (business minutes)"), min_value=1)
    resolution_minutes = forms.IntegerField(label=_("Resolution within (business minutes)"), min_value=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = _categories(active_only=False)  # type: ignore[attr-defined]


class MetricsForm(DateRangeForm):
    pass


# --- Public -----------------------------------------------------------------------------------------


class PublicComplaintForm(forms.Form):
    contact_name = forms.CharField(label=_("Your name"), max_length=100)
    contact_mobile = forms.CharField(
        label=_("Your mobile"), max_length=20, widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"})
    )
    category = forms.ModelChoiceField(
        label=_("What is it about?"), queryset=ComplaintCategory.objects.none(), empty_label=_("Please choose")
    )
    plate = forms.CharField(label=_("Plate (optional)"), max_length=12, required=False)
    subject = forms.CharField(label=_("In one line"), max_length=200)
    description = forms.CharField(label=_("What happened"), widget=forms.Textarea(attrs={"rows": 6}), max_length=4000)
    # Honeypot: people never see or fill it; bots that fill every field are turned away quietly.
    website = forms.CharField(
        required=False, label="", widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = _categories()  # type: ignore[attr-defined]


class PublicStatusForm(forms.Form):
    number = forms.CharField(label=_("Acknowledgement number"), max_length=20)
    mobile = forms.CharField(
        label=_("The mobile you gave"), max_length=20, widget=forms.TextInput(attrs={"inputmode": "tel"})
    )
