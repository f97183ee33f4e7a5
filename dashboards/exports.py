"""XLSX downloads of the dashboard: every table of the page (one sheet each), and a drill-down's
customers (masked as on screen, audited like the customer list's export)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from typing import IO, Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from crm.tenancy.models import Membership
from customers.models import Customer
from customers.selectors import customer_masked_value

DRILL_LIMIT = 100_000  # rows in one download


def _workbook(sheets: Iterable[tuple[str, list[str], Iterable[list[Any]]]]) -> IO[bytes]:
    workbook = Workbook(write_only=True)
    for title, headers, rows in sheets:
        sheet = workbook.create_sheet(title=title[:31])

        def cell(value: Any, sheet: Any = sheet) -> Any:
            if value is None:
                return ""
            if not isinstance(value, str):
                return value
            text = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", value))
            text.data_type = "s"  # a string stays a string, even one starting with "="
            return text

        sheet.append(headers)
        for row in rows:
            sheet.append([cell(v) for v in row])
    handle = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - FileResponse closes it
    workbook.save(handle)
    handle.seek(0)
    return handle


def figures_workbook(tables: list[dict[str, Any]]) -> IO[bytes]:
    """`tables` as the page shows them: [{"title", "headers", "rows"}]."""
    return _workbook((t["title"], t["headers"], t["rows"]) for t in tables)


def drill_workbook(*, viewer: Membership, customers: QuerySet[Customer]) -> IO[bytes]:
    headers = [_("Customer no."), _("Name"), _("Mobile"), _("Owner"), _("Lifecycle stage"), _("Last visit")]

    def rows() -> Iterable[list[Any]]:
        for customer in customers.select_related("owner__user")[:DRILL_LIMIT].iterator(chunk_size=2000):
            yield [
                customer.pk,
                customer.name,
                customer_masked_value(viewer=viewer, customer=customer, field="mobile"),
                customer.owner.display_name if customer.owner else "",
                customer.get_lifecycle_stage_display(),
                customer.last_visit_on,
            ]

    return _workbook([(_("Customers"), headers, rows())])
