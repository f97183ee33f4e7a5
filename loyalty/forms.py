"""Forms of the loyalty pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.core.forms import DateRangeForm
from crm.messaging.consent import channel_preference_field
from loyalty.models import CareTemplate, EarningRule, LedgerEntry, Level, Programme, Redemption, Reward
from loyalty.selectors import MEMBER_SORTS


class MemberFilterForm(forms.Form):
    q = forms.CharField(label=_("Name or DMS id"), required=False, max_length=100)
    level = forms.ModelChoiceField(queryset=Level.objects.none(), required=False, empty_label=_("All levels"))
    sort = forms.ChoiceField(required=False, choices=[("", ""), *((k, k) for k in MEMBER_SORTS)])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["level"].queryset = Level.objects.order_by("rank")  # type: ignore[attr-defined]


class LedgerFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", _("All kinds")), *LedgerEntry.Kind.choices], required=False)
    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("start") and cleaned.get("end") and cleaned["start"] > cleaned["end"]:
            self.add_error("end", _("The end is before the start."))
        return cleaned


class RedemptionFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", _("All statuses")), *Redemption.Status.choices], required=False)
    reward = forms.ModelChoiceField(queryset=Reward.objects.none(), required=False, empty_label=_("All rewards"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reward"].queryset = Reward.objects.order_by("name")  # type: ignore[attr-defined]


class RedeemForm(forms.Form):
    reward = forms.ModelChoiceField(label=_("Reward"), queryset=Reward.objects.none())
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=99, initial=1)
    note = forms.CharField(label=_("Note"), required=False, max_length=300)
    # made when the form is shown: submitting twice (double click, back and resubmit) redeems once
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=80)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reward"].queryset = Reward.objects.filter(is_active=True).order_by(  # type: ignore[attr-defined]
            "points_cost", "name"
        )


class AdjustForm(forms.Form):
    points = forms.IntegerField(
        label=_("Points (+ or −)"), min_value=-10_000_000, max_value=10_000_000, help_text=_("e.g. 500 or -200")
    )
    note = forms.CharField(label=_("Why"), max_length=300)

    def clean_points(self) -> int:
        points: int = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError(_("Enter a number of points other than 0."))
        return points


class LevelForm(forms.Form):
    level = forms.ModelChoiceField(
        label=pgettext_lazy("membership", "Level"), queryset=Level.objects.none(), required=False
    )
    keep = forms.BooleanField(label=_("Keep this level (the nightly run leaves it alone)"), required=False)
    note = forms.CharField(label=_("Why"), max_length=300)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["level"].queryset = Level.objects.filter(is_active=True).order_by("rank")  # type: ignore[attr-defined]


class CancelForm(forms.Form):
    note = forms.CharField(label=_("Why"), max_length=300)


class EnrolForm(forms.Form):
    customer = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class ReferralForm(forms.Form):
    referrer = forms.IntegerField(label=_("Referrer (customer id)"), min_value=1)
    referee = forms.IntegerField(label=_("Referred customer (customer id)"), min_value=1)
    note = forms.CharField(label=_("Note"), required=False, max_length=300)


class SummaryForm(DateRangeForm):
    """The period of the manager figures."""


class ProgrammeForm(forms.ModelForm):
    channels = channel_preference_field()

    class Meta:
        model = Programme
        fields = [
            "name",
            "is_active",
            "starts_on",
            "auto_enrol",
            "point_value",
            "expiry_months",
            "qualifying_months",
            "referral_points",
            "birthday_points",
            "notify_level_changes",
            "care_send_hour",
            "channels",
        ]
        widgets = {"starts_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}


class LevelEditForm(forms.ModelForm):
    class Meta:
        model = Level
        fields = [
            "code",
            "name",
            "rank",
            "min_points",
            "min_spend",
            "earn_multiplier",
            "by_hand_only",
            "benefits",
            "is_active",
        ]
        widgets = {"benefits": forms.Textarea(attrs={"rows": 3})}


class EarningRuleForm(forms.ModelForm):
    class Meta:
        model = EarningRule
        fields = ["order_kind", "points_per_yuan", "max_points_per_order", "is_active"]


class RewardForm(forms.ModelForm):
    # declared, not generated: a generated field would query levels when the module loads (no tenant)
    min_level = forms.ModelChoiceField(label=_("For members from level"), queryset=Level.objects.none(), required=False)

    class Meta:
        model = Reward
        fields = ["name", "kind", "description", "points_cost", "stock", "min_level", "is_active"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["min_level"].queryset = Level.objects.order_by("rank")  # type: ignore[attr-defined]


class CareTemplateForm(forms.ModelForm):
    class Meta:
        model = CareTemplate
        fields = ["subject", "text", "is_active"]
        widgets = {"text": forms.Textarea(attrs={"rows": 3})}
