"""Follow-up visits and calls (回访): the rules a dealership switches on, and the follow-ups the
nightly run creates from them, worked from each person's daily queue.

Invariants kept by the database, not only by Python:
- a rule fires once per occasion: `source_key` ("delivery:<order>:7", "birthday:<customer>:2026")
  is unique per dealership, so a second nightly run creates nothing;
- a customer has at most one open follow-up per reason (a partial unique index);
- a pushed outcome with an idempotency key is recorded once;
- attempts never exceed the dealership's limit by more than the one being recorded.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.tenancy.models import Membership, TenantOwnedModel
from customers.models import Customer, Touchpoint, Vehicle


class Reason(models.TextChoices):
    POST_DELIVERY = "post_delivery", _("Post-delivery care call")
    MAINTENANCE = "maintenance", _("Maintenance due")
    SERVICE = "service", _("Service satisfaction call")
    WARRANTY = "warranty", _("Warranty expiry")
    INSURANCE = "insurance", _("Insurance renewal")
    BIRTHDAY = "birthday", _("Birthday")
    CADENCE = "cadence", _("Tier cadence")
    WIN_BACK = "win_back", _("Dormant win-back")
    COMPLAINT = "complaint", _("Complaint follow-up")
    SURVEY = "survey", _("Low survey score callback")
    LEAD = "lead", _("Sales lead follow-up")
    MANUAL = "manual", _("Planned by hand")


class Channel(models.TextChoices):
    """How a follow-up is made; each needs the customer's consent for it (a visit needs none)."""

    CALL = "call", _("Phone call")
    WECHAT = "wechat", _("WeChat")
    SMS = "sms", _("SMS")
    VISIT = "visit", _("Visit")


# The consent flag on the customer each channel needs (None: no consent needed).
CONSENT_FIELD = {"call": "consent_call", "wechat": "consent_wechat", "sms": "consent_sms", "visit": None}


class Status(models.TextChoices):
    OPEN = "open", _("Open")
    NO_ANSWER = "no_answer", _("No answer, to retry")
    DONE = "done", _("Done")
    UNREACHABLE = "unreachable", _("Unreachable")
    EXPIRED = "expired", _("Expired")
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE_STATUSES = (Status.OPEN, Status.NO_ANSWER)


class Disposition(models.TextChoices):
    """What came of an attempt. `touchpoint_outcome` maps each to the customer's contact history."""

    SATISFIED = "satisfied", _("Reached: satisfied")
    FEEDBACK = "feedback", _("Reached: has concerns")
    APPOINTMENT = "appointment", _("Appointment made")
    CALLBACK = "callback", _("Call back later")
    NOT_INTERESTED = "not_interested", _("Not interested")
    COMPLAINT = "complaint", _("Raised a complaint")
    WRONG_NUMBER = "wrong_number", _("Wrong number")
    NO_ANSWER = "no_answer", _("No answer")


TOUCHPOINT_OUTCOME = {
    Disposition.SATISFIED: Touchpoint.Outcome.REACHED,
    Disposition.FEEDBACK: Touchpoint.Outcome.REACHED,
    Disposition.APPOINTMENT: Touchpoint.Outcome.APPOINTMENT,
    Disposition.CALLBACK: Touchpoint.Outcome.CALLBACK,
    Disposition.NOT_INTERESTED: Touchpoint.Outcome.NOT_INTERESTED,
    Disposition.COMPLAINT: Touchpoint.Outcome.COMPLAINT,
    Disposition.WRONG_NUMBER: Touchpoint.Outcome.OTHER,
    Disposition.NO_ANSWER: Touchpoint.Outcome.NO_ANSWER,
}

# Priority from the customer's value tier when the follow-up is created: 1 is called first.
TIER_PRIORITY = {"key": 1, "consolidate": 2, "maintain": 3, "exit": 4}
NO_TIER_PRIORITY = 5


def _days(label: Any, default: int, maximum: int = 366) -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(label, default=default, validators=[MaxValueValidator(maximum)])


def _channel(label: Any = None) -> models.CharField:
    return models.CharField(label or _("channel"), max_length=8, choices=Channel.choices, default=Channel.CALL)


def default_delivery_days() -> list[int]:
    return [1, 7, 30]


class FollowupSettings(TenantOwnedModel):
    """The dealership's rules (one row per dealership, made with the defaults on first use)."""

    # after a vehicle is delivered (交车后回访)
    delivery_enabled = models.BooleanField(_("call buyers after delivery"), default=True)
    delivery_days = ArrayField(
        models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(365)]),
        default=default_delivery_days,
        size=6,
        verbose_name=_("days after delivery"),
        help_text=_("e.g. 1,7,30: one call on each of these days after the delivery."),
    )
    delivery_channel = _channel()
    # maintenance reminders (保养提醒)
    maintenance_enabled = models.BooleanField(_("remind of maintenance"), default=True)
    maintenance_months = models.PositiveSmallIntegerField(
        _("maintenance every (months)"), default=6, validators=[MinValueValidator(1), MaxValueValidator(36)]
    )
    maintenance_km = models.PositiveIntegerField(
        _("or every (km)"),
        default=10000,
        validators=[MinValueValidator(1000), MaxValueValidator(100000)],
        help_text=_("Mileage is estimated from the vehicle's own readings since its last service."),
    )
    maintenance_lead_days = _days(_("remind this many days before it is due"), 7, 60)
    maintenance_channel = _channel()
    # after a maintenance or repair order (维修后回访)
    service_enabled = models.BooleanField(_("satisfaction call after service"), default=True)
    service_after_days = models.PositiveSmallIntegerField(
        _("days after the order"), default=2, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    service_channel = _channel()
    # warranty and insurance
    warranty_enabled = models.BooleanField(_("call before the warranty ends"), default=True)
    warranty_lead_days = _days(_("days before the warranty ends"), 30, 180)
    insurance_enabled = models.BooleanField(_("call before the insurance renews"), default=True)
    insurance_lead_days = _days(_("days before the insurance renews"), 30, 180)
    expiry_channel = _channel(_("channel for warranty and insurance calls"))
    # birthdays
    birthday_enabled = models.BooleanField(_("birthday calls"), default=True)
    birthday_lead_days = _days(_("days before the birthday"), 0, 14)
    birthday_channel = models.CharField(
        _("channel for birthday calls"), max_length=8, choices=Channel.choices, default=Channel.WECHAT
    )
    # cadence by value tier (分级回访): 0 = never
    cadence_enabled = models.BooleanField(_("regular calls by value tier"), default=True)
    cadence_key_days = _days(_("key customers every (days)"), 30)
    cadence_consolidate_days = _days(_("consolidate customers every (days)"), 91)
    cadence_maintain_days = _days(_("maintain customers every (days)"), 182)
    cadence_exit_days = _days(_("exit customers every (days, 0 = never)"), 0)
    cadence_channel = _channel()
    # win-back
    win_back_enabled = models.BooleanField(_("win back dormant key and consolidate customers"), default=True)
    win_back_months = models.PositiveSmallIntegerField(
        _("after no visit for (months)"), default=9, validators=[MinValueValidator(1), MaxValueValidator(36)]
    )
    # from other areas
    complaint_enabled = models.BooleanField(_("follow-up call after a complaint is closed"), default=True)
    # working the queue
    window_days = models.PositiveSmallIntegerField(
        _("a follow-up stays open for (days)"),
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text=_("After its latest day an unfinished follow-up expires."),
    )
    max_attempts = models.PositiveSmallIntegerField(
        _("attempts before unreachable"), default=3, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    retry_after_days = models.PositiveSmallIntegerField(
        _("retry after no answer (days)"), default=1, validators=[MinValueValidator(1), MaxValueValidator(14)]
    )
    daily_cap = models.PositiveSmallIntegerField(
        _("at most per person per day"),
        default=40,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text=_("Beyond it, work goes to the customer-relations agents, then to later days in its window."),
    )
    owner_calls = models.BooleanField(
        _("customers' own consultants make the calls"),
        default=True,
        help_text=_("Otherwise every follow-up goes to the customer-relations agents."),
    )

    class Meta:
        verbose_name = _("follow-up settings")
        verbose_name_plural = _("follow-up settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="followupsettings_one_per_tenant")]

    def __str__(self) -> str:
        return str(_("Follow-up rules"))

    def cadence_days(self) -> dict[str, int]:
        return {
            "key": self.cadence_key_days,
            "consolidate": self.cadence_consolidate_days,
            "maintain": self.cadence_maintain_days,
            "exit": self.cadence_exit_days,
        }


class Followup(TenantOwnedModel):
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="followups", verbose_name=_("customer")
    )
    vehicle = models.ForeignKey(
        Vehicle, on_delete=models.PROTECT, null=True, blank=True, related_name="followups", verbose_name=_("vehicle")
    )
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    # what fired it, once: "delivery:<order id>:<day>", "maintenance:<vehicle>:<cycle>", "ticket:<id>:<date>"…
    source_key = models.CharField(_("source"), max_length=80, editable=False)
    # the complaint ticket a complaint follow-up closes the loop on (its "followed up" step)
    ticket = models.ForeignKey(
        "complaints.Ticket", on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    note = models.CharField(_("what to talk about"), max_length=300, blank=True)
    due_from = models.DateField(_("earliest day"))
    due_until = models.DateField(_("latest day"))
    # the day it is in someone's queue: due_from at first, then a retry or call-back day
    scheduled_on = models.DateField(_("scheduled for"))
    assignee = models.ForeignKey(
        Membership,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assignee"),
        help_text=_("Empty: waiting in the customer-relations pool."),
    )
    channel = _channel()
    priority = models.PositiveSmallIntegerField(
        _("priority"), default=NO_TIER_PRIORITY, help_text=_("From the value tier: 1 (key) is called first.")
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    disposition = models.CharField(_("outcome"), max_length=16, choices=Disposition.choices, blank=True)
    outcome_notes = models.TextField(_("notes"), blank=True, max_length=4000)
    completed_at = models.DateTimeField(_("finished"), null=True, blank=True, editable=False)
    completed_by = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    created_by = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    created_on = models.DateField(_("created on"), default=timezone.localdate, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "source_key"], name="followup_source_once"),
            models.UniqueConstraint(
                fields=["tenant", "customer", "reason"],
                condition=models.Q(status__in=["open", "no_answer"]),
                name="followup_one_open_per_reason",
            ),
            models.CheckConstraint(condition=models.Q(due_until__gte=models.F("due_from")), name="followup_window"),
            models.CheckConstraint(condition=models.Q(status__in=Status.values), name="followup_status_valid"),
            models.CheckConstraint(
                condition=models.Q(priority__gte=1, priority__lte=NO_TIER_PRIORITY), name="followup_priority_valid"
            ),
        ]
        indexes = [
            # the queues: a person's work by day, and the pool's
            models.Index(
                fields=["tenant", "assignee", "scheduled_on"],
                condition=models.Q(status__in=["open", "no_answer"]),
                name="followup_queue",
            ),
            models.Index(fields=["tenant", "status", "due_until"], name="followup_status_due"),
            models.Index(fields=["tenant", "customer", "-created_at"], name="followup_customer"),
            models.Index(fields=["tenant", "created_on"], name="followup_created_on"),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} · {self.customer_id} · {self.due_from}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class Attempt(TenantOwnedModel):
    """One try at a follow-up and what came of it; each is also a touchpoint in the customer's history.
    Append-only for the application role."""

    rls_append_only = True

    followup = models.ForeignKey(Followup, on_delete=models.PROTECT, related_name="attempt_log")
    disposition = models.CharField(_("outcome"), max_length=16, choices=Disposition.choices)
    notes = models.TextField(_("notes"), blank=True, max_length=4000)
    staff = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("by")
    )
    touchpoint = models.ForeignKey(Touchpoint, on_delete=models.PROTECT, related_name="+")
    callback_on = models.DateField(_("call back on"), null=True, blank=True)
    occurred_at = models.DateTimeField(_("time"), default=timezone.now)
    idempotency_key = models.CharField(_("idempotency key"), max_length=80, blank=True)

    class Meta:
        verbose_name = _("follow-up attempt")
        verbose_name_plural = _("follow-up attempts")
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="attempt_key_unique",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "followup", "occurred_at"], name="attempt_followup")]

    def __str__(self) -> str:
        return f"{self.get_disposition_display()} {self.occurred_at:%Y-%m-%d %H:%M}"
