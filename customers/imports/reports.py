"""What a scan reports: errors as `{row, column, message}` (`row` as the user sees it in Excel,
header = 1), the headers, mapping and first rows it found, and how that is kept on the job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

from customers.models import ImportJob

MAX_STORED_ERRORS = 1000


class RowError(TypedDict):
    row: int | None
    column: str
    message: str


ErrorSink = Callable[[int | None, str, str], None]  # (row, column, message), for every error


class _ErrorLog:
    def __init__(self, on_error: ErrorSink | None = None) -> None:
        self.stored: list[RowError] = []
        self.count = 0
        self.rows: set[int | None] = set()
        self.on_error = on_error
        self.file_errors = 0  # errors that name no column: the file's, not a row's

    def add(self, row: int | None, column: str, message: str) -> None:
        self.count += 1
        self.rows.add(row)
        if not column:
            self.file_errors += 1
        if len(self.stored) < MAX_STORED_ERRORS:
            self.stored.append({"row": row, "column": column, "message": message})
        if self.on_error is not None:
            self.on_error(row, column, message)


def _is_file_error(error: RowError, header_row: int | None) -> bool:
    # a row's errors always name a column; the file's (unreadable from some line on, no header row,
    # a mapping problem on the header row) name none or sit on the header row
    return not error["column"] or error["row"] in (None, header_row)


def file_level_errors(result: ScanResult) -> bool:
    """Errors of the file as a whole: no row after them can be trusted (a file that cannot be read
    from some line on was not checked past it), so skipping the bad rows is not offered."""
    return (
        result.header_row is None
        or bool(result.errors.rows & {None, result.header_row})
        or result.errors.file_errors > 0
    )


def job_has_file_level_errors(job: ImportJob) -> bool:
    header_row = job.mapping.get("header_row") if isinstance(job.mapping, dict) else None
    return header_row is None or any(_is_file_error(error, header_row) for error in job.errors)


@dataclass
class ScanResult:
    total_rows: int = 0
    errors: _ErrorLog = field(default_factory=_ErrorLog)
    headers: list[str] = field(default_factory=list)
    header_row: int | None = None
    fields: dict[str, int] = field(default_factory=dict)
    sample: list[list[str]] = field(default_factory=list)


def _store_scan(job: ImportJob, result: ScanResult) -> None:
    if result.header_row is not None:
        job.mapping = {
            **job.mapping,
            "header_row": result.header_row,
            "headers": result.headers,
            "fields": result.fields,
            "sample": result.sample,
        }
    job.total_rows = job.processed_rows = result.total_rows
    job.error_count = result.errors.count
    job.errors = list(result.errors.stored)
    job.result = {
        "invalid_rows": len(result.errors.rows),
        "valid_rows": max(result.total_rows - len(result.errors.rows - {None, result.header_row}), 0),
    }
