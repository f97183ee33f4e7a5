"""Dealerships (tenants), memberships, API credentials, the audit log, and the base for
every tenant-owned model.

To add a tenant-owned model: inherit `TenantOwnedModel`, lead every unique constraint and
index with `tenant`, and migrate. Row-level security is applied by `crm.tenancy.rls` after
migrate; tests/test_tenancy_schema.py fails if any table slips through.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, ClassVar, TypeVar, cast

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core.errors import ApplicationError
from crm.tenancy.context import CrossTenantWrite, TenantNotSet, current_tenant_id, require_tenant_id
from crm.tenancy.roles import API_SCOPES, Role, role_has

# --------------------------------------------------------------------------------------------
# The Django lock
# --------------------------------------------------------------------------------------------


def _tenant_foreign_keys(model: type[models.Model]) -> list[Any]:
    """Foreign keys of `model` that point at another tenant-owned model."""
    return [
        field
        for field in model._meta.concrete_fields
        if field.is_relation
        and field.name != "tenant"
        and isinstance(field.related_model, type)
        and issubclass(field.related_model, TenantOwnedModel)
    ]


def _check_ids_in_tenant(field: Any, ids: set[Any]) -> None:
    """Refuse ids that are not rows of the active tenant.

    PostgreSQL checks foreign keys without row-level security, so without this a raw id from
    another dealership would be accepted. The scoped manager (and RLS) see only this tenant.
    """
    ids.discard(None)
    if not ids:
        return
    found = field.related_model.objects.filter(pk__in=ids).count()
    if found != len(ids):
        raise CrossTenantWrite(f"{field.model.__name__}.{field.name} points at a row outside this dealership.")


_M = TypeVar("_M", bound=models.Model)


class TenantQuerySet(models.QuerySet[_M, _M]):
    def update(self, **kwargs: Any) -> int:
        if "tenant" in kwargs or "tenant_id" in kwargs:
            raise CrossTenantWrite("A row's tenant never changes.")
        for field in _tenant_foreign_keys(self.model):
            for key in (field.name, field.attname):
                if key in kwargs:
                    value = kwargs[key]
                    if isinstance(value, models.Model):
                        value = value.pk
                    if not isinstance(value, models.expressions.Combinable):
                        _check_ids_in_tenant(field, {value})
        return super().update(**kwargs)

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        tenant_id = require_tenant_id()
        objs = list(objs)
        for obj in objs:
            if obj.tenant_id is None:
                obj.tenant_id = tenant_id
            elif obj.tenant_id != tenant_id:
                raise CrossTenantWrite(f"{type(obj).__name__} for tenant {obj.tenant_id} inside tenant {tenant_id}")
        for field in _tenant_foreign_keys(self.model):
            # objects already saved in this tenant (the usual case) need no query
            unchecked = {
                getattr(obj, field.attname)
                for obj in objs
                if not (field.is_cached(obj) and getattr(field.get_cached_value(obj), "tenant_id", None) == tenant_id)
            }
            _check_ids_in_tenant(field, unchecked)
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs: Any, fields: Any, *args: Any, **kwargs: Any) -> int:
        if "tenant" in fields or "tenant_id" in fields:
            raise CrossTenantWrite("A row's tenant never changes.")
        objs = list(objs)
        for field in _tenant_foreign_keys(self.model):
            if field.name in fields or field.attname in fields:
                _check_ids_in_tenant(field, {getattr(obj, field.attname) for obj in objs})
        return super().bulk_update(objs, fields, *args, **kwargs)


class TenantManager(models.Manager[_M]):
    """Default manager of tenant-owned models: raises with no tenant, else filters by it."""

    _queryset_class = TenantQuerySet

    def get_queryset(self) -> TenantQuerySet[_M]:
        tenant_id = current_tenant_id()
        if tenant_id is None:
            raise TenantNotSet(
                f"{self.model.__name__} is tenant-owned and no tenant is active. "
                "Use tenant_context(tenant_id), or the loudly named unscoped_all_tenants manager "
                "for system jobs that run as the owning database role."
            )
        return cast(TenantQuerySet[_M], super().get_queryset()).filter(tenant_id=tenant_id)

    def none(self) -> TenantQuerySet[_M]:
        # An empty queryset reveals nothing, so it needs no tenant (schema generation, forms).
        return cast(TenantQuerySet[_M], super().get_queryset()).none()


def tenant_foreign_key(*, db_index: bool = True) -> models.ForeignKey[Any, Any]:
    """The `tenant` field of every tenant-owned model. A model whose indexes all lead with the
    dealership may go without the foreign key's own index (db_index=False): any of them serves the
    key's checks, and each write saves an index entry."""
    return models.ForeignKey(
        "tenancy.Tenant",
        on_delete=models.PROTECT,
        editable=False,
        related_name="+",
        verbose_name=_("dealership"),
        db_index=db_index,
    )


class TenantOwnedModel(models.Model):
    tenant = tenant_foreign_key()

    # Tables whose rows are never updated or deleted by the app role (the audit log).
    rls_append_only: ClassVar[bool] = False

    objects = TenantManager()
    # Sees every tenant in the Django layer. RLS still applies under the application role, so
    # this is only useful on the owner connection (migrations, platform maintenance).
    unscoped_all_tenants = models.Manager()  # noqa: DJ012 - a manager, not a field

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        tenant_id = require_tenant_id()
        if self.tenant_id is None:
            self.tenant_id = tenant_id
        elif self.tenant_id != tenant_id:
            raise CrossTenantWrite(
                f"{type(self).__name__} belongs to tenant {self.tenant_id}; the active tenant is {tenant_id}."
            )
        self._check_related_tenants()
        super().save(*args, **kwargs)

    def _check_related_tenants(self) -> None:
        # The database's foreign keys cannot see tenants; refuse links into another dealership,
        # whether set as an instance or as a raw id.
        for field in _tenant_foreign_keys(type(self)):
            value = getattr(self, field.attname)
            if value is None:
                continue
            if field.is_cached(self):
                related = field.get_cached_value(self)
                if related is not None and related.tenant_id == self.tenant_id:
                    continue
                if related is not None:
                    raise CrossTenantWrite(f"{type(self).__name__}.{field.name} points into another dealership.")
            _check_ids_in_tenant(field, {value})


_T = TypeVar("_T", bound=TenantOwnedModel)


def dealership_settings(model: type[_T]) -> _T:
    """The current dealership's one row of a per-dealership settings model (unique on tenant),
    made with the model's defaults on first use."""
    row, _created = model.objects.get_or_create(tenant_id=require_tenant_id())
    return row


def _field_value(field: models.Field[Any, Any], value: Any) -> Any:
    if isinstance(field, ArrayField):
        if not isinstance(value, list | tuple):
            raise ValidationError(_("Enter a list of values."), code="invalid")
        return [_field_value(field.base_field, item) for item in value]
    if isinstance(field, models.JSONField):
        return value
    if isinstance(value, bool) and not isinstance(field, models.BooleanField):
        raise ValidationError(_("Enter a number or a text, not true or false."), code="invalid")
    if isinstance(field, models.IntegerField) and isinstance(value, float) and not value.is_integer():
        raise ValidationError(_("Enter a whole number."), code="invalid")
    return field.to_python(value)


def settings_assign(
    row: models.Model, data: Mapping[str, Any], *, invalid: str, fields: Iterable[str] | None = None
) -> None:
    """Set `data` on a settings row and check it, or raise ApplicationError with one message per
    field and change nothing that is saved. Each value first goes through its model field the way a
    form's value would, so what a JSON client or a script sends is taken as the field means it
    (5000 or "5000" for an amount, "7" for a number of days, each element of a list) and what the
    field cannot take gets the field's own message, never an exception from deep inside a validator.
    A name not in `fields` (default: every editable field but the id and the tenant) is refused. The
    caller saves."""
    if fields is None:
        fields = (f.name for f in row._meta.concrete_fields if f.editable and f.name not in ("id", "tenant"))
    allowed = set(fields)
    errors: dict[str, list[str]] = {
        name: [str(_("Not a setting that can be changed here."))] for name in data if name not in allowed
    }
    for name, value in data.items():
        if name in errors:
            continue
        try:
            setattr(row, name, _field_value(row._meta.get_field(name), value))  # type: ignore[arg-type]
        except ValidationError as error:
            errors[name] = [str(m) for m in error.messages]
    if not errors:
        try:
            row.full_clean(exclude=["tenant"])
        except ValidationError as error:
            errors = {name: [str(m) for m in messages] for name, messages in error.message_dict.items()}
    if errors:
        raise ApplicationError(invalid, fields=errors)


# --------------------------------------------------------------------------------------------
# Tenants
# --------------------------------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_time_re = r"^([01]\d|2[0-3]):[0-5]\d$"


# A country here has its public holidays shipped with the product (crm.core.business_time); ZZ is
# ISO 3166's code for an unknown country: no public holidays, only the dealership's own days.
COUNTRY_CHOICES = [("CN", _("China")), ("ZZ", _("Other (no public holidays shipped)"))]


def default_business_hours() -> dict[str, list[list[str]]]:
    workday = [["08:30", "12:00"], ["13:30", "18:00"]]
    return {day: (workday if day not in ("sun",) else []) for day in WEEKDAYS}


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value}) from None


def validate_business_hours(value: Any) -> None:
    import re

    if not isinstance(value, dict) or set(value) - set(WEEKDAYS):
        raise ValidationError(_("Business hours must map mon…sun to lists of [start, end] times."))
    for day, spans in value.items():
        if not isinstance(spans, list):
            raise ValidationError(_("%(day)s: expected a list of [start, end] pairs."), params={"day": day})
        for span in spans:
            if (
                not isinstance(span, list)
                or len(span) != 2
                or not all(isinstance(t, str) and re.match(_time_re, t) for t in span)
                or span[0] >= span[1]
            ):
                raise ValidationError(
                    _("%(day)s: %(span)s is not a valid HH:MM range."), params={"day": day, "span": span}
                )


def validate_date_list(value: Any) -> None:
    if not isinstance(value, list):
        raise ValidationError(_("Expected a list of dates (YYYY-MM-DD)."))
    for item in value:
        try:
            date.fromisoformat(item)
        except (TypeError, ValueError):
            raise ValidationError(_("%(item)s is not a date (YYYY-MM-DD)."), params={"item": item}) from None


class Tenant(models.Model):
    """One dealership (4S store). Not tenant-owned itself: platform operators manage it."""

    name = models.CharField(_("name"), max_length=200)
    code = models.SlugField(
        _("code"),
        max_length=40,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9-]*$", _("Lower-case letters, digits and dashes."))],
        help_text=_("Short unique code, used in URLs such as the public complaint form."),
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_time_zone]
    )
    locale = models.CharField(_("default language"), max_length=10, choices=settings.LANGUAGES, default="zh-hans")
    currency = models.CharField(_("currency"), max_length=3, default="CNY", validators=[RegexValidator(r"^[A-Z]{3}$")])
    business_hours = models.JSONField(
        _("business hours"), default=default_business_hours, validators=[validate_business_hours]
    )
    # The country's public holidays and make-up working days (crm.core.business_time) count for the
    # SLA clocks; the dealership's own closing and extra working days come on top of them.
    country = models.CharField(
        _("country"),
        max_length=2,
        choices=COUNTRY_CHOICES,
        default="CN",
        db_default="CN",
        help_text=_("Its public holidays and make-up working days count for the SLA clocks."),
    )
    holidays = models.JSONField(_("own closing days"), default=list, blank=True, validators=[validate_date_list])
    makeup_workdays = models.JSONField(
        _("own extra working days"),
        default=list,
        blank=True,
        validators=[validate_date_list],
        help_text=_("Days the dealership works although they are closed otherwise (a weekend or public holiday)."),
    )
    settings = models.JSONField(_("settings"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("dealership")
        verbose_name_plural = _("dealerships")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Membership(TenantOwnedModel):
    """A user's place in one dealership. A user may have several, one per dealership."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("user")
    )
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)
    is_active = models.BooleanField(_("active"), default=True)
    is_service_account = models.BooleanField(_("service account"), default=False, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    deactivated_at = models.DateTimeField(_("deactivated"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_one_per_user_and_tenant"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]
        indexes = [models.Index(fields=["tenant", "role", "is_active"], name="membership_tenant_role")]

    def __str__(self) -> str:
        return f"{self.display_name} · {self.get_role_display()}"

    @property
    def display_name(self) -> str:
        user = self.user
        full = f"{user.last_name}{user.first_name}".strip()
        return full or user.get_username()

    def can(self, capability: str) -> bool:
        return self.is_active and role_has(self.role, capability)

    @property
    def sees_all_customers(self) -> bool:
        return self.can("customers.view_all")


class ApiCredential(TenantOwnedModel):
    """A tenant API key (integration) or a staff member's personal token. Stored hashed."""

    class Kind(models.TextChoices):
        INTEGRATION = "integration", _("Integration API key")
        PERSONAL = "personal", _("Personal token")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=120)
    membership = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="+", verbose_name=_("acts as"))
    key_prefix = models.CharField(_("key prefix"), max_length=24, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = ArrayField(models.CharField(max_length=32, choices=[(s, s) for s in API_SCOPES]), verbose_name=_("scopes"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, editable=False
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API credential")
        verbose_name_plural = _("API credentials")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key_hash"], name="apicredential_hash_unique"),
            models.CheckConstraint(
                condition=models.Q(kind__in=["integration", "personal"]), name="apicredential_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "kind", "revoked_at"], name="apicredential_tenant_kind")]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def allows(self, area: str, write: bool) -> bool:
        return f"{area}:{'write' if write else 'read'}" in self.scopes


class AuditAction(models.TextChoices):
    SIGNED_IN = "signed_in", _("Signed in")
    TENANT_SWITCHED = "tenant_switched", _("Switched dealership")
    MEMBER_INVITED = "member_invited", _("Invited a staff member")
    MEMBER_ROLE_CHANGED = "member_role_changed", _("Changed a role")
    MEMBER_DEACTIVATED = "member_deactivated", _("Deactivated a staff member")
    MEMBER_REACTIVATED = "member_reactivated", _("Reactivated a staff member")
    CUSTOMERS_REASSIGNED = "customers_reassigned", _("Handed customers over")
    PII_REVEALED = "pii_revealed", _("Showed a full number")
    CUSTOMER_VIEWED = "customer_viewed", _("Opened a customer record they do not own")
    CUSTOMERS_MERGED = "customers_merged", _("Merged two customer records")
    CUSTOMER_LISTED = "customer_listed", _("Changed a customer's red/black list flag")
    CUSTOMERS_EXPORTED = "customers_exported", _("Exported a customer list")
    CUSTOMERS_IMPORTED = "customers_imported", _("Imported a file")
    CUSTOMERS_READ_UNMASKED = "customers_read_unmasked", _("Read customers with full numbers (API)")
    CREDENTIAL_CREATED = "credential_created", _("Created an API credential")
    CREDENTIAL_REVOKED = "credential_revoked", _("Revoked an API credential")
    TENANT_SETTINGS_CHANGED = "tenant_settings_changed", _("Changed dealership settings")
    NIGHTLY_STARTED = "nightly_started", _("Started a nightly run by hand")
    SEGMENTATION_SETTINGS_CHANGED = "segmentation_settings_changed", _("Changed segmentation settings")


class AuditEvent(TenantOwnedModel):
    """Append-only: the app role may insert and read, never update or delete (see rls.py)."""

    rls_append_only = True

    created_at = models.DateTimeField(_("time"), default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    action = models.CharField(_("action"), max_length=40, choices=AuditAction.choices)
    target_type = models.CharField(_("target type"), max_length=60, blank=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    summary = models.CharField(_("summary"), max_length=300, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="audit_tenant_time"),
            models.Index(fields=["tenant", "action", "-created_at"], name="audit_tenant_action_time"),
            models.Index(fields=["tenant", "target_type", "target_id"], name="audit_tenant_target"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.get_action_display()} {self.summary}"
