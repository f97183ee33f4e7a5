"""Import of customers, vehicles and orders from DMS files (CSV or XLSX).

The life of an `ImportJob`:

1. **Upload** (`import_job_create`): the file is checked (size, extension, content) and stored;
   validation is queued.
2. **Validate** (`import_validate`, a task): the file is streamed row by row. The header row is
   found and mapped to fields by known Chinese and English aliases (the user can change the
   mapping afterwards, `import_job_set_mapping`). Every row is normalised and validated with the
   project's validators; duplicates inside the file and references (customer DMS ids, VINs) are
   checked set-based, one chunk of rows at a time. Errors are kept as `{row, column, message}`
   with `row` the line number the user sees in Excel (header = 1). Nothing but the job is written.
3. **Commit** (`import_commit`, a task, after `import_job_request_commit`): the same scan runs
   again inside ONE transaction; valid rows are COPYed into a TEMP staging table and written with
   set-based SQL (update what differs, insert what is new). If the file no longer validates, or
   anything fails, the transaction is rolled back and nothing is written. When the user chose to
   skip the rows with errors (`skip_invalid`), only the valid rows are staged and written, in the
   same single transaction, and the skipped ones stay listed on the job.

Upserts are keyed by DMS id (customers, orders) or VIN (vehicles), so importing the same file twice
changes nothing the second time. A blank cell never erases a stored value: only non-blank cells
are written. The scans never hold the whole file in memory; progress (`processed_rows`) is written
on a separate database connection so the progress bar moves while the long transaction is open.

Both tenancy locks hold for everything here: reads go through the tenant-scoped managers, and the
raw SQL runs under row-level security with an explicit `tenant_id` filter in every statement. Ids
written into foreign keys all come from those tenant-scoped reads, never from the file.

The package, one topic a module (each imports only modules listed before it):

- `cells`: cell values turned into the stored form (dates, amounts, mobiles, VINs, choices).
- `kinds`: what each kind of file holds (fields, parsers, header aliases).
- `files`: what may be uploaded; CSV (encodings, delimiters) and XLSX read as streams of rows.
- `mapping`: the header row and which column holds each field.
- `reports`: a scan's errors and findings, and how they are kept on the job.
- `progress`: progress written on a connection of its own while a pass runs.
- `validation`: the scan: rows parsed, validated and matched to existing records.
- `commit`: the all-or-nothing write: staging table, COPY, set-based upserts.
- `jobs`: the job's lifecycle: upload, mapping, commit request, and the two passes.
- `downloads`: the template workbook per kind, and a job's error report (CSV).

customers.tasks runs the passes and imports this package, never the reverse: `jobs` queues the tasks
by their names. Code outside the package imports the names below from `customers.imports`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from customers.imports.cells import parse_amount, parse_date, parse_km, parse_mobile
from customers.imports.commit import customers_refresh_last_visit_from
from customers.imports.downloads import import_error_report_csv, import_error_report_rows, import_template_xlsx
from customers.imports.files import MAX_UPLOAD_BYTES, SheetReader
from customers.imports.jobs import (
    IMPORT_COMMIT_TASK,
    IMPORT_VALIDATE_TASK,
    import_commit,
    import_job_create,
    import_job_request_commit,
    import_job_set_mapping,
    import_jobs_visible_to,
    import_validate,
)
from customers.imports.kinds import import_kind
from customers.imports.mapping import auto_mapping, column_label
from customers.imports.progress import PROGRESS_EVERY_ROWS, PROGRESS_MIN_SECONDS, _Progress
from customers.imports.reports import job_has_file_level_errors
from customers.imports.validation import CHUNK_ROWS, _Scanner

# What code outside the package uses: the pages and the tasks, and also the tests (the parsers, the
# reader, ValidationError, and what they replace or tune: _Scanner, _Progress, the limits).
__all__ = [
    "CHUNK_ROWS",
    "IMPORT_COMMIT_TASK",
    "IMPORT_VALIDATE_TASK",
    "MAX_UPLOAD_BYTES",
    "PROGRESS_EVERY_ROWS",
    "PROGRESS_MIN_SECONDS",
    "SheetReader",
    "ValidationError",
    "_Progress",
    "_Scanner",
    "auto_mapping",
    "column_label",
    "customers_refresh_last_visit_from",
    "import_commit",
    "import_error_report_csv",
    "import_error_report_rows",
    "import_job_create",
    "import_job_request_commit",
    "import_job_set_mapping",
    "import_jobs_visible_to",
    "import_kind",
    "import_template_xlsx",
    "import_validate",
    "job_has_file_level_errors",
    "parse_amount",
    "parse_date",
    "parse_km",
    "parse_mobile",
]
