"""Satisfaction surveys: versioned templates, invitations with signed single-use links, responses.

Satisfaction is not loyalty (../shared/domain.md): surveys measure how customers feel; segmentation
measures what they do. The results page puts the two side by side.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.messaging.consent import DEFAULT_PREFERENCE
from crm.tenancy.models import Membership, TenantOwnedModel
from customers.models import Customer, Order


class Moment(models.TextChoices):
    """The moment a survey asks about; each has a ready-made template."""

    SALES = "sales", _("Vehicle purchase and delivery")
    SERVICE = "service", _("Service visit")
    COMPLAINT = "complaint", _("Complaint handling")
    GENERAL = "general", _("General")


class QuestionKind(models.TextChoices):
    RATING = "rating", _("Rating 1–5")
    NPS = "nps", _("Recommend 0–10 (NPS)")
    SINGLE = "single", _("One choice")
    MULTI = "multi", _("Several choices")
    TEXT = "text", _("Free text")


class SurveyTemplate(TenantOwnedModel):
    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=100)
    moment = models.CharField(_("moment"), max_length=12, choices=Moment.choices)
    is_active = models.BooleanField(_("active"), default=True)
    current_version = models.ForeignKey(
        "SurveyVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("survey template")
        verbose_name_plural = _("survey templates")
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="surveytemplate_code_unique")]

    def __str__(self) -> str:
        return self.name


class SurveyVersion(TenantOwnedModel):
    """A frozen set of questions. Editing a template makes a new version; answers stay with theirs."""

    template = models.ForeignKey(SurveyTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    title = models.CharField(_("title shown to customers"), max_length=200)
    intro = models.TextField(_("introduction"), blank=True, max_length=1000)
    created_by = models.ForeignKey(Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("survey version")
        verbose_name_plural = _("survey versions")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "template", "number"], name="surveyversion_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"


class SurveyQuestion(TenantOwnedModel):
    version = models.ForeignKey(SurveyVersion, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField(_("position"))
    # The same key across versions ("overall", "consultant" …) lets results compare versions.
    key = models.SlugField(_("key"), max_length=40)
    section = models.CharField(_("section"), max_length=60, blank=True)
    kind = models.CharField(_("type"), max_length=8, choices=QuestionKind.choices)
    text = models.CharField(_("question"), max_length=300)
    choices = ArrayField(models.CharField(max_length=100), default=list, blank=True, verbose_name=_("choices"))
    required = models.BooleanField(_("required"), default=True)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "version", "key"], name="surveyquestion_key_unique"),
        ]

    def __str__(self) -> str:
        return self.text


class SurveySettings(TenantOwnedModel):
    class LowScoreAction(models.TextChoices):
        COMPLAINT = "complaint", _("Open a complaint ticket")
        NOTIFY = "notify", _("Ask the owner and the managers to call back")
        FOLLOWUP = "followup", _("Schedule a follow-up call")
        NONE = "none", _("Nothing")

    sales_delay_days = models.PositiveSmallIntegerField(_("after a vehicle delivery (days)"), default=3)
    service_delay_days = models.PositiveSmallIntegerField(_("after a service order (days)"), default=1)
    complaint_delay_days = models.PositiveSmallIntegerField(_("after a complaint is closed (days)"), default=2)
    sales_enabled = models.BooleanField(_("survey buyers after delivery"), default=True)
    service_enabled = models.BooleanField(_("survey service customers"), default=True)
    complaint_enabled = models.BooleanField(_("survey complainants"), default=True)
    min_days_between = models.PositiveSmallIntegerField(_("at most one survey per customer every (days)"), default=30)
    expiry_days = models.PositiveSmallIntegerField(_("links expire after (days)"), default=14)
    reminder_after_days = models.PositiveSmallIntegerField(_("remind after (days, 0 = never)"), default=3)
    channels = ArrayField(
        models.CharField(max_length=10),
        default=list,
        blank=True,
        verbose_name=_("channels, in order of preference"),
        help_text=_("sms, wechat, email: the first one the customer consented to and can be reached on is used."),
    )
    low_score_action = models.CharField(
        _("after a low score or a detractor"),
        max_length=10,
        choices=LowScoreAction.choices,
        default=LowScoreAction.COMPLAINT,
    )
    low_score_max = models.PositiveSmallIntegerField(_("low score: a rating at or below"), default=2)

    class Meta:
        verbose_name = _("survey settings")
        verbose_name_plural = _("survey settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="surveysettings_one_per_tenant")]

    def preferred_channels(self) -> list[str]:
        return self.channels or DEFAULT_PREFERENCE


class Invitation(TenantOwnedModel):
    class Trigger(models.TextChoices):
        DELIVERY = "delivery", _("Vehicle delivered")
        SERVICE = "service", _("Service order")
        COMPLAINT = "complaint", _("Complaint closed")
        MANUAL = "manual", _("Sent by hand")

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        SENT = "sent", _("Sent")
        ANSWERED = "answered", _("Answered")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Could not be delivered")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="survey_invitations")
    version = models.ForeignKey(SurveyVersion, on_delete=models.PROTECT, related_name="+")
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    ticket = models.ForeignKey("complaints.Ticket", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # who served the customer (consultant for a sale, advisor for a service visit): results by person
    staff = models.ForeignKey(Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    channel = models.CharField(_("channel"), max_length=10)
    address = models.CharField(_("sent to"), max_length=254)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    nonce = models.CharField(max_length=24, editable=False)
    send_after = models.DateTimeField(_("send from"))
    expires_at = models.DateTimeField(_("expires"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    opened_at = models.DateTimeField(_("first opened"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    draft = models.JSONField(_("partial answers"), default=dict, blank=True)
    created_by = models.ForeignKey(Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("survey invitation")
        verbose_name_plural = _("survey invitations")
        constraints = [
            # a trigger never invites twice for the same order or ticket (the nightly job is idempotent)
            models.UniqueConstraint(
                fields=["tenant", "trigger", "order"],
                condition=models.Q(order__isnull=False),
                name="invitation_order_once",
            ),
            models.UniqueConstraint(
                fields=["tenant", "trigger", "ticket"],
                condition=models.Q(ticket__isnull=False),
                name="invitation_ticket_once",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "customer", "-created_at"], name="invitation_customer"),
            models.Index(fields=["tenant", "status", "send_after"], name="invitation_status"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.get_trigger_display()} {self.get_status_display()}"


class Response(TenantOwnedModel):
    """One submitted survey. One per invitation (a unique constraint, not only a check)."""

    invitation = models.ForeignKey(Invitation, on_delete=models.PROTECT, related_name="responses")
    version = models.ForeignKey(SurveyVersion, on_delete=models.PROTECT, related_name="responses")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="survey_responses")
    staff = models.ForeignKey(Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    submitted_at = models.DateTimeField(_("submitted"), default=timezone.now)
    # Derived at submission, for the results: the overall 1–5 rating and the 0–10 recommendation.
    overall = models.PositiveSmallIntegerField(_("overall rating"), null=True, blank=True)
    nps = models.PositiveSmallIntegerField(_("recommendation (0–10)"), null=True, blank=True)
    low_score = models.BooleanField(_("low score or detractor"), default=False)

    class Meta:
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")
        constraints = [models.UniqueConstraint(fields=["tenant", "invitation"], name="response_one_per_invitation")]
        indexes = [models.Index(fields=["tenant", "submitted_at"], name="response_submitted")]


class Answer(TenantOwnedModel):
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(SurveyQuestion, on_delete=models.PROTECT, related_name="answers")
    number = models.SmallIntegerField(_("score"), null=True, blank=True)  # rating 1–5 or NPS 0–10
    choices = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    text = models.TextField(_("text"), blank=True, max_length=4000)

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        constraints = [models.UniqueConstraint(fields=["tenant", "response", "question"], name="answer_once")]
