"""Header row and column mapping: which row holds the headers, and which column holds each field.

Header texts are matched with the aliases of each kind's fields (`kinds`), Chinese or English; the
user can change the mapping afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from django.utils.translation import gettext as _
from openpyxl.utils import get_column_letter

from customers.imports.cells import cell_text
from customers.imports.files import ImportFileError, RowStream
from customers.imports.kinds import import_kind

HEADER_SEARCH_ROWS = 10  # a title line or two above the header row is common in DMS exports

_BRACKETED = re.compile(r"[（(【\[].*?[）)】\]]")


def header_key(text: str) -> str:
    """Header text as compared with aliases: '客户姓名（必填）*' → '客户姓名', 'Mobile Phone' → 'mobilephone'."""
    text = _BRACKETED.sub("", cell_text(text).lower())
    return re.sub(r"[\s*:：_\-]", "", text)


@cache
def _alias_index(kind: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for spec_field in import_kind(kind).fields:
        for alias in (*spec_field.aliases, spec_field.name):
            index.setdefault(header_key(alias), spec_field.name)
    return index


def auto_mapping(*, kind: str, headers: Sequence[str]) -> dict[str, int]:
    """Target field → column index, from the header texts. The first column that matches wins."""
    index = _alias_index(kind)
    mapping: dict[str, int] = {}
    for position, header in enumerate(headers):
        name = index.get(header_key(header))
        if name is not None and name not in mapping:
            mapping[name] = position
    return mapping


def column_label(headers: Sequence[str], index: int) -> str:
    """What the user calls a column: its header text, or 'Column C' when the header cell is empty."""
    text = headers[index] if index < len(headers) else ""
    return text or _("Column %(letter)s") % {"letter": get_column_letter(index + 1)}


def mapping_problems(*, kind: str, headers: Sequence[str], fields: Mapping[str, int]) -> dict[str, list[str]]:
    """Field → messages for a mapping the user chose (or that was detected)."""
    spec = import_kind(kind)
    problems: dict[str, list[str]] = {}
    used: dict[int, str] = {}
    known = {f.name for f in spec.fields}
    for name, index in fields.items():
        if name not in known:
            problems.setdefault(name, []).append(_("Not a field of this kind of file."))
        elif not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(headers):
            problems.setdefault(name, []).append(_("Choose one of the file's columns."))
        elif index in used:
            problems.setdefault(name, []).append(_("That column is already used for another field."))
        else:
            used[index] = name
    for required in spec.required:
        if required.name not in fields:
            problems.setdefault(required.name, []).append(_("Required: choose the column that holds it."))
    return problems


def _locate_header(
    rows: RowStream, *, kind: str, header_row: int | None
) -> tuple[int, list[str], list[tuple[int, list[Any]]]]:
    """Find the header row: the known one, else the first of the first rows that names two known
    fields, else the first non-empty row. Returns it with the data rows read past it."""
    buffered: list[tuple[int, list[Any]]] = []
    for number, cells in rows:
        if header_row is not None:
            if number == header_row:
                return number, [cell_text(c) for c in cells], []
            continue
        if any(cell_text(c) for c in cells):
            buffered.append((number, cells))
            if len(buffered) >= HEADER_SEARCH_ROWS:
                break
    if not buffered:
        raise ImportFileError(_("The file is empty: there is no header row."))
    chosen = next(
        (item for item in buffered if len(auto_mapping(kind=kind, headers=[cell_text(c) for c in item[1]])) >= 2),
        buffered[0],
    )
    number, cells = chosen
    return number, [cell_text(c) for c in cells], [item for item in buffered if item[0] > number]
