"""API shapes of sales: the lead (its mobile masked unless the caller may see it in full), its
history, quotes and test drives; the inputs of capturing, editing and moving a lead; showroom
traffic, demo vehicles, test-drive slots and the funnel.

Input serializers check types and ranges (a 400 on the field, whatever JSON type arrives); the
services check the business rules again and say what is wrong with each field."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.api.serializers import BlankChoices, DateRangeQuerySerializer, StrictInput
from crm.tenancy.models import Membership
from followups.models import Disposition
from sales.models import (
    DefeatReason,
    DemoVehicle,
    Lead,
    LeadEvent,
    Level,
    Payment,
    Quote,
    ShowroomVisit,
    Source,
    Stage,
    TestDrive,
    Timeframe,
)
from sales.selectors import lead_mobile_shown
from sales.services import CONTACT_DISPOSITIONS, TEST_DRIVE_OUTCOMES

MAX_ID = 2**63 - 1  # a bigint: larger ids are a field error, not a database error
KEY_HELP = (
    "8–80 of A-Z a-z 0-9 - _ : . A retry with the same key (from the same caller) returns the lead it "
    "created first (200) instead of capturing it again."
)


def _id(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


def _money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, **kwargs)


def _text(max_length: int, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True, default="", **kwargs)


# --- output -----------------------------------------------------------------------------------------


class SalesPersonSerializer(serializers.Serializer[Membership]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(source="display_name", read_only=True)


class LeadCustomerSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class DefeatReasonSerializer(serializers.ModelSerializer[DefeatReason]):
    class Meta:
        model = DefeatReason
        fields = ["code", "label", "needs_competitor"]
        read_only_fields = fields


LEAD_FIELDS = [
    "id",
    "customer",
    "owner",
    "in_pool",
    "name",
    "mobile",
    "wechat",
    "source",
    "source_system",
    "external_id",
    "campaign",
    "referrer",
    "brand",
    "series",
    "other_models",
    "budget",
    "timeframe",
    "payment",
    "trade_in",
    "level",
    "stage",
    "notes",
    "created_at",
    "assigned_at",
    "first_contact_at",
    "response_minutes",
    "response_due_at",
    "invited_at",
    "appointment_at",
    "visited_at",
    "test_drive_at",
    "quoted_at",
    "ordered_at",
    "delivered_at",
    "closed_at",
    "last_contact_at",
    "next_followup_on",
    "dormant_since",
    "deposit",
    "order_quote",
    "expected_delivery_on",
    "vehicle",
    "sale_order",
    "defeat_status",
    "defeat_reason",
    "defeat_note",
    "competitor_brand",
    "competitor_model",
    "updated_at",
]


class LeadSerializer(BlankChoices, serializers.ModelSerializer[Lead]):
    """A lead. `mobile` is in full only to the lead's own consultant and to integrations; `wechat`
    follows it (empty when the mobile is masked)."""

    customer = LeadCustomerSerializer(read_only=True)
    owner = SalesPersonSerializer(read_only=True, allow_null=True, help_text="null: in the pool (公海).")
    in_pool = serializers.BooleanField(read_only=True)
    mobile = serializers.SerializerMethodField(
        help_text="Masked (the middle four digits as ****) unless it is your lead."
    )
    wechat = serializers.SerializerMethodField()
    referrer = serializers.IntegerField(source="referrer_id", read_only=True, allow_null=True)
    order_quote = serializers.IntegerField(source="order_quote_id", read_only=True, allow_null=True)
    vehicle = serializers.IntegerField(source="vehicle_id", read_only=True, allow_null=True)
    sale_order = serializers.IntegerField(source="sale_order_id", read_only=True, allow_null=True)
    defeat_reason = DefeatReasonSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Lead
        fields = LEAD_FIELDS
        read_only_fields = fields

    def _full(self, lead: Lead) -> bool:
        viewer = self.context["membership"]
        return lead_mobile_shown(viewer=viewer, lead=lead) == lead.mobile

    def get_mobile(self, lead: Lead) -> str:
        return lead_mobile_shown(viewer=self.context["membership"], lead=lead)

    def get_wechat(self, lead: Lead) -> str:
        return lead.wechat if self._full(lead) else ""


class LeadEventSerializer(BlankChoices, serializers.ModelSerializer[LeadEvent]):
    actor = SalesPersonSerializer(read_only=True, allow_null=True)
    from_owner = SalesPersonSerializer(read_only=True, allow_null=True)
    to_owner = SalesPersonSerializer(read_only=True, allow_null=True)

    class Meta:
        model = LeadEvent
        fields = ["id", "kind", "at", "actor", "from_owner", "to_owner", "summary"]
        read_only_fields = fields


class AccessorySerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=80)
    price = _money()


class QuoteSerializer(serializers.ModelSerializer[Quote]):
    accessories = AccessorySerializer(many=True, read_only=True)
    lead = serializers.IntegerField(source="lead_id", read_only=True)

    class Meta:
        model = Quote
        fields = [
            "id",
            "lead",
            "version",
            "brand",
            "series",
            "trim",
            "colour",
            "list_price",
            "discount",
            "trade_in_vehicle",
            "trade_in_value",
            "insurance",
            "accessories",
            "fees",
            "financed",
            "down_payment",
            "term_months",
            "monthly_rate",
            "accessories_total",
            "vehicle_price",
            "total",
            "loan_amount",
            "monthly_payment",
            "valid_until",
            "note",
            "created_at",
        ]
        read_only_fields = fields


class DemoVehicleSerializer(serializers.ModelSerializer[DemoVehicle]):
    class Meta:
        model = DemoVehicle
        fields = ["id", "brand", "series", "trim", "plate", "is_active"]
        read_only_fields = fields


class TestDriveSerializer(serializers.ModelSerializer[TestDrive]):
    """A booking; the driving licence number is never returned (only whether one was recorded)."""

    lead = serializers.IntegerField(source="lead_id", read_only=True)
    vehicle = DemoVehicleSerializer(read_only=True)
    consultant = SalesPersonSerializer(read_only=True, allow_null=True)
    licence_recorded = serializers.SerializerMethodField()
    has_agreement = serializers.SerializerMethodField()

    class Meta:
        model = TestDrive
        fields = [
            "id",
            "lead",
            "vehicle",
            "consultant",
            "starts_at",
            "ends_at",
            "status",
            "licence_recorded",
            "licence_expiry",
            "has_agreement",
            "feedback",
            "rating",
            "driven_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_licence_recorded(self, drive: TestDrive) -> bool:
        return bool(drive.licence_number)

    def get_has_agreement(self, drive: TestDrive) -> bool:
        return bool(drive.agreement)


class LeadDetailSerializer(LeadSerializer):
    history = serializers.SerializerMethodField(help_text="Every event of the lead, oldest first.")
    quotes = serializers.SerializerMethodField(help_text="Every version, the newest first.")
    test_drives = serializers.SerializerMethodField(help_text="The newest first.")

    class Meta(LeadSerializer.Meta):
        fields = [*LEAD_FIELDS, "history", "quotes", "test_drives"]
        read_only_fields = fields

    @extend_schema_field(LeadEventSerializer(many=True))
    def get_history(self, lead: Lead) -> Any:
        return LeadEventSerializer(self.context["history"], many=True).data

    @extend_schema_field(QuoteSerializer(many=True))
    def get_quotes(self, lead: Lead) -> Any:
        return QuoteSerializer(self.context["quotes"], many=True).data

    @extend_schema_field(TestDriveSerializer(many=True))
    def get_test_drives(self, lead: Lead) -> Any:
        return TestDriveSerializer(self.context["test_drives"], many=True).data


class LeadCaptureResultSerializer(serializers.Serializer[Any]):
    created = serializers.BooleanField(help_text="true: a new lead (201); false: an earlier lead took it (200).")
    notice = serializers.CharField(
        allow_blank=True, help_text="What you should know: whose lead the person is, a conflict raised."
    )
    lead = LeadSerializer(allow_null=True, help_text="null: the person is a colleague's lead you may not see.")


class ShowroomVisitSerializer(serializers.ModelSerializer[ShowroomVisit]):
    consultant = SalesPersonSerializer(read_only=True, allow_null=True)
    lead = serializers.IntegerField(source="lead_id", read_only=True, allow_null=True)

    class Meta:
        model = ShowroomVisit
        fields = ["id", "arrived_at", "left_at", "party_size", "first_visit", "consultant", "lead", "series", "note"]
        read_only_fields = fields


class SlotSerializer(serializers.Serializer[Any]):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    free = serializers.BooleanField()


# --- input ------------------------------------------------------------------------------------------


class LeadCaptureSerializer(StrictInput, serializers.Serializer[Any]):
    """A lead as an integration or a consultant sends it. With `external_id` (and its
    `source_system`) it is captured once however often it is sent."""

    name = serializers.CharField(max_length=100)
    mobile = serializers.CharField(max_length=20, help_text="A mainland mobile: 13800138000 or +86 138 0013 8000.")
    wechat = _text(40)
    source = serializers.ChoiceField(choices=Source.choices)  # type: ignore[assignment]
    source_system = _text(40, help_text="e.g. autohome, dongchedi, brand-dcc; required with external_id.")
    external_id = _text(64, help_text="The lead's id in the source system.")
    campaign = _text(100)
    referrer = _id(required=False, allow_null=True, default=None, help_text="Customer id; required for a referral.")
    brand = _text(40)
    series = _text(60)
    other_models = _text(200)
    budget = _money(required=False, allow_null=True, default=None)
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, default=Timeframe.MONTH)
    payment = serializers.ChoiceField(choices=Payment.choices, default=Payment.UNDECIDED)
    trade_in = _text(120)
    level = serializers.ChoiceField(
        choices=Level.choices, required=False, allow_blank=True, default="", help_text="Empty: from the timeframe."
    )
    notes = _text(4000)
    owner = _id(
        required=False,
        allow_null=True,
        default=None,
        help_text="Membership id of the consultant; empty: the person's consultant, you, or the round-robin.",
    )
    appointment_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class LeadBulkSerializer(StrictInput, serializers.Serializer[Any]):
    """Only for the schema: the view checks each row on its own (a bad row fails alone)."""

    leads = LeadCaptureSerializer(many=True, max_length=1000, allow_empty=False)  # type: ignore[call-arg]


class LeadBulkRowSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField(help_text="The row's position in `leads`, from 0.")
    status = serializers.ChoiceField(choices=[("created", "created"), ("existing", "existing"), ("error", "error")])
    id = serializers.IntegerField(allow_null=True, help_text="The lead; null on an error or a colleague's lead.")
    notice = serializers.CharField(allow_blank=True)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class LeadBulkResultSerializer(serializers.Serializer[Any]):
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    errors = serializers.IntegerField()  # type: ignore[assignment]
    results = LeadBulkRowSerializer(many=True)


class LeadUpdateSerializer(StrictInput, serializers.Serializer[Any]):
    """Only the keys sent are changed."""

    name = serializers.CharField(max_length=100, required=False)
    wechat = serializers.CharField(max_length=40, required=False, allow_blank=True)
    campaign = serializers.CharField(max_length=100, required=False, allow_blank=True)
    brand = serializers.CharField(max_length=40, required=False, allow_blank=True)
    series = serializers.CharField(max_length=60, required=False, allow_blank=True)
    other_models = serializers.CharField(max_length=200, required=False, allow_blank=True)
    budget = _money(required=False, allow_null=True)
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, required=False)
    payment = serializers.ChoiceField(choices=Payment.choices, required=False)
    trade_in = serializers.CharField(max_length=120, required=False, allow_blank=True)
    level = serializers.ChoiceField(choices=Level.choices, required=False)
    notes = serializers.CharField(max_length=4000, required=False, allow_blank=True)
    next_followup_on = serializers.DateField(required=False, allow_null=True)


# A subset of the follow-ups' dispositions: named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]
# (LeadContactDispositionEnum, beside the follow-ups' DispositionEnum, which keeps its name).
CONTACT_DISPOSITION_CHOICES = [(d.value, d.label) for d in CONTACT_DISPOSITIONS]


class LeadContactSerializer(StrictInput, serializers.Serializer[Any]):
    disposition = serializers.ChoiceField(choices=CONTACT_DISPOSITION_CHOICES)
    notes = _text(4000)
    channel = serializers.ChoiceField(choices=[("call", "call"), ("wechat", "wechat"), ("sms", "sms")], default="call")
    callback_on = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="With disposition=callback: the next follow-up."
    )
    occurred_at = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="Now by default.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["disposition"] == Disposition.CALLBACK and attrs["callback_on"] is None:
            raise serializers.ValidationError({"callback_on": ["Say when to call back."]})
        return attrs


class LeadInviteSerializer(StrictInput, serializers.Serializer[Any]):
    appointment_at = serializers.DateTimeField(help_text="When they will come (within 90 days).")
    note = _text(300)


class LeadAssignSerializer(StrictInput, serializers.Serializer[Any]):
    to = _id(
        allow_null=True, help_text="Membership id of a consultant (yourself: take a pool lead), or null: the pool."
    )
    note = _text(300)


class LeadDefeatSerializer(StrictInput, serializers.Serializer[Any]):
    reason = serializers.SlugField(max_length=40, help_text="A defeat reason's code of the dealership's list.")
    note = _text(300)
    competitor_brand = _text(40, help_text="Required when the reason asks which brand they bought.")
    competitor_model = _text(60)


class LeadDefeatDecisionSerializer(StrictInput, serializers.Serializer[Any]):
    approve = serializers.BooleanField()
    note = _text(300, help_text="Required to reject.")


class LeadReopenSerializer(StrictInput, serializers.Serializer[Any]):
    note = _text(300)


class LeadOrderSerializer(StrictInput, serializers.Serializer[Any]):
    quote = _id(help_text="The id of one of this lead's quotes.")
    deposit = _money()
    expected_delivery_on = serializers.DateField(required=False, allow_null=True, default=None)


class LeadDeliverSerializer(StrictInput, serializers.Serializer[Any]):
    vin = serializers.CharField(max_length=17, min_length=17)
    plate = _text(12)
    delivered_on = serializers.DateField(required=False, allow_null=True, default=None, help_text="Today by default.")
    amount = _money(required=False, allow_null=True, default=None, help_text="The quote's total by default.")
    mileage_km = serializers.IntegerField(
        min_value=0, max_value=2_000_000, required=False, allow_null=True, default=None
    )


class QuoteCreateSerializer(StrictInput, serializers.Serializer[Any]):
    brand = serializers.CharField(max_length=40)
    series = serializers.CharField(max_length=60)
    trim = _text(100)
    colour = _text(30)
    list_price = _money()
    discount = _money(default="0")
    trade_in_vehicle = _text(120)
    trade_in_value = _money(default="0")
    insurance = _money(default="0")
    accessories = AccessorySerializer(many=True, required=False, max_length=30)  # type: ignore[call-arg]
    fees = _money(default="0")
    financed = serializers.BooleanField(default=False)
    down_payment = _money(default="0")
    term_months = serializers.IntegerField(min_value=6, max_value=84, required=False, allow_null=True, default=None)
    monthly_rate = serializers.DecimalField(
        max_digits=6, decimal_places=4, min_value=0, max_value=5, required=False, allow_null=True, default=None
    )
    valid_until = serializers.DateField(required=False, allow_null=True, default=None)
    note = _text(300)


class TestDriveBookSerializer(StrictInput, serializers.Serializer[Any]):
    vehicle = _id(help_text="A demo vehicle's id.")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class TestDriveRecordSerializer(StrictInput, serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=[(s.value, s.label) for s in TEST_DRIVE_OUTCOMES])
    licence_number = _text(20, help_text="Required when driven.")
    licence_expiry = serializers.DateField(required=False, allow_null=True, default=None)
    licence_consent = serializers.BooleanField(default=False)
    feedback = _text(2000)
    rating = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True, default=None)
    agreement = serializers.FileField(
        required=False, allow_null=True, default=None, help_text="The signed agreement (PDF or photo, 10 MB at most)."
    )


class ShowroomVisitCreateSerializer(StrictInput, serializers.Serializer[Any]):
    arrived_at = serializers.DateTimeField()
    left_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    party_size = serializers.IntegerField(min_value=1, max_value=30, default=1)
    first_visit = serializers.BooleanField(default=True)
    consultant = _id(required=False, allow_null=True, default=None, help_text="Membership id; you by default.")
    series = _text(100)
    note = _text(300)
    lead = _id(required=False, allow_null=True, default=None, help_text="The visit is this lead's.")
    name = _text(100, help_text="With mobile: capture (or find) the walk-in's lead.")
    mobile = _text(20)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        if attrs["lead"] is not None and (attrs["name"] or attrs["mobile"]):
            errors["lead"] = ["Send a lead or a name and mobile, not both."]
        if bool(attrs["name"]) != bool(attrs["mobile"]):
            errors["mobile" if attrs["name"] else "name"] = ["Send both a name and a mobile, or neither."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ShowroomVisitQuerySerializer(serializers.Serializer[Any]):
    on = serializers.DateField(required=False, help_text="Only the visits of that day.")


class SlotQuerySerializer(serializers.Serializer[Any]):
    vehicle = _id(help_text="A demo vehicle's id.")
    date = serializers.DateField()
    minutes = serializers.IntegerField(min_value=15, max_value=240, default=60, help_text="Slot length.")


BREAKDOWNS = [("source", "source"), ("owner", "owner"), ("series", "series")]


class FunnelQuerySerializer(DateRangeQuerySerializer):
    """?start=&end= (the leads captured in the period), optionally narrowed, and ?by= for rows."""

    source = serializers.ChoiceField(choices=Source.choices, required=False)  # type: ignore[assignment]
    owner = _id(required=False, help_text="Membership id of a consultant.")
    series = serializers.CharField(max_length=60, required=False)
    by = serializers.ChoiceField(
        choices=BREAKDOWNS, required=False, help_text="One row per source, consultant or model."
    )


# --- the funnel ---------------------------------------------------------------------------------------

RATE_HELP = "A percentage to one decimal; null when there is nothing to divide by."


def _rate_field(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=f"{help_text} {RATE_HELP}")


class FunnelStepSerializer(serializers.Serializer[Any]):
    stage = serializers.ChoiceField(choices=Stage.choices, help_text="One of the funnel's steps.")
    label = serializers.CharField()  # type: ignore[assignment]
    leads = serializers.IntegerField(help_text="Leads of the period that reached this stage or a later one.")


class FunnelResponseSerializer(serializers.Serializer[Any]):
    limit_minutes = serializers.IntegerField()
    median_minutes = serializers.FloatField(allow_null=True)
    responded = serializers.IntegerField()
    within_limit = serializers.IntegerField()
    overdue_unanswered = serializers.IntegerField()
    within_share = _rate_field("within_limit ÷ (responded + overdue_unanswered).")


class FunnelAgeSerializer(serializers.Serializer[Any]):
    from_days = serializers.IntegerField()
    to_days = serializers.IntegerField(allow_null=True)
    leads = serializers.IntegerField()


class FunnelDefeatSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(allow_null=True)
    label = serializers.CharField(allow_null=True)  # type: ignore[assignment]
    leads = serializers.IntegerField()


class FunnelCompetitorSerializer(serializers.Serializer[Any]):
    competitor_brand = serializers.CharField(allow_blank=True)
    competitor_model = serializers.CharField(allow_blank=True)
    leads = serializers.IntegerField()


class FunnelRatesMixin(serializers.Serializer[Any]):
    visit_rate = _rate_field("到店率: visited ÷ leads.")
    test_drive_rate = _rate_field("试驾率: test drive ÷ visited.")
    close_rate = _rate_field("成交率: ordered ÷ visited.")
    lead_close_rate = _rate_field("ordered ÷ leads.")


class FunnelStepCountsSerializer(serializers.Serializer[Any]):
    new = serializers.IntegerField()
    contacted = serializers.IntegerField()
    invited = serializers.IntegerField()
    visited = serializers.IntegerField()
    test_drive = serializers.IntegerField()
    ordered = serializers.IntegerField()
    delivered = serializers.IntegerField()


class FunnelRowSerializer(FunnelRatesMixin):
    key = serializers.CharField(
        allow_null=True,
        allow_blank=True,
        help_text="The source code, the model, or the consultant's membership id as text; null: no consultant.",
    )
    label = serializers.CharField(allow_blank=True, allow_null=True)  # type: ignore[assignment]
    steps = FunnelStepCountsSerializer()


class FunnelSerializer(FunnelRatesMixin):
    start = serializers.DateField(source="period.start")
    end = serializers.DateField(source="period.end")
    steps = FunnelStepSerializer(many=True)
    response = FunnelResponseSerializer(help_text="First response of online and brand leads (business minutes).")
    ageing = FunnelAgeSerializer(many=True, help_text="Open leads of the period by age in days.")
    defeats = FunnelDefeatSerializer(many=True)
    competitors = FunnelCompetitorSerializer(many=True)
    pending_defeats = serializers.IntegerField()
    pool = serializers.IntegerField(help_text="Open leads nobody holds, now (not only of the period).")
    by = serializers.CharField(allow_blank=True, help_text="The breakdown asked for with ?by=, or empty.")
    breakdown = FunnelRowSerializer(many=True, allow_null=True, help_text="null without ?by=.")
