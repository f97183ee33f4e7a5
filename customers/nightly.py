"""Nightly steps of the customers app (declared in hooks.py with what they run after)."""

from __future__ import annotations

from datetime import date

from customers.quality import customer_quality_refresh, dealership_quality_snapshot
from customers.records import customers_fill_name_initials


def data_quality_recompute(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Rescore every customer, then write the day's accuracy snapshot (both in the step's transaction,
    so the page switches from last night's figures to tonight's at once). Rows: customers whose
    score changed, plus the snapshot. First, customers written without their pinyin initials (bulk
    loads that bypass the services) get them, so that name search finds them by initials."""
    customers_fill_name_initials()
    changed = customer_quality_refresh()
    dealership_quality_snapshot(on=run_date)
    return changed + 1
