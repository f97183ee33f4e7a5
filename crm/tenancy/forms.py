from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.tenancy.models import ApiCredential, Membership
from crm.tenancy.roles import API_AREAS, STAFF_ROLE_CHOICES

STAFF_ROLES = STAFF_ROLE_CHOICES


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
            .filter(is_active=True, is_service_account=False, role__in=["sales_consultant", "service_advisor", "manager"])
            .exclude(pk=leaving.pk)
        )


def scope_choices() -> list[tuple[str, str]]:
    labels = {
        "customers": _("Customers"), "segmentation": _("Segmentation"), "loyalty": _("Loyalty"),
        "complaints": _("Complaints"), "surveys": _("Surveys"), "followups": _("Follow-ups"),
        "dashboards": _("Dashboards"), "admin": _("Administration"),
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
