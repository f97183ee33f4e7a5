"""People, their vehicles and their orders. Every row belongs to one dealership."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Value
from django.db.models.functions import Replace, Reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.core.formatting import money
from crm.tenancy.models import Membership, TenantOwnedModel
from customers.validators import validate_e164_mobile, validate_id_number, validate_plate, validate_vin


class RelationshipClass(models.TextChoices):
    POTENTIAL = "potential", _("Potential")
    GENERAL = "general", _("General")
    KEY = "key", pgettext_lazy("relationship class", "Key")
    LOYAL = "loyal", _("Loyal")


class LifecycleStage(models.TextChoices):
    PROSPECT = "prospect", _("Prospect")
    NEW = "new", _("New buyer")
    SATISFIED = "satisfied", _("Satisfied")
    RETAINED = "retained", _("Retained")
    LOYAL = "loyal", _("Loyal")
    DORMANT = "dormant", _("Dormant")
    LOST = "lost", _("Lost")


class ListFlag(models.TextChoices):
    NONE = "", _("None")
    RED = "red", _("Red list")
    BLACK = "black", _("Black list")


class Customer(TenantOwnedModel):
    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", _("Individual")
        COMPANY = "company", _("Company")

    class Gender(models.TextChoices):
        UNKNOWN = "", _("Unknown")
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")

    class Source(models.TextChoices):
        WALK_IN = "walk_in", _("Walk-in")
        PHONE = "phone", _("Phone")
        WEBSITE = "website", _("Website")
        AUTOHOME = "autohome", _("Car portal")
        WECHAT = "wechat", _("WeChat")
        REFERRAL = "referral", _("Referral")
        EVENT = "event", _("Event")
        DMS = "dms", _("Dealer-management system")
        OTHER = "other", _("Other")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.INDIVIDUAL)
    name = models.CharField(_("name"), max_length=100)
    # The name's pinyin initials, one variant per reading of its polyphonic characters ("zw cw" for
    # 曾伟; normalize.name_initials), written with the name; NULL until computed. A trigger keeps
    # CustomerSearchTerm current from name and initials (migration 0010).
    name_initials = models.TextField(_("name initials"), null=True, blank=True, editable=False)
    mobile = models.CharField(_("mobile"), max_length=16, blank=True, validators=[validate_e164_mobile])
    # "…5678" searches: a stored column, because an index on the expression reverse(mobile) cannot
    # be used under row-level security (reverse() is not leakproof).
    mobile_reversed = models.GeneratedField(
        expression=Reverse("mobile"), output_field=models.CharField(max_length=16), db_persist=True
    )
    mobile_secondary = models.CharField(
        _("second mobile"), max_length=16, blank=True, validators=[validate_e164_mobile]
    )
    email = models.EmailField(_("e-mail"), blank=True)
    id_number = models.CharField(_("ID number"), max_length=18, blank=True, validators=[validate_id_number])
    gender = models.CharField(_("gender"), max_length=8, choices=Gender.choices, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    province = models.CharField(_("province"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=30, blank=True)
    district = models.CharField(_("district"), max_length=30, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.WALK_IN)
    # PIPL: consent is given, never assumed. Every change is kept as a ConsentChange (who, when, how).
    consent_call = models.BooleanField(_("may call"), default=False)
    consent_sms = models.BooleanField(_("may text"), default=False)
    consent_wechat = models.BooleanField(_("may WeChat"), default=False)
    consent_email = models.BooleanField(_("may email"), default=False)
    owner = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("owner")
    )
    relationship_class = models.CharField(
        _("relationship class"), max_length=12, choices=RelationshipClass.choices, default=RelationshipClass.POTENTIAL
    )
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=12, choices=LifecycleStage.choices, default=LifecycleStage.PROSPECT
    )
    list_flag = models.CharField(_("red/black list"), max_length=8, choices=ListFlag.choices, blank=True)
    list_reason = models.CharField(_("list reason"), max_length=200, blank=True)
    list_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    churn_reason = models.CharField(_("reason lost"), max_length=200, blank=True)
    tags = ArrayField(models.CharField(max_length=30), default=list, blank=True, verbose_name=_("tags"))
    external_id = models.CharField(_("DMS id"), max_length=64, blank=True)
    # Kept current by the services that write orders and touchpoints (and by imports, set-based):
    # lists filter and sort on it without scanning history.
    last_visit_on = models.DateField(_("last visit"), null=True, blank=True, editable=False)
    # A customer merged into another stays as a tombstone, so DMS ids that pointed here still
    # resolve to the surviving record; tombstones are hidden from every list.
    merged_into = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    # Customer information accuracy (客户信息准确率): 100 = complete and valid. Computed by
    # customers.quality (nightly for everyone, at once for a record that was edited).
    quality_score = models.PositiveSmallIntegerField(_("data quality"), null=True, blank=True, editable=False)
    quality_issues = ArrayField(
        models.CharField(max_length=32), default=list, blank=True, editable=False, verbose_name=_("data issues")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=~models.Q(external_id=""),
                name="customer_external_id_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(list_flag__in=["", "red", "black"]), name="customer_list_flag_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "mobile"], name="customer_tenant_mobile"),
            models.Index(fields=["tenant", "owner", "-created_at"], name="customer_tenant_owner"),
            models.Index(fields=["tenant", "-created_at", "-id"], name="customer_tenant_created"),
            models.Index(fields=["tenant", "last_visit_on"], name="customer_tenant_last_visit"),
            models.Index(fields=["tenant", "quality_score", "id"], name="customer_tenant_quality"),
            models.Index(
                fields=["tenant", "mobile_reversed"],
                opclasses=["int8_ops", "varchar_pattern_ops"],
                name="customer_mobile_reversed",
            ),
            # name-prefix search ("王…", with __prefix, which RLS lets use this index)
            models.Index(
                fields=["tenant", "name"], opclasses=["int8_ops", "varchar_pattern_ops"], name="customer_name_prefix"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CustomerSearchTerm(TenantOwnedModel):
    """What a name search matches, one row per term: every suffix of the customer's folded name
    (substring search is a prefix search over suffixes) and every variant of its pinyin initials.
    Written only by the database triggers of migration 0010, from customers_customer's name and
    name_initials, so every way a customer is written (forms, API, imports, set-based SQL) keeps it
    current. Under row-level security only btree `=` and `^@` can be index conditions (see
    docs/tenancy.md), which is why this is a table with a btree index and not a trigram index."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    term = models.CharField(max_length=100)

    class Meta:
        indexes = [
            # customer_id included: a search reads the matching ids index-only
            models.Index(
                fields=["tenant", "term"],
                opclasses=["int8_ops", "varchar_pattern_ops"],
                include=["customer"],
                name="searchterm_term",
            ),
            models.Index(fields=["tenant", "customer"], name="searchterm_customer"),
        ]


class Vehicle(TenantOwnedModel):
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="vehicles", verbose_name=_("vehicle owner")
    )
    vin = models.CharField(_("VIN"), max_length=17, validators=[validate_vin])
    vin_reversed = models.GeneratedField(
        expression=Reverse("vin"), output_field=models.CharField(max_length=17), db_persist=True
    )
    plate = models.CharField(_("plate"), max_length=12, blank=True, validators=[validate_plate])
    # "…ZRU92" searches: the plate without its separator, reversed (粤B·ZRU92 → 29URZB粤)
    plate_reversed = models.GeneratedField(
        expression=Reverse(Replace("plate", Value("·"), Value(""))),
        output_field=models.CharField(max_length=12),
        db_persist=True,
    )
    brand = models.CharField(_("brand"), max_length=40)
    series = models.CharField(_("series"), max_length=60, blank=True)
    model_name = models.CharField(_("model"), max_length=100, blank=True)
    model_year = models.PositiveSmallIntegerField(_("model year"), null=True, blank=True)
    colour = models.CharField(_("colour"), max_length=30, blank=True)
    purchase_date = models.DateField(_("purchase date"), null=True, blank=True)
    warranty_end = models.DateField(_("warranty end"), null=True, blank=True)
    mileage_km = models.PositiveIntegerField(_("mileage (km)"), null=True, blank=True)
    external_id = models.CharField(_("DMS id"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("vehicle")
        verbose_name_plural = _("vehicles")
        constraints = [models.UniqueConstraint(fields=["tenant", "vin"], name="vehicle_vin_unique")]
        indexes = [
            models.Index(fields=["tenant", "plate"], name="vehicle_tenant_plate"),
            models.Index(fields=["tenant", "customer"], name="vehicle_tenant_customer"),
            models.Index(
                fields=["tenant", "plate_reversed"],
                opclasses=["int8_ops", "varchar_pattern_ops"],
                name="vehicle_plate_reversed",
            ),
            # "车架号后六位" (search by the VIN's last characters)
            models.Index(
                fields=["tenant", "vin_reversed"],
                opclasses=["int8_ops", "varchar_pattern_ops"],
                name="vehicle_vin_reversed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plate or self.vin} {self.brand} {self.series}".strip()


class Order(TenantOwnedModel):
    class Kind(models.TextChoices):
        VEHICLE_SALE = "vehicle_sale", _("Vehicle sale")
        MAINTENANCE = "maintenance", _("Maintenance")
        REPAIR = "repair", _("Repair")
        PARTS = "parts", _("Parts")
        ACCESSORIES = "accessories", _("Accessories")
        INSURANCE = "insurance", _("Insurance")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        COMPLETED = "completed", _("Completed")
        REVERSED = "reversed", _("Reversed")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders", verbose_name=_("customer"))
    vehicle = models.ForeignKey(
        Vehicle, on_delete=models.PROTECT, null=True, blank=True, related_name="orders", verbose_name=_("vehicle")
    )
    kind = models.CharField(_("type"), max_length=16, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.COMPLETED)
    ordered_on = models.DateField(_("date"))
    amount = models.DecimalField(
        _("amount (CNY)"), max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    staff = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("staff member")
    )
    mileage_km = models.PositiveIntegerField(_("mileage at order (km)"), null=True, blank=True)
    external_id = models.CharField(_("DMS id"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id"], condition=~models.Q(external_id=""), name="order_external_id_unique"
            ),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="order_amount_not_negative"),
        ]
        indexes = [
            # amount, kind and status included: segmentation re-aggregates a changed customer's orders
            # index-only, one or two index pages instead of a heap page per order
            models.Index(
                fields=["tenant", "customer", "ordered_on"],
                include=["amount", "kind", "status"],
                name="order_customer_history",
            ),
            models.Index(fields=["tenant", "ordered_on"], name="order_tenant_date"),
            # a vehicle's odometer history from its orders, read index-only (follow-ups' mileage rate)
            models.Index(
                fields=["tenant", "vehicle", "ordered_on"],
                include=["mileage_km"],
                condition=models.Q(vehicle__isnull=False, mileage_km__isnull=False) & ~models.Q(status="reversed"),
                name="order_vehicle_mileage",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.ordered_on} {money(self.amount)}"


class Touchpoint(TenantOwnedModel):
    """Every contact with a customer — a "moment of truth" — and how it went."""

    class Channel(models.TextChoices):
        CALL = "call", _("Phone call")
        VISIT = "visit", _("Visit")
        SHOWROOM = "showroom", _("Showroom")
        WECHAT = "wechat", _("WeChat")
        SMS = "sms", _("SMS")
        EMAIL = "email", _("Email")
        TEST_DRIVE = "test_drive", _("Test drive")

    class Direction(models.TextChoices):
        OUTBOUND = "outbound", _("Outbound")
        INBOUND = "inbound", _("Inbound")

    class Outcome(models.TextChoices):
        REACHED = "reached", _("Reached")
        NO_ANSWER = "no_answer", _("No answer")
        CALLBACK = "callback", _("Asked to call back")
        APPOINTMENT = "appointment", _("Appointment made")
        NOT_INTERESTED = "not_interested", _("Not interested")
        COMPLAINT = "complaint", _("Raised a complaint")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="touchpoints", verbose_name=_("customer")
    )
    vehicle = models.ForeignKey(
        Vehicle, on_delete=models.PROTECT, null=True, blank=True, related_name="touchpoints", verbose_name=_("vehicle")
    )
    channel = models.CharField(_("channel"), max_length=12, choices=Channel.choices)
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices, default=Direction.OUTBOUND)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    notes = models.TextField(_("notes"), blank=True, max_length=4000)
    staff = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("staff member")
    )
    occurred_at = models.DateTimeField(_("time"), default=timezone.now)
    external_id = models.CharField(_("external id"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("touchpoint")
        verbose_name_plural = _("touchpoints")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=~models.Q(external_id=""),
                name="touchpoint_external_id_unique",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "customer", "-occurred_at"], name="touchpoint_customer_time")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.occurred_at:%Y-%m-%d} {self.get_outcome_display()}"


class MileageReading(TenantOwnedModel):
    """Odometer readings over time; maintenance reminders estimate mileage from them."""

    class Source(models.TextChoices):
        ORDER = "order", _("Service order")
        TOUCHPOINT = "touchpoint", _("Contact")
        MANUAL = "manual", _("Entered by hand")
        IMPORT = "import", _("Import")

    vehicle = models.ForeignKey(Vehicle, on_delete=models.CASCADE, related_name="mileage_readings")
    read_on = models.DateField(_("date"))
    km = models.PositiveIntegerField(_("mileage (km)"))
    source = models.CharField(_("source"), max_length=12, choices=Source.choices, default=Source.MANUAL)
    order = models.ForeignKey(Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("mileage reading")
        verbose_name_plural = _("mileage readings")
        # km included: the follow-up scheduler reads a vehicle's readings index-only
        indexes = [
            models.Index(fields=["tenant", "vehicle", "read_on"], include=["km"], name="mileage_vehicle_date_km")
        ]


class VehicleOwnership(TenantOwnedModel):
    """Who owned a vehicle when; the open row (ended_on empty) is the current owner."""

    vehicle = models.ForeignKey(Vehicle, on_delete=models.CASCADE, related_name="ownerships")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="vehicle_ownerships")
    started_on = models.DateField(_("from"))
    ended_on = models.DateField(_("until"), null=True, blank=True)

    class Meta:
        verbose_name = _("vehicle ownership")
        verbose_name_plural = _("vehicle ownerships")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "vehicle"],
                condition=models.Q(ended_on__isnull=True),
                name="vehicle_one_current_owner",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "customer"], name="ownership_tenant_customer")]


class ImportJob(TenantOwnedModel):
    """One uploaded file: validated in full first (preview), then committed all-or-nothing."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", _("Customers")
        VEHICLES = "vehicles", _("Vehicles")
        ORDERS = "orders", _("Orders")

    class Status(models.TextChoices):
        VALIDATING = "validating", _("Checking the file")
        INVALID = "invalid", _("Has errors")
        READY = "ready", _("Ready to import")
        IMPORTING = "importing", _("Importing")
        DONE = "done", _("Imported")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.VALIDATING)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows processed"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    errors = models.JSONField(_("row errors"), default=list, blank=True)  # first 1,000: {row, column, message}
    result = models.JSONField(_("result"), default=dict, blank=True)  # {"created": n, "updated": n, "unchanged": n}
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        indexes = [models.Index(fields=["tenant", "-created_at"], name="importjob_tenant_created")]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_status_display()})"


CONSENT_FIELDS = {"call": "consent_call", "sms": "consent_sms", "wechat": "consent_wechat", "email": "consent_email"}


class ConsentChange(TenantOwnedModel):
    """One change of a customer's consent: the state after it, which channels changed, who set it,
    when and through what. Append-only (the app role may insert and read, never update or delete)."""

    rls_append_only = True

    class Via(models.TextChoices):
        FORM = "form", _("Customer form")
        API = "api", _("API")
        IMPORT = "import", _("Import")

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="consent_changes", verbose_name=_("customer")
    )
    consent_call = models.BooleanField(_("may call"))
    consent_sms = models.BooleanField(_("may text"))
    consent_wechat = models.BooleanField(_("may WeChat"))
    consent_email = models.BooleanField(_("may email"))
    changed = ArrayField(models.CharField(max_length=8), verbose_name=_("channels changed"))  # call, sms, …
    via = models.CharField(_("through"), max_length=8, choices=Via.choices)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    import_job = models.ForeignKey(ImportJob, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    recorded_at = models.DateTimeField(_("time"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("consent change")
        verbose_name_plural = _("consent changes")
        indexes = [models.Index(fields=["tenant", "customer", "-recorded_at"], name="consentchange_customer_time")]


class DataQualitySnapshot(TenantOwnedModel):
    """The dealership's customer information accuracy after each nightly computation."""

    computed_on = models.DateField(_("date"))
    customers = models.PositiveIntegerField(_("customers"))
    accurate = models.PositiveIntegerField(_("customers without issues"))
    average_score = models.DecimalField(_("average score"), max_digits=5, decimal_places=2)
    issue_counts = models.JSONField(_("issues"), default=dict)  # {"missing_birthday": 120, ...}
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("data quality snapshot")
        verbose_name_plural = _("data quality snapshots")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "computed_on"], name="dataquality_one_per_day"),
        ]
