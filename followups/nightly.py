"""The nightly step of follow-ups (autodiscovered by crm.core.nightly).

Order 40: after segmentation (20), so priorities and tier cadence use tonight's tiers, and after
loyalty levels (35); before surveys (60) and care greetings (70).
"""

from __future__ import annotations

from datetime import date

from crm.core.nightly import nightly_step
from followups.scheduling import followups_schedule


@nightly_step("followups.schedule", order=40)
def followups_nightly(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Expire, release, create and spread follow-ups (rows: follow-ups created)."""
    return followups_schedule(run_date=run_date)["created"]
