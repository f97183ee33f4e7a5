"""The nightly step of follow-ups (declared in hooks.py with what they run after).

After segmentation, so priorities and tier cadence use tonight's tiers, and after loyalty levels
(see hooks.py).
"""

from __future__ import annotations

from datetime import date

from followups.scheduling import followups_schedule


def followups_nightly(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Expire, release, create and spread follow-ups (rows: follow-ups created)."""
    return followups_schedule(run_date=run_date)["created"]
