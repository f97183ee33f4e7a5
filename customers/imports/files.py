"""Uploaded files: what may be uploaded, and reading a CSV or XLSX file as a stream of rows.

CSV text may be UTF-8 (with or without BOM), UTF-16 or GB18030, detected from a sample, with commas,
tabs or semicolons; an XLSX is read in openpyxl's read-only mode. Neither is held in memory whole.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import zipfile
from collections.abc import Iterator
from pathlib import PurePath
from typing import IO, Any

from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from openpyxl import load_workbook

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# An XLSX is a zip: refuse archives that would inflate beyond this (zip bombs).
MAX_XLSX_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024
ALLOWED_EXTENSIONS = (".csv", ".xlsx")
_SNIFF_BYTES = 64 * 1024


class ImportFileError(Exception):
    """The file as a whole cannot be read (wrong format, encoding, broken archive)."""

    def __init__(self, message: str, *, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 (Excel's 'Unicode text'), else GB18030 (Chinese Excel)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


MIXED_ENCODING_SHOWN_LINES = 5  # line numbers of each kind named in the message


def _line_list(numbers: list[int], total: int) -> str:
    shown = ", ".join(str(n) for n in numbers)
    if total > len(numbers):
        return _("%(lines)s and %(more)d more") % {"lines": shown, "more": total - len(numbers)}
    return shown


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _EncodingCensus:
    """Which lines of a CSV file are UTF-8 text with a 3- or 4-byte character (Chinese, a BOM), and
    which are not UTF-8 at all (GBK/GB18030, as Chinese Excel saves). A file with both mixes
    encodings: whichever single encoding it is read in, part of it is garbled. Lines are counted
    from 1 like the rows the user sees (a line break inside a quoted cell counts as a line).
    UTF-16 files are not checked."""

    def __init__(self) -> None:
        self.line = 0  # lines before the pending bytes
        self.pending = b""
        self.utf8_lines: list[int] = []
        self.utf8_count = 0
        self.other_lines: list[int] = []
        self.other_count = 0

    def feed(self, chunk: bytes) -> None:
        data = self.pending + chunk
        end = data.rfind(b"\n") + 1
        self.pending = data[end:]
        self._classify(data[:end])

    def close(self) -> None:
        self._classify(self.pending)
        self.pending = b""

    def _classify(self, block: bytes) -> None:
        if not block:
            return
        if block.isascii() or (self.utf8_count > MIXED_ENCODING_SHOWN_LINES and _is_utf8(block)):
            # nothing to learn: ASCII, or UTF-8 once enough UTF-8 lines are known (the fast path)
            self.line += block.count(b"\n")
            return
        pieces = block.split(b"\n")
        if block.endswith(b"\n"):
            pieces.pop()  # the empty piece after the last line break
        for text in pieces:
            self.line += 1
            if text.isascii():
                continue
            if _is_utf8(text):
                if max(text) < 0xE0:
                    continue  # only 2-byte sequences: as likely a GBK pair that happens to be valid UTF-8
                self.utf8_count += 1
                if len(self.utf8_lines) < MIXED_ENCODING_SHOWN_LINES:
                    self.utf8_lines.append(self.line)
            else:
                self.other_count += 1
                if len(self.other_lines) < MIXED_ENCODING_SHOWN_LINES:
                    self.other_lines.append(self.line)

    def raise_if_mixed(self) -> None:
        if not (self.utf8_lines and self.other_lines):
            return
        raise ImportFileError(
            _(
                "This file mixes two text encodings, so part of it would be garbled whichever one it is "
                "read in. UTF-8 text on line %(utf8)s; text that is not UTF-8 (probably GBK, as Chinese "
                "Excel saves) on line %(other)s. Save the whole file again in one encoding (CSV UTF-8) "
                "and upload it again."
            )
            % {
                "utf8": ", ".join(str(n) for n in self.utf8_lines)
                + ("…" if self.utf8_count > len(self.utf8_lines) else ""),
                "other": _line_list(self.other_lines, self.other_count),
            },
            row=self.other_lines[0],
        )


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


RowStream = Iterator[tuple[int, list[Any]]]


class SheetReader:
    """Streams `(row_number, cells)` from a CSV or XLSX file; row 1 is the file's first line.

    Use as a context manager. Nothing is read up front beyond a small sample (CSV) or the
    workbook's index and shared strings (XLSX, `openpyxl` read-only mode); `rows()` is lazy.
    `estimated_rows` is a cheap estimate for the progress bar (None when unknown).
    """

    def __init__(self, stream: IO[bytes], *, filename: str) -> None:
        self.stream = stream
        self.extension = PurePath(filename).suffix.lower()
        if self.extension not in ALLOWED_EXTENSIONS:
            raise ImportFileError(_("Only .csv and .xlsx files can be imported."))
        self.estimated_rows: int | None = None
        self._workbook: Any = None
        self._text: io.TextIOWrapper | None = None

    def __enter__(self) -> SheetReader:
        if self.extension == ".xlsx":
            self._open_xlsx()
        else:
            self._open_csv()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._workbook is not None:
            self._workbook.close()
        if self._text is not None:
            self._text.detach()  # the caller owns (and closes) the binary stream

    def _open_xlsx(self) -> None:
        try:
            self._workbook = load_workbook(self.stream, read_only=True, data_only=True)
            sheet = self._workbook.worksheets[0]
        except Exception as error:  # noqa: BLE001 - openpyxl raises many types for a broken file
            logger.info("unreadable xlsx: %r", error)
            raise ImportFileError(_("This is not an Excel workbook (.xlsx) that can be read.")) from None
        self.estimated_rows = sheet.max_row if isinstance(sheet.max_row, int) and sheet.max_row > 1 else None
        sheet.reset_dimensions()  # DMS exports often declare wrong dimensions; read every row there is
        self._sheet = sheet

    def _open_csv(self) -> None:
        sample = self.stream.read(_SNIFF_BYTES)
        self.stream.seek(0)
        if b"\x00" in sample and not sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise ImportFileError(_("This is not a CSV text file."))
        self.encoding = detect_encoding(sample)
        # one fast pass over the bytes, never the whole file at once: line breaks for the progress
        # bar, and whether some lines are UTF-8 and others not (a UTF-8 header over GBK rows)
        census = _EncodingCensus() if self.encoding != "utf-16" else None
        lines = 0
        while chunk := self.stream.read(1024 * 1024):
            lines += chunk.count(b"\n")
            if census is not None:
                census.feed(chunk)
        self.stream.seek(0)
        if census is not None:
            census.close()
            census.raise_if_mixed()
        self.estimated_rows = lines or None
        self._text = io.TextIOWrapper(self.stream, encoding=self.encoding, newline="")
        first_line = sample.decode(self.encoding, errors="ignore").splitlines()[:1]
        self.delimiter = _delimiter(first_line[0] if first_line else "")

    def rows(self) -> RowStream:
        if self._workbook is not None:
            yield from self._xlsx_rows()
        else:
            yield from self._csv_rows()

    def _xlsx_rows(self) -> RowStream:
        number = 0
        try:
            for number, values in enumerate(self._sheet.iter_rows(values_only=True), start=1):
                yield number, list(values)
        except Exception as error:  # noqa: BLE001 - a damaged archive or XML fails in many ways
            logger.info("broken xlsx at row %s: %r", number + 1, error)
            raise ImportFileError(_("The workbook is damaged and cannot be read to the end."), row=number + 1) from None

    def _csv_rows(self) -> RowStream:
        assert self._text is not None
        reader = csv.reader(self._text, delimiter=self.delimiter)
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise ImportFileError(
                    _("The file is not UTF-8 or GB18030 text; save it again as CSV (UTF-8)."), row=number + 1
                ) from None
            except csv.Error as error:
                raise ImportFileError(
                    _("This line cannot be read as CSV: %(error)s") % {"error": error}, row=number + 1
                ) from None
            number += 1
            yield number, cells


def upload_problems(upload: UploadedFile) -> list[str]:
    """Why an uploaded file cannot be imported (empty list: it can)."""
    name = upload.name or ""
    extension = PurePath(name).suffix.lower()
    if extension not in ALLOWED_EXTENSIONS:
        return [_("Only .csv and .xlsx files can be imported.")]
    size = upload.size or 0
    if size > MAX_UPLOAD_BYTES:
        return [_("The file is larger than %(mb)d MB.") % {"mb": MAX_UPLOAD_BYTES // (1024 * 1024)}]
    if size == 0:
        return [_("The file is empty.")]
    upload.seek(0)
    head = upload.read(_SNIFF_BYTES)
    upload.seek(0)
    is_zip = head.startswith(b"PK\x03\x04")
    if extension == ".xlsx":
        if not is_zip:
            return [_("This is not an Excel workbook (.xlsx). Older .xls files must be saved as .xlsx first.")]
        try:
            with zipfile.ZipFile(upload) as archive:
                names = set(archive.namelist())
                inflated = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return [_("This Excel workbook is damaged.")]
        finally:
            upload.seek(0)
        if "xl/workbook.xml" not in names:
            return [_("This is not an Excel workbook (.xlsx).")]
        if inflated > MAX_XLSX_UNCOMPRESSED_BYTES:
            return [_("This workbook is too large once unpacked.")]
        return []
    if is_zip or head.startswith(b"\xd0\xcf\x11\xe0"):  # a zip or an old binary .xls, renamed
        return [_("This is a spreadsheet, not a CSV text file; upload it with the .xlsx extension.")]
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return [_("This is not a CSV text file.")]
    return []
