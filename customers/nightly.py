"""Nightly steps of the customers app (declared in hooks.py with what they run after)."""

from __future__ import annotations

from datetime import date

from customers.quality import customer_quality_refresh, dealership_quality_snapshot


def data_quality_recompute(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """Rescore every customer, then write the day's accuracy snapshot (both in the step's transaction,
    so the page switches from last night's figures to tonight's at once). Rows: customers whose
    score changed, plus the snapshot."""
    changed = customer_quality_refresh()
    dealership_quality_snapshot(on=run_date)
    return changed + 1
