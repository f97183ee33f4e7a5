from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.tenancy.models import COUNTRY_CHOICES, ApiCredential, Membership
from crm.tenancy.roles import API_AREAS, STAFF_ROLE_CHOICES

STAFF_ROLES = STAFF_ROLE_CHOICES


class MemberChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]  # not subscriptable at run time
    """A person picker: "name · role" for each choice."""

    def label_from_instance(self, obj: Membership) -> str:
        return f"{obj.display_name} · {obj.get_role_display()}"


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    full_name = forms.CharField(label=_("Full name"), max_length=150, required=False)
    role = forms.ChoiceField(label=_("Role"), choices=STAFF_ROLES)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=STAFF_ROLES)


class DeactivateForm(forms.Form):
    hand_over_to = forms.ModelChoiceField(
        label=_("Hand their customers to"),
        queryset=Membership.unscoped_all_tenants.none(),
        required=False,
        empty_label=_("— keep them with this person for now —"),
    )

    def __init__(self, *args: Any, leaving: Membership, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["hand_over_to"].queryset = (  # type: ignore[attr-defined]
            Membership.objects.select_related("user")
            .filter(
                is_active=True, is_service_account=False, role__in=["sales_consultant", "service_advisor", "manager"]
            )
            .exclude(pk=leaving.pk)
        )


def scope_choices() -> list[tuple[str, str]]:
    labels = {
        "customers": _("Customers"),
        "segmentation": _("Segmentation"),
        "loyalty": _("Loyalty"),
        "complaints": _("Complaints"),
        "surveys": _("Surveys"),
        "followups": _("Follow-ups"),
        "sales": _("Sales"),
        "dashboards": _("Dashboards"),
        "admin": _("Administration"),
    }
    modes = {"read": _("read"), "write": _("write")}
    return [(f"{area}:{mode}", f"{labels[area]} · {modes[mode]}") for area in API_AREAS for mode in ("read", "write")]


class CredentialForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=ApiCredential.Kind.choices)
    name = forms.CharField(label=_("Name"), max_length=120, help_text=_("For example: DMS nightly sync"))
    scopes = forms.MultipleChoiceField(label=_("Scopes"), choices=scope_choices, widget=forms.CheckboxSelectMultiple)
    expires_at = forms.DateTimeField(
        label=_("Expires"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args: Any, membership: Membership, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not membership.can("api_keys.manage"):
            self.fields["kind"].choices = [(ApiCredential.Kind.PERSONAL, ApiCredential.Kind.PERSONAL.label)]  # type: ignore[attr-defined]


DAY_LABELS = {
    "mon": _("Monday"),
    "tue": _("Tuesday"),
    "wed": _("Wednesday"),
    "thu": _("Thursday"),
    "fri": _("Friday"),
    "sat": _("Saturday"),
    "sun": _("Sunday"),
}


def _parse_spans(text: str) -> list[list[str]]:
    import re

    spans = []
    for part in filter(None, (p.strip() for p in re.split(r"[,，;；]", text))):
        match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)\s*[-–~]\s*([01]\d|2[0-3]):([0-5]\d)", part)
        if not match:
            raise forms.ValidationError(_("Write times as 08:30-12:00, 13:30-18:00 (leave empty when closed)."))
        start, end = f"{match.group(1)}:{match.group(2)}", f"{match.group(3)}:{match.group(4)}"
        if start >= end:
            raise forms.ValidationError(_("%(span)s ends before it starts.") % {"span": part})
        spans.append([start, end])
    return spans


def _parse_dates(text: str) -> list[str]:
    import re
    from datetime import date

    result = []
    for part in filter(None, (p.strip() for p in re.split(r"[\s,，;；]+", text))):
        try:
            result.append(date.fromisoformat(part).isoformat())
        except ValueError:
            raise forms.ValidationError(_("%(value)s is not a date like 2026-10-01.") % {"value": part}) from None
    return sorted(set(result))


class DealershipSettingsForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    time_zone = forms.ChoiceField(label=_("Time zone"))
    locale = forms.ChoiceField(label=_("Default language"))
    country = forms.ChoiceField(
        label=_("Country"),
        help_text=_("Its public holidays and make-up working days (调休) count for the SLA clocks."),
    )
    holidays = forms.CharField(
        label=_("Own closing days"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "Days this dealership is closed on top of the public holidays, one per line, e.g. 2026-12-31. "
            "SLA clocks stop on these days."
        ),
    )
    makeup_workdays = forms.CharField(
        label=_("Own extra working days"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Days this dealership works although it is closed otherwise (a weekend or a public holiday), "
            "one per line. They take Monday's hours."
        ),
    )

    def __init__(self, *args: Any, tenant: Any, **kwargs: Any) -> None:
        import zoneinfo

        from django.conf import settings

        initial = {
            "name": tenant.name,
            "time_zone": tenant.time_zone,
            "locale": tenant.locale,
            "country": tenant.country,
            "holidays": "\n".join(tenant.holidays),
            "makeup_workdays": "\n".join(tenant.makeup_workdays),
        }
        for day in DAY_LABELS:
            initial[f"hours_{day}"] = ", ".join(f"{a}-{b}" for a, b in tenant.business_hours.get(day, []))
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(z, z) for z in sorted(zoneinfo.available_timezones())]  # type: ignore[attr-defined]
        self.fields["locale"].choices = settings.LANGUAGES  # type: ignore[attr-defined]
        self.fields["country"].choices = COUNTRY_CHOICES  # type: ignore[attr-defined]
        for day, label in DAY_LABELS.items():
            self.fields[f"hours_{day}"] = forms.CharField(label=label, required=False, max_length=100)

    @property
    def hour_fields(self) -> list[Any]:
        return [self[f"hours_{day}"] for day in DAY_LABELS]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        hours = {}
        for day in DAY_LABELS:
            try:
                hours[day] = _parse_spans(cleaned.get(f"hours_{day}", "") or "")
            except forms.ValidationError as error:
                self.add_error(f"hours_{day}", error)
        for field in ("holidays", "makeup_workdays"):
            try:
                cleaned[field] = _parse_dates(cleaned.get(field, "") or "")
            except forms.ValidationError as error:
                self.add_error(field, error)
        cleaned["business_hours"] = hours
        return cleaned

    def changes(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "time_zone": data["time_zone"],
            "locale": data["locale"],
            "country": data["country"],
            "business_hours": data["business_hours"],
            "holidays": data["holidays"],
            "makeup_workdays": data["makeup_workdays"],
        }
