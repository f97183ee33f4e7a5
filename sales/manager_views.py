"""The managers' sales pages: the funnel (every figure drills down to its leads in the lead list,
and downloads as XLSX), the lead list's download, the pool and giving leads out, ownership
conflicts and defeats waiting for approval, who is on duty, and the sales rules. Every write goes
through sales.services; every read through sales.selectors."""

from __future__ import annotations

from datetime import date, timedelta
from typing import IO, Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.core.errors import ApplicationError, NotAllowed
from crm.core.forms import form_errors_from
from crm.core.paging import page_of
from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.decorators import membership_of, require_capability
from crm.tenancy.models import AuditAction, Membership
from sales import exports, selectors, services
from sales.forms import POOL, LeadFilterForm
from sales.manager_forms import (
    AssignForm,
    ConflictDecideForm,
    DefeatDecideForm,
    DefeatReasonForm,
    DemoVehicleForm,
    DemoVehicleStateForm,
    DutyForm,
    FunnelForm,
    SalesSettingsForm,
    sellers,
)
from sales.models import ConsultantDuty, DefeatReason, Lead, Source, Stage

PAGE_SIZE = 50
BREAKDOWNS = ("source", "owner", "series")


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "403.html", status=403)


def _refused_status(error: ApplicationError) -> int:
    """The page's status for a refused write: 403 for a role, 409 for a decided case, else 400."""
    return error.status_code if 400 <= error.status_code < 500 else 400


def _safe_next(request: HttpRequest, target: str) -> str | None:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


def _download(handle: IO[bytes], filename: str) -> HttpResponse:
    """The workbook is complete on disk before the response starts: streaming it reads no rows."""
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=filename,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Cache-Control"] = "no-store"
    response.crm_tenant_safe = True  # type: ignore[attr-defined]
    return cast(HttpResponse, response)


# --- the funnel -------------------------------------------------------------------------------------


def leads_url(**params: Any) -> str:
    """The lead list filtered by `params` (the fields of its filter form, sales.forms.LeadFilterForm;
    empty values left out)."""
    query = {k: str(v) for k, v in params.items() if v not in ("", None, False)}
    return reverse("sales:leads") + ("?" + urlencode(query) if query else "")


def _cohort(query: dict[str, str]) -> dict[str, str]:
    """The funnel's leads as lead-list filters: captured in the period, the funnel's own filters."""
    return {
        "created_from": query["start"],
        "created_to": query["end"],
        "source": query["source"],
        "owner": query["owner"],
        "series": query["series"],
    }


def _step_url(cohort: dict[str, str], stage: str) -> str:
    return leads_url(**cohort, reached="" if stage == Stage.NEW else stage)


def _ageing_url(cohort: dict[str, str], bucket: dict[str, Any], today: date) -> str:
    """Open leads of the cohort captured between (today − to_days) and (today − from_days)."""
    start, end = date.fromisoformat(cohort["created_from"]), date.fromisoformat(cohort["created_to"])
    latest = min(end, today - timedelta(days=bucket["from_days"]))
    earliest = start if bucket["to_days"] is None else max(start, today - timedelta(days=bucket["to_days"]))
    return leads_url(
        **(cohort | {"created_from": earliest.isoformat(), "created_to": latest.isoformat()}), stage="open"
    )


def _breakdown_key(by: str, key: Any) -> dict[str, str] | None:
    """The lead-list filter of one breakdown row; None where the list cannot express it (leads
    with no model of interest: an empty `series` means "any")."""
    if by == "owner":
        return {"owner": str(key) if key else POOL}
    if not key:
        return None
    return {by: str(key)}


def funnel_context(figures: dict[str, Any], breakdowns: dict[str, list[dict[str, Any]]], query: dict[str, str]) -> Any:
    """The page's figures, each with the link to exactly its leads (where the list can filter them)."""
    cohort = _cohort(query)
    today = timezone.localdate()
    steps = [{**step, "url": _step_url(cohort, step["stage"])} for step in figures["steps"]]
    by_stage = {step["stage"]: step for step in steps}
    rates = [
        {"key": "visit_rate", "label": _("Visit rate"), "value": figures["visit_rate"],
         "help": _("Visited ÷ leads"), "url": by_stage[Stage.VISITED]["url"]},
        {"key": "test_drive_rate", "label": _("Test-drive rate"), "value": figures["test_drive_rate"],
         "help": _("Test drives ÷ visited"), "url": by_stage[Stage.TEST_DRIVE]["url"]},
        {"key": "close_rate", "label": _("Closing rate"), "value": figures["close_rate"],
         "help": _("Ordered ÷ visited"), "url": by_stage[Stage.ORDERED]["url"]},
    ]  # fmt: skip
    ageing = [
        {
            **bucket,
            "url": _ageing_url(cohort, bucket, today),
        }
        for bucket in figures["ageing"]
    ]
    sources = dict(Source.choices)
    tables = []
    titles = {"source": _("By source"), "owner": _("By consultant"), "series": _("By model")}
    for by in BREAKDOWNS:
        rows = []
        for row in breakdowns[by]:
            key = _breakdown_key(by, row["key"])
            if by == "source":
                label = str(sources.get(row["key"], row["key"]))
            elif by == "owner":
                label = row["label"] or _("Nobody (the pool)")
            else:
                label = row["label"] or _("Not given")
            row_cohort = cohort | key if key is not None else None
            rows.append(
                {
                    "key": row["key"],
                    "label": label,
                    "cells": [
                        {
                            "stage": step.value,
                            "leads": row["steps"][step.value],
                            "url": _step_url(row_cohort, step.value) if row_cohort is not None else "",
                        }
                        for step in selectors.FUNNEL_STEPS
                    ],
                    "visit_rate": row["visit_rate"],
                    "test_drive_rate": row["test_drive_rate"],
                    "close_rate": row["close_rate"],
                }
            )
        tables.append({"by": by, "title": titles[by], "rows": rows})
    return {
        "steps": steps,
        "rates": rates,
        "ageing": ageing,
        "tables": tables,
        "defeated_url": leads_url(**cohort, defeat="approved"),
        "pending_url": leads_url(**cohort, defeat="pending"),
        "pool_url": leads_url(owner=POOL, stage="open"),
    }


def _funnel_form(request: HttpRequest) -> FunnelForm:
    return FunnelForm(request.GET or FunnelForm.defaults())


def _breakdowns(viewer: Membership, form: FunnelForm) -> dict[str, list[dict[str, Any]]]:
    filters = form.funnel_filters()
    return {by: selectors.funnel_breakdown(viewer=viewer, filters=filters, by=by) for by in BREAKDOWNS}


@require_GET
@require_capability("sales.view_all")
def funnel(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    form = _funnel_form(request)
    context: dict[str, Any] = {"form": form}
    if not form.is_valid():
        return render(request, "sales/manager_funnel.html", context, status=400)
    figures = selectors.funnel(viewer=viewer, filters=form.funnel_filters())
    query = form.query()
    context.update(
        figures=figures,
        query=query,
        export_url=reverse("sales:funnel_export") + "?" + urlencode(query),
        defeated=sum(row["leads"] for row in figures["defeats"]),
        **funnel_context(figures, _breakdowns(viewer, form), query),
    )
    return render(request, "sales/manager_funnel.html", context)


@require_GET
@require_capability("sales.view_all")
def funnel_export(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    form = _funnel_form(request)
    if not form.is_valid():
        return render(request, "sales/manager_funnel.html", {"form": form}, status=400)
    figures = selectors.funnel(viewer=viewer, filters=form.funnel_filters())
    handle = exports.funnel_workbook(figures=figures, breakdowns=_breakdowns(viewer, form))
    data = form.cleaned_data
    return _download(handle, f"sales-funnel-{data['start']:%Y%m%d}-{data['end']:%Y%m%d}.xlsx")


# --- the lead list's download -------------------------------------------------------------------------


@require_GET
@require_capability("sales.view_all")
def lead_export(request: HttpRequest) -> HttpResponse:
    """The lead list as XLSX, its filters parsed as the list parses them; audited like every export."""
    viewer = membership_of(request)
    form = LeadFilterForm(request.GET, sees_all=True)
    if not form.is_valid():
        return render(request, "sales/manager_lead_export.html", {"form": form}, status=400)
    leads = selectors.lead_list(viewer=viewer, filters=form.filters())
    used = {k: v for k, v in request.GET.items() if k in form.fields and v}
    audit_record(
        action=AuditAction.CUSTOMERS_EXPORTED,
        actor=viewer.user,
        summary="leads · " + " ".join(f"{k}={v}" for k, v in sorted(used.items())),
        data={"list": "leads", "format": "xlsx", "filters": used},
        meta=RequestMeta.from_request(request),
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return _download(exports.lead_workbook(viewer=viewer, leads=leads), f"leads-{stamp}.xlsx")


# --- the pool and giving leads out ---------------------------------------------------------------------


@require_GET
def pool(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    if not (viewer.can("sales.work") or viewer.can("sales.view_all")):
        return _forbidden(request)
    page = page_of(request, selectors.lead_pool(viewer=viewer), size=PAGE_SIZE)
    rows = [(lead, selectors.lead_mobile_shown(viewer=viewer, lead=lead)) for lead in page.items]
    can_assign = viewer.can("sales.manage")
    return render(
        request,
        "sales/manager_pool.html",
        {
            "rows": rows,
            **page.context(),
            "can_assign": can_assign,
            "can_take": viewer.can("sales.work"),
            "people": list(sellers()) if can_assign else [],
            "next": request.get_full_path(),
        },
    )


@require_POST
@require_capability("sales.manage")
def lead_assign(request: HttpRequest, pk: int) -> HttpResponse:
    """A manager gives a lead to a consultant, or back to the pool (an empty `to`)."""
    viewer = membership_of(request)
    try:
        lead = selectors.lead_get_visible(viewer=viewer, lead_id=pk)
    except Lead.DoesNotExist:
        raise Http404 from None
    form = AssignForm(request.POST)
    back = _safe_next(request, request.POST.get("next", "")) or reverse("sales:lead", args=[lead.pk])
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(back)
    to = form.cleaned_data.get("to")
    try:
        services.lead_assign(actor=viewer, lead=lead, to=to, note=form.cleaned_data.get("note") or "")
    except ApplicationError as error:
        if isinstance(error, NotAllowed):
            return _forbidden(request)
        messages.error(request, " ".join([error.message, *[m for ms in error.fields.values() for m in ms]]))
        return redirect(back)
    if to is None:
        messages.success(request, _("%(name)s is back in the pool.") % {"name": lead.name})
    else:
        messages.success(request, _("%(name)s given to %(to)s.") % {"name": lead.name, "to": to.display_name})
    return redirect(back)


# --- conflicts and defeats waiting for a manager ---------------------------------------------------------


def _review_page(
    request: HttpRequest, *, defeat_form: DefeatDecideForm | None = None, status: int = 200
) -> HttpResponse:
    viewer = membership_of(request)
    conflicts_ = list(selectors.pending_conflicts(viewer=viewer).order_by("created_at", "id"))
    pending = selectors.lead_list(viewer=viewer, filters=selectors.LeadFilters(defeat="pending", sort="created"))
    defeats = [
        (lead, selectors.lead_mobile_shown(viewer=viewer, lead=lead))
        for lead in pending.select_related("defeat_reason")[:200]
    ]
    return render(
        request,
        "sales/manager_conflicts.html",
        {
            "conflicts": conflicts_,
            "defeats": defeats,
            "defeat_form": defeat_form,
            "pending_url": leads_url(defeat="pending"),
        },
        status=status,
    )


@require_capability("sales.manage")
def conflicts(request: HttpRequest) -> HttpResponse:
    """Ownership conflicts (撞单) and defeats (战败审核) waiting for a manager; a POST decides a defeat."""
    if request.method != "POST":
        return _review_page(request)
    viewer = membership_of(request)
    form = DefeatDecideForm(request.POST)
    if not form.is_valid():
        return _review_page(request, defeat_form=form, status=400)
    try:
        lead = selectors.lead_get_visible(viewer=viewer, lead_id=form.cleaned_data["lead"])
    except Lead.DoesNotExist:
        raise Http404 from None
    approve = form.cleaned_data["decision"] == "approve"
    try:
        services.lead_defeat_decide(actor=viewer, lead=lead, approve=approve, note=form.cleaned_data.get("note") or "")
    except ApplicationError as error:
        form_errors_from(form, error)
        return _review_page(request, defeat_form=form, status=_refused_status(error))
    messages.success(
        request,
        (_("Defeat approved: %(name)s") if approve else _("Defeat rejected: %(name)s")) % {"name": lead.name},
    )
    return redirect("sales:conflicts")


@require_POST
@require_capability("sales.manage")
def conflict_decide(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    conflict = selectors.pending_conflicts(viewer=viewer).filter(pk=pk).first()
    if conflict is None:
        raise Http404
    form = ConflictDecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose who keeps the lead."))
        return redirect("sales:conflicts")
    try:
        decided = services.conflict_decide(
            actor=viewer, conflict=conflict, give_to_claimant=form.cleaned_data["outcome"] == "claimant"
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("sales:conflicts")
    messages.success(
        request, _("%(name)s: %(outcome)s.") % {"name": conflict.lead.name, "outcome": decided.get_status_display()}
    )
    return redirect("sales:conflicts")


# --- duty ------------------------------------------------------------------------------------------------


def _duty_rows(viewer: Membership) -> list[dict[str, Any]]:
    """Each seller with their duty row (none yet: not on duty, the round-robin skips them); a
    consultant sees only their own line."""
    people = list(sellers())
    if not viewer.can("sales.manage"):
        people = [p for p in people if p.pk == viewer.pk]
    duties = {d.member_id: d for d in ConsultantDuty.objects.filter(member__in=people)}
    return [
        {
            "member": person,
            "on_duty": bool(duties.get(person.pk) and duties[person.pk].on_duty),
            "brands": duties[person.pk].brands if person.pk in duties else [],
            "last_assigned_at": duties[person.pk].last_assigned_at if person.pk in duties else None,
        }
        for person in people
    ]


@require_capability("sales.work")
def duty(request: HttpRequest) -> HttpResponse:
    """Who takes new leads (在岗) and their brands; a consultant switches only themself."""
    viewer = membership_of(request)
    status = 200
    form: DutyForm | None = None
    if request.method == "POST":
        form = DutyForm(request.POST)
        if form.is_valid():
            member = form.cleaned_data["member"]
            try:
                services.duty_set(
                    actor=viewer,
                    member=member,
                    on_duty=form.cleaned_data["on_duty"],
                    brands=form.cleaned_data.get("brands") or [],
                )
            except ApplicationError as error:
                if isinstance(error, NotAllowed):
                    return _forbidden(request)
                form_errors_from(form, error)
                status = 400
            else:
                state = _("on duty") if form.cleaned_data["on_duty"] else _("off duty")
                messages.success(request, _("%(name)s is %(state)s.") % {"name": member.display_name, "state": state})
                return redirect("sales:duty")
        else:
            status = 400
    return render(
        request,
        "sales/manager_duty.html",
        {"rows": _duty_rows(viewer), "form": form, "can_manage": viewer.can("sales.manage")},
        status=status,
    )


# --- the sales rules -------------------------------------------------------------------------------------


@require_capability("sales.manage")
def settings_page(request: HttpRequest) -> HttpResponse:
    """The dealership's sales rules, its defeat reasons and its demo vehicles."""
    viewer = membership_of(request)
    current = services.sales_settings()
    services.defeat_reasons_ensure()
    forms_: dict[str, Any] = {
        "settings_form": SalesSettingsForm(instance=current),
        "reason_form": DefeatReasonForm(),
        "vehicle_form": DemoVehicleForm(),
    }
    status = 200
    if request.method == "POST":
        which = request.POST.get("form")
        form: Any = None
        try:
            if which == "settings":
                form = forms_["settings_form"] = SalesSettingsForm(request.POST, instance=services.sales_settings())
                if form.is_valid():
                    services.sales_settings_update(
                        actor=viewer, data={f: form.cleaned_data[f] for f in SalesSettingsForm.Meta.fields}
                    )
                    messages.success(request, _("Saved."))
                    return redirect("sales:settings")
            elif which == "reason":
                form = forms_["reason_form"] = DefeatReasonForm(request.POST)
                if form.is_valid():
                    services.defeat_reason_save(actor=viewer, **form.cleaned_data)
                    messages.success(request, _("Defeat reason saved."))
                    return redirect("sales:settings")
            elif which == "vehicle":
                form = forms_["vehicle_form"] = DemoVehicleForm(request.POST)
                if form.is_valid():
                    services.demo_vehicle_save(actor=viewer, data=form.cleaned_data)
                    messages.success(request, _("Demo vehicle saved."))
                    return redirect("sales:settings")
            elif which == "vehicle_state":
                state = DemoVehicleStateForm(request.POST)
                if state.is_valid():
                    services.demo_vehicle_save(
                        actor=viewer,
                        vehicle=state.cleaned_data["vehicle"],
                        data={"is_active": state.cleaned_data["is_active"]},
                    )
                    messages.success(request, _("Demo vehicle saved."))
                    return redirect("sales:settings")
                messages.error(request, _("That demo vehicle cannot be changed."))
            else:
                messages.error(request, _("Nothing to save."))
        except ApplicationError as error:
            if form is None:
                messages.error(request, error.message)
            else:
                form_errors_from(form, error)
            status = _refused_status(error)
        else:
            status = 400
    return render(
        request,
        "sales/manager_settings.html",
        {
            **forms_,
            "reasons": list(DefeatReason.objects.order_by("position", "id")),
            "vehicles": list(selectors.demo_vehicles(active=False)),
        },
        status=status,
    )
