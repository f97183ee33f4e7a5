"""Nightly step of surveys (autodiscovered by crm.core.nightly)."""

from __future__ import annotations

from datetime import date

from crm.core.nightly import nightly_step
from surveys.services import surveys_schedule


@nightly_step("surveys.schedule", order=60)
def surveys_nightly(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Invite after deliveries and service visits, remind, expire (rows: invitations + reminders)."""
    counts = surveys_schedule(run_date=run_date)
    return counts["invited"] + counts["reminded"] + counts["expired"]
