"""Complaint tickets: the six steps, SLA clocks in business hours, escalation, the closed loop.

"First the feelings, then the problem" (先处理心情，再处理问题): greet → listen → calm → handle →
close → follow up. The workflow rules live in `complaints/workflow.py`, the clocks in
`complaints/sla.py`; docs/complaints.md explains both.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.tenancy.models import Membership, TenantOwnedModel
from customers.models import Customer, Vehicle


class Channel(models.TextChoices):
    PHONE = "phone", _("Phone")
    WALK_IN = "walk_in", _("Walk-in")
    WECHAT = "wechat", _("WeChat")
    WEB_FORM = "web_form", _("Web form")
    MANUFACTURER = "manufacturer", _("Manufacturer hotline")
    CONSUMER_12315 = "12315", _("12315 consumer hotline")


class Severity(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    HIGH = "high", _("High")
    NORMAL = "normal", pgettext_lazy("severity", "Normal")
    LOW = "low", _("Low")


class Status(models.TextChoices):
    """The six steps, then reopened. Each open step names what staff do next."""

    GREET = "greet", _("Greet")
    LISTEN = "listen", _("Listen")
    CALM = "calm", _("Calm")
    HANDLE = "handle", _("Handle")
    CLOSED = "closed", _("Closed")
    FOLLOWED_UP = "followed_up", _("Followed up")
    REOPENED = "reopened", _("Reopened")


OPEN_STATUSES = (Status.GREET, Status.LISTEN, Status.CALM, Status.HANDLE, Status.REOPENED)


class CustomerState(models.TextChoices):
    """What the customer is shown of a ticket (the public status page). The staff's steps are
    instructions to staff ("calm the customer"), not something to show an upset customer."""

    RECEIVED = "received", pgettext_lazy("complaint shown to the customer", "Received")
    HANDLING = "handling", pgettext_lazy("complaint shown to the customer", "Being handled")
    RESOLVED = "resolved", pgettext_lazy("complaint shown to the customer", "Resolved")
    CLOSED = "closed", pgettext_lazy("complaint shown to the customer", "Closed")


CUSTOMER_STATE_OF_STATUS = {
    Status.GREET: CustomerState.RECEIVED,
    Status.LISTEN: CustomerState.HANDLING,
    Status.CALM: CustomerState.HANDLING,
    Status.HANDLE: CustomerState.HANDLING,
    Status.REOPENED: CustomerState.HANDLING,
    Status.CLOSED: CustomerState.RESOLVED,
    Status.FOLLOWED_UP: CustomerState.CLOSED,
}


class ComplaintCategory(TenantOwnedModel):
    """Dealership-configurable; the standard set is created on first use."""

    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=60)
    is_active = models.BooleanField(_("active"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("complaint category")
        verbose_name_plural = _("complaint categories")
        ordering = ["position", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="complaintcategory_code_unique")]

    def __str__(self) -> str:
        return self.name


class SlaPolicy(TenantOwnedModel):
    """Targets in business minutes for a severity, optionally for one category (which wins)."""

    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    category = models.ForeignKey(
        ComplaintCategory, on_delete=models.CASCADE, null=True, blank=True, verbose_name=_("category")
    )
    first_response_minutes = models.PositiveIntegerField(
        _("first response within (business minutes)"), validators=[MinValueValidator(1)]
    )
    resolution_minutes = models.PositiveIntegerField(
        _("resolution within (business minutes)"), validators=[MinValueValidator(1)]
    )

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "severity", "category"], name="slapolicy_unique", nulls_distinct=False
            ),
            models.CheckConstraint(
                condition=models.Q(resolution_minutes__gte=models.F("first_response_minutes")),
                name="slapolicy_resolution_after_response",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()} {self.category or ''}".strip()


class ComplaintSettings(TenantOwnedModel):
    reopen_window_days = models.PositiveSmallIntegerField(
        _("reopen window (days)"),
        default=30,
        help_text=_("A ticket reopened within this many days of closing counts as not resolved."),
    )
    follow_up_after_days = models.PositiveSmallIntegerField(
        _("follow-up call after (days)"), default=3, help_text=_("Days after closing to call the customer back.")
    )
    public_form_enabled = models.BooleanField(_("public complaint form"), default=True)

    class Meta:
        verbose_name = _("complaint settings")
        verbose_name_plural = _("complaint settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="complaintsettings_one_per_tenant")]


class Ticket(TenantOwnedModel):
    class Source(models.TextChoices):
        STAFF = "staff", _("Entered by staff")
        PUBLIC_FORM = "public_form", _("Public complaint form")
        API = "api", _("API")
        SURVEY = "survey", _("Low survey score")

    number = models.CharField(_("acknowledgement number"), max_length=20, editable=False)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="tickets", verbose_name=_("customer")
    )
    vehicle = models.ForeignKey(
        Vehicle, on_delete=models.PROTECT, null=True, blank=True, related_name="tickets", verbose_name=_("vehicle")
    )
    contact_name = models.CharField(_("contact name"), max_length=100)
    contact_mobile = models.CharField(_("contact mobile"), max_length=16)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    category = models.ForeignKey(ComplaintCategory, on_delete=models.PROTECT, verbose_name=_("category"))
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, default=Severity.NORMAL)
    subject = models.CharField(_("subject"), max_length=200)
    description = models.TextField(_("description"), max_length=8000)
    source = models.CharField(_("source"), max_length=12, choices=Source.choices, default=Source.STAFF)
    status = models.CharField(_("step"), max_length=12, choices=Status.choices, default=Status.GREET)
    assignee = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("assignee")
    )
    opened_at = models.DateTimeField(_("opened"), default=timezone.now, editable=False)
    # SLA: targets in business minutes (from the policy at opening), due and 80%-warning moments.
    response_target_minutes = models.PositiveIntegerField(editable=False)
    resolution_target_minutes = models.PositiveIntegerField(editable=False)
    response_due_at = models.DateTimeField(_("first response due"), editable=False)
    response_warn_at = models.DateTimeField(editable=False)
    resolution_due_at = models.DateTimeField(_("resolution due"), editable=False)
    resolution_warn_at = models.DateTimeField(editable=False)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True, editable=False)
    resolved_at = models.DateTimeField(_("closed"), null=True, blank=True, editable=False)
    # Business minutes from opening, waiting on the customer excluded, to the nearest whole minute
    # (halves up; for the metrics).
    response_minutes = models.PositiveIntegerField(_("first response (business minutes)"), null=True, editable=False)
    resolution_minutes = models.PositiveIntegerField(_("resolution (business minutes)"), null=True, editable=False)
    # Waiting on the customer: the clocks stop; on resuming, due times move by the business time
    # spent waiting, exactly (never rounded); paused_duration is the sum of every wait.
    paused_at = models.DateTimeField(_("waiting on the customer since"), null=True, blank=True, editable=False)
    paused_duration = models.DurationField(
        _("business time waited"), default=timedelta(0), db_default=timedelta(0), editable=False
    )
    # Escalation stages, each fired once (set by a conditional UPDATE).
    response_warned_at = models.DateTimeField(null=True, blank=True, editable=False)
    response_breached_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolution_warned_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolution_breached_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Closing
    root_cause = models.TextField(_("root cause"), blank=True, max_length=4000)
    resolution = models.TextField(_("resolution"), blank=True, max_length=4000)
    compensation_amount = models.DecimalField(
        _("compensation (CNY)"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(0)],
    )
    compensation_points = models.PositiveIntegerField(_("compensation (loyalty points)"), default=0)
    compensation_note = models.CharField(_("compensation details"), max_length=300, blank=True)
    follow_up_due_on = models.DateField(_("follow-up call due"), null=True, blank=True, editable=False)
    followed_up_at = models.DateTimeField(_("followed up"), null=True, blank=True, editable=False)
    reopen_count = models.PositiveSmallIntegerField(_("times reopened"), default=0, editable=False)
    # Reopened within the dealership's window after closing: the resolution did not hold.
    resolution_failed = models.BooleanField(_("resolution did not hold"), default=False, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("complaint ticket")
        verbose_name_plural = _("complaint tickets")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="ticket_number_unique"),
            models.CheckConstraint(condition=models.Q(status__in=Status.values), name="ticket_status_valid"),
            models.CheckConstraint(condition=models.Q(compensation_amount__gte=0), name="ticket_compensation_valid"),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "resolution_due_at"], name="ticket_queue"),
            models.Index(fields=["tenant", "assignee", "status"], name="ticket_assignee"),
            models.Index(fields=["tenant", "customer", "-opened_at"], name="ticket_customer"),
            models.Index(fields=["tenant", "-opened_at"], name="ticket_opened"),
            models.Index(fields=["tenant", "contact_mobile"], name="ticket_contact_mobile"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class TicketWatcher(TenantOwnedModel):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="watchers")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = _("watcher")
        verbose_name_plural = _("watchers")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "ticket", "membership"], name="ticketwatcher_unique"),
        ]


class TicketEvent(TenantOwnedModel):
    """The ticket's timeline; append-only (who, when, what, and the note)."""

    rls_append_only = True

    class Kind(models.TextChoices):
        OPENED = "opened", _("Opened")
        TRANSITION = "transition", _("Step")
        NOTE = "note", _("Note")
        ASSIGNED = "assigned", _("Assigned")
        PAUSED = "paused", _("Waiting on the customer")
        RESUMED = "resumed", _("Resumed")
        ATTACHMENT = "attachment", _("Attachment")
        SLA_WARNING = "sla_warning", _("SLA warning")
        SLA_BREACH = "sla_breach", _("SLA breached")
        CUSTOMER_LINKED = "customer_linked", _("Customer linked")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    from_status = models.CharField(_("from"), max_length=12, choices=Status.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=12, choices=Status.choices, blank=True)
    actor = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("by")
    )
    note = models.TextField(_("note"), blank=True, max_length=4000)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("ticket event")
        verbose_name_plural = _("ticket events")
        indexes = [models.Index(fields=["tenant", "ticket", "created_at"], name="ticketevent_ticket")]


class TicketAttachment(TenantOwnedModel):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(_("file"), upload_to="complaints/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveIntegerField(_("size (bytes)"))
    uploaded_by = models.ForeignKey(Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("uploaded"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        indexes = [models.Index(fields=["tenant", "ticket"], name="ticketattachment_ticket")]

    def __str__(self) -> str:
        return self.original_name
