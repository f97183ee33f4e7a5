"""Business-time arithmetic for SLA clocks: lunch breaks, nights, weekends, holidays, make-up days."""

from __future__ import annotations

import random
import zoneinfo
from datetime import UTC, date, datetime, timedelta

import pytest

from crm.core.business_time import BusinessCalendar, NoBusinessHours, public_calendar, whole_minutes

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
DAY = [["08:30", "12:00"], ["13:30", "18:00"]]  # 8 business hours


def calendar(**overrides: object) -> BusinessCalendar:
    hours = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), DAY) | {"sat": [], "sun": []}
    options: dict[str, object] = {"time_zone": "Asia/Shanghai", "business_hours": hours} | overrides
    return BusinessCalendar.build(**options)  # type: ignore[arg-type]


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SHANGHAI)


MON = date(2026, 9, 14)  # a Monday
FRI = date(2026, 9, 18)


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        (at(MON, 9), 60, at(MON, 10)),  # within the morning
        (at(MON, 11, 30), 60, at(MON, 14)),  # 30 before lunch, 30 after
        (at(MON, 17, 30), 60, at(MON + timedelta(days=1), 9)),  # over the night
        (at(MON, 17), 60, at(MON, 18)),  # ends exactly at closing: due at closing, not next morning
        (at(MON, 7), 0, at(MON, 8, 30)),  # before opening: the clock starts at opening
        (at(MON, 12, 30), 30, at(MON, 14)),  # in the lunch break
        (at(MON, 20), 30, at(MON + timedelta(days=1), 9)),  # after closing
        (at(FRI, 17), 120, at(FRI + timedelta(days=3), 9, 30)),  # Friday evening → Monday
        (at(MON, 9), 480 * 5, at(MON + timedelta(days=7), 9)),  # a working week
    ],
)
def test_adding_business_minutes(start, minutes, due):
    assert calendar().add_minutes(start, minutes) == due


def test_holidays_have_no_hours():
    # National Day week: Thu 1 Oct to Wed 7 Oct 2026 off
    holidays = [str(date(2026, 10, 1) + timedelta(days=n)) for n in range(7)]
    cal = calendar(holidays=holidays)
    assert cal.add_minutes(at(date(2026, 9, 30), 17), 120) == at(date(2026, 10, 8), 9, 30)
    assert cal.minutes_between(at(date(2026, 9, 30), 17), at(date(2026, 10, 8), 9, 30)) == 120


def test_make_up_working_days_take_a_weekday_s_hours():
    # 调休: Sunday 27 Sep 2026 is worked (Monday's hours) before the National Day break
    cal = calendar(makeup_workdays=["2026-09-27"])
    saturday = date(2026, 9, 26)
    assert cal.add_minutes(at(saturday, 10), 60) == at(date(2026, 9, 27), 9, 30)
    assert cal.is_open(at(date(2026, 9, 27), 9)) and not cal.is_open(at(saturday, 9))


def test_a_holiday_on_a_make_up_list_stays_closed():
    cal = calendar(holidays=["2026-09-27"], makeup_workdays=["2026-09-27"])
    assert cal.spans_on(date(2026, 9, 27)) == []


def test_counting_is_in_the_dealership_zone_whatever_the_input_zone():
    start_utc = datetime(2026, 9, 14, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert calendar().add_minutes(start_utc, 60) == at(MON, 10)
    assert calendar().minutes_between(start_utc, datetime(2026, 9, 14, 2, 0, tzinfo=UTC)) == 60


def test_minutes_between_undoes_add_minutes():
    cal = calendar(holidays=["2026-09-16"], makeup_workdays=["2026-09-20"])
    rng = random.Random(5)
    for _ in range(300):
        start = at(MON, 0) + timedelta(minutes=rng.randrange(0, 14 * 24 * 60))
        minutes = rng.randrange(0, 6000)
        due = cal.add_minutes(start, minutes)
        assert cal.minutes_between(start, due) == pytest.approx(minutes)
        assert due >= start
    assert cal.minutes_between(at(MON, 10), at(MON, 9)) == 0


def test_a_calendar_without_hours_says_so():
    with pytest.raises(NoBusinessHours):
        BusinessCalendar.build(time_zone="Asia/Shanghai", business_hours={}).add_minutes(at(MON, 9), 10)
    with pytest.raises(ValueError):
        calendar().add_minutes(at(MON, 9), -1)


def test_durations_are_exact_and_whole_minutes_round_halves_up():
    cal = calendar()
    start = at(MON, 11, 59) + timedelta(seconds=45)
    assert cal.add(start, timedelta(seconds=29.5)) == at(MON, 13, 30) + timedelta(seconds=14.5)  # over lunch
    assert cal.duration_between(start, at(MON, 13, 30) + timedelta(seconds=14.5)) == timedelta(seconds=29.5)
    assert whole_minutes(timedelta(minutes=29, seconds=30)) == 30
    assert whole_minutes(timedelta(minutes=28, seconds=30)) == 29  # round() gives 28
    assert whole_minutes(timedelta(minutes=28, seconds=29, microseconds=999999)) == 28
    assert whole_minutes(timedelta(0)) == 0


# --- China's public holidays (chinesecalendar), the dealership's own days on top --------------------


def china(**overrides: object) -> BusinessCalendar:
    return calendar(country="CN", **overrides)


def test_china_s_public_holidays_and_make_up_days_ship_with_the_product():
    cal = china()
    # National Day week 2026: Thu 1 – Wed 7 Oct off; Sat 10 Oct a make-up working day (Monday's hours)
    assert all(cal.spans_on(date(2026, 10, d)) == [] for d in range(1, 8))
    assert cal.add_minutes(at(date(2026, 9, 30), 17), 120) == at(date(2026, 10, 8), 9, 30)
    assert cal.is_open(at(date(2026, 10, 10), 9))
    # Mid-Autumn: Fri 25 – Sun 27 Sep off (27 Sep is no make-up day); Sun 20 Sep is one
    assert cal.spans_on(date(2026, 9, 25)) == [] and cal.spans_on(date(2026, 9, 27)) == []
    assert cal.is_open(at(date(2026, 9, 20), 9)) and not cal.is_open(at(date(2026, 9, 19), 9))
    # Spring Festival 2026: 15 – 23 Feb off, Sat 14 and Sat 28 Feb worked
    assert cal.spans_on(date(2026, 2, 16)) == [] and cal.is_open(at(date(2026, 2, 14), 10))
    assert calendar().is_open(at(date(2026, 10, 1), 9))  # no country: no public holidays


def test_a_weekend_day_inside_a_holiday_is_closed_even_where_weekends_are_worked():
    cal = china(business_hours=dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), DAY))
    assert cal.spans_on(date(2026, 10, 3)) == []  # Saturday of National Day week
    assert cal.is_open(at(date(2026, 10, 17), 9))  # an ordinary Saturday


def test_the_dealership_s_own_days_come_on_top_of_the_public_calendar():
    cal = china(holidays=["2026-09-30", "2026-09-20"], makeup_workdays=["2026-10-03", "2026-09-20"])
    assert cal.spans_on(date(2026, 9, 30)) == []  # own closing day
    assert cal.spans_on(date(2026, 9, 20)) == []  # own closing day beats the make-up day (and own open)
    assert cal.is_open(at(date(2026, 10, 3), 9))  # own working day inside National Day week
    saturday = date(2026, 10, 3)
    assert cal.spans_on(saturday) == [(at(saturday, 8, 30), at(saturday, 12)), (at(saturday, 13, 30), at(saturday, 18))]


def test_beyond_the_years_covered_only_weekly_hours_and_own_days_count():
    public = public_calendar("CN")
    assert public is not None and public.covers(2026) and not public.covers(public.last_year + 1)
    assert public_calendar("ZZ") is None
    beyond = date(public.last_year + 1, 10, 1)
    cal = china()
    # no public holiday known: a weekday has its hours, a weekend none
    assert bool(cal.spans_on(beyond)) == (beyond.weekday() < 5)
    assert china(holidays=[beyond.isoformat()]).spans_on(beyond) == []  # own closing days still count
