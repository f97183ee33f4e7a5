"""Staff pages of segmentation: the overview (tiers, segments, R×F heat map, recompute now), tier
migration, per-tier customer lists with the tier's strategy, and the settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.core.errors import ApplicationError
from crm.core.forms import form_errors_from
from crm.core.models import NightlyRun
from crm.core.paging import page_of
from crm.tenancy.audit import RequestMeta
from crm.tenancy.decorators import membership_of, require_capability
from customers.selectors import customer_masked_value
from segmentation import selectors, services
from segmentation.engine import run_progress
from segmentation.forms import MigrationForm, SettingsForm, ValueFilterForm
from segmentation.models import Tier
from segmentation.nightly import STEP
from segmentation.selectors import NOT_TIERED

PAGE_SIZE = 50


def _run_state(tenant_id: int) -> dict[str, Any]:
    """The latest recomputation's record and, while it runs, its phase."""
    latest = NightlyRun.objects.filter(step=STEP).order_by("-started_at", "-id").first()
    running = latest is not None and latest.status == NightlyRun.Status.RUNNING
    return {"nightly": latest, "running": running, "progress": run_progress(tenant_id) if running else None}


@require_capability("segmentation.view")
def overview(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    run = selectors.latest_run()
    settings = selectors.segmentation_settings()
    context = {
        "run": run,
        "settings": settings,
        "tiers": selectors.tier_distribution(run=run, settings=settings),
        "segments": selectors.segment_distribution(run=run),
        "stages": selectors.lifecycle_distribution(run=run),
        "grid": selectors.rf_grid(run=run),
        "can_manage": membership.can("segmentation.manage"),
        **_run_state(membership.tenant_id),
    }
    return render(request, "segmentation/overview.html", context)


@require_capability("segmentation.view")
def run_status(request: HttpRequest) -> HttpResponse:
    """htmx: the run panel, polled while a recomputation runs."""
    membership = membership_of(request)
    context = {"run": selectors.latest_run(), "can_manage": membership.can("segmentation.manage")}
    context.update(_run_state(membership.tenant_id))
    response = render(request, "segmentation/_run_status.html", context)
    if request.GET.get("was_running") and not context["running"]:
        response["HX-Refresh"] = "true"  # finished: reload the page to show the new figures
    return response


@require_POST
@require_capability("segmentation.manage")
def run_now(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    try:
        services.segmentation_request_run(actor=membership, meta=RequestMeta.from_request(request))
        messages.success(request, _("Recomputation queued; this page shows its progress."))
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("segmentation:overview")


@require_capability("segmentation.view")
def migration(request: HttpRequest) -> HttpResponse:
    first, last = selectors.history_dates()
    today = timezone.localdate()
    default_to = last or today
    default_from = max(first or default_to, default_to - timedelta(days=30))
    form = MigrationForm(request.GET or {"from_date": default_from, "to_date": default_to})
    matrix = selectors.tier_migration(**form.cleaned_data) if form.is_valid() else None
    rows = []
    if matrix:
        for a in matrix.tiers:
            cells = [{"to": b or NOT_TIERED, "customers": matrix.cell(a, b), "diagonal": a == b} for b in matrix.tiers]
            rows.append(
                {
                    "tier": a or NOT_TIERED,
                    "label": selectors.tier_label(a),
                    "cells": cells,
                    "total": matrix.row_totals[a],
                }
            )
    columns = (
        [{"label": selectors.tier_label(b), "total": matrix.col_totals[b]} for b in matrix.tiers] if matrix else []
    )
    return render(
        request,
        "segmentation/migration.html",
        {"form": form, "matrix": matrix, "rows": rows, "columns": columns, "first": first, "last": last},
    )


def customers(request: HttpRequest) -> HttpResponse:
    """Customers by tier, segment or R×F cell, with the tier's strategy. Everyone who can see customers
    may open it; it lists only the customers they may see."""
    viewer = membership_of(request)
    if not (viewer.can("customers.view_all") or viewer.can("customers.view_own")):
        return render(request, "403.html", status=403)
    form = ValueFilterForm(request.GET or None)
    filters = form.filters() if form.is_valid() else selectors.ValueFilters()
    page = page_of(request, selectors.customer_values(viewer=viewer, filters=filters), size=PAGE_SIZE)
    settings = selectors.segmentation_settings()
    today = timezone.localdate()
    rows = [
        (
            value,
            customer_masked_value(viewer=viewer, customer=value.customer, field="mobile"),
            value.recency_days(today),
        )
        for value in page.items
    ]
    tier = filters.tier
    context = {
        "form": form,
        "rows": rows,
        "tier": tier,
        "tier_label": selectors.tier_label(tier) if tier is not None else "",
        "strategy": settings.strategy(tier) if tier else "",
        "tiers": [(str(t), t.label) for t in Tier],
        "not_tiered": NOT_TIERED,
        "filters": filters,
        **page.context(),
        "can_view_overview": viewer.can("segmentation.view"),
    }
    return render(request, "segmentation/customers.html", context)


@require_capability("segmentation.manage")
def settings_page(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    instance = selectors.segmentation_settings()  # unsaved defaults until the first save
    form = SettingsForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        try:
            services.settings_update(actor=membership, data=form.service_data(), meta=RequestMeta.from_request(request))
        except ApplicationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, _("Saved. The new settings apply from the next recomputation."))
            return redirect("segmentation:settings")
    return render(request, "segmentation/settings.html", {"form": form, "settings": instance})
