"""A period of report pages and figures APIs: whole days in the dealership's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any


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
