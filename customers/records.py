"""Every write to customer records: customers, vehicles, orders, touchpoints, merges.

(Tenancy-sensitive actions — reveal, hand-over, audit of reads — live in services.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError, NotAllowed
from crm.core.extensions import Contribution, ExtensionPoint
from crm.tenancy.access import require
from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import AuditAction, Membership, Tenant
from crm.tenancy.roles import ROLES_WITH_OWN_BOOK
from customers.models import (
    CONSENT_FIELDS,
    ConsentChange,
    Customer,
    ListFlag,
    MileageReading,
    Order,
    Touchpoint,
    Vehicle,
    VehicleOwnership,
)
from customers.normalize import name_initials, normalize_fields
from customers.quality import customer_quality_refresh

CUSTOMER_FIELDS = (
    "kind",
    "name",
    "mobile",
    "mobile_secondary",
    "email",
    "id_number",
    "gender",
    "birthday",
    "province",
    "city",
    "district",
    "address",
    "source",
    "consent_call",
    "consent_sms",
    "consent_wechat",
    "consent_email",
    "churn_reason",
    "tags",
    "external_id",
    "owner",
)
VEHICLE_FIELDS = (
    "vin",
    "plate",
    "brand",
    "series",
    "model_name",
    "model_year",
    "colour",
    "purchase_date",
    "warranty_end",
    "external_id",
)
ORDER_FIELDS = ("kind", "status", "ordered_on", "amount", "vehicle", "staff", "mileage_km", "external_id")
IN_PERSON = (Touchpoint.Channel.VISIT, Touchpoint.Channel.SHOWROOM, Touchpoint.Channel.TEST_DRIVE)


def _apply(instance: Any, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = set(data) - set(allowed)
    if unknown:
        raise ApplicationError(
            _("Unknown fields."), fields={f: [_("Not a field you can set.")] for f in sorted(unknown)}
        )
    for field, value in data.items():
        setattr(instance, field, value)


def _save(instance: Any, *, unique_message: str) -> None:
    instance.full_clean(exclude=["tenant"])
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        # a concurrent insert won the unique constraint between full_clean and save
        raise ApplicationError(unique_message, code="duplicate") from None


def _check_owner(actor: Membership, owner: Membership | None) -> None:
    if owner is None:
        return
    if owner.is_service_account or not owner.is_active:
        raise ApplicationError(
            _("Choose an active staff member."), fields={"owner": [_("Not an active staff member.")]}
        )
    if actor.role in ROLES_WITH_OWN_BOOK and owner.pk != actor.pk:
        raise NotAllowed(_("You can only keep customers in your own book."))


def _consent(customer: Customer) -> dict[str, bool]:
    return {channel: bool(getattr(customer, field)) for channel, field in CONSENT_FIELDS.items()}


NO_CONSENT = dict.fromkeys(CONSENT_FIELDS, False)


def _consent_record(*, customer: Customer, before: dict[str, bool], actor: Membership, via: str) -> None:
    """A ConsentChange when any channel's consent differs from `before` (a new customer: no consent)."""
    after = _consent(customer)
    changed = [channel for channel in CONSENT_FIELDS if after[channel] != before[channel]]
    if not changed:
        return
    change = ConsentChange(
        customer=customer,
        changed=changed,
        via=via,
        set_by=actor.user,
        **{CONSENT_FIELDS[channel]: value for channel, value in after.items()},
    )
    change.full_clean(exclude=["tenant"])
    change.save()


@transaction.atomic
def customer_create(
    *,
    actor: Membership,
    data: dict[str, Any],
    meta: RequestMeta | None = None,
    via: str = ConsentChange.Via.FORM,
) -> Customer:
    """A new customer. A consent not in `data` is no consent; consent given is recorded (ConsentChange)."""
    require(actor, "customers.edit")
    data = normalize_fields(data)
    if "owner" not in data and actor.role in ROLES_WITH_OWN_BOOK:
        data["owner"] = actor  # a consultant's new customer is in their own book
    _check_owner(actor, data.get("owner"))
    customer = Customer()
    _apply(customer, data, CUSTOMER_FIELDS)
    customer.name_initials = name_initials(customer.name)  # the search terms follow (a trigger)
    _save(customer, unique_message=_("A customer with this DMS id exists already."))
    _consent_record(customer=customer, before=NO_CONSENT, actor=actor, via=via)
    customer_quality_refresh(customer_ids=[customer.pk])
    return customer


def insert_new_rows(objs: list[Any]) -> None:
    """`bulk_create` of new rows of one tenant-owned model in the active dealership, as one
    INSERT … SELECT FROM unnest(…): one array per column instead of one placeholder per value
    (composing a statement of 50,000 placeholders is most of a bulk intake's time). The ids are drawn
    from the table's sequence first, so each object gets its own; the values are the ORM's (pre_save,
    get_db_prep_save); an array column travels as its literal; row-level security checks the tenant
    as for any insert, and statement triggers fire as for bulk_create. The caller has checked the
    objects (full_clean) and that their foreign keys are of this dealership."""
    if not objs:
        return
    meta = type(objs[0])._meta
    tenant_id = require_tenant_id()
    quote = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.generated]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [meta.db_table, len(objs)]
        )
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk
            obj.tenant_id = tenant_id
        arrays, selected, params = [], [], []
        for index, f in enumerate(fields):
            values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs]
            if isinstance(f, ArrayField):
                arrays.append("%s::text[]")
                selected.append(f"c{index}::{f.db_type(connection)}")
                values = [None if v is None else _array_literal(v) for v in values]
            else:
                arrays.append(f"%s::{f.db_type(connection)}[]")
                selected.append(f"c{index}")
            params.append(values)
        names = ", ".join(f"c{index}" for index in range(len(fields)))
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
            f"SELECT {', '.join(selected)} FROM unnest({', '.join(arrays)}) AS v({names})",
            params,
        )
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


def _array_literal(values: list[Any]) -> str:
    """A one-dimensional PostgreSQL array literal of text values ({"a","b \\"c\\""})."""
    quoted = ('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


@transaction.atomic
def customers_create_prospects(
    *, actor: Membership, rows: list[dict[str, Any]], via: str = ConsentChange.Via.FORM
) -> list[Customer]:
    """Many new customers at once (a bulk lead intake's prospects), each as `customer_create` makes
    it: the same fields, normalisation, owner rule and checks, name initials (the search terms follow:
    the insert trigger of migration 0010 is per statement), given consent recorded (ConsentChange),
    the quality refreshed; in one statement per table. Uniqueness is the database's to enforce here:
    a clash raises IntegrityError for the caller's savepoint (a row-by-row retry reports it)."""
    require(actor, "customers.edit")
    customers: list[Customer] = []
    for row in rows:
        data = normalize_fields(row)
        if "owner" not in data and actor.role in ROLES_WITH_OWN_BOOK:
            data["owner"] = actor
        _check_owner(actor, data.get("owner"))
        customer = Customer()
        _apply(customer, data, CUSTOMER_FIELDS)
        customer.name_initials = name_initials(customer.name)
        # the fields not given keep their defaults (valid); the owner is a checked instance: no query
        # per row to prove it exists
        unset = [f.name for f in Customer._meta.fields if f.name not in data]
        customer.full_clean(exclude=["tenant", "owner", *unset], validate_unique=False, validate_constraints=False)
        customers.append(customer)
    if not customers:
        return []
    insert_new_rows(customers)
    changes: list[ConsentChange] = []
    for customer in customers:
        after = _consent(customer)
        changed = [channel for channel in CONSENT_FIELDS if after[channel] != NO_CONSENT[channel]]
        if changed:
            change = ConsentChange(
                customer=customer,
                changed=changed,
                via=via,
                set_by=actor.user,
                **{CONSENT_FIELDS[channel]: value for channel, value in after.items()},
            )
            change.full_clean(exclude=["tenant", "customer", "set_by"])
            changes.append(change)
    insert_new_rows(changes)
    customer_quality_refresh(customer_ids=[customer.pk for customer in customers])
    return customers


@transaction.atomic
def customer_update(
    *, actor: Membership, customer: Customer, data: dict[str, Any], via: str = ConsentChange.Via.FORM
) -> Customer:
    require(actor, "customers.edit")
    data = normalize_fields(data)
    if "owner" in data and data["owner"] != customer.owner:
        if not actor.can("customers.reassign"):
            raise NotAllowed(_("Your role may not hand customers over."))
        _check_owner(actor, data["owner"])
    old_mobile = customer.mobile
    consent_before = _consent(customer)
    _apply(customer, data, CUSTOMER_FIELDS)
    customer.name_initials = name_initials(customer.name)
    _save(customer, unique_message=_("A customer with this DMS id exists already."))
    _consent_record(customer=customer, before=consent_before, actor=actor, via=via)
    # the old mobile too: a former twin may no longer be a duplicate
    customer_quality_refresh(customer_ids=[customer.pk], mobiles=[old_mobile] if old_mobile else None)
    return customer


@transaction.atomic
def customer_set_list_flag(
    *, actor: Membership, customer: Customer, flag: str, reason: str, meta: RequestMeta | None = None
) -> Customer:
    """Red list (favour) or black list (avoid: fraud, abuse, bad debt); a reason is required."""
    require(actor, "customers.list_flag")
    if flag not in ListFlag.values:
        raise ApplicationError(_("Unknown list."), fields={"flag": [_("Choose red, black or none.")]})
    if flag and not reason.strip():
        raise ApplicationError(_("Say why."), fields={"reason": [_("A reason is required.")]})
    before = customer.list_flag
    customer.list_flag, customer.list_reason = flag, reason.strip() if flag else ""
    customer.list_set_by = actor.user if flag else None
    customer.save(update_fields=["list_flag", "list_reason", "list_set_by", "updated_at"])
    audit_record(
        action=AuditAction.CUSTOMER_LISTED,
        actor=actor.user,
        target=customer,
        summary=f"{customer.name}: {before or '-'} → {flag or '-'}",
        data={"from": before, "to": flag, "reason": customer.list_reason},
        meta=meta,
    )
    return customer


def customers_fill_name_initials(*, batch: int = 5000) -> int:
    """Compute the pinyin initials of the dealership's customers that have none yet (NULL: written
    by code that bypasses the services, such as bulk loads); the search terms follow by trigger.
    Returns how many were filled."""
    filled = 0
    while True:
        rows = list(Customer.objects.filter(name_initials__isnull=True).order_by().values_list("pk", "name")[:batch])
        if not rows:
            return filled
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE customers_customer c SET name_initials = v.initials "
                "FROM unnest(%s::bigint[], %s::text[]) v(id, initials) WHERE c.tenant_id = %s AND c.id = v.id",
                [[pk for pk, _name in rows], [name_initials(name) for _pk, name in rows], require_tenant_id()],
            )
        filled += len(rows)


def customer_refresh_last_visit(*, customer_ids: list[int]) -> None:
    """Recompute last_visit_on of these customers (the rule: see customers_refresh_last_visit_where)."""
    if customer_ids:
        customers_refresh_last_visit_where(touched_sql="SELECT unnest(%s::bigint[])", touched_params=[customer_ids])


def customers_refresh_last_visit_where(*, touched_sql: str, touched_params: list[Any] | None = None) -> int:
    """The one "last visit" rule, set-based, for the customer ids `touched_sql` selects: the latest
    day of a non-reversed order or of an in-person contact (visit, showroom, test drive), as a date
    in the dealership's time zone; None when there is neither. Returns the rows it changed."""
    tenant = Tenant.objects.get(pk=require_tenant_id())
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH touched AS (SELECT DISTINCT id FROM ({touched_sql}) ids(id) WHERE id IS NOT NULL),
            orders AS (
                SELECT o.customer_id, max(o.ordered_on) AS last
                  FROM customers_order o
                 WHERE o.tenant_id = %s AND o.status <> %s AND o.customer_id IN (SELECT id FROM touched)
                 GROUP BY o.customer_id
            ), visits AS (
                SELECT p.customer_id, max((p.occurred_at AT TIME ZONE %s)::date) AS last
                  FROM customers_touchpoint p
                 WHERE p.tenant_id = %s AND p.channel = ANY(%s) AND p.customer_id IN (SELECT id FROM touched)
                 GROUP BY p.customer_id
            ), latest AS (
                SELECT touched.id, GREATEST(orders.last, visits.last) AS last
                  FROM touched
                  LEFT JOIN orders ON orders.customer_id = touched.id
                  LEFT JOIN visits ON visits.customer_id = touched.id
            )
            UPDATE customers_customer c SET last_visit_on = latest.last FROM latest
             WHERE c.tenant_id = %s AND c.id = latest.id AND c.last_visit_on IS DISTINCT FROM latest.last
            """,
            [
                *(touched_params or []),
                tenant.pk,
                Order.Status.REVERSED,
                tenant.time_zone,
                tenant.pk,
                [str(channel) for channel in IN_PERSON],
                tenant.pk,
            ],
        )
        return int(cursor.rowcount)


def customers_apply_derived_classes(*, tenant_id: int, source_table: str) -> int:
    """Set lifecycle_stage and relationship_class, which segmentation derives every night, from a
    temporary table (customer_id, stage, class, class_changed). Set-based; touches changed rows only."""
    if not source_table.isidentifier():
        raise ValueError(f"Not a table name: {source_table!r}")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE customers_customer c SET lifecycle_stage = s.stage, relationship_class = s.class
                  FROM {source_table} s
                 WHERE c.tenant_id = %s AND c.id = s.customer_id AND s.class_changed""",
            [tenant_id],
        )
        return max(cursor.rowcount, 0)


def prospect_owner_follow(*, customer: Customer, owner: Membership | None) -> bool:
    """A sales lead changed hands: its person goes with it while the person is a prospect (no
    order yet) or has no owner at all; a buyer keeps the consultant who owns them. True if moved."""
    if customer.owner_id == (owner.pk if owner else None):
        return False
    if customer.owner_id is not None and Order.objects.filter(customer=customer).exists():
        return False
    customer.owner = owner
    customer.save(update_fields=["owner", "updated_at"])
    return True


def prospects_owner_set(*, owners: dict[int, int | None]) -> int:
    """`prospect_owner_follow` for many customers in one statement ({customer id: owner id or None})."""
    if not owners:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE customers_customer c SET owner_id = n.owner_id, updated_at = now()
            FROM unnest(%s::bigint[], %s::bigint[]) AS n(customer_id, owner_id)
            WHERE c.id = n.customer_id AND c.tenant_id = %s AND c.owner_id IS DISTINCT FROM n.owner_id
              AND (c.owner_id IS NULL OR NOT EXISTS (SELECT 1 FROM customers_order o WHERE o.customer_id = c.id))
            """,
            [list(owners), list(owners.values()), require_tenant_id()],
        )
        return max(cursor.rowcount, 0)


@transaction.atomic
def touchpoint_log(
    *,
    actor: Membership,
    customer: Customer,
    channel: str,
    outcome: str,
    direction: str = Touchpoint.Direction.OUTBOUND,
    notes: str = "",
    vehicle: Vehicle | None = None,
    occurred_at: Any = None,
    external_id: str = "",
) -> Touchpoint:
    """Record a contact ("log a call" is channel=call) and keep last_visit_on current."""
    if vehicle is not None and vehicle.customer_id != customer.pk:
        raise ApplicationError(
            _("That vehicle belongs to another customer."), fields={"vehicle": [_("Not this customer's.")]}
        )
    touchpoint = Touchpoint(
        customer=customer,
        vehicle=vehicle,
        channel=channel,
        outcome=outcome,
        direction=direction,
        notes=notes,
        staff=actor if not actor.is_service_account else None,
        occurred_at=occurred_at or timezone.now(),
        external_id=external_id,
    )
    if occurred_at is not None and occurred_at > timezone.now() + timedelta(minutes=5):
        raise ApplicationError(_("A contact cannot be in the future."), fields={"occurred_at": [_("In the future.")]})
    _save(touchpoint, unique_message=_("A contact with this external id exists already."))
    if channel in IN_PERSON:
        customer_refresh_last_visit(customer_ids=[customer.pk])
    return touchpoint


@transaction.atomic
def vehicle_create(
    *, actor: Membership, customer: Customer, data: dict[str, Any], mileage_km: int | None = None
) -> Vehicle:
    require(actor, "customers.edit")
    data = normalize_fields(data)
    vehicle = Vehicle(customer=customer)
    _apply(vehicle, data, VEHICLE_FIELDS)
    _save(vehicle, unique_message=_("A vehicle with this VIN exists already."))
    VehicleOwnership.objects.create(
        vehicle=vehicle, customer=customer, started_on=vehicle.purchase_date or timezone.localdate()
    )
    if mileage_km is not None:
        mileage_record(
            vehicle=vehicle, km=mileage_km, read_on=timezone.localdate(), source=MileageReading.Source.MANUAL
        )
    customer_quality_refresh(customer_ids=[customer.pk])
    return vehicle


@transaction.atomic
def vehicle_update(*, actor: Membership, vehicle: Vehicle, data: dict[str, Any]) -> Vehicle:
    require(actor, "customers.edit")
    data = normalize_fields(data)
    _apply(vehicle, data, VEHICLE_FIELDS)
    _save(vehicle, unique_message=_("A vehicle with this VIN exists already."))
    customer_quality_refresh(customer_ids=[vehicle.customer_id])
    return vehicle


@transaction.atomic
def vehicle_transfer(*, actor: Membership, vehicle: Vehicle, new_owner: Customer, on: date | None = None) -> Vehicle:
    """The vehicle changes hands (sold on, family transfer): close the old ownership, open a new one."""
    require(actor, "customers.edit")
    on = on or timezone.localdate()
    if new_owner.pk == vehicle.customer_id:
        return vehicle
    old_owner_id = vehicle.customer_id
    VehicleOwnership.objects.filter(vehicle=vehicle, ended_on__isnull=True).update(ended_on=on)
    VehicleOwnership.objects.create(vehicle=vehicle, customer=new_owner, started_on=on)
    vehicle.customer = new_owner
    vehicle.save(update_fields=["customer"])
    customer_quality_refresh(customer_ids=[old_owner_id, new_owner.pk])
    return vehicle


def mileage_record(
    *, vehicle: Vehicle, km: int, read_on: date, source: str, order: Order | None = None
) -> MileageReading:
    """Add an odometer reading; one lower than an earlier reading is refused (a typo, or a new dashboard)."""
    earlier_max = MileageReading.objects.filter(vehicle=vehicle, read_on__lte=read_on).aggregate(m=Max("km"))["m"] or 0
    if km < earlier_max:
        raise ApplicationError(
            _("%(km)s km is less than an earlier reading (%(max)s km).") % {"km": km, "max": earlier_max},
            fields={"mileage_km": [_("Lower than an earlier reading.")]},
        )
    reading = MileageReading.objects.create(vehicle=vehicle, km=km, read_on=read_on, source=source, order=order)
    latest = MileageReading.objects.filter(vehicle=vehicle).order_by("-read_on", "-km").first()
    if latest is not None and vehicle.mileage_km != latest.km:
        vehicle.mileage_km = latest.km
        vehicle.save(update_fields=["mileage_km"])
    return reading


@transaction.atomic
def order_create(*, actor: Membership, customer: Customer, data: dict[str, Any]) -> Order:
    require(actor, "customers.edit")
    order = Order(customer=customer)
    _apply(order, data, ORDER_FIELDS)
    if order.vehicle is not None and order.vehicle.customer_id != customer.pk:
        raise ApplicationError(
            _("That vehicle belongs to another customer."), fields={"vehicle": [_("Not this customer's.")]}
        )
    _save(order, unique_message=_("An order with this DMS id exists already."))
    if order.vehicle is not None and order.mileage_km:
        mileage_record(
            vehicle=order.vehicle, km=order.mileage_km, read_on=order.ordered_on, source="order", order=order
        )
    customer_refresh_last_visit(customer_ids=[customer.pk])
    return order


@transaction.atomic
def order_reverse(*, actor: Membership, order: Order) -> Order:
    """A reversed order stays in history but counts for nothing (spend, visits, points)."""
    require(actor, "customers.edit")
    if order.status != Order.Status.REVERSED:
        order.status = Order.Status.REVERSED
        order.save(update_fields=["status"])
        customer_refresh_last_visit(customer_ids=[order.customer_id])
    return order


# --- Bulk upsert of orders from a DMS -----------------------------------------------------------

BULK_LIMIT = 1000


ORDER_ITEM_KEYS = ("external_id", "customer_external_id", "vin", "kind", "status", "ordered_on", "amount", "mileage_km")


def _order_item(item: dict[str, Any]) -> tuple[dict[str, Any], Customer | None, Vehicle | None]:
    # a key the upsert does not write is this row's error, never dropped silently
    errors: dict[str, list[str]] = {
        str(key): [_("This field cannot be written here.")] for key in item if key not in ORDER_ITEM_KEYS
    }
    external_id = str(item.get("external_id") or "").strip()
    if not external_id:
        errors["external_id"] = [_("Required: orders are matched on it.")]
    customer = None
    customer_ref = item.get("customer_external_id")
    if customer_ref:
        customer = Customer.objects.filter(external_id=str(customer_ref)).first()
        while customer is not None and customer.merged_into_id:
            customer = Customer.objects.get(pk=customer.merged_into_id)
        if customer is None:
            errors["customer_external_id"] = [_("No customer with this DMS id.")]
    else:
        errors["customer_external_id"] = [_("Required.")]
    vehicle = None
    if item.get("vin"):
        vehicle = Vehicle.objects.filter(vin=str(item["vin"]).strip().upper()).first()
        if vehicle is None:
            errors["vin"] = [_("No vehicle with this VIN.")]
    if errors:
        raise ValidationError(errors)
    values = {
        "kind": item.get("kind"),
        "status": item.get("status") or Order.Status.COMPLETED,
        "ordered_on": item.get("ordered_on"),
        "amount": item.get("amount"),
        "mileage_km": item.get("mileage_km"),
        "external_id": external_id,
        "vehicle": vehicle,
    }
    return values, customer, vehicle


def orders_bulk_upsert(*, actor: Membership, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create or update orders keyed by external_id. Each item stands alone: valid items are
    written, invalid ones come back with their errors. Sending the same batch again changes nothing.
    """
    require(actor, "customers.edit")
    if len(items) > BULK_LIMIT:
        raise ApplicationError(
            _("At most %(n)d orders per request.") % {"n": BULK_LIMIT}, fields={"items": [_("Too many.")]}
        )
    results: list[dict[str, Any]] = []
    touched: set[int] = set()
    for index, item in enumerate(items):
        try:
            with transaction.atomic():
                values, customer, _vehicle = _order_item(item)
                order = Order.objects.filter(external_id=values["external_id"]).first()
                if order is None:
                    order = Order(customer=customer, **values)
                    status = "created"
                else:
                    before = {k: getattr(order, k) for k in values} | {"customer": order.customer_id}
                    for key, value in values.items():
                        setattr(order, key, value)
                    order.customer = customer  # type: ignore[assignment]
                    order.full_clean(exclude=["tenant"])
                    after = {k: getattr(order, k) for k in values} | {"customer": order.customer_id}
                    status = "unchanged" if before == after else "updated"
                order.full_clean(exclude=["tenant"])
                if status != "unchanged":
                    order.save()
                    touched.add(order.customer_id)
            results.append({"index": index, "external_id": values["external_id"], "status": status, "id": order.pk})
        except ValidationError as error:
            fields = error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
            results.append(
                {"index": index, "external_id": item.get("external_id"), "status": "error", "errors": fields}
            )
    with transaction.atomic():
        customer_refresh_last_visit(customer_ids=sorted(touched))
    return results


# --- Merging duplicates -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MergeHandler(Contribution):
    """An app that keeps rows per customer moves them: merge(*, survivor, duplicate) -> {label: count}."""

    merge: Callable[..., dict[str, int] | None]


merge_handlers: ExtensionPoint[MergeHandler] = ExtensionPoint("customers.merge_handlers", MergeHandler)

FILL_BLANKS = (
    "mobile",
    "mobile_secondary",
    "email",
    "id_number",
    "gender",
    "birthday",
    "province",
    "city",
    "district",
    "address",
    "external_id",
    "churn_reason",
)


@transaction.atomic
def customer_merge(
    *, actor: Membership, survivor: Customer, duplicate: Customer, meta: RequestMeta | None = None
) -> Customer:
    """Fold `duplicate` into `survivor`: all history moves over, blanks are filled, the duplicate
    stays as a tombstone pointing at the survivor (so its DMS id still resolves)."""
    require(actor, "customers.merge")
    if survivor.pk == duplicate.pk:
        raise ApplicationError(_("Choose two different customers."))
    if duplicate.merged_into_id or survivor.merged_into_id:
        raise ApplicationError(_("One of these records was merged already."), code="already_merged")
    moved = {
        "vehicles": Vehicle.objects.filter(customer=duplicate).update(customer=survivor),
        "orders": Order.objects.filter(customer=duplicate).update(customer=survivor),
        "touchpoints": Touchpoint.objects.filter(customer=duplicate).update(customer=survivor),
        "ownerships": VehicleOwnership.objects.filter(customer=duplicate).update(customer=survivor),
    }
    for handler in merge_handlers.contributions():
        moved.update(handler.merge(survivor=survivor, duplicate=duplicate) or {})
    snapshot = {f: str(getattr(duplicate, f)) for f in ("name", "external_id", "owner_id", "created_at")}
    dup_external_id = duplicate.external_id
    duplicate.external_id = ""  # frees the unique DMS id for the survivor when it has none
    duplicate.merged_into = survivor
    duplicate.save(update_fields=["external_id", "merged_into", "updated_at"])
    for field in FILL_BLANKS:
        if not getattr(survivor, field):
            setattr(survivor, field, dup_external_id if field == "external_id" else getattr(duplicate, field))
    survivor.tags = sorted(set(survivor.tags) | set(duplicate.tags))
    if not survivor.list_flag and duplicate.list_flag:
        survivor.list_flag, survivor.list_reason = duplicate.list_flag, duplicate.list_reason
    survivor.full_clean(exclude=["tenant"])
    survivor.save()
    customer_refresh_last_visit(customer_ids=[survivor.pk])
    customer_quality_refresh(customer_ids=[survivor.pk, duplicate.pk])
    audit_record(
        action=AuditAction.CUSTOMERS_MERGED,
        actor=actor.user,
        target=survivor,
        summary=f"{duplicate.name} → {survivor.name}",
        data={"duplicate": duplicate.pk, "moved": moved, "was": snapshot},
        meta=meta,
    )
    return survivor
