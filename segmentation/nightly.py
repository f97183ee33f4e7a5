"""Nightly step of segmentation (autodiscovered by crm.core.nightly)."""

from __future__ import annotations

from datetime import date

from crm.core.nightly import nightly_step
from segmentation.engine import segmentation_recompute

STEP = "segmentation.rfm"


@nightly_step(STEP, order=20)
def segmentation_nightly(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
    """RFM scores, segments, tiers, lifecycle and history for one dealership (rows written)."""
    return segmentation_recompute(run_date=run_date, trigger=trigger).rows_changed
