"""Sales (识别招募潜在客户): leads from first contact to delivery, showroom traffic, test drives,
quotes, defeats. docs/sales.md states every rule; this module holds the data and its invariants.

A lead always belongs to a person record (`customers.Customer`): a new mobile makes a prospect (a
customer without orders, as segmentation has always treated one), a known mobile attaches the lead
to the customer who has it. So a lead's calls, visits and test drives are the person's touchpoints,
its follow-ups are in the same daily queue as every other follow-up, and its story is on the
customer page; delivery adds the vehicle and the vehicle-sale order to the same person.

Invariants kept by the database, not only by Python:
- one open lead per person (a partial unique index): a second enquiry attaches to the first;
- a lead from an integration is stored once per (source system, external id);
- a demo vehicle is never booked twice at once (an exclusion constraint on the time range);
- a quote's version numbers are unique per lead; amounts are never negative;
- the lead history (LeadEvent) is append-only for the application role.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, RangeOperators
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Func, Q
from django.db.models.fields.json import KeyTransform
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.tenancy.models import Membership, TenantOwnedModel
from customers.models import Customer, Order, Vehicle

ZERO = Decimal("0")
MONEY = {"max_digits": 12, "decimal_places": 2, "validators": [MinValueValidator(ZERO)]}


class Source(models.TextChoices):
    WALK_IN = "walk_in", _("Showroom walk-in")
    PHONE = "phone", _("Inbound call")
    ONLINE = "online", _("Online portal")
    BRAND = "brand", _("Brand lead distribution")
    EVENT = "event", _("Auto show or event")
    REFERRAL = "referral", _("Referral")
    REPURCHASE = "repurchase", _("Repurchase, add-on or trade-in")


# Leads that arrive over the wire: the first-response limit applies to them.
ONLINE_SOURCES = (Source.ONLINE, Source.BRAND)


class Stage(models.TextChoices):
    NEW = "new", _("New")
    CONTACTED = "contacted", _("Contacted")
    INVITED = "invited", _("Invited")
    VISITED = "visited", _("Visited")
    TEST_DRIVE = "test_drive", _("Test drive")
    NEGOTIATION = "negotiation", _("Negotiation")
    ORDERED = "ordered", _("Ordered")
    DELIVERED = "delivered", _("Delivered")
    DEFEATED = "defeated", _("Defeated")


# The funnel's order; a lead has reached every stage up to its furthest (docs/sales.md#funnel).
STAGE_ORDER = (
    Stage.NEW,
    Stage.CONTACTED,
    Stage.INVITED,
    Stage.VISITED,
    Stage.TEST_DRIVE,
    Stage.NEGOTIATION,
    Stage.ORDERED,
    Stage.DELIVERED,
)
CLOSED_STAGES = (Stage.DELIVERED, Stage.DEFEATED)
OPEN_STAGES = tuple(stage for stage in STAGE_ORDER if stage not in CLOSED_STAGES)


class Level(models.TextChoices):
    """Intent (意向级别): how soon the person means to buy; the follow-up cadence follows it."""

    H = "H", _("H · buys within 7 days")
    A = "A", _("A · within 15 days")
    B = "B", _("B · within 30 days")
    C = "C", _("C · within 3 months")


class Timeframe(models.TextChoices):
    WEEK = "7d", _("Within a week")
    FORTNIGHT = "15d", _("Within 15 days")
    MONTH = "30d", _("Within a month")
    QUARTER = "90d", _("Within 3 months")
    LATER = "later", _("Later or not sure")


# The level a new lead starts at when nobody sets one: from the timeframe the person gave.
TIMEFRAME_LEVEL = {
    Timeframe.WEEK: Level.H,
    Timeframe.FORTNIGHT: Level.A,
    Timeframe.MONTH: Level.B,
    Timeframe.QUARTER: Level.C,
    Timeframe.LATER: Level.C,
}


class Payment(models.TextChoices):
    UNDECIDED = "undecided", _("Not decided")
    CASH = "cash", _("Full payment")
    LOAN = "loan", _("Loan")


class DefeatStatus(models.TextChoices):
    NONE = "", _("None")
    PENDING = "pending", _("Waiting for approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class SalesSettings(TenantOwnedModel):
    """The dealership's sales rules (one row per dealership, made with the defaults on first use)."""

    response_minutes = models.PositiveSmallIntegerField(
        _("first response within (business minutes)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text=_("For online and brand leads: from assignment to the first logged contact."),
    )
    reclaim_hours = models.PositiveSmallIntegerField(
        _("reclaim a lead nobody has called after (hours)"),
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 14)],
        help_text=_("Counted from when it was given out; the nightly run takes it back to the pool."),
    )
    reclaim_overdue_days = models.PositiveSmallIntegerField(
        _("reclaim a lead whose follow-up is overdue by (days)"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
    )
    protection_days = models.PositiveSmallIntegerField(
        _("an owner keeps a lead against a colleague's claim for (days)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("Counted from the owner's last contact; after it a manager decides a conflict."),
    )
    auto_assign = models.BooleanField(
        _("give new leads out automatically"),
        default=True,
        help_text=_("Round-robin among the consultants on duty; otherwise new leads wait in the pool."),
    )
    assign_by_brand = models.BooleanField(
        _("give a lead only to consultants of its brand"),
        default=False,
        help_text=_("Consultants with no brands listed take every brand."),
    )
    cadence_h_days = models.PositiveSmallIntegerField(
        _("follow up H leads every (days)"), default=2, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    cadence_a_days = models.PositiveSmallIntegerField(
        _("follow up A leads every (days)"), default=3, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    cadence_b_days = models.PositiveSmallIntegerField(
        _("follow up B leads every (days)"), default=7, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    cadence_c_days = models.PositiveSmallIntegerField(
        _("follow up C leads every (days)"), default=14, validators=[MinValueValidator(1), MaxValueValidator(180)]
    )
    dormant_days = models.PositiveSmallIntegerField(
        _("an open lead with no contact becomes dormant after (days)"),
        default=60,
        validators=[MinValueValidator(7), MaxValueValidator(730)],
    )
    wake_days = models.PositiveSmallIntegerField(
        _("wake a dormant lead after (days)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("The nightly run plans one wake-up call and the lead's cadence starts again."),
    )
    defeat_needs_approval = models.BooleanField(_("a defeat needs a manager's approval"), default=True)

    class Meta:
        verbose_name = _("sales settings")
        verbose_name_plural = _("sales settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="salessettings_one_per_tenant")]

    def __str__(self) -> str:
        return str(_("Sales rules"))

    def cadence_days(self, level: str) -> int:
        return {
            Level.H: self.cadence_h_days,
            Level.A: self.cadence_a_days,
            Level.B: self.cadence_b_days,
            Level.C: self.cadence_c_days,
        }[Level(level)]


class DefeatReason(TenantOwnedModel):
    """The dealership's list of reasons a lead is lost (战败原因)."""

    code = models.SlugField(_("code"), max_length=40)
    label = models.CharField(_("reason"), max_length=80)
    needs_competitor = models.BooleanField(_("ask which brand and model they bought"), default=False)
    is_active = models.BooleanField(_("offered"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("defeat reason")
        verbose_name_plural = _("defeat reasons")
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="defeatreason_code_unique")]

    def __str__(self) -> str:
        return self.label


class ConsultantDuty(TenantOwnedModel):
    """Who takes new leads (在岗), which brands, and when each last got one (the round-robin)."""

    member = models.OneToOneField(Membership, on_delete=models.PROTECT, related_name="+", verbose_name=_("consultant"))
    on_duty = models.BooleanField(_("on duty"), default=True)
    brands = ArrayField(models.CharField(max_length=40), default=list, blank=True, size=20, verbose_name=_("brands"))
    last_assigned_at = models.DateTimeField(_("last given a lead"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("consultant on duty")
        verbose_name_plural = _("consultants on duty")
        indexes = [models.Index(fields=["tenant", "on_duty", "last_assigned_at"], name="duty_round_robin")]

    def __str__(self) -> str:
        return str(self.member)


class Lead(TenantOwnedModel):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="leads", verbose_name=_("person"))
    owner = models.ForeignKey(
        Membership,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("consultant"),
        help_text=_("Empty: in the dealership's pool (公海)."),
    )
    # the person as the lead gave it (the customer record keeps its own copy)
    name = models.CharField(_("name"), max_length=100)
    mobile = models.CharField(_("mobile"), max_length=20)
    wechat = models.CharField(_("WeChat"), max_length=40, blank=True)
    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    source_system = models.CharField(
        _("source system"), max_length=40, blank=True, help_text=_("e.g. autohome, dongchedi, brand-dcc")
    )
    external_id = models.CharField(_("external id"), max_length=64, blank=True)
    campaign = models.CharField(_("campaign"), max_length=100, blank=True)
    referrer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="referred_leads",
        verbose_name=_("referred by"),
    )
    brand = models.CharField(_("brand of interest"), max_length=40, blank=True)
    series = models.CharField(_("model of interest"), max_length=60, blank=True)
    other_models = models.CharField(_("other models considered"), max_length=200, blank=True)
    budget = models.DecimalField(_("budget (CNY)"), null=True, blank=True, **MONEY)  # type: ignore[arg-type]
    timeframe = models.CharField(_("buys"), max_length=8, choices=Timeframe.choices, default=Timeframe.MONTH)
    payment = models.CharField(_("payment"), max_length=10, choices=Payment.choices, default=Payment.UNDECIDED)
    trade_in = models.CharField(
        _("trade-in vehicle"), max_length=120, blank=True, help_text=_("Brand, model and year of the car to trade in.")
    )
    level = models.CharField(_("intent level"), max_length=1, choices=Level.choices, default=Level.B)
    stage = models.CharField(_("stage"), max_length=12, choices=Stage.choices, default=Stage.NEW)
    notes = models.TextField(_("notes"), blank=True, max_length=4000)
    # the milestones (the funnel counts them), each set once, when first reached
    created_at = models.DateTimeField(_("captured"), default=timezone.now, editable=False)
    assigned_at = models.DateTimeField(_("given out"), null=True, blank=True, editable=False)
    first_contact_at = models.DateTimeField(_("first contact"), null=True, blank=True, editable=False)
    response_minutes = models.PositiveIntegerField(
        _("first response (business minutes)"), null=True, blank=True, editable=False
    )
    # online and brand leads: when the first response is due (response_minutes of business time)
    response_due_at = models.DateTimeField(_("first response due"), null=True, blank=True, editable=False)
    invited_at = models.DateTimeField(_("invited"), null=True, blank=True, editable=False)
    appointment_at = models.DateTimeField(_("appointment"), null=True, blank=True)
    visited_at = models.DateTimeField(_("first visit"), null=True, blank=True, editable=False)
    test_drive_at = models.DateTimeField(_("first test drive"), null=True, blank=True, editable=False)
    quoted_at = models.DateTimeField(_("first quote"), null=True, blank=True, editable=False)
    ordered_at = models.DateTimeField(_("ordered"), null=True, blank=True, editable=False)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True, editable=False)
    # working it
    last_contact_at = models.DateTimeField(_("last contact"), null=True, blank=True, editable=False)
    next_followup_on = models.DateField(_("next follow-up"), null=True, blank=True)
    dormant_since = models.DateField(_("dormant since"), null=True, blank=True, editable=False)
    woken_on = models.DateField(_("last woken"), null=True, blank=True, editable=False)
    # the order
    deposit = models.DecimalField(_("deposit (CNY)"), null=True, blank=True, **MONEY)  # type: ignore[arg-type]
    order_quote = models.ForeignKey(
        "Quote", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("quote ordered")
    )
    expected_delivery_on = models.DateField(_("expected delivery"), null=True, blank=True)
    vehicle = models.ForeignKey(
        Vehicle, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    sale_order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    # a defeat (战败)
    defeat_status = models.CharField(
        _("defeat"), max_length=10, choices=DefeatStatus.choices, default=DefeatStatus.NONE, blank=True
    )
    defeat_reason = models.ForeignKey(
        DefeatReason, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("defeat reason")
    )
    defeat_note = models.CharField(_("defeat note"), max_length=300, blank=True)
    competitor_brand = models.CharField(_("bought brand"), max_length=40, blank=True)
    competitor_model = models.CharField(_("bought model"), max_length=60, blank=True)
    defeat_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    defeat_requested_by = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    updated_at = models.DateTimeField(_("updated"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "customer"],
                condition=Q(stage__in=[s.value for s in OPEN_STAGES]),
                name="lead_one_open_per_person",
            ),
            models.UniqueConstraint(
                fields=["tenant", "source_system", "external_id"],
                condition=~Q(external_id=""),
                name="lead_external_id_unique",
            ),
            models.CheckConstraint(condition=Q(stage__in=Stage.values), name="lead_stage_valid"),
            models.CheckConstraint(condition=Q(level__in=Level.values), name="lead_level_valid"),
            models.CheckConstraint(condition=Q(source__in=Source.values), name="lead_source_valid"),
            models.CheckConstraint(condition=Q(defeat_status__in=DefeatStatus.values), name="lead_defeat_valid"),
            models.CheckConstraint(
                condition=~Q(stage="defeated") | Q(defeat_reason__isnull=False), name="lead_defeat_has_reason"
            ),
        ]
        indexes = [
            # "my leads today": a consultant's open leads by next follow-up
            models.Index(
                fields=["tenant", "owner", "next_followup_on"],
                condition=Q(stage__in=[s.value for s in OPEN_STAGES]),
                name="lead_owner_due",
            ),
            # the pool
            models.Index(
                fields=["tenant", "-created_at"],
                condition=Q(owner__isnull=True, stage__in=[s.value for s in OPEN_STAGES]),
                name="lead_pool",
            ),
            models.Index(fields=["tenant", "owner", "-created_at"], name="lead_owner_created"),
            # the funnel's period (leads captured in it) and the list's default order
            models.Index(fields=["tenant", "-created_at"], name="lead_created"),
            models.Index(fields=["tenant", "mobile"], name="lead_mobile"),
            models.Index(fields=["tenant", "customer"], name="lead_customer"),
            models.Index(
                fields=["tenant", "defeat_status"], condition=Q(defeat_status="pending"), name="lead_defeat_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} · {self.get_stage_display()}"

    @property
    def is_open(self) -> bool:
        return self.stage in OPEN_STAGES

    @property
    def in_pool(self) -> bool:
        return self.owner_id is None and self.is_open


class LeadEvent(TenantOwnedModel):
    """The lead's history: every stage, contact, owner change, defeat and reopening. Append-only
    for the application role (it is the audit of who moved a lead and who gave it to whom)."""

    rls_append_only = True

    class Kind(models.TextChoices):
        CREATED = "created", _("Captured")
        ENQUIRY = "enquiry", _("Enquired again")
        ASSIGNED = "assigned", _("Given to a consultant")
        RECLAIMED = "reclaimed", _("Back to the pool")
        CONFLICT = "conflict", _("Ownership conflict")
        CONFLICT_DECIDED = "conflict_decided", _("Conflict decided")
        CONTACT = "contact", _("Contact")
        STAGE = "stage", _("Stage")
        LEVEL = "level", _("Intent level")
        VISIT = "visit", _("Showroom visit")
        TEST_DRIVE = "test_drive", _("Test drive")
        QUOTE = "quote", _("Quote")
        ORDER = "order", _("Ordered (deposit paid)")
        DELIVERY = "delivery", _("Delivery")
        DEFEAT_REQUESTED = "defeat_requested", _("Defeat reported")
        DEFEAT_APPROVED = "defeat_approved", _("Defeat approved")
        DEFEAT_REJECTED = "defeat_rejected", _("Defeat rejected")
        REOPENED = "reopened", _("Reopened")
        DORMANT = "dormant", _("Dormant")
        WOKEN = "woken", _("Woken")
        EDITED = "edited", _("Details changed")

    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(_("what"), max_length=20, choices=Kind.choices)
    at = models.DateTimeField(_("time"), default=timezone.now)
    actor = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("by")
    )
    from_owner = models.ForeignKey(Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_owner = models.ForeignKey(Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    summary = models.CharField(_("summary"), max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("lead event")
        verbose_name_plural = _("lead events")
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["tenant", "lead", "at"], name="leadevent_lead"),
            # a replayed enquiry is found by its external id (services.lead_capture)
            models.Index(
                models.F("tenant"),
                KeyTransform("external_id", "data"),
                condition=Q(kind="enquiry"),
                name="leadevent_enquiry_external",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.at:%Y-%m-%d %H:%M}"


class Conflict(TenantOwnedModel):
    """撞单: a colleague captured a lead someone else owns, after the owner's protection ran out."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a manager")
        KEPT = "kept", _("Stays with the owner")
        MOVED = "moved", _("Given to the claimant")

    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="conflicts")
    claimant = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="+", verbose_name=_("claimed by"))
    owner = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="+", verbose_name=_("owner then"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(_("raised"), default=timezone.now, editable=False)
    decided_by = models.ForeignKey(Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("ownership conflict")
        verbose_name_plural = _("ownership conflicts")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "lead"], condition=Q(status="pending"), name="conflict_one_pending_per_lead"
            )
        ]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.claimant_id} vs {self.owner_id}"


class ShowroomVisit(TenantOwnedModel):
    """客流登记: every walk-in, also of people who leave no details."""

    arrived_at = models.DateTimeField(_("arrived"))
    left_at = models.DateTimeField(_("left"), null=True, blank=True)
    party_size = models.PositiveSmallIntegerField(
        _("people"), default=1, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    first_visit = models.BooleanField(_("first visit"), default=True)
    consultant = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("consultant")
    )
    lead = models.ForeignKey(
        Lead, on_delete=models.PROTECT, null=True, blank=True, related_name="visits", verbose_name=_("lead")
    )
    series = models.CharField(_("models looked at"), max_length=100, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("showroom visit")
        verbose_name_plural = _("showroom visits")
        constraints = [
            models.CheckConstraint(
                condition=Q(left_at__isnull=True) | Q(left_at__gt=models.F("arrived_at")), name="visit_left_after"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "-arrived_at"], name="visit_arrived"),
            models.Index(fields=["tenant", "lead"], name="visit_lead"),
        ]

    def __str__(self) -> str:
        return f"{self.arrived_at:%Y-%m-%d %H:%M} · {self.party_size}"


class DemoVehicle(TenantOwnedModel):
    """The dealership's test-drive cars (试驾车)."""

    brand = models.CharField(_("brand"), max_length=40)
    series = models.CharField(_("model"), max_length=60)
    trim = models.CharField(_("trim"), max_length=100, blank=True)
    plate = models.CharField(_("plate"), max_length=12, blank=True)
    vin = models.CharField(_("VIN"), max_length=17, blank=True)
    is_active = models.BooleanField(_("in service"), default=True)

    class Meta:
        verbose_name = _("demo vehicle")
        verbose_name_plural = _("demo vehicles")
        ordering = ["brand", "series", "id"]

    def __str__(self) -> str:
        return " ".join(part for part in (self.brand, self.series, self.trim, self.plate) if part)


class TstzRange(Func):
    function = "TSTZRANGE"
    output_field = models.DateTimeField()


class TestDrive(TenantOwnedModel):
    """试乘试驾: a booking of a demo vehicle for a time slot, and what came of it."""

    class Status(models.TextChoices):
        BOOKED = "booked", _("Booked")
        DONE = "done", _("Driven")
        NO_SHOW = "no_show", _("Did not come")
        CANCELLED = "cancelled", _("Cancelled")

    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="test_drives", verbose_name=_("lead"))
    vehicle = models.ForeignKey(
        DemoVehicle, on_delete=models.PROTECT, related_name="bookings", verbose_name=_("demo vehicle")
    )
    consultant = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("consultant")
    )
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.BOOKED)
    licence_number = models.CharField(_("driving licence number"), max_length=20, blank=True)
    licence_expiry = models.DateField(_("licence valid until"), null=True, blank=True)
    licence_consent = models.BooleanField(_("agreed to the licence being recorded"), default=False)
    agreement = models.FileField(_("signed agreement"), upload_to="test_drives/%Y/%m/", blank=True)
    agreement_type = models.CharField(max_length=40, blank=True, editable=False)
    feedback = models.TextField(_("feedback"), blank=True, max_length=2000)
    rating = models.PositiveSmallIntegerField(
        _("how they liked it (1–5)"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    driven_at = models.DateTimeField(_("driven"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("test drive")
        verbose_name_plural = _("test drives")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="testdrive_ends_after"),
            models.CheckConstraint(
                condition=Q(status__in=["booked", "done", "no_show", "cancelled"]), name="testdrive_status_valid"
            ),
            ExclusionConstraint(
                name="testdrive_no_double_booking",
                expressions=[
                    ("tenant", RangeOperators.EQUAL),
                    ("vehicle", RangeOperators.EQUAL),
                    (TstzRange("starts_at", "ends_at"), RangeOperators.OVERLAPS),
                ],
                condition=Q(status__in=["booked", "done"]),
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "vehicle", "starts_at"], name="testdrive_vehicle_time"),
            models.Index(fields=["tenant", "lead"], name="testdrive_lead"),
        ]

    def __str__(self) -> str:
        return f"{self.vehicle} {self.starts_at:%Y-%m-%d %H:%M}"


class Quote(TenantOwnedModel):
    """报价: one version of an offer. A change is a new version; earlier ones are kept as they were."""

    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="quotes", verbose_name=_("lead"))
    version = models.PositiveSmallIntegerField(_("version"))
    brand = models.CharField(_("brand"), max_length=40)
    series = models.CharField(_("model"), max_length=60)
    trim = models.CharField(_("trim"), max_length=100, blank=True)
    colour = models.CharField(_("colour"), max_length=30, blank=True)
    list_price = models.DecimalField(_("list price"), **MONEY)  # type: ignore[arg-type]
    discount = models.DecimalField(_("discount"), default=ZERO, **MONEY)  # type: ignore[arg-type]
    trade_in_vehicle = models.CharField(_("trade-in vehicle"), max_length=120, blank=True)
    trade_in_value = models.DecimalField(_("trade-in appraisal"), default=ZERO, **MONEY)  # type: ignore[arg-type]
    insurance = models.DecimalField(_("insurance"), default=ZERO, **MONEY)  # type: ignore[arg-type]
    accessories = models.JSONField(_("accessories"), default=list, blank=True, help_text=_("A list of {name, price}."))
    fees = models.DecimalField(_("registration and other fees"), default=ZERO, **MONEY)  # type: ignore[arg-type]
    financed = models.BooleanField(_("with a loan"), default=False)
    down_payment = models.DecimalField(_("down payment"), default=ZERO, **MONEY)  # type: ignore[arg-type]
    term_months = models.PositiveSmallIntegerField(
        _("loan term (months)"), null=True, blank=True, validators=[MinValueValidator(6), MaxValueValidator(84)]
    )
    monthly_rate = models.DecimalField(
        _("monthly interest rate (%)"),
        max_digits=6,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal("5"))],
    )
    # computed by services.quote_totals, stored as quoted
    accessories_total = models.DecimalField(_("accessories total"), default=ZERO, editable=False, **MONEY)  # type: ignore[arg-type]
    vehicle_price = models.DecimalField(_("vehicle price"), default=ZERO, editable=False, **MONEY)  # type: ignore[arg-type]
    total = models.DecimalField(_("total to pay"), default=ZERO, editable=False, **MONEY)  # type: ignore[arg-type]
    loan_amount = models.DecimalField(_("loan amount"), default=ZERO, editable=False, **MONEY)  # type: ignore[arg-type]
    monthly_payment = models.DecimalField(_("monthly payment"), default=ZERO, editable=False, **MONEY)  # type: ignore[arg-type]
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_by = models.ForeignKey(Membership, on_delete=models.PROTECT, null=True, related_name="+", editable=False)
    created_at = models.DateTimeField(_("quoted"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("quote")
        verbose_name_plural = _("quotes")
        ordering = ["lead", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "lead", "version"], name="quote_version_unique"),
            models.CheckConstraint(condition=Q(total__gte=0), name="quote_total_not_negative"),
            models.CheckConstraint(condition=Q(discount__lte=models.F("list_price")), name="quote_discount_le_price"),
        ]

    def __str__(self) -> str:
        return f"{self.brand} {self.series} v{self.version}"
