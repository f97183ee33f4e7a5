"""The scan: every row parsed, validated and matched to existing records; the same code for both passes.

Duplicates inside the file and references (customer DMS ids, VINs, order numbers) are checked
set-based, one chunk of rows at a time (`_Scanner`). The validation pass scans with no sink; the
commit pass scans again with the staging table's COPY as the sink.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.translation import gettext as _

from crm.tenancy.context import require_tenant_id
from customers.imports.cells import cell_text
from customers.imports.files import ImportFileError, RowStream, SheetReader
from customers.imports.kinds import ImportKind, import_kind
from customers.imports.mapping import _locate_header, auto_mapping, column_label, mapping_problems
from customers.imports.progress import _Progress
from customers.imports.reports import ErrorSink, ScanResult, _ErrorLog
from customers.models import ImportJob, Order, Vehicle, VehicleOwnership

CHUNK_ROWS = 2000  # rows per set-based reference check and per COPY
SAMPLE_ROWS = 5  # first data rows kept on the job to help the user check the mapping


@dataclass
class _Row:
    number: int
    values: dict[str, Any]
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field name, message)

    def fail(self, name: str, message: str) -> None:
        self.errors.append((name, message))


def _messages(error: ValidationError) -> str:
    return " ".join(str(m) for m in error.messages)


def _parse_row(spec: ImportKind, fields: Mapping[str, int], number: int, cells: Sequence[Any]) -> _Row:
    row = _Row(number=number, values={})
    for spec_field in spec.fields:
        index = fields.get(spec_field.name)
        raw = cells[index] if index is not None and index < len(cells) else None
        try:
            value = spec_field.parse(raw) if index is not None else None
        except ValidationError as error:
            row.values[spec_field.name] = None
            row.fail(spec_field.name, _messages(error))
            continue
        if value is None and spec_field.required:
            row.fail(spec_field.name, _("Required."))
        row.values[spec_field.name] = value
    return row


def _customer_survivors(external_ids: Iterable[str]) -> dict[str, int]:
    """DMS id → id of the live customer it now means (a merged tombstone resolves to its survivor)."""
    wanted = sorted(set(external_ids))
    if not wanted:
        return {}
    tenant_id = require_tenant_id()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE chain(external_id, id, merged_into_id, depth) AS (
                SELECT c.external_id, c.id, c.merged_into_id, 0
                  FROM customers_customer c
                 WHERE c.tenant_id = %s AND c.external_id <> '' AND c.external_id = ANY(%s)
              UNION ALL
                SELECT chain.external_id, c.id, c.merged_into_id, chain.depth + 1
                  FROM chain JOIN customers_customer c ON c.tenant_id = %s AND c.id = chain.merged_into_id
                 WHERE chain.depth < 16
            )
            SELECT external_id, id FROM chain WHERE merged_into_id IS NULL
            """,
            [tenant_id, wanted, tenant_id],
        )
        return dict(cursor.fetchall())


class _Scanner:
    """Per-kind reference checks, run once per chunk of rows with one query per reference."""

    def __init__(self, spec: ImportKind) -> None:
        self.spec = spec
        self.seen_keys: dict[Any, int] = {}
        self.seen_targets: dict[int, int] = {}

    def check_duplicate(self, row: _Row) -> None:
        key = row.values.get(self.spec.key)
        if key is None:
            return
        first = self.seen_keys.setdefault(key, row.number)
        if first != row.number:
            row.fail(self.spec.key, _("Appears twice in this file: first in row %(row)d.") % {"row": first})

    def resolve(self, rows: list[_Row]) -> None:
        getattr(self, f"_resolve_{self.spec.kind}")(rows)

    def _resolve_customers(self, rows: list[_Row]) -> None:
        survivors = _customer_survivors(r.values["external_id"] for r in rows if r.values.get("external_id"))
        for row in rows:
            target = survivors.get(row.values.get("external_id") or "")
            row.values["target_id"] = target
            if target is None:
                continue
            first = self.seen_targets.setdefault(target, row.number)
            if first != row.number:
                row.fail(
                    "external_id",
                    _("Row %(row)d has the DMS id of the same customer (the records were merged).") % {"row": first},
                )

    def _resolve_owner(self, rows: list[_Row]) -> None:
        survivors = _customer_survivors(
            r.values["customer_external_id"] for r in rows if r.values.get("customer_external_id")
        )
        for row in rows:
            reference = row.values.get("customer_external_id")
            row.values["customer_id"] = survivors.get(reference) if reference else None
            if reference and row.values["customer_id"] is None:
                row.fail("customer_external_id", _("No customer with this DMS id."))

    def _vehicles_by_vin(self, rows: list[_Row]) -> dict[str, tuple[int, int, int | None]]:
        vins = {r.values["vin"] for r in rows if r.values.get("vin")}
        if not vins:
            return {}
        found = Vehicle.objects.filter(vin__in=vins).values_list("vin", "pk", "customer_id", "mileage_km")
        return {vin: (pk, customer_id, km) for vin, pk, customer_id, km in found}

    def _resolve_vehicles(self, rows: list[_Row]) -> None:
        self._resolve_owner(rows)
        existing = self._vehicles_by_vin(rows)
        for row in rows:
            vehicle = existing.get(row.values.get("vin") or "")
            row.values["vehicle_id"] = vehicle[0] if vehicle else None
            km = row.values.get("mileage_km")
            if vehicle and km is not None and vehicle[2] is not None and km < vehicle[2]:
                row.fail(
                    "mileage_km",
                    _("%(km)s km is less than the vehicle's recorded mileage (%(max)s km).")
                    % {"km": km, "max": vehicle[2]},
                )

    def _resolve_orders(self, rows: list[_Row]) -> None:
        self._resolve_owner(rows)
        vehicles = self._vehicles_by_vin(rows)
        # an order may name a vehicle its customer owned earlier (history before a sale or transfer)
        owned = set(
            VehicleOwnership.objects.filter(vehicle_id__in=[v[0] for v in vehicles.values()]).values_list(
                "vehicle_id", "customer_id"
            )
        )
        external_ids = {r.values["external_id"] for r in rows if r.values.get("external_id")}
        orders = dict(Order.objects.filter(external_id__in=external_ids).values_list("external_id", "pk"))
        for row in rows:
            row.values["order_id"] = orders.get(row.values.get("external_id") or "")
            vin = row.values.get("vin")
            vehicle = vehicles.get(vin) if vin else None
            row.values["vehicle_id"] = vehicle[0] if vehicle else None
            if vin and vehicle is None:
                row.fail("vin", _("No vehicle with this VIN."))
            customer_id = row.values.get("customer_id")
            if vehicle and customer_id and vehicle[1] != customer_id and (vehicle[0], customer_id) not in owned:
                row.fail("vin", _("This vehicle does not belong to this customer."))


ChunkSink = Callable[[list[_Row]], None]


def scan_rows(
    rows: RowStream,
    *,
    kind: str,
    mapping: Mapping[str, Any],
    progress: _Progress | None = None,
    sink: ChunkSink | None = None,
    on_error: ErrorSink | None = None,
) -> ScanResult:
    """Parse, validate and resolve every row. Valid rows go to `sink` one chunk at a time.

    `mapping` is the job's stored mapping: `header_row` and `fields` when known (a revalidation),
    else both are detected here. All errors, file-level ones included, end up in the result.
    """
    spec = import_kind(kind)
    result = ScanResult(errors=_ErrorLog(on_error))
    try:
        result.header_row, result.headers, pending = _locate_header(
            rows, kind=kind, header_row=mapping.get("header_row")
        )
    except ImportFileError as error:
        result.errors.add(error.row, "", error.message)
        return result
    stored_fields = mapping.get("fields")
    result.fields = (
        {k: int(v) for k, v in stored_fields.items()}
        if isinstance(stored_fields, dict)
        else auto_mapping(kind=kind, headers=result.headers)
    )
    problems = mapping_problems(kind=kind, headers=result.headers, fields=result.fields)
    if problems:
        for name, messages in problems.items():
            label = str(spec.field(name).label) if any(f.name == name for f in spec.fields) else name
            for message in messages:
                result.errors.add(result.header_row, label, message)
        # still show the first rows: they help the user choose the right columns
        with contextlib.suppress(ImportFileError):
            for _number, cells in itertools.chain(pending, rows):
                if any(cell_text(c) for c in cells):
                    result.sample.append([cell_text(c)[:60] for c in cells[: len(result.headers)]])
                    if len(result.sample) >= SAMPLE_ROWS:
                        break
        return result

    scanner = _Scanner(spec)
    chunk: list[_Row] = []

    def flush() -> None:
        scanner.resolve(chunk)
        valid = []
        for row in chunk:
            for name, message in sorted(row.errors, key=lambda error: result.fields.get(error[0], -1)):
                index = result.fields.get(name)
                column = column_label(result.headers, index) if index is not None else str(spec.field(name).label)
                result.errors.add(row.number, column, message)
            if not row.errors:
                valid.append(row)
        if sink is not None and valid:
            sink(valid)
        if progress is not None:
            progress.advance(len(chunk))
        chunk.clear()

    try:
        for number, cells in itertools.chain(pending, rows):
            if not any(cell_text(c) for c in cells):
                continue  # blank lines are skipped, but keep their numbers
            result.total_rows += 1
            if len(result.sample) < SAMPLE_ROWS:
                result.sample.append([cell_text(c)[:60] for c in cells[: len(result.headers)]])
            row = _parse_row(spec, result.fields, number, cells)
            scanner.check_duplicate(row)
            chunk.append(row)
            if len(chunk) >= CHUNK_ROWS:
                flush()
    except ImportFileError as error:
        result.errors.add(error.row, "", error.message)
        return result
    flush()
    if result.total_rows == 0:
        result.errors.add(result.header_row, "", _("The file has a header row but no data rows."))
    return result


@contextlib.contextmanager
def _job_rows(job: ImportJob) -> Iterator[SheetReader]:
    with job.file.storage.open(job.file.name, "rb") as stored:
        stream = getattr(stored, "file", stored)
        with SheetReader(stream, filename=job.file.name) as reader:
            yield reader


def _run_scan(
    job: ImportJob, *, sink: ChunkSink | None, on_error: ErrorSink | None = None, progress_bar: bool = True
) -> ScanResult:
    tenant_id = require_tenant_id()
    progress: _Progress | None = None
    try:
        with _job_rows(job) as reader:
            if progress_bar:
                total = job.total_rows or reader.estimated_rows or 0
                progress = _Progress(job_id=job.pk, tenant_id=tenant_id, total=total)
            rows = reader.rows()
            try:
                return scan_rows(
                    rows, kind=job.kind, mapping=job.mapping, progress=progress, sink=sink, on_error=on_error
                )
            finally:
                rows.close()  # type: ignore[attr-defined]
    except ImportFileError as error:
        result = ScanResult(errors=_ErrorLog(on_error))
        result.errors.add(error.row, "", error.message)
        return result
    except FileNotFoundError:
        result = ScanResult(errors=_ErrorLog(on_error))
        result.errors.add(None, "", _("The uploaded file is no longer stored; upload it again."))
        return result
    finally:
        if progress is not None:
            progress.close()
