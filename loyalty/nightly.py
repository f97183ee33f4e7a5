"""Nightly steps of the loyalty programme (autodiscovered by crm.core.nightly).

Order: earning (25) before expiry (30), so a night's new points and reversals count before old
points expire; levels (35) after both; care greetings (70) last.
"""

from __future__ import annotations

from datetime import date

from crm.core.nightly import nightly_step
from loyalty.services import care_send, levels_recompute, orders_earn, points_expire


@nightly_step("loyalty.earn", order=25)
def loyalty_earn(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Enrol buyers, credit completed orders, reverse reversed ones, reward referrals."""
    counts = orders_earn(run_date=run_date)
    return counts["enrolled"] + counts["earned"] + counts["reversed"] + counts["referrals"]


@nightly_step("loyalty.points_expiry", order=30)
def loyalty_points_expiry(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Expire points whose date has come, oldest first (rows: members with an expiry entry)."""
    return points_expire(run_date=run_date)


@nightly_step("loyalty.levels", order=35)
def loyalty_levels(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Upgrades and downgrades (rows: members whose level changed)."""
    return levels_recompute(run_date=run_date)


@nightly_step("loyalty.care", order=70)
def loyalty_care(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Birthday bonus points and birthday and holiday greetings (rows: entries + messages)."""
    counts = care_send(run_date=run_date)
    return counts["birthday_points"] + counts["greetings"]
