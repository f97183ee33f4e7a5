"""The nightly step of the manager dashboard (declared in hooks.py with what they run after).

Last: after every step whose results it reads (see hooks.py).
"""

from __future__ import annotations

from datetime import date

from dashboards.aggregates import dashboard_figures_refresh


def dashboards_nightly(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Pre-aggregate the customer base and revenue for the manager dashboard (rows written)."""
    return int(dashboard_figures_refresh(run_date=run_date)["rows"])
