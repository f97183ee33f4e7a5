"""Forms of the consultant's sales pages: capture, the list's filters, working a lead (contact,
invitation, test drive, quote, order, delivery, defeat), a manager's decisions, and walk-ins.

Forms check the shape of the input only; every rule of the business is the service's, and its
field errors come back onto these fields (crm.core.forms.form_errors_from)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.tenancy.forms import MemberChoiceField
from crm.tenancy.models import Membership
from crm.tenancy.selectors import members_who_can
from customers.models import Touchpoint
from sales.models import DefeatReason, DemoVehicle, Level, Payment, Quote, Source, Stage, Timeframe
from sales.selectors import LEAD_SORTS, LeadFilters
from sales.services import CONTACT_DISPOSITIONS, TEST_DRIVE_OUTCOMES

ACCESSORY_ROWS = 6
TEST_DRIVE_MINUTES = [(30, _("30 minutes")), (60, _("1 hour")), (90, _("1½ hours")), (120, _("2 hours"))]


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _datetime_input() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _money_field(label: Any, *, required: bool = False, **kwargs: Any) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, required=required, max_digits=12, decimal_places=2, min_value=0, localize=False, **kwargs
    )


def _sellers() -> Any:
    """Who a lead can be given to: active staff who work sales."""
    return members_who_can("sales.work")


# --- capture and edit -------------------------------------------------------------------------------


class LeadCaptureForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    mobile = forms.CharField(label=_("Mobile"), max_length=30, widget=forms.TextInput(attrs={"inputmode": "tel"}))
    wechat = forms.CharField(label=_("WeChat"), max_length=40, required=False)
    source = forms.ChoiceField(label=_("Source"), choices=[("", "—"), *Source.choices])
    brand = forms.CharField(label=_("Brand of interest"), max_length=40, required=False)
    series = forms.CharField(label=_("Model of interest"), max_length=60, required=False)
    other_models = forms.CharField(label=_("Other models considered"), max_length=200, required=False)
    budget = _money_field(_("Budget (CNY)"))
    timeframe = forms.ChoiceField(label=_("Buys"), choices=Timeframe.choices, initial=Timeframe.MONTH)
    payment = forms.ChoiceField(label=_("Payment"), choices=Payment.choices, initial=Payment.UNDECIDED)
    trade_in = forms.CharField(
        label=_("Trade-in vehicle"),
        max_length=120,
        required=False,
        help_text=_("Brand, model and year of the car to trade in."),
    )
    level = forms.ChoiceField(
        label=_("Intent level"),
        choices=[("", _("From the timeframe")), *Level.choices],
        required=False,
    )
    campaign = forms.CharField(label=_("Campaign"), max_length=100, required=False)
    notes = forms.CharField(label=_("Notes"), required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))
    referrer = forms.IntegerField(
        label=_("Referred by (customer number)"),
        required=False,
        min_value=1,
        max_value=2**62,
        help_text=_("For a referral: the number of the customer who sent them (on their customer page)."),
    )
    appointment_at = forms.DateTimeField(
        label=_("Appointment"),
        required=False,
        widget=_datetime_input(),
        help_text=_("When they agreed to come to the showroom (邀约), if they did."),
    )
    owner = MemberChoiceField(
        label=_("Consultant"),
        queryset=Membership.objects.none(),
        required=False,
        empty_label=_("By the dealership's rule"),
    )

    def __init__(self, *args: Any, may_assign: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if may_assign:
            self.fields["owner"].queryset = _sellers()  # type: ignore[attr-defined]
        else:
            del self.fields["owner"]


class LeadEditForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    wechat = forms.CharField(label=_("WeChat"), max_length=40, required=False)
    brand = forms.CharField(label=_("Brand of interest"), max_length=40, required=False)
    series = forms.CharField(label=_("Model of interest"), max_length=60, required=False)
    other_models = forms.CharField(label=_("Other models considered"), max_length=200, required=False)
    budget = _money_field(_("Budget (CNY)"))
    timeframe = forms.ChoiceField(label=_("Buys"), choices=Timeframe.choices)
    payment = forms.ChoiceField(label=_("Payment"), choices=Payment.choices)
    trade_in = forms.CharField(label=_("Trade-in vehicle"), max_length=120, required=False)
    level = forms.ChoiceField(label=_("Intent level"), choices=Level.choices)
    campaign = forms.CharField(label=_("Campaign"), max_length=100, required=False)
    notes = forms.CharField(label=_("Notes"), required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 4}))
    next_followup_on = forms.DateField(
        label=_("Next follow-up"),
        required=False,
        widget=_date_input(),
        help_text=_("Change it to call on another day; a new intent level sets it from its cadence."),
    )


# --- the list ---------------------------------------------------------------------------------------

POOL = "pool"


class LeadFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    stage = forms.ChoiceField(
        label=_("Stage"),
        required=False,
        choices=[("", _("All stages")), ("open", _("Open")), ("closed", _("Closed")), *Stage.choices],
    )
    level = forms.ChoiceField(label=_("Intent level"), required=False, choices=[("", _("All levels")), *Level.choices])
    source = forms.ChoiceField(label=_("Source"), required=False, choices=[("", _("All sources")), *Source.choices])
    owner = forms.ChoiceField(label=_("Consultant"), required=False)
    series = forms.CharField(label=_("Model"), required=False, max_length=60)
    created_from = forms.DateField(label=_("Captured from"), required=False, widget=_date_input())
    created_to = forms.DateField(label=_("Captured to"), required=False, widget=_date_input())
    reached = forms.ChoiceField(
        label=_("Reached"),
        required=False,
        choices=[("", _("Any stage")), *((s.value, s.label) for s in Stage if s != Stage.DEFEATED)],
    )
    defeat = forms.ChoiceField(
        label=_("Defeat"),
        required=False,
        choices=[("", _("Any")), ("pending", _("Waiting for approval")), ("approved", _("Approved"))],
    )
    due = forms.BooleanField(label=_("Follow-up due"), required=False)
    sort = forms.ChoiceField(required=False, choices=[("", ""), *((k, k) for k in LEAD_SORTS)])

    def __init__(self, *args: Any, sees_all: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.people: dict[str, Membership] = {}
        if sees_all:
            self.people = {str(m.pk): m for m in _sellers()}
            self.fields["owner"].choices = [  # type: ignore[attr-defined]
                ("", _("Anyone")),
                (POOL, _("Nobody (the pool)")),
                *[(pk, m.display_name) for pk, m in self.people.items()],
            ]
        else:
            self.fields["owner"].choices = [("", _("Mine and the pool")), (POOL, _("The pool"))]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("created_from"), cleaned.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", _("The end is before the start."))
        return cleaned

    def filters(self) -> LeadFilters:
        """The valid form as the selector's filters: the list page and its download read it alike
        (the viewer's own visibility is applied by selectors.lead_list)."""
        data = self.cleaned_data
        holder = data.get("owner") or ""
        return LeadFilters(
            q=data.get("q") or "",
            stage=data.get("stage") or "",
            level=data.get("level") or "",
            source=data.get("source") or "",
            owner=self.people.get(holder) if holder != POOL else None,
            pool=holder == POOL,
            series=(data.get("series") or "").strip(),
            created_from=data.get("created_from"),
            created_to=data.get("created_to"),
            reached=data.get("reached") or "",
            defeat=data.get("defeat") or "",
            due=bool(data.get("due")),
            sort=data.get("sort") or "-created",
        )


# --- working a lead ---------------------------------------------------------------------------------


class ContactForm(forms.Form):
    disposition = forms.ChoiceField(label=_("Outcome"), choices=[(d.value, d.label) for d in CONTACT_DISPOSITIONS])
    channel = forms.ChoiceField(
        label=_("Channel"),
        choices=[
            (c.value, c.label) for c in (Touchpoint.Channel.CALL, Touchpoint.Channel.WECHAT, Touchpoint.Channel.SMS)
        ],
    )
    notes = forms.CharField(label=_("Notes"), required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))
    callback_on = forms.DateField(
        label=_("Call back on"),
        required=False,
        widget=_date_input(),
        help_text=_("Only for “Call back later”: the day they asked for."),
    )


class InviteForm(forms.Form):
    appointment_at = forms.DateTimeField(label=_("Appointment"), widget=_datetime_input())
    note = forms.CharField(label=_("Note"), required=False, max_length=300)


class TestDriveBookForm(forms.Form):
    vehicle = forms.ModelChoiceField(label=_("Demo vehicle"), queryset=DemoVehicle.objects.none())
    starts_at = forms.DateTimeField(label=_("From"), widget=_datetime_input())
    minutes = forms.TypedChoiceField(label=_("How long"), choices=TEST_DRIVE_MINUTES, coerce=int, initial=60)

    def __init__(self, *args: Any, vehicles: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["vehicle"].queryset = vehicles  # type: ignore[attr-defined]


class SlotDayForm(forms.Form):
    """The day whose free slots the booking page shows (?day=YYYY-MM-DD)."""

    day = forms.DateField(label=_("Day"), required=False, widget=_date_input())

    def clean_day(self) -> date:
        day: date | None = self.cleaned_data.get("day")
        today = timezone.localdate()
        if day is None:
            return today
        if not today <= day <= today + timedelta(days=90):
            raise forms.ValidationError(_("Choose a day from today to 90 days ahead."))
        return day


class TestDriveRecordForm(forms.Form):
    status = forms.ChoiceField(label=_("What happened"), choices=[(s.value, s.label) for s in TEST_DRIVE_OUTCOMES])
    licence_number = forms.CharField(label=_("Driving licence number"), max_length=20, required=False)
    licence_expiry = forms.DateField(label=_("Licence valid until"), required=False, widget=_date_input())
    licence_consent = forms.BooleanField(label=_("The driver agreed to the licence being recorded"), required=False)
    feedback = forms.CharField(
        label=_("Feedback"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    rating = forms.TypedChoiceField(
        label=_("How they liked it (1–5)"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "—"), *((n, str(n)) for n in range(1, 6))],
    )
    agreement = forms.FileField(
        label=_("Signed agreement"),
        required=False,
        help_text=_("A PDF or a photo (JPEG, PNG), at most 10 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}),
    )


class AccessoryForm(forms.Form):
    name = forms.CharField(label=_("Accessory"), max_length=80, required=False)
    price = _money_field(_("Price"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("price") is not None and not cleaned.get("name"):
            self.add_error("name", _("Name the accessory."))
        return cleaned


AccessoryFormSet = forms.formset_factory(AccessoryForm, extra=ACCESSORY_ROWS, max_num=ACCESSORY_ROWS, absolute_max=20)


class QuoteForm(forms.Form):
    brand = forms.CharField(label=_("Brand"), max_length=40)
    series = forms.CharField(label=_("Model"), max_length=60)
    trim = forms.CharField(label=_("Trim"), max_length=100, required=False)
    colour = forms.CharField(label=_("Colour"), max_length=30, required=False)
    list_price = _money_field(_("List price"), required=True)
    discount = _money_field(_("Discount"))
    trade_in_vehicle = forms.CharField(label=_("Trade-in vehicle"), max_length=120, required=False)
    trade_in_value = _money_field(_("Trade-in appraisal"))
    insurance = _money_field(_("Insurance"))
    fees = _money_field(_("Registration and other fees"))
    financed = forms.BooleanField(label=_("With a loan"), required=False)
    down_payment = _money_field(_("Down payment"))
    term_months = forms.IntegerField(label=_("Loan term (months)"), required=False, min_value=6, max_value=84)
    monthly_rate = forms.DecimalField(
        label=_("Monthly interest rate (%)"), required=False, max_digits=6, decimal_places=4, min_value=0, max_value=5
    )
    valid_until = forms.DateField(label=_("Valid until"), required=False, widget=_date_input())
    note = forms.CharField(label=_("Note"), max_length=300, required=False)


class QuoteChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Quote) -> str:
        car = " ".join(part for part in (obj.brand, obj.series, obj.trim) if part)
        return f"v{obj.version} · {car} · {obj.total}"


class OrderForm(forms.Form):
    quote = QuoteChoiceField(label=_("Quote"), queryset=Quote.objects.none(), empty_label=None)
    deposit = _money_field(_("Deposit (CNY)"), required=True)
    expected_delivery_on = forms.DateField(label=_("Expected delivery"), required=False, widget=_date_input())

    def __init__(self, *args: Any, quotes: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["quote"].queryset = quotes  # type: ignore[attr-defined]


class DeliverForm(forms.Form):
    vin = forms.CharField(label=_("VIN"), max_length=17, min_length=17)
    plate = forms.CharField(label=_("Plate"), max_length=12, required=False)
    delivered_on = forms.DateField(label=_("Delivered on"), required=False, widget=_date_input())
    amount = _money_field(_("Price paid (CNY)"), help_text=_("Leave empty for the ordered quote's total."))
    mileage_km = forms.IntegerField(label=_("Odometer (km)"), required=False, min_value=0, max_value=2_000_000)


class DefeatForm(forms.Form):
    reason = forms.ModelChoiceField(label=_("Why is it lost"), queryset=DefeatReason.objects.none())
    competitor_brand = forms.CharField(label=_("Bought brand"), max_length=40, required=False)
    competitor_model = forms.CharField(label=_("Bought model"), max_length=60, required=False)
    note = forms.CharField(label=_("Note"), max_length=300, required=False)

    def __init__(self, *args: Any, reasons: list[DefeatReason], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["reason"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = DefeatReason.objects.filter(pk__in=[r.pk for r in reasons]).order_by("position", "id")


class DefeatDecideForm(forms.Form):
    approve = forms.TypedChoiceField(
        label=_("Decision"),
        choices=[("yes", _("Approve: the lead is lost")), ("no", _("Reject: keep working it"))],
        coerce=lambda value: value == "yes",
    )
    note = forms.CharField(label=_("Note"), max_length=300, required=False)


class ReopenForm(forms.Form):
    note = forms.CharField(label=_("Why reopen it"), max_length=300, required=False)


class AssignForm(forms.Form):
    to = MemberChoiceField(
        label=_("Give to"),
        queryset=Membership.objects.none(),
        required=False,
        empty_label=_("Nobody: back to the pool"),
    )
    note = forms.CharField(label=_("Note"), max_length=300, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to"].queryset = _sellers()  # type: ignore[attr-defined]


# --- showroom ---------------------------------------------------------------------------------------


class WalkInForm(forms.Form):
    arrived_at = forms.DateTimeField(label=_("Arrived"), widget=_datetime_input())
    party_size = forms.IntegerField(label=_("People"), min_value=1, max_value=30, initial=1)
    first_visit = forms.BooleanField(label=_("First visit"), required=False, initial=True)
    consultant = MemberChoiceField(
        label=_("Consultant"), queryset=Membership.objects.none(), required=False, empty_label=_("Me")
    )
    series = forms.CharField(label=_("Models looked at"), max_length=100, required=False)
    note = forms.CharField(label=_("Note"), max_length=300, required=False)
    name = forms.CharField(
        label=_("Name"), max_length=100, required=False, help_text=_("With a mobile: captures their lead.")
    )
    mobile = forms.CharField(
        label=_("Mobile"), max_length=30, required=False, widget=forms.TextInput(attrs={"inputmode": "tel"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["consultant"].queryset = _sellers()  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("name") and not cleaned.get("mobile"):
            self.add_error("mobile", _("A lead needs a mobile number."))
        if cleaned.get("mobile") and not cleaned.get("name"):
            self.add_error("name", _("Give their name with the mobile."))
        return cleaned

    def visit_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "arrived_at": data["arrived_at"],
            "party_size": data["party_size"],
            "first_visit": bool(data.get("first_visit")),
            "consultant": data.get("consultant"),
            "series": data.get("series") or "",
            "note": data.get("note") or "",
        }

    def lead_data(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if not (data.get("name") and data.get("mobile")):
            return None
        return {"name": data["name"], "mobile": data["mobile"]}
