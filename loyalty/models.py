"""The loyalty programme: levels, an append-only points ledger, rewards and redemptions, referrals,
and care greetings (客情关怀).

Invariants kept by the database, not only by Python:
- a member's `points_balance` is never negative, and always equals the sum of their ledger
  (every write locks the member row and changes both in one transaction);
- ledger rows are append-only for the application role (UPDATE and DELETE are revoked);
- a reward's stock is never negative; an idempotency key names one redemption per dealership;
- an order earns once and is reversed once; a referral is rewarded once; a referee has one referrer.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.core.formatting import money
from crm.messaging.consent import DEFAULT_PREFERENCE
from crm.tenancy.models import Membership, TenantOwnedModel
from customers.models import Customer, Order


class Programme(TenantOwnedModel):
    """The dealership's programme settings (one row per dealership, made on first use)."""

    name = models.CharField(_("programme name"), max_length=100, default="")
    is_active = models.BooleanField(_("programme running"), default=True)
    starts_on = models.DateField(_("orders count from"), help_text=_("Orders before this date never earn points."))
    auto_enrol = models.BooleanField(
        _("enrol buyers automatically"),
        default=True,
        help_text=_("A customer becomes a member with their first order that earns points."),
    )
    point_value = models.DecimalField(
        _("value of one point (CNY)"),
        max_digits=8,
        decimal_places=4,
        default=Decimal("0.0100"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Used for the points liability: outstanding points × this value."),
    )
    expiry_months = models.PositiveSmallIntegerField(
        _("points expire after (months, 0 = never)"), default=24, validators=[MaxValueValidator(120)]
    )
    qualifying_months = models.PositiveSmallIntegerField(
        _("levels look back (months)"), default=12, validators=[MinValueValidator(1), MaxValueValidator(36)]
    )
    referral_points = models.PositiveIntegerField(
        _("referral reward (points)"), default=1000, validators=[MaxValueValidator(1_000_000)]
    )
    birthday_points = models.PositiveIntegerField(
        _("birthday bonus (points)"), default=200, validators=[MaxValueValidator(1_000_000)]
    )
    notify_level_changes = models.BooleanField(_("tell customers about level changes"), default=True)
    care_send_hour = models.PositiveSmallIntegerField(
        _("greetings go out at (hour, local time)"), default=9, validators=[MaxValueValidator(23)]
    )
    channels = ArrayField(
        models.CharField(max_length=10),
        default=list,
        blank=True,
        verbose_name=_("channels, in order of preference"),
        help_text=_("sms, wechat, email: the first one the customer consented to and can be reached on is used."),
    )

    class Meta:
        verbose_name = _("loyalty programme")
        verbose_name_plural = _("loyalty programmes")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="programme_one_per_tenant")]

    def __str__(self) -> str:
        return self.name or str(_("Loyalty programme"))

    def preferred_channels(self) -> list[str]:
        return self.channels or DEFAULT_PREFERENCE


class Level(TenantOwnedModel):
    """A membership level. The nightly step puts each member on the highest level they qualify
    for (points OR spend over the look-back), unless the level is given by hand only."""

    code = models.SlugField(_("code"), max_length=30)
    name = models.CharField(_("name"), max_length=60)
    rank = models.PositiveSmallIntegerField(_("rank"), help_text=_("Higher rank = higher level."))
    min_points = models.PositiveIntegerField(_("qualifies with points earned in the look-back"), default=0)
    min_spend = models.DecimalField(
        _("or with spend in the look-back (CNY)"),
        max_digits=12,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    earn_multiplier = models.DecimalField(
        _("earning multiplier"),
        max_digits=4,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10"))],
    )
    by_hand_only = models.BooleanField(
        _("given by hand only"), default=False, help_text=_("e.g. personal butler: never assigned by the nightly run.")
    )
    benefits = models.TextField(_("benefits"), blank=True, max_length=2000)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("membership level")
        verbose_name_plural = _("membership levels")
        ordering = ["rank"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="level_code_unique"),
            models.UniqueConstraint(fields=["tenant", "rank"], name="level_rank_unique"),
            models.CheckConstraint(condition=models.Q(min_spend__gte=0), name="level_min_spend_valid"),
            models.CheckConstraint(condition=models.Q(earn_multiplier__gte=0), name="level_multiplier_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class EarningRule(TenantOwnedModel):
    """Points for a completed order of one type: amount × rate × the member's level multiplier,
    rounded down, at most the cap."""

    order_kind = models.CharField(_("order type"), max_length=16, choices=Order.Kind.choices)
    points_per_yuan = models.DecimalField(
        _("points per CNY"),
        max_digits=8,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    max_points_per_order = models.PositiveIntegerField(_("at most per order (0 = no cap)"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        ordering = ["order_kind"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "order_kind"], name="earningrule_kind_unique"),
            models.CheckConstraint(condition=models.Q(points_per_yuan__gte=0), name="earningrule_rate_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_order_kind_display()} × {self.points_per_yuan}"


class Member(TenantOwnedModel):
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="loyalty_members", verbose_name=_("customer")
    )
    level = models.ForeignKey(
        Level, on_delete=models.PROTECT, null=True, blank=True, related_name="members", verbose_name=_("level")
    )
    level_locked = models.BooleanField(
        _("level kept by hand"), default=False, help_text=_("The nightly run leaves this member's level alone.")
    )
    level_since = models.DateField(_("level since"), null=True, blank=True)
    points_balance = models.IntegerField(_("points"), default=0, editable=False)
    joined_on = models.DateField(_("member since"), default=timezone.localdate)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "customer"], name="member_customer_unique"),
            models.CheckConstraint(condition=models.Q(points_balance__gte=0), name="member_balance_not_negative"),
        ]
        indexes = [
            models.Index(fields=["tenant", "level", "-points_balance"], name="member_level_points"),
            models.Index(fields=["tenant", "-points_balance", "id"], name="member_points"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} ({self.points_balance})"


class Reward(TenantOwnedModel):
    class Kind(models.TextChoices):
        SERVICE_VOUCHER = "service_voucher", _("Service voucher")
        CAR_WASH = "car_wash", _("Car wash")
        ACCESSORY = "accessory", _("Accessory")
        MAINTENANCE = "maintenance", _("Free maintenance")
        EXPERIENCE = "experience", _("Event or experience")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.SERVICE_VOUCHER)
    description = models.TextField(_("description"), blank=True, max_length=1000)
    points_cost = models.PositiveIntegerField(
        _("points"), validators=[MinValueValidator(1), MaxValueValidator(10_000_000)]
    )
    stock = models.PositiveIntegerField(_("in stock"), null=True, blank=True, help_text=_("Leave empty for no limit."))
    min_level = models.ForeignKey(
        Level,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("for members from level"),
    )
    is_active = models.BooleanField(_("offered"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        ordering = ["points_cost", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(points_cost__gt=0), name="reward_cost_positive"),
            models.CheckConstraint(
                condition=models.Q(stock__isnull=True) | models.Q(stock__gte=0), name="reward_stock_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Redemption(TenantOwnedModel):
    class Status(models.TextChoices):
        REDEEMED = "redeemed", _("Redeemed")
        CANCELLED = "cancelled", pgettext_lazy("redemption", "Cancelled")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="redemptions")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    quantity = models.PositiveSmallIntegerField(_("quantity"), default=1)
    points = models.PositiveIntegerField(_("points"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.REDEEMED)
    # The caller's key: a retried request (double click, network retry) finds this row again.
    idempotency_key = models.CharField(_("idempotency key"), max_length=80)
    voucher_code = models.CharField(_("voucher code"), max_length=12)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_by = models.ForeignKey(Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("redeemed"), default=timezone.now, editable=False)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    cancelled_by = models.ForeignKey(Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="redemption_key_unique"),
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="redemption_quantity_valid"),
        ]
        indexes = [
            models.Index(fields=["tenant", "member", "-created_at"], name="redemption_member"),
            models.Index(fields=["tenant", "-created_at", "-id"], name="redemption_created"),
        ]

    def __str__(self) -> str:
        return f"{self.reward} × {self.quantity}"


class Referral(TenantOwnedModel):
    """A member recommended someone (推介). When the referee buys a vehicle, the referrer earns
    the referral reward, once."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a purchase")
        REWARDED = "rewarded", _("Rewarded")

    referrer = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="referrals_made")
    referee = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+", verbose_name=_("referee"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    rewarded_at = models.DateTimeField(_("rewarded"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_by = models.ForeignKey(Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("recorded"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        constraints = [models.UniqueConstraint(fields=["tenant", "referee"], name="referral_referee_once")]
        indexes = [models.Index(fields=["tenant", "status", "created_at"], name="referral_status")]

    def __str__(self) -> str:
        return f"{self.referrer_id} → {self.referee_id}"


class LedgerEntry(TenantOwnedModel):
    """One movement of points. Never changed, never deleted: corrections are new entries."""

    rls_append_only = True

    class Kind(models.TextChoices):
        EARN = "earn", _("Earned")
        REDEEM = "redeem", _("Redeemed")
        EXPIRE = "expire", _("Expired")
        ADJUST = "adjust", _("Adjustment")
        REFERRAL = "referral", _("Referral bonus")
        BIRTHDAY = "birthday", _("Birthday bonus")
        REVERSAL = "reversal", _("Reversal")
        COMPENSATION = "compensation", _("Complaint compensation")
        MERGE = "merge", _("Merged records")

    class Source(models.TextChoices):
        STAFF = "staff", _("Staff page")
        API = "api", _("API")
        NIGHTLY = "nightly", _("Nightly run")
        COMPLAINT = "complaint", _("Complaint")
        MERGE = "merge", _("Customer merge")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices)
    points = models.IntegerField(_("points"))
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    # For credits: the day these points expire (FIFO: the soonest to expire go first).
    expires_on = models.DateField(_("expires"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=300)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    actor = models.ForeignKey(
        Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("by")
    )
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    redemption = models.ForeignKey(Redemption, on_delete=models.PROTECT, null=True, blank=True, related_name="entries")
    referral = models.ForeignKey(Referral, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    ticket = models.ForeignKey("complaints.Ticket", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    merged_from = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    key = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(_("recorded"), default=timezone.now, editable=False)

    def shown_reason(self) -> str:
        """The reason as a person reads it, in the active language. The nightly run stores a plain
        technical note (`order 12 · vehicle_sale ¥5000`, kept for the API and the audit); pages show it
        from the entry's own links instead: the order's kind and amount, the expiry day, the year.
        Earned and reversed entries read their order (select_related("order") avoids a query each)."""
        if self.source != self.Source.NIGHTLY:
            return self.reason
        tail = self.key.rsplit(":", 1)[-1] if self.key else ""
        if self.kind in (self.Kind.EARN, self.Kind.REVERSAL) and self.order_id:
            order = self.order
            assert order is not None
            values = {
                "kind": order.get_kind_display(),
                "amount": money(order.amount),
                "ref": order.external_id or order.pk,
            }
            if self.kind == self.Kind.EARN:
                return _("%(kind)s %(amount)s · order %(ref)s") % values
            return _("Order %(ref)s reversed (%(kind)s %(amount)s)") % values
        if self.kind == self.Kind.EXPIRE and tail:
            return _("Points due to expire by %(day)s") % {"day": tail}
        if self.kind == self.Kind.BIRTHDAY and tail:
            return _("Birthday %(year)s") % {"year": tail}
        if self.kind == self.Kind.REFERRAL:
            return str(_("A referred customer bought a vehicle"))
        return self.reason

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        constraints = [
            # a reversal of an order that has nothing left to take back records 0
            models.CheckConstraint(
                condition=~models.Q(points=0) | models.Q(kind="reversal"), name="ledgerentry_points_nonzero"
            ),
            models.UniqueConstraint(
                fields=["tenant", "key"], condition=~models.Q(key=""), name="ledgerentry_key_unique"
            ),
            models.UniqueConstraint(
                fields=["tenant", "order"],
                condition=models.Q(kind="earn", order__isnull=False),
                name="ledgerentry_order_earns_once",
            ),
            models.UniqueConstraint(
                fields=["tenant", "order"],
                condition=models.Q(kind="reversal", order__isnull=False),
                name="ledgerentry_order_reversed_once",
            ),
            models.UniqueConstraint(
                fields=["tenant", "referral"],
                condition=models.Q(kind="referral", referral__isnull=False),
                name="ledgerentry_referral_once",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "member", "-occurred_at", "-id"], name="ledger_member"),
            models.Index(fields=["tenant", "-occurred_at", "-id"], name="ledger_occurred"),
            models.Index(fields=["tenant", "kind", "occurred_at"], name="ledger_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.points:+d}"


class LevelChange(TenantOwnedModel):
    """History of a member's level: nightly up- and downgrades, and changes by hand."""

    rls_append_only = True

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="level_changes")
    from_level = models.ForeignKey(Level, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_level = models.ForeignKey(Level, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    changed_on = models.DateField(_("date"))
    points_window = models.IntegerField(_("points in the look-back"), default=0)
    spend_window = models.DecimalField(_("spend in the look-back"), max_digits=14, decimal_places=2, default=0)
    reason = models.CharField(_("reason"), max_length=300)
    actor = models.ForeignKey(Membership, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("recorded"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("level change")
        verbose_name_plural = _("level changes")
        indexes = [models.Index(fields=["tenant", "member", "-created_at"], name="levelchange_member")]


class CareTemplate(TenantOwnedModel):
    """A greeting for an occasion, in the dealership's words. {name} and {dealership} are filled in."""

    class Occasion(models.TextChoices):
        BIRTHDAY = "birthday", _("Birthday")
        NEW_YEAR = "new_year", _("New Year's Day")
        SPRING_FESTIVAL = "spring_festival", _("Spring Festival")
        DRAGON_BOAT = "dragon_boat", _("Dragon Boat Festival")
        MID_AUTUMN = "mid_autumn", _("Mid-Autumn Festival")
        NATIONAL_DAY = "national_day", _("National Day")

    occasion = models.CharField(_("occasion"), max_length=16, choices=Occasion.choices)
    subject = models.CharField(_("subject (e-mail)"), max_length=120, blank=True)
    text = models.TextField(
        _("message"),
        max_length=500,
        help_text=_("{name} and {dealership} are replaced by the customer's name and ours."),
    )
    is_active = models.BooleanField(_("send"), default=True)

    class Meta:
        verbose_name = _("care greeting")
        verbose_name_plural = _("care greetings")
        ordering = ["occasion"]
        constraints = [models.UniqueConstraint(fields=["tenant", "occasion"], name="caretemplate_occasion_unique")]

    def __str__(self) -> str:
        return self.get_occasion_display()
