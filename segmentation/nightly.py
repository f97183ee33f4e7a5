"""Nightly step of segmentation (declared in hooks.py with what they run after)."""

from __future__ import annotations

from datetime import date

from segmentation.engine import segmentation_recompute

STEP = "segmentation.rfm"


def segmentation_nightly(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """RFM scores, segments, tiers, lifecycle and history for one dealership (rows written)."""
    return segmentation_recompute(run_date=run_date, trigger=trigger).rows_changed
