"""Files to download: a template per kind of import, and a job's error report.

The template is an XLSX workbook whose first sheet holds only the header row (one column per field,
named with the field's first Chinese alias, required ones marked `*`), which the import maps back
to every field; a second sheet lists each column, whether it is required and the other names it
may have. The error report is a CSV file (UTF-8 with BOM, which Excel opens as Chinese text): the
file's header row, then every row that has an error, as the file holds it, with two columns added
in front: the row number as the spreadsheet shows it and what is wrong. It is built by checking the
file again (so it lists every error, not only the 1,000 kept on the job), then reading the file a
second time for the rows; neither pass holds the file in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO

from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from openpyxl import Workbook
from openpyxl.styles import Font

from customers.imports.cells import cell_text
from customers.imports.kinds import import_kind
from customers.imports.validation import _job_rows, _run_scan
from customers.models import ImportJob

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def template_header(field_name: str, *, kind: str) -> str:
    spec_field = import_kind(kind).field(field_name)
    return spec_field.aliases[0] + ("*" if spec_field.required else "")


def import_template_xlsx(*, kind: str) -> IO[bytes]:
    """The template workbook for one kind of import (customers, vehicles or orders)."""
    spec = import_kind(kind)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _("Data")
    sheet.append([template_header(f.name, kind=kind) for f in spec.fields])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    notes = workbook.create_sheet(_("Columns"))
    notes.append([_("Column"), _("Field"), pgettext("import template", "Required"), _("Also recognised as")])
    for cell in notes[1]:
        cell.font = Font(bold=True)
    for spec_field in spec.fields:
        notes.append(
            [
                template_header(spec_field.name, kind=kind),
                str(spec_field.label),
                _("yes") if spec_field.required else "",
                " · ".join(spec_field.aliases[1:]),
            ]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    buffer.seek(0)
    return buffer


def _safe(value: str) -> str:
    """A cell a spreadsheet program would run as a formula is kept as text (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def import_error_report_rows(*, job: ImportJob) -> Iterator[list[str]]:
    """The error report's rows: a heading, then the file's header row and every row with an error
    (file-level errors, which belong to no row, first, with an empty row number)."""
    problems: dict[int | None, list[str]] = {}

    def collect(row: int | None, column: str, message: str) -> None:
        problems.setdefault(row, []).append(f"{column}: {message}" if column else message)

    result = _run_scan(job, sink=None, on_error=collect, progress_bar=False)
    heading = [_("Row"), _("What is wrong")]
    header_row = result.header_row
    yield [*heading, *result.headers]
    if None in problems:
        yield ["", "; ".join(problems.pop(None))]
    if not problems:
        return
    last = max(number for number in problems if number is not None)
    with _job_rows(job) as reader:
        rows = reader.rows()
        try:
            for number, cells in rows:
                if number in problems and number != header_row:
                    yield [str(number), "; ".join(problems[number]), *(_safe(cell_text(c)) for c in cells)]
                elif number == header_row and number in problems:
                    yield [str(number), "; ".join(problems[number])]
                if number >= last:
                    break
        finally:
            rows.close()  # type: ignore[attr-defined]


def import_error_report_csv(*, job: ImportJob) -> Iterator[str]:
    """The error report as CSV text chunks, UTF-8 with a BOM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    for count, row in enumerate(import_error_report_rows(job=job), start=1):
        writer.writerow(row)
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
