"""The nightly step of the manager dashboard (autodiscovered by crm.core.nightly).

Order 80: last, after segmentation (20, tonight's tiers and stages), loyalty (25–35, balances),
follow-ups (40), data quality (50, tonight's scores) and care (70).
"""

from __future__ import annotations

from datetime import date

from crm.core.nightly import nightly_step
from dashboards.aggregates import dashboard_figures_refresh


@nightly_step("dashboards.figures", order=80)
def dashboards_nightly(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Pre-aggregate the customer base and revenue for the manager dashboard (rows written)."""
    return int(dashboard_figures_refresh(run_date=run_date)["rows"])
