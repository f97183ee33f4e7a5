"""The commit pass: one transaction, the valid rows COPYed into a TEMP staging table, set-based upserts.

Upserts are keyed by DMS id (customers, orders) or VIN (vehicles): what differs is updated, what is
new is inserted, and a blank (NULL) cell keeps the stored value. Every statement filters on
`tenant_id` explicitly and runs under row-level security; the ids written into foreign keys come
from the scan's tenant-scoped reads, never from the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, models
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import AuditAction, Tenant
from customers.imports.kinds import ImportKind, import_kind
from customers.imports.reports import ScanResult, file_level_errors
from customers.imports.validation import _Row, _run_scan
from customers.models import (
    CONSENT_FIELDS,
    ConsentChange,
    Customer,
    ImportJob,
    MileageReading,
    Order,
    Vehicle,
    VehicleOwnership,
)
from customers.normalize import name_initials
from customers.records import customers_refresh_last_visit_where


class _FileNoLongerValid(Exception):
    def __init__(self, result: ScanResult) -> None:
        super().__init__("the file no longer validates")
        self.result = result


# working columns of the staging table, filled by SQL after the COPY
_WORK_COLUMNS = (
    ("old_customer_id", "bigint"),
    ("old_vehicle_id", "bigint"),
    ("old_mileage", "integer"),
    ("old_ordered_on", "date"),
    ("old_consent", "boolean[]"),
    ("is_new", "boolean NOT NULL DEFAULT false"),
    ("changed", "boolean NOT NULL DEFAULT false"),
    ("reading_changed", "boolean NOT NULL DEFAULT false"),
)


# columns computed from a row's values while it is staged: (name, SQL type, how)
_DERIVED: dict[str, tuple[tuple[str, str, Callable[[dict[str, Any]], Any]], ...]] = {
    # the search terms follow from name and initials (a trigger on customers_customer)
    ImportJob.Kind.CUSTOMERS: (
        ("name_initials", "text", lambda values: name_initials(values["name"]) if values.get("name") else None),
    ),
}


class _Stage:
    """A TEMP table (dropped at commit) holding one import's normalised, resolved rows."""

    def __init__(self, spec: ImportKind, job_id: int) -> None:
        self.table = f"import_stage_{int(job_id)}"
        self.columns = [("row_no", "integer")]
        self.columns += [(f.name, f.sql_type) for f in spec.fields]
        self.columns += [(name, "bigint") for name in spec.resolved]
        self.derived = _DERIVED.get(spec.kind, ())
        self.columns += [(name, sql_type) for name, sql_type, _how in self.derived]

    def create(self) -> None:
        columns = ", ".join(f"{name} {sql_type}" for name, sql_type in (*self.columns, *_WORK_COLUMNS))
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(f"CREATE TEMP TABLE {self.table} ({columns}) ON COMMIT DROP")

    def copy(self, rows: list[_Row]) -> None:
        names = [name for name, _type in self.columns]
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {self.table} ({', '.join(names)}) FROM STDIN") as copy,
        ):
            for row in rows:
                values = row.values | {name: how(row.values) for name, _type, how in self.derived}
                copy.write_row([row.number, *(values.get(name) for name in names[1:])])

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")


def _execute(sql: str, params: Sequence[Any] = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _scalar(sql: str, params: Sequence[Any] = ()) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        return row[0] if row else None


SqlExpr = str | tuple[str, Sequence[Any]]  # an SQL expression, with its parameters when it has any


def _insert_select(
    model: type[models.Model],
    *,
    exprs: Mapping[str, SqlExpr],
    source: str,
    tenant_id: int,
    now: datetime,
    returning: str = "",
) -> tuple[str, list[Any]]:
    """`INSERT INTO <model table> (every column) SELECT … FROM <source>`.

    Columns named in `exprs` take those SQL expressions (staging columns); every other column gets
    the model field's own default, so a column added to the model later needs no change here.
    """
    columns: list[str] = []
    selects: list[str] = []
    params: list[Any] = []
    for model_field in model._meta.concrete_fields:
        if model_field.primary_key or model_field.generated:  # the database computes generated columns
            continue
        columns.append(connection.ops.quote_name(model_field.column))
        if model_field.column in exprs:
            expr = exprs[model_field.column]
            sql_part, expr_params = (expr, ()) if isinstance(expr, str) else expr
            selects.append(sql_part)
            params.extend(expr_params)
            continue
        if model_field.column == "tenant_id":
            selects.append("%s")
            params.append(tenant_id)
            continue
        if getattr(model_field, "auto_now", False) or getattr(model_field, "auto_now_add", False):
            value: Any = now
        else:
            value = model_field.get_default()
        selects.append(f"%s::{model_field.db_type(connection)}")
        params.append(model_field.get_db_prep_save(value, connection))
    sql = f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(selects)} FROM {source}"
    if returning:
        sql += f" RETURNING {returning}"
    return sql, params


def _optional(model: type[models.Model], name: str) -> str:
    """The staging value, or the model's blank for a text column when the cell was empty."""
    column = f"s.{name}"
    model_field = model._meta.get_field(name)
    if isinstance(model_field, models.CharField) and not model_field.null:
        return f"COALESCE({column}, '')"
    return column


def _keep_unless_given(columns: Sequence[str]) -> tuple[str, str, str]:
    """SET list, old row and new row for an update where a blank (NULL) cell keeps the stored value."""
    sets = ", ".join(f"{c} = COALESCE(s.{c}, t.{c})" for c in columns)
    old = ", ".join(f"t.{c}" for c in columns)
    new = ", ".join(f"COALESCE(s.{c}, t.{c})" for c in columns)
    return sets, old, new


CUSTOMER_COLUMNS = (
    "name",
    "name_initials",
    "kind",
    "mobile",
    "mobile_secondary",
    "gender",
    "birthday",
    "id_number",
    "province",
    "city",
    "district",
    "address",
    "source",
    *CONSENT_FIELDS.values(),
)
VEHICLE_COLUMNS = (
    "plate",
    "brand",
    "series",
    "model_name",
    "model_year",
    "colour",
    "purchase_date",
    "warranty_end",
    "mileage_km",
    "external_id",
)


@dataclass(frozen=True)
class _Context:
    tenant_id: int
    today: date
    now: datetime
    zone: str
    job_id: int
    actor_id: int | None  # who committed the import
    mapped: frozenset[str]  # the fields the file has a column for


def _upsert_customers(stage: _Stage, ctx: _Context) -> dict[str, int]:
    t = stage.table
    sets, old, new = _keep_unless_given(CUSTOMER_COLUMNS)
    matched = int(_scalar(f"SELECT count(*) FROM {t} WHERE target_id IS NOT NULL"))
    consent_mapped = bool(ctx.mapped & set(CONSENT_FIELDS.values()))
    if consent_mapped:
        _execute(
            f"UPDATE {t} s SET old_consent = ARRAY[{', '.join(f'c.{c}' for c in CONSENT_FIELDS.values())}] "
            "FROM customers_customer c WHERE c.tenant_id = %s AND c.id = s.target_id",
            [ctx.tenant_id],
        )
    updated = _execute(
        f"""
        WITH changed AS (
            UPDATE customers_customer t SET {sets}, updated_at = %s
              FROM {t} s
             WHERE t.tenant_id = %s AND t.id = s.target_id AND ROW({old}) IS DISTINCT FROM ROW({new})
            RETURNING t.id
        )
        UPDATE {t} s SET changed = true FROM changed WHERE s.target_id = changed.id
        """,
        [ctx.now, ctx.tenant_id],
    )
    exprs = {c: _optional(Customer, c) for c in CUSTOMER_COLUMNS} | {
        "external_id": "s.external_id",
        "kind": f"COALESCE(s.kind, '{Customer.Kind.INDIVIDUAL}')",
        "source": f"COALESCE(s.source, '{Customer.Source.DMS}')",
        # a new customer without a consent cell has not consented (PIPL: never assumed)
        **{c: f"COALESCE(s.{c}, false)" for c in CONSENT_FIELDS.values()},
    }
    sql, params = _insert_select(
        Customer,
        exprs=exprs,
        source=f"{t} s WHERE s.target_id IS NULL ORDER BY s.row_no",
        tenant_id=ctx.tenant_id,
        now=ctx.now,
        returning="id, external_id",
    )
    if not consent_mapped:
        return {"created": _execute(sql, params), "updated": updated, "unchanged": matched - updated}
    created = _execute(
        f"WITH inserted AS ({sql}) UPDATE {t} s SET target_id = inserted.id, is_new = true "
        "FROM inserted WHERE s.external_id = inserted.external_id",
        params,
    )
    consent_changes = _record_consent_changes(stage, ctx)
    return {
        "created": created,
        "updated": updated,
        "unchanged": matched - updated,
        "consent_changes": consent_changes,
    }


def _record_consent_changes(stage: _Stage, ctx: _Context) -> int:
    """One ConsentChange per imported customer whose consent now differs from before the import
    (a new customer: from no consent), by whoever committed the import, set-based."""
    columns = list(CONSENT_FIELDS.values())
    before = [f"COALESCE(s.old_consent[{n}], false)" for n in range(1, len(columns) + 1)]
    changed = ", ".join(
        f"CASE WHEN c.{column} IS DISTINCT FROM {was} THEN '{channel}' END"
        for (channel, column), was in zip(CONSENT_FIELDS.items(), before, strict=True)
    )
    sql, params = _insert_select(
        ConsentChange,
        exprs={
            "customer_id": "c.id",
            **{column: f"c.{column}" for column in columns},
            "changed": f"array_remove(ARRAY[{changed}]::varchar[], NULL)",
            "via": f"'{ConsentChange.Via.IMPORT}'",
            "set_by_id": ("%s::bigint", [ctx.actor_id]),
            "import_job_id": ("%s::bigint", [ctx.job_id]),
            "recorded_at": ("%s::timestamptz", [ctx.now]),
        },
        source=f"{stage.table} s JOIN customers_customer c "
        f"ON c.tenant_id = {int(ctx.tenant_id)} AND c.id = s.target_id "
        f"WHERE ROW({', '.join(f'c.{column}' for column in columns)}) IS DISTINCT FROM ROW({', '.join(before)}) "
        "ORDER BY s.row_no",
        tenant_id=ctx.tenant_id,
        now=ctx.now,
    )
    return _execute(sql, params)


def _upsert_vehicles(stage: _Stage, ctx: _Context) -> dict[str, int]:
    t, tenant = stage.table, ctx.tenant_id
    _execute(
        f"UPDATE {t} s SET old_customer_id = v.customer_id, old_mileage = v.mileage_km "
        "FROM customers_vehicle v WHERE v.tenant_id = %s AND v.id = s.vehicle_id",
        [tenant],
    )
    matched = int(_scalar(f"SELECT count(*) FROM {t} WHERE vehicle_id IS NOT NULL"))
    sets, old, new = _keep_unless_given(VEHICLE_COLUMNS)
    updated = _execute(
        f"""
        WITH changed AS (
            UPDATE customers_vehicle t SET customer_id = s.customer_id, {sets}
              FROM {t} s
             WHERE t.tenant_id = %s AND t.id = s.vehicle_id
               AND ROW(t.customer_id, {old}) IS DISTINCT FROM ROW(s.customer_id, {new})
            RETURNING t.id
        )
        UPDATE {t} s SET changed = true FROM changed WHERE s.vehicle_id = changed.id
        """,
        [tenant],
    )
    # a vehicle that changed hands: the open ownership ends today and a new one starts
    transferred = f"{t} s WHERE s.changed AND s.old_customer_id <> s.customer_id"
    _execute(
        f"UPDATE customers_vehicleownership o SET ended_on = %s FROM {t} s "
        "WHERE o.tenant_id = %s AND o.vehicle_id = s.vehicle_id AND o.ended_on IS NULL "
        "AND s.changed AND s.old_customer_id <> s.customer_id",
        [ctx.today, tenant],
    )
    sql, params = _insert_select(
        VehicleOwnership,
        exprs={
            "vehicle_id": "s.vehicle_id",
            "customer_id": "s.customer_id",
            "started_on": ("%s::date", [ctx.today]),
            "ended_on": "NULL",
        },
        source=transferred,
        tenant_id=tenant,
        now=ctx.now,
    )
    changed_hands = _execute(sql, params)

    exprs = {c: _optional(Vehicle, c) for c in VEHICLE_COLUMNS} | {
        "customer_id": "s.customer_id",
        "vin": "s.vin",
        "brand": "s.brand",
    }
    sql, params = _insert_select(
        Vehicle,
        exprs=exprs,
        source=f"{t} s WHERE s.vehicle_id IS NULL ORDER BY s.row_no",
        tenant_id=tenant,
        now=ctx.now,
        returning="id, vin",
    )
    created = _execute(
        f"WITH inserted AS ({sql}) UPDATE {t} s SET vehicle_id = inserted.id, is_new = true "
        "FROM inserted WHERE s.vin = inserted.vin",
        params,
    )
    sql, params = _insert_select(
        VehicleOwnership,
        exprs={
            "vehicle_id": "s.vehicle_id",
            "customer_id": "s.customer_id",
            "started_on": ("COALESCE(s.purchase_date, %s::date)", [ctx.today]),
            "ended_on": "NULL",
        },
        source=f"{t} s WHERE s.is_new",
        tenant_id=tenant,
        now=ctx.now,
    )
    _execute(sql, params)
    # an odometer reading for every mileage that is new to us, dated today
    sql, params = _insert_select(
        MileageReading,
        exprs={
            "vehicle_id": "s.vehicle_id",
            "read_on": ("%s::date", [ctx.today]),
            "km": "s.mileage_km",
            "source": f"'{MileageReading.Source.IMPORT}'",
            "order_id": "NULL",
        },
        source=f"{t} s WHERE s.mileage_km IS NOT NULL "
        "AND (s.is_new OR (s.changed AND s.old_mileage IS DISTINCT FROM s.mileage_km))",
        tenant_id=tenant,
        now=ctx.now,
    )
    readings = _execute(sql, params)
    return {
        "created": created,
        "updated": updated,
        "unchanged": matched - updated,
        "changed_hands": changed_hands,
        "mileage_readings": readings,
    }


def _upsert_orders(stage: _Stage, ctx: _Context) -> dict[str, int]:
    t, tenant = stage.table, ctx.tenant_id
    _execute(
        f"UPDATE {t} s SET old_customer_id = o.customer_id, old_vehicle_id = o.vehicle_id, "
        "old_mileage = o.mileage_km, old_ordered_on = o.ordered_on "
        "FROM customers_order o WHERE o.tenant_id = %s AND o.id = s.order_id",
        [tenant],
    )
    matched = int(_scalar(f"SELECT count(*) FROM {t} WHERE order_id IS NOT NULL"))
    old = "t.customer_id, t.vehicle_id, t.kind, t.status, t.ordered_on, t.amount, t.mileage_km"
    new = (
        "s.customer_id, COALESCE(s.vehicle_id, t.vehicle_id), s.kind, COALESCE(s.status, t.status), "
        "s.ordered_on, s.amount, COALESCE(s.mileage_km, t.mileage_km)"
    )
    updated = _execute(
        f"""
        WITH changed AS (
            UPDATE customers_order t
               SET customer_id = s.customer_id, vehicle_id = COALESCE(s.vehicle_id, t.vehicle_id), kind = s.kind,
                   status = COALESCE(s.status, t.status), ordered_on = s.ordered_on, amount = s.amount,
                   mileage_km = COALESCE(s.mileage_km, t.mileage_km)
              FROM {t} s
             WHERE t.tenant_id = %s AND t.id = s.order_id AND ROW({old}) IS DISTINCT FROM ROW({new})
            RETURNING t.id
        )
        UPDATE {t} s SET changed = true FROM changed WHERE s.order_id = changed.id
        """,
        [tenant],
    )
    exprs = {
        "customer_id": "s.customer_id",
        "vehicle_id": "s.vehicle_id",
        "kind": "s.kind",
        "status": f"COALESCE(s.status, '{Order.Status.COMPLETED}')",
        "ordered_on": "s.ordered_on",
        "amount": "s.amount",
        "mileage_km": "s.mileage_km",
        "external_id": "s.external_id",
    }
    sql, params = _insert_select(
        Order,
        exprs=exprs,
        source=f"{t} s WHERE s.order_id IS NULL ORDER BY s.row_no",
        tenant_id=tenant,
        now=ctx.now,
        returning="id, external_id",
    )
    created = _execute(
        f"WITH inserted AS ({sql}) UPDATE {t} s SET order_id = inserted.id, is_new = true "
        "FROM inserted WHERE s.external_id = inserted.external_id",
        params,
    )
    # odometer readings follow the order: new orders add one, changed ones replace theirs
    vehicle = "COALESCE(s.vehicle_id, s.old_vehicle_id)"
    km = "COALESCE(s.mileage_km, s.old_mileage)"
    _execute(
        f"UPDATE {t} s SET reading_changed = true WHERE s.is_new OR (s.changed AND "
        f"ROW(s.old_vehicle_id, s.old_mileage, s.old_ordered_on) IS DISTINCT FROM ROW({vehicle}, {km}, s.ordered_on))"
    )
    _execute(
        f"DELETE FROM customers_mileagereading r USING {t} s "
        "WHERE r.tenant_id = %s AND r.order_id = s.order_id AND s.reading_changed AND NOT s.is_new",
        [tenant],
    )
    sql, params = _insert_select(
        MileageReading,
        exprs={
            "vehicle_id": vehicle,
            "read_on": "s.ordered_on",
            "km": km,
            "source": f"'{MileageReading.Source.IMPORT}'",
            "order_id": "s.order_id",
        },
        source=f"{t} s WHERE s.reading_changed AND {vehicle} IS NOT NULL AND {km} IS NOT NULL",
        tenant_id=tenant,
        now=ctx.now,
    )
    readings = _execute(sql, params)
    # vehicles show their latest reading, as mileage_record() keeps it
    _execute(
        f"""
        WITH touched AS (
            SELECT {vehicle} AS id FROM {t} s WHERE s.reading_changed
            UNION SELECT s.old_vehicle_id FROM {t} s WHERE s.reading_changed
        ), latest AS (
            SELECT DISTINCT ON (r.vehicle_id) r.vehicle_id, r.km
              FROM customers_mileagereading r
             WHERE r.tenant_id = %s AND r.vehicle_id IN (SELECT id FROM touched WHERE id IS NOT NULL)
             ORDER BY r.vehicle_id, r.read_on DESC, r.km DESC
        )
        UPDATE customers_vehicle v SET mileage_km = latest.km FROM latest
         WHERE v.tenant_id = %s AND v.id = latest.vehicle_id AND v.mileage_km IS DISTINCT FROM latest.km
        """,
        [tenant, tenant],
    )
    refreshed = customers_refresh_last_visit_from(
        touched_sql=f"SELECT s.customer_id FROM {t} s WHERE s.is_new OR s.changed "
        f"UNION SELECT s.old_customer_id FROM {t} s WHERE s.changed AND s.old_customer_id IS NOT NULL",
        ctx=ctx,
    )
    return {
        "created": created,
        "updated": updated,
        "unchanged": matched - updated,
        "mileage_readings": readings,
        "last_visits_changed": refreshed,
    }


def customers_refresh_last_visit_from(*, touched_sql: str, ctx: _Context) -> int:
    """The customers' rule (customers.records.customers_refresh_last_visit_where) for the ids
    `touched_sql` selects from the staged rows. Returns rows changed."""
    return customers_refresh_last_visit_where(touched_sql=touched_sql)


UPSERTS: dict[str, Callable[[_Stage, _Context], dict[str, int]]] = {
    ImportJob.Kind.CUSTOMERS: _upsert_customers,
    ImportJob.Kind.VEHICLES: _upsert_vehicles,
    ImportJob.Kind.ORDERS: _upsert_orders,
}


def _write_rows(job: ImportJob) -> tuple[dict[str, int], ScanResult]:
    """Scan again, COPY the valid rows into the stage, upsert. Raises when the file has errors now,
    unless the user chose to skip the rows with errors (`skip_invalid`) and none is the file's own."""
    tenant = Tenant.objects.get(pk=require_tenant_id())
    now = timezone.now()
    committed_by = get_user_model().objects.filter(pk=job.mapping.get("committed_by")).first() or job.created_by
    ctx = _Context(
        tenant_id=tenant.pk,
        today=now.astimezone(tenant.zone).date(),
        now=now,
        zone=tenant.time_zone,
        job_id=job.pk,
        actor_id=committed_by.pk,
        mapped=frozenset(job.mapping.get("fields") or ()),
    )
    spec = import_kind(job.kind)
    stage = _Stage(spec, job.pk)
    stage.create()
    result = _run_scan(job, sink=stage.copy)  # only rows without errors reach the stage
    skip_invalid = bool(job.mapping.get("skip_invalid"))
    if result.errors.count and (not skip_invalid or file_level_errors(result)):
        raise _FileNoLongerValid(result)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {stage.table}")
    counts = UPSERTS[job.kind](stage, ctx)
    stage.drop()
    # Data-quality scores of imported records are computed by the nightly step (or "Recompute
    # now"): a whole-dealership rescore inside this long transaction would hold it far longer.
    counts["rows"] = result.total_rows
    if skip_invalid:
        counts["skipped_rows"] = len(result.errors.rows)
    request = job.mapping.get("request") or {}
    audit_record(
        action=AuditAction.CUSTOMERS_IMPORTED,
        actor=committed_by,
        target=job,
        summary=_("%(file)s: %(created)d new, %(updated)d updated, %(unchanged)d unchanged")
        % {"file": job.original_name, **counts},
        data={"kind": job.kind, "job": job.pk, "file": job.original_name, **counts},
        meta=RequestMeta(ip_address=request.get("ip_address"), user_agent=request.get("user_agent") or ""),
    )
    return counts, result
