"""A period of report pages and figures APIs: whole days in the dealership's time zone."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any


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
