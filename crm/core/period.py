"""A period of report pages and figures APIs: whole days in the dealership's time zone.

Every period a person or a client gives is checked by `period_errors` (through DateRangeForm and
DateRangeQuerySerializer, the only two parsers): both days between 2000-01-01 and 2099-12-31, the
end not before the start. Days outside that range are refused with a field error, never computed.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)


def period_errors(start: date | None, end: date | None) -> dict[str, str]:
    """{field: message} of what is wrong with a period (start and end both included)."""
    from django.utils.translation import gettext as _

    errors: dict[str, str] = {}
    for name, day in (("start", start), ("end", end)):
        if day is not None and not (EARLIEST <= day <= LATEST):
            errors[name] = _("Choose a date between 2000 and 2099.")
    if not errors and start is not None and end is not None and start > end:
        errors["end"] = _("The end is before the start.")
    return errors


def month_ends_before(day: date, months: int) -> list[date]:
    """The last days of the `months` months before `day`'s month, oldest first."""
    ends: list[date] = []
    year, month = day.year, day.month
    for _ in range(months):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        ends.append(date(year, month, calendar.monthrange(year, month)[1]))
    return sorted(ends)


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def bounds(self, zone: Any) -> tuple[datetime, datetime]:
        """[start of the first day, start of the day after the last) as aware datetimes in `zone`."""
        return (
            datetime.combine(self.start, datetime.min.time(), tzinfo=zone),
            datetime.combine(self.end + timedelta(days=1), datetime.min.time(), tzinfo=zone),
        )
