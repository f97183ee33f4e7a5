"""The dates of the holidays care greetings go out on.

New Year's Day (1 January) and National Day (1 October) are fixed. Spring Festival (lunar 1/1),
the Dragon Boat Festival (lunar 5/5) and the Mid-Autumn Festival (lunar 8/15) follow the Chinese
lunar calendar: their Gregorian date in a year is the one of that lunar date in the lunar year that
starts in that Gregorian year, computed by the lunar-python package (any year, no table to extend).
When two occasions fall on the same day (Mid-Autumn on 1 October, as in 2020 and 2031), the fixed
holiday's greeting goes out and the lunar one is skipped that year.
"""

from __future__ import annotations

import functools
from datetime import date

from lunar_python import Lunar

# occasion (a CareTemplate.Occasion value) → (lunar month, lunar day); never a leap month
LUNAR_HOLIDAYS: dict[str, tuple[int, int]] = {
    "spring_festival": (1, 1),
    "dragon_boat": (5, 5),
    "mid_autumn": (8, 15),
}
FIXED_HOLIDAYS = {"new_year": (1, 1), "national_day": (10, 1)}


@functools.cache
def lunar_holiday(occasion: str, year: int) -> date:
    """The Gregorian date of a lunar holiday in `year`."""
    month, day = LUNAR_HOLIDAYS[occasion]
    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def _holidays_of(year: int) -> list[tuple[date, str]]:
    """Every greeting day of `year` in date order, one occasion per day (the fixed one first)."""
    days: dict[date, str] = {date(year, m, d): occasion for occasion, (m, d) in FIXED_HOLIDAYS.items()}
    for occasion in LUNAR_HOLIDAYS:
        days.setdefault(lunar_holiday(occasion, year), occasion)
    return sorted(days.items())


def holiday_on(day: date) -> str | None:
    """The occasion (a CareTemplate.Occasion value) whose greeting goes out on `day`, if any."""
    return dict(_holidays_of(day.year)).get(day)


def next_holiday(after: date) -> tuple[str, date] | None:
    """The next holiday on or after `after` (for the care page)."""
    for day, occasion in _holidays_of(after.year) + _holidays_of(after.year + 1):
        if day >= after:
            return occasion, day
    return None
