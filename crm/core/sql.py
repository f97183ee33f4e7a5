"""Small helpers for the set-based SQL the selectors and engines run on a Django cursor."""

from __future__ import annotations

from typing import Any


def fetch_dict(cursor: Any) -> dict[str, Any]:
    """The cursor's next row as {column: value}."""
    columns = [c.name for c in cursor.description]
    return dict(zip(columns, cursor.fetchone(), strict=True))


def fetch_dicts(cursor: Any) -> list[dict[str, Any]]:
    """The cursor's remaining rows as [{column: value}]."""
    columns = [c.name for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
