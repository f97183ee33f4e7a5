"""Nightly step of surveys (declared in hooks.py with what they run after)."""

from __future__ import annotations

from datetime import date

from surveys.services import surveys_schedule


def surveys_nightly(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Invite after deliveries and service visits, remind, expire (rows: invitations + reminders)."""
    counts = surveys_schedule(run_date=run_date)
    return counts["invited"] + counts["reminded"] + counts["expired"]
