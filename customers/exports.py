"""Export of a filtered customer list to CSV or XLSX, with the viewer's masking and an audit entry.

The rows are the same ones the customer list shows the viewer (`customer_list` with the list's
filters); mobile numbers and ID numbers go through `customer_masked_value`, exactly as on screen.
"""

from __future__ import annotations

import csv
import io
import tempfile
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import IO, Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from crm.core.errors import ApplicationError, NotAllowed
from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.models import AuditAction, Membership
from customers.models import Customer, LifecycleStage, ListFlag, RelationshipClass
from customers.selectors import CONSENT_FIELDS, SORTS, CustomerFilters, customer_list, customer_masked_value

CSV, XLSX = "csv", "xlsx"
EXPORT_FORMATS = (CSV, XLSX)
ITERATOR_CHUNK = 2000
MASKED_FIELDS = ("mobile", "mobile_secondary", "id_number")


def _one(params: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = params.get(name)
        if value:
            return str(value).strip()
    return ""


def export_params(params: Mapping[str, Any]) -> tuple[str, CustomerFilters]:
    """The export format and the list filters from query parameters; ApplicationError (with
    `fields`) for anything out of range. Parameters that are not filters are ignored."""
    errors: dict[str, list[str]] = {}
    export_format = _one(params, "format") or CSV
    if export_format not in EXPORT_FORMATS:
        errors["format"] = [_("Choose csv or xlsx.")]

    def choice(names: tuple[str, ...], allowed: list[str]) -> str:
        value = _one(params, *names)
        if value and value not in allowed:
            errors[names[0]] = [_("%(value)s is not one of the choices.") % {"value": value[:40]}]
            return ""
        return value

    stage = choice(("lifecycle_stage", "stage"), list(LifecycleStage.values))
    relationship = choice(("relationship_class",), list(RelationshipClass.values))
    list_flag = choice(("list_flag",), [v for v in ListFlag.values if v])
    consent = choice(("consent",), list(CONSENT_FIELDS))
    sort = choice(("sort",), list(SORTS)) or "newest"

    owner: int | None = None
    raw_owner = _one(params, "owner")
    if raw_owner:
        if raw_owner.isdigit() and 0 < int(raw_owner) < 2**63:
            owner = int(raw_owner)
        else:
            errors["owner"] = [_("Not a staff member.")]

    tag = _one(params, "tag")
    if len(tag) > 30:
        errors["tag"] = [_("At most 30 characters.")]

    def day(name: str) -> date | None:
        value = _one(params, name)
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            errors[name] = [_("Write the date as 2026-01-31.")]
            return None

    visit_from, visit_to = day("last_visit_from"), day("last_visit_to")
    if visit_from and visit_to and visit_from > visit_to:
        errors["last_visit_to"] = [_("Must not be before the start date.")]
    if errors:
        raise ApplicationError(_("Some filters of the export are not valid."), fields=errors)
    return export_format, CustomerFilters(
        q=_one(params, "q")[:100],
        lifecycle_stage=stage,
        relationship_class=relationship,
        owner=owner,
        tag=tag,
        list_flag=list_flag,
        consent=consent,
        last_visit_from=visit_from,
        last_visit_to=visit_to,
        sort=sort,
    )


def masked_search(query: str) -> str:
    """The search text as the audit log keeps it: it may be a mobile or ID number, which the log's
    readers could otherwise not see, so only its first character and its length are kept."""
    return query[:1] + "*" * (len(query) - 1)


@dataclass(frozen=True)
class CustomerExport:
    """What one export will write: the viewer's rows, counted and audited before the first byte."""

    viewer: Membership
    customers: QuerySet[Customer]
    count: int
    language: str
    zone: zoneinfo.ZoneInfo


@transaction.atomic
def customers_export(
    *, viewer: Membership, filters: CustomerFilters, export_format: str, meta: RequestMeta | None = None
) -> CustomerExport:
    """Start an export of the customers the viewer sees through `filters`; records it in the audit log."""
    if not viewer.can("customers.export"):
        raise NotAllowed(_("Your role may not export customer lists."))
    customers = customer_list(viewer=viewer, filters=filters)
    count = customers.count()
    used = {
        k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(filters).items() if v not in ("", None, ())
    }
    if "q" in used:
        used["q"] = masked_search(filters.q)
    audit_record(
        action=AuditAction.CUSTOMERS_EXPORTED,
        actor=viewer.user,
        summary=f"{count} · {export_format}",
        data={"count": count, "format": export_format, "filters": used},
        meta=meta,
    )
    return CustomerExport(
        viewer=viewer,
        customers=customers,
        count=count,
        language=translation.get_language() or "zh-hans",
        zone=viewer.tenant.zone,
    )


def export_headers() -> list[str]:
    # The same names the import recognises, so an exported file can be mapped back in.
    return [
        _("DMS id"),
        _("Name"),
        _("Mobile"),
        _("Second mobile"),
        _("Gender"),
        _("Birthday"),
        _("ID number"),
        _("Province"),
        _("City"),
        _("District"),
        _("Address"),
        _("Source"),
        _("Lifecycle stage"),
        _("Relationship class"),
        _("Red/black list"),
        _("Owner"),
        _("Tags"),
        _("Last visit"),
        _("Created"),
    ]


def _row(export: CustomerExport, customer: Customer) -> list[Any]:
    masked = {
        name: customer_masked_value(viewer=export.viewer, customer=customer, field=name) for name in MASKED_FIELDS
    }
    return [
        customer.external_id,
        customer.name,
        masked["mobile"],
        masked["mobile_secondary"],
        customer.get_gender_display() if customer.gender else "",
        customer.birthday,
        masked["id_number"],
        customer.province,
        customer.city,
        customer.district,
        customer.address,
        customer.get_source_display(),
        customer.get_lifecycle_stage_display(),
        customer.get_relationship_class_display(),
        customer.get_list_flag_display() if customer.list_flag else "",
        customer.owner.display_name if customer.owner else "",
        "、".join(customer.tags),
        customer.last_visit_on,
        timezone.localtime(customer.created_at, export.zone).replace(tzinfo=None, microsecond=0),
    ]


def _rows(export: CustomerExport) -> Iterator[list[Any]]:
    with translation.override(export.language):
        for customer in export.customers.iterator(chunk_size=ITERATOR_CHUNK):
            yield _row(export, customer)


_FORMULA_START = ("=", "@", "\t", "\r")


def _safe_text(value: str) -> str:
    """Keep spreadsheet programs from running a cell as a formula (CSV injection)."""
    if value.startswith(_FORMULA_START) or (value[:1] in ("+", "-") and not value[1:].replace(" ", "").isdigit()):
        return "'" + value
    return value


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return _safe_text(str(value))


def export_csv_chunks(*, export: CustomerExport) -> Iterator[str]:
    """UTF-8 with a BOM (so Excel shows Chinese), a few hundred rows per chunk. Reads the database:
    run it inside `stream_in_tenant`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    with translation.override(export.language):
        writer.writerow(export_headers())
    yield "\ufeff" + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    for number, row in enumerate(_rows(export), start=1):
        writer.writerow([_csv_value(v) for v in row])
        if number % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def export_xlsx_file(*, export: CustomerExport) -> IO[bytes]:
    """Write the workbook (openpyxl write-only, rows streamed to disk) and return it open at the start.

    An anonymous temporary file: it disappears when the response closes it.
    """
    workbook = Workbook(write_only=True)
    with translation.override(export.language):
        sheet = workbook.create_sheet(title=_("Customers"))
        sheet.append(export_headers())

    def cell(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", value))
        text.data_type = "s"  # a string is a string, even if it starts with "="
        return text

    for row in _rows(export):
        sheet.append([cell(v) for v in row])
    handle = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - handed to FileResponse, which closes it
    workbook.save(handle)
    handle.seek(0)
    return handle
