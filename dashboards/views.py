"""The manager dashboard (四度): headline figures, charts, tables, drill-down and XLSX downloads."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.paging import page_of
from crm.core.period import Period
from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.decorators import membership_of, require_capability
from crm.tenancy.models import AuditAction, Membership
from customers.selectors import customer_masked_value
from dashboards import exports, presenters, selectors
from dashboards.forms import DashboardForm, DrillForm
from sales import selectors as sales_selectors

DRILL_PAGE = 50


def _query(form: DashboardForm) -> dict[str, Any]:
    """The form's valid values as they go into links (drill-down, downloads)."""
    cleaned = form.cleaned_data
    return {
        "start": cleaned["start"].isoformat(),
        "end": cleaned["end"].isoformat(),
        "compare_start": cleaned["compare_start"].isoformat() if cleaned.get("compare_start") else "",
        "compare_end": cleaned["compare_end"].isoformat() if cleaned.get("compare_end") else "",
        "consultant": cleaned["consultant"].pk if cleaned.get("consultant") else "",
        "advisor": cleaned["advisor"].pk if cleaned.get("advisor") else "",
    }


def figures_for(form: DashboardForm, membership: Membership) -> dict[str, Any]:
    cleaned = form.cleaned_data
    period = Period(cleaned["start"], cleaned["end"])
    compare = (
        Period(cleaned["compare_start"], cleaned["compare_end"])
        if cleaned.get("compare_start")
        else selectors.previous_period(period)
    )
    return selectors.dashboard_figures(
        period=period,
        compare=compare,
        zone=membership.tenant.zone,
        filters=selectors.DashboardFilters(consultant=cleaned.get("consultant"), advisor=cleaned.get("advisor")),
        now=timezone.now(),
    )


def sales_funnel_card(form: DashboardForm, membership: Membership) -> dict[str, Any] | None:
    """The sales funnel of the dashboard's period (and consultant), for those who may see it, with
    the link to the funnel page for the same period."""
    if not membership.can("sales.view_all"):
        return None
    cleaned = form.cleaned_data
    consultant = cleaned.get("consultant")
    figures = sales_selectors.funnel(
        viewer=membership,
        filters=sales_selectors.FunnelFilters(period=Period(cleaned["start"], cleaned["end"]), owner=consultant),
    )
    query = {"start": cleaned["start"].isoformat(), "end": cleaned["end"].isoformat()}
    if consultant is not None:
        query["owner"] = str(consultant.pk)
    return {
        "steps": figures["steps"],
        "visit_rate": figures["visit_rate"],
        "test_drive_rate": figures["test_drive_rate"],
        "close_rate": figures["close_rate"],
        "pending_defeats": figures["pending_defeats"],
        "pool": figures["pool"],
        "url": reverse("sales:funnel") + "?" + urlencode(query),
    }


def _download(handle: Any, prefix: str, form: DashboardForm) -> HttpResponse:
    """The workbook is complete on disk before the response starts: streaming it reads no rows."""
    stamp = f"{form.cleaned_data['start']:%Y%m%d}-{form.cleaned_data['end']:%Y%m%d}"
    response = FileResponse(handle, as_attachment=True, filename=f"{prefix}-{stamp}.xlsx")
    response.crm_tenant_safe = True  # type: ignore[attr-defined]
    return cast(HttpResponse, response)  # a streaming response; the views' decorators want HttpResponse


@require_capability("dashboards.view")
def home(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    form = DashboardForm(request.GET or DashboardForm.defaults())
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        figures = figures_for(form, membership)
        tables = presenters.tables(figures)
        if request.GET.get("format") == "xlsx":
            return _download(exports.figures_workbook(tables), "dashboard", form)
        query = _query(form)
        context.update(
            figures=figures,
            tables=tables,
            charts=presenters.charts(figures, query),
            headline=[
                {
                    **h,
                    "label": presenters.headline_label(h["key"]),
                    "link": presenters.drill_url(query, *presenters.HEADLINE_DRILL[h["key"]]),
                }
                for h in figures["headline"]
            ],
            points_link=presenters.drill_url(query, "points"),
            sales_funnel=sales_funnel_card(form, membership),
            query=query,
        )
    status = 200 if form.is_valid() else 400
    return render(request, "dashboards/home.html", context, status=status)


@require_capability("dashboards.view")
def drill(request: HttpRequest) -> HttpResponse:
    """The customers behind a figure or a chart's bar, with an XLSX download."""
    membership = membership_of(request)
    form = DrillForm(request.GET)
    if not form.is_valid() or not selectors.drill_value_valid(form.cleaned_data["figure"], form.cleaned_data["value"]):
        if form.is_valid():
            form.add_error("value", _("Unknown figure or value."))
        return render(request, "dashboards/drill.html", {"form": form}, status=400)
    cleaned = form.cleaned_data
    customers = selectors.drill_customers(
        viewer=membership,
        figure=cleaned["figure"],
        value=cleaned["value"],
        filters=selectors.DashboardFilters(consultant=cleaned.get("consultant"), advisor=cleaned.get("advisor")),
        period=Period(cleaned["start"], cleaned["end"]),
        zone=membership.tenant.zone,
    ).select_related("owner__user")
    if request.GET.get("format") == "xlsx":
        audit_record(
            action=AuditAction.CUSTOMERS_EXPORTED,
            actor=membership.user,
            summary=f"dashboard · {cleaned['figure']} {cleaned['value']}".strip(),
            data={"figure": cleaned["figure"], "value": cleaned["value"], "format": "xlsx", "filters": _query(form)},
            meta=RequestMeta.from_request(request),
        )
        return _download(
            exports.drill_workbook(viewer=membership, customers=customers), f"customers-{cleaned['figure']}", form
        )
    page = page_of(request, customers, size=DRILL_PAGE)
    rows = [(c, customer_masked_value(viewer=membership, customer=c, field="mobile")) for c in page.items]
    return render(
        request,
        "dashboards/drill.html",
        {
            "form": form,
            "rows": rows,
            **page.context(),
            "title": selectors.drill_title(cleaned["figure"], cleaned["value"]),
            "query": _query(form) | {"figure": cleaned["figure"], "value": cleaned["value"]},
        },
    )
