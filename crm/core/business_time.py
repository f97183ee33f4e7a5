"""Business-time arithmetic: SLA clocks count only a dealership's opening hours.

A dealership sets its weekly hours (Tenant.business_hours: mon…sun → [["08:30", "12:00"], …]),
its public holidays (no hours at all) and its make-up working days (调休: a weekend day worked as a
weekday; it takes the hours of `MAKEUP_HOURS_FROM`, Monday). Times are counted in the dealership's
own time zone, so daylight-saving changes elsewhere never shift a clock.

    calendar = BusinessCalendar.for_tenant(tenant)
    due = calendar.add_minutes(opened_at, 240)           # 4 business hours later
    spent = calendar.minutes_between(opened_at, now)     # business minutes elapsed
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAKEUP_HOURS_FROM = "mon"
# Searching for opening hours gives up after this many days without any (a calendar with no hours).
MAX_CLOSED_DAYS = 366


class NoBusinessHours(ValueError):
    """The calendar has no opening hours at all within a year: no clock can run."""


def _parse(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class BusinessCalendar:
    zone: zoneinfo.ZoneInfo
    hours: dict[str, tuple[tuple[time, time], ...]]
    holidays: frozenset[date]
    makeup_days: frozenset[date]

    @classmethod
    def for_tenant(cls, tenant: Any) -> BusinessCalendar:
        return cls.build(
            time_zone=tenant.time_zone,
            business_hours=tenant.business_hours,
            holidays=tenant.holidays,
            makeup_workdays=tenant.makeup_workdays,
        )

    @classmethod
    def build(
        cls,
        *,
        time_zone: str,
        business_hours: dict[str, list[list[str]]],
        holidays: list[str] | None = None,
        makeup_workdays: list[str] | None = None,
    ) -> BusinessCalendar:
        hours = {day: tuple(sorted((_parse(a), _parse(b)) for a, b in business_hours.get(day, []))) for day in WEEKDAYS}
        return cls(
            zone=zoneinfo.ZoneInfo(time_zone),
            hours=hours,
            holidays=frozenset(date.fromisoformat(d) for d in holidays or []),
            makeup_days=frozenset(date.fromisoformat(d) for d in makeup_workdays or []),
        )

    # --- one day -------------------------------------------------------------------------------

    def spans_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's opening spans as aware datetimes (empty on holidays and closed days)."""
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
