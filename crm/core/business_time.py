"""Business-time arithmetic: SLA clocks count only a dealership's opening hours.

A day is closed when it is one of the dealership's own closing days (Tenant.holidays), else open on
one of its own extra working days (Tenant.makeup_workdays), else closed on a public holiday of its
country, else open on a make-up working day of its country (调休: a weekend day worked), else it has
its weekday's hours (Tenant.business_hours: mon…sun → [["08:30", "12:00"], …]). Open days that are
not a normal weekday take the hours of `MAKEUP_HOURS_FROM`, Monday. A country's public holidays and
make-up days come from a maintained package (China: chinesecalendar) for the years it covers; beyond
them only the weekly hours and the dealership's own days count. Times are counted in the
dealership's own time zone, so daylight-saving changes elsewhere never shift a clock.

    calendar = BusinessCalendar.for_tenant(tenant)
    due = calendar.add(opened_at, timedelta(hours=4))    # 4 business hours later, exact
    spent = calendar.duration_between(opened_at, now)    # business time elapsed, exact
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib.metadata import version
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAKEUP_HOURS_FROM = "mon"
# Searching for opening hours gives up after this many days without any (a calendar with no hours).
MAX_CLOSED_DAYS = 366
# Countries whose public holidays ship with the product (ISO 3166-1 alpha-2 → the package).
PUBLIC_CALENDAR_PACKAGES = {"CN": "chinesecalendar"}


@dataclass(frozen=True)
class PublicCalendar:
    """A country's public holidays and make-up working days, for the years its package covers."""

    country: str
    package: str  # "chinesecalendar 1.11.0"
    holidays: frozenset[date]
    makeup_days: frozenset[date]
    first_year: int
    last_year: int

    def covers(self, year: int) -> bool:
        return self.first_year <= year <= self.last_year


def _china() -> PublicCalendar:
    """chinesecalendar's State Council arrangement: every day off of a public holiday (the weekend
    days inside a holiday week and the in-lieu weekdays included) and every make-up working day."""
    import chinese_calendar

    holidays = frozenset(chinese_calendar.holidays)
    makeup_days = frozenset(chinese_calendar.workdays)
    years = []
    for year in sorted({day.year for day in holidays}):
        try:  # the years the package itself answers for (outside them it raises NotImplementedError)
            chinese_calendar.is_holiday(date(year, 6, 1))
        except NotImplementedError:
            continue
        years.append(year)
    first, last = years[0], years[-1]
    return PublicCalendar(
        country="CN",
        package=f"chinesecalendar {version('chinesecalendar')}",
        holidays=holidays,
        makeup_days=makeup_days,
        first_year=first,
        last_year=last,
    )


@functools.cache
def public_calendar(country: str) -> PublicCalendar | None:
    """The public holidays of `country` (ISO code), or None when the product ships none for it."""
    if country == "CN":
        return _china()
    return None


class NoBusinessHours(ValueError):
    """The calendar has no opening hours at all within a year: no clock can run."""


def _parse(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class BusinessCalendar:
    zone: zoneinfo.ZoneInfo
    hours: dict[str, tuple[tuple[time, time], ...]]
    holidays: frozenset[date]  # closed: own closing days and public holidays not worked
    makeup_days: frozenset[date]  # open with Monday's hours: own extra working days, make-up days
    public: PublicCalendar | None = None

    @classmethod
    def for_tenant(cls, tenant: Any) -> BusinessCalendar:
        return cls.build(
            time_zone=tenant.time_zone,
            business_hours=tenant.business_hours,
            holidays=tenant.holidays,
            makeup_workdays=tenant.makeup_workdays,
            country=tenant.country,
        )

    @classmethod
    def build(
        cls,
        *,
        time_zone: str,
        business_hours: dict[str, list[list[str]]],
        holidays: list[str] | None = None,
        makeup_workdays: list[str] | None = None,
        country: str = "",
    ) -> BusinessCalendar:
        """`holidays` and `makeup_workdays` are the dealership's own closing and extra working days,
        on top of the public calendar of `country` (none for an empty or unknown country)."""
        hours = {day: tuple(sorted((_parse(a), _parse(b)) for a, b in business_hours.get(day, []))) for day in WEEKDAYS}
        own_closed = frozenset(date.fromisoformat(d) for d in holidays or [])
        own_open = frozenset(date.fromisoformat(d) for d in makeup_workdays or [])
        public = public_calendar(country)
        public_closed = public.holidays if public else frozenset()
        public_open = public.makeup_days if public else frozenset()
        return cls(
            zone=zoneinfo.ZoneInfo(time_zone),
            hours=hours,
            holidays=own_closed | (public_closed - own_open),
            makeup_days=own_open | public_open,
            public=public,
        )

    # --- one day -------------------------------------------------------------------------------

    def spans_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's opening spans as aware datetimes (empty on holidays and closed days). A closing
        day wins over a working day of the same date."""
        if day in self.holidays:
            return []
        weekday = WEEKDAYS[day.weekday()]
        if day in self.makeup_days:
            weekday = MAKEUP_HOURS_FROM
        spans = []
        for start, end in self.hours[weekday]:
            spans.append(
                (
                    datetime.combine(day, start, tzinfo=self.zone),
                    datetime.combine(day, end, tzinfo=self.zone),
                )
            )
        return spans

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        return any(start <= local < end for start, end in self.spans_on(local.date()))

    # --- arithmetic ------------------------------------------------------------------------------

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of business time after `start`, exact to the microsecond. Starting
        outside hours, the clock starts at the next opening; a target that ends exactly at closing
        time is due at closing."""
        if duration < timedelta(0):
            raise ValueError("duration must not be negative")
        remaining = duration
        local = start.astimezone(self.zone)
        day = local.date()
        closed_days = 0
        while True:
            spans = self.spans_on(day)
            if not spans:
                closed_days += 1
                if closed_days > MAX_CLOSED_DAYS:
                    raise NoBusinessHours("No business hours within a year.")
            for span_start, span_end in spans:
                if span_end <= local:
                    continue
                begin = max(span_start, local)
                available = span_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)
            local = datetime.combine(day, time(0, 0), tzinfo=self.zone)

    def add_minutes(self, start: datetime, minutes: float) -> datetime:
        """`add` with the duration in business minutes (a fraction is kept to the microsecond)."""
        if minutes < 0:
            raise ValueError("minutes must not be negative")
        return self.add(start, timedelta(minutes=minutes))

    def duration_between(self, start: datetime, end: datetime) -> timedelta:
        """Business time from `start` to `end`, exact to the microsecond (zero if end is not after
        start)."""
        if end <= start:
            return timedelta(0)
        local_start, local_end = start.astimezone(self.zone), end.astimezone(self.zone)
        total = timedelta(0)
        day = local_start.date()
        while day <= local_end.date():
            for span_start, span_end in self.spans_on(day):
                begin, finish = max(span_start, local_start), min(span_end, local_end)
                if finish > begin:
                    total += finish - begin
            day += timedelta(days=1)
        return total

    def minutes_between(self, start: datetime, end: datetime) -> float:
        """Business minutes from `start` to `end` (0 if end is not after start), unrounded."""
        return self.duration_between(start, end).total_seconds() / 60


def whole_minutes(duration: timedelta) -> int:
    """A business duration in whole minutes for figures shown as minutes: the nearest minute,
    halves rounded up (29 min 30 s → 30, 28 min 30 s → 29), never Python's round-half-to-even.
    Clocks never use it: they move by exact durations."""
    whole, rest = divmod(duration, timedelta(minutes=1))
    return int(whole) + (1 if rest >= timedelta(seconds=30) else 0)
