"""Forms of the customer pages: list filters, create/edit, log a contact, lists, merge."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.tenancy.models import Membership
from crm.tenancy.roles import ROLES_WITH_OWN_BOOK
from customers.models import Customer, LifecycleStage, ListFlag, RelationshipClass, Touchpoint
from customers.selectors import SORTS, CustomerFilters

CONSENT_CHOICES = [
    ("", _("Any consent")),
    ("call", _("May call")),
    ("sms", _("May text")),
    ("wechat", _("May WeChat")),
    ("email", _("May email")),
]
SORT_CHOICES = [
    ("newest", _("Newest first")),
    ("name", _("Name")),
    ("last_visit", _("Visited recently")),
    ("stale", _("Longest without a visit")),
]


def staff_with_books() -> Any:
    return (
        Membership.objects.select_related("user")
        .filter(is_active=True, is_service_account=False, role__in=[*ROLES_WITH_OWN_BOOK, "manager"])
        .order_by("user__last_name", "user__first_name")
    )


class CustomerFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label=_("Search"))
    lifecycle_stage = forms.ChoiceField(
        required=False, choices=[("", _("All stages")), *LifecycleStage.choices], label=_("Lifecycle stage")
    )
    relationship_class = forms.ChoiceField(
        required=False, choices=[("", _("All classes")), *RelationshipClass.choices], label=_("Relationship class")
    )
    owner = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Owner"))
    tag = forms.CharField(required=False, max_length=30, label=_("Tag"))
    list_flag = forms.ChoiceField(
        required=False,
        choices=[("", _("Any list")), ("red", _("Red list")), ("black", _("Black list"))],
        label=_("List"),
    )
    consent = forms.ChoiceField(required=False, choices=CONSENT_CHOICES, label=_("Consent"))
    last_visit_from = forms.DateField(
        required=False, label=_("Last visit from"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    last_visit_to = forms.DateField(
        required=False, label=_("to"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, label=_("Sort"))

    def __init__(self, *args: Any, viewer: Membership, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if viewer.can("customers.view_all"):
            # (id, name) pairs, not model instances: the list page renders this on every search
            staff = staff_with_books().values_list("pk", "user__last_name", "user__first_name", "user__username")
            self.fields["owner"].choices = [  # type: ignore[attr-defined]
                ("", _("Any owner")),
                *((pk, f"{last}{first}".strip() or username) for pk, last, first, username in staff),
            ]
        else:
            del self.fields["owner"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("last_visit_from"), cleaned.get("last_visit_to")
        if start and end and start > end:
            self.add_error("last_visit_to", _("The end is before the start."))
        return cleaned

    def filters(self) -> CustomerFilters:
        data = self.cleaned_data
        owner = data.get("owner")
        return CustomerFilters(
            q=data.get("q") or "",
            lifecycle_stage=data.get("lifecycle_stage") or "",
            relationship_class=data.get("relationship_class") or "",
            owner=owner,
            tag=data.get("tag") or "",
            list_flag=data.get("list_flag") or "",
            consent=data.get("consent") or "",
            last_visit_from=data.get("last_visit_from"),
            last_visit_to=data.get("last_visit_to"),
            sort=str(data.get("sort")) if data.get("sort") in SORTS else "newest",
        )


class CustomerForm(forms.ModelForm):
    tags_text = forms.CharField(
        required=False,
        label=_("Tags"),
        help_text=_("Separate with commas, e.g. VIP, business, young family"),
        max_length=300,
    )
    # Text inputs: normalisation (138 1234 5678 → +8613812345678) happens in the service.
    mobile = forms.CharField(required=False, label=_("Mobile"), max_length=30)
    mobile_secondary = forms.CharField(required=False, label=_("Second mobile"), max_length=30)
    # Declared (not generated) so building the form class needs no active dealership.
    owner = forms.ModelChoiceField(
        required=False, queryset=Membership.unscoped_all_tenants.none(), label=_("Owner"), empty_label=_("Nobody")
    )

    class Meta:
        model = Customer
        fields = [
            "kind",
            "name",
            "mobile",
            "mobile_secondary",
            "email",
            "gender",
            "birthday",
            "id_number",
            "province",
            "city",
            "district",
            "address",
            "source",
            "consent_call",
            "consent_sms",
            "consent_wechat",
            "consent_email",
            "churn_reason",
            "external_id",
        ]
        widgets = {"birthday": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}
        help_texts = {
            "consent_call": _(
                "Tick only what the customer agreed to: nothing is assumed. Each change is recorded with "
                "your name and the time."
            )
        }

    def __init__(self, *args: Any, viewer: Membership, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["tags_text"].initial = ", ".join(self.instance.tags)
        else:
            del self.fields["churn_reason"]  # a new customer has not left us
        if viewer.can("customers.reassign"):
            self.fields["owner"].queryset = staff_with_books()  # type: ignore[attr-defined]
        else:
            del self.fields["owner"]

    def clean_tags_text(self) -> list[str]:
        raw = self.cleaned_data.get("tags_text") or ""
        tags = sorted({t.strip() for t in raw.replace("，", ",").split(",") if t.strip()})
        if any(len(t) > 30 for t in tags):
            raise forms.ValidationError(_("A tag has at most 30 characters."))
        return tags

    def service_data(self) -> dict[str, Any]:
        data = {k: v for k, v in self.cleaned_data.items() if k != "tags_text"}
        data["tags"] = self.cleaned_data.get("tags_text", [])
        return data

    def _post_clean(self) -> None:
        # Model validation runs in the service (after normalisation), not here.
        pass


class VehicleForm(forms.Form):
    vin = forms.CharField(label=_("VIN"), max_length=20)
    plate = forms.CharField(label=_("Plate"), max_length=12, required=False)
    brand = forms.CharField(label=_("Brand"), max_length=40)
    series = forms.CharField(label=_("Series"), max_length=60, required=False)
    model_name = forms.CharField(label=_("Model"), max_length=100, required=False)
    model_year = forms.IntegerField(label=_("Model year"), required=False, min_value=1990, max_value=2100)
    colour = forms.CharField(label=_("Colour"), max_length=30, required=False)
    purchase_date = forms.DateField(
        label=_("Purchase date"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    warranty_end = forms.DateField(
        label=_("Warranty end"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    mileage_km = forms.IntegerField(label=_("Mileage (km)"), required=False, min_value=0, max_value=3_000_000)


class MileageForm(forms.Form):
    km = forms.IntegerField(label=_("Mileage (km)"), min_value=0, max_value=3_000_000)
    read_on = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))


class TouchpointForm(forms.Form):
    channel = forms.ChoiceField(choices=Touchpoint.Channel.choices, initial=Touchpoint.Channel.CALL, label=_("Channel"))
    direction = forms.ChoiceField(choices=Touchpoint.Direction.choices, label=_("Direction"))
    outcome = forms.ChoiceField(choices=Touchpoint.Outcome.choices, label=_("Outcome"))
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=4000, label=_("Notes"))


class ListFlagForm(forms.Form):
    flag = forms.ChoiceField(choices=ListFlag.choices, required=False, label=_("List"))
    reason = forms.CharField(required=False, max_length=200, label=_("Reason"))


class IdListField(forms.Field):
    """Every value of a repeated parameter (`id=3&id=7`) as a list of row ids."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        ids = []
        for item in value or []:
            text = str(item).strip()
            if not text.isdigit() or not 0 < int(text) < 2**63:
                raise forms.ValidationError(_("Not a customer of this list."), code="invalid")
            ids.append(int(text))
        return ids


class BulkForm(forms.Form):
    """An action on the customers ticked in the list (docs/customers.md, "Bulk actions")."""

    ACTIONS = [
        ("assign", _("Give to")),
        ("red_list", _("Add to the red list")),
        ("export_xlsx", _("Export the selection (Excel)")),
        ("export_csv", _("Export the selection (CSV)")),
    ]
    action = forms.ChoiceField(label=_("With the selected customers"), choices=ACTIONS)
    id = IdListField(required=False)
    to_member = forms.ModelChoiceField(
        label=_("Give to"), queryset=Membership.unscoped_all_tenants.none(), required=False, empty_label=_("Choose")
    )
    reason = forms.CharField(label=_("Reason for the red list"), required=False, max_length=200)

    def __init__(self, *args: Any, viewer: Membership, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actions = [
            (key, label)
            for key, label in self.ACTIONS
            if (key != "assign" or viewer.can("customers.reassign"))
            and (key != "red_list" or viewer.can("customers.list_flag"))
            and (not key.startswith("export") or viewer.can("customers.export"))
        ]
        self.fields["action"].choices = actions  # type: ignore[attr-defined]
        if viewer.can("customers.reassign"):
            self.fields["to_member"].queryset = staff_with_books()  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("action") == "assign" and not cleaned.get("to_member"):
            self.add_error("to_member", _("Choose who gets them."))
        return cleaned


class MergeForm(forms.Form):
    duplicate = forms.IntegerField(widget=forms.HiddenInput)
    confirm = forms.BooleanField(label=_("I have checked: these are the same person or company."))
