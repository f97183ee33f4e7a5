"""The dates of the holidays care greetings go out on.

New Year's Day and National Day are fixed; Spring Festival, the Dragon Boat Festival and the
Mid-Autumn Festival follow the lunar calendar, so their Gregorian dates are listed per year.
Years not listed send no lunar-holiday greeting (extend the table before they come).
"""

from __future__ import annotations

from datetime import date

LUNAR_HOLIDAYS: dict[str, dict[int, date]] = {
    "spring_festival": {
        2024: date(2024, 2, 10),
        2025: date(2025, 1, 29),
        2026: date(2026, 2, 17),
        2027: date(2027, 2, 6),
        2028: date(2028, 1, 26),
        2029: date(2029, 2, 13),
        2030: date(2030, 2, 3),
    },
    "dragon_boat": {
        2024: date(2024, 6, 10),
        2025: date(2025, 5, 31),
        2026: date(2026, 6, 19),
        2027: date(2027, 6, 9),
        2028: date(2028, 5, 28),
        2029: date(2029, 6, 16),
        2030: date(2030, 6, 5),
    },
    "mid_autumn": {
        2024: date(2024, 9, 17),
        2025: date(2025, 10, 6),
        2026: date(2026, 9, 25),
        2027: date(2027, 9, 15),
        2028: date(2028, 10, 3),
        2029: date(2029, 9, 22),
        2030: date(2030, 9, 12),
    },
}
FIXED_HOLIDAYS = {"new_year": (1, 1), "national_day": (10, 1)}


def holiday_on(day: date) -> str | None:
    """The occasion (a CareTemplate.Occasion value) whose greeting goes out on `day`, if any."""
    for occasion, (month, dom) in FIXED_HOLIDAYS.items():
        if (day.month, day.day) == (month, dom):
            return occasion
    for occasion, dates in LUNAR_HOLIDAYS.items():
        if dates.get(day.year) == day:
            return occasion
    return None


def next_holiday(after: date) -> tuple[str, date] | None:
    """The next holiday on or after `after` (for the care page), within the table."""
    candidates = [
        (date(year, month, dom), occasion)
        for occasion, (month, dom) in FIXED_HOLIDAYS.items()
        for year in (after.year, after.year + 1)
    ] + [(day, occasion) for occasion, dates in LUNAR_HOLIDAYS.items() for day in dates.values()]
    upcoming = sorted(c for c in candidates if c[0] >= after)
    return (upcoming[0][1], upcoming[0][0]) if upcoming else None
