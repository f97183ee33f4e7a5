"""Nightly steps of the loyalty programme (declared in hooks.py with what they run after).

Earning before expiry, so a night's new points and reversals count before old points expire;
levels after both; care greetings after levels (see hooks.py).
"""

from __future__ import annotations

from datetime import date

from loyalty.batch import care_send, levels_recompute, orders_earn, points_expire


def loyalty_earn(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Enrol buyers, credit completed orders, reverse reversed ones, reward referrals."""
    counts = orders_earn(run_date=run_date)
    return counts["enrolled"] + counts["earned"] + counts["reversed"] + counts["referrals"]


def loyalty_points_expiry(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Expire points whose date has come, oldest first (rows: members with an expiry entry)."""
    return points_expire(run_date=run_date)


def loyalty_levels(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Upgrades and downgrades (rows: members whose level changed)."""
    return levels_recompute(run_date=run_date)


def loyalty_care(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Birthday bonus points and birthday and holiday greetings (rows: entries + messages)."""
    counts = care_send(run_date=run_date)
    return counts["birthday_points"] + counts["greetings"]
