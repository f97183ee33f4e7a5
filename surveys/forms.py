"""Forms of the survey pages: template editing (a new version), sending, settings, result filters."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.core.forms import DateRangeForm
from crm.messaging.consent import channel_preference_field
from surveys.models import Invitation, QuestionKind, SurveySettings, SurveyTemplate


class VersionForm(forms.Form):
    title = forms.CharField(label=_("Title shown to customers"), max_length=200)
    intro = forms.CharField(
        label=_("Introduction"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )


class QuestionForm(forms.Form):
    key = forms.SlugField(label=_("Key"), max_length=40, help_text=_("Same key across versions, e.g. overall."))
    section = forms.CharField(label=_("Section"), max_length=60, required=False)
    # An empty first option: a blank extra row posts "" and stays unchanged (so it is skipped),
    # where a preselected type would make it a half-filled question the formset refuses.
    kind = forms.ChoiceField(label=_("Type"), choices=[("", "---------"), *QuestionKind.choices])
    text = forms.CharField(label=_("Question"), max_length=300)
    choices = forms.CharField(
        label=_("Choices (one per line)"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    required = forms.BooleanField(label=_("Required"), required=False)

    def cleaned_choices(self) -> list[str]:
        return [line.strip() for line in (self.cleaned_data.get("choices") or "").splitlines() if line.strip()]


QuestionFormSet = forms.formset_factory(QuestionForm, extra=2, can_delete=True, max_num=40)


class SendForm(forms.Form):
    customer = forms.IntegerField(label=_("Customer id"), widget=forms.HiddenInput)
    template = forms.ModelChoiceField(label=_("Survey"), queryset=SurveyTemplate.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = SurveyTemplate.objects.filter(  # type: ignore[attr-defined]
            is_active=True, current_version__isnull=False
        ).order_by("moment")


class InvitationFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), choices=[("", _("All statuses")), *Invitation.Status.choices], required=False
    )
    template = forms.ModelChoiceField(
        label=_("Survey"), queryset=SurveyTemplate.objects.none(), required=False, empty_label=_("All surveys")
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = SurveyTemplate.objects.order_by("moment")  # type: ignore[attr-defined]


class ResultsForm(DateRangeForm, InvitationFilterForm):
    """The period and, optionally, one template (the status filter is not used on results)."""


class SettingsForm(forms.ModelForm):
    channels = channel_preference_field()

    class Meta:
        model = SurveySettings
        fields = [
            "sales_enabled",
            "sales_delay_days",
            "service_enabled",
            "service_delay_days",
            "complaint_enabled",
            "complaint_delay_days",
            "min_days_between",
            "expiry_days",
            "reminder_after_days",
            "channels",
            "low_score_action",
            "low_score_max",
        ]
