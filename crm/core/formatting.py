"""How numbers and money are written for people, in every page, e-mail and export cell that
shows them as text (docs/ui.md, "Numbers and money"). The template filters `number` and `money`
(crm/core/templatetags/ui.py) call these; Python code that builds a sentence calls them too.

- `number(value, places=0)`: rounded half-up to `places` decimals, thousands grouped with ","
  (1234567 → "1,234,567"; number(1234.5, 1) → "1,234.5").
- `money(value)`: CNY with two decimals, half-up, grouped, the sign before the currency sign
  (Decimal("1234.5") → "¥1,234.50"; -12 → "-¥12.00").
- None and "" are written "—"; anything that is not a number is returned unchanged.
Both languages group digits the same way, so the result does not depend on the active language.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

EMPTY = "—"


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int | float | str):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _grouped(value: Decimal, places: int) -> str:
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{abs(rounded):,.{places}f}"
    return f"-{text}" if rounded < 0 else text


def number(value: Any, places: int = 0) -> str:
    if value is None or value == "":
        return EMPTY
    decimal = _decimal(value)
    if decimal is None:
        return str(value)
    return _grouped(decimal, max(0, int(places)))


def money(value: Any) -> str:
    if value is None or value == "":
        return EMPTY
    decimal = _decimal(value)
    if decimal is None:
        return str(value)
    text = _grouped(decimal, 2)
    return f"-¥{text[1:]}" if text.startswith("-") else f"¥{text}"
