"""Staff pages of follow-ups (回访): my queue today and the pool, one follow-up with its outcome form,
the month calendar, the list with filters, the manager's team figures, planning a call by hand,
and the dealership's rules. Every write goes through followups.services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.core.errors import ApplicationError, NotAllowed
from crm.core.forms import form_errors_from
from crm.core.paging import page_of
from crm.core.period import Period
from crm.tenancy.decorators import membership_of, require_capability
from crm.tenancy.models import Membership
from customers.models import Customer
from customers.selectors import customer_masked_value, customer_visible_to
from followups import selectors, services
from followups.forms import (
    POOL,
    AssignForm,
    CalendarForm,
    CancelForm,
    HandOverForm,
    ListFilterForm,
    OutcomeForm,
    PlanForm,
    QueuePersonForm,
    SettingsForm,
    TeamPeriodForm,
)
from followups.models import Disposition, Followup, Reason
from followups.subjects import subject_url

PAGE_SIZE = 50
# the one-click outcomes of the queue; the others need notes or a date: the detail page has them
QUICK_OUTCOMES = [Disposition.SATISFIED, Disposition.NO_ANSWER, Disposition.APPOINTMENT]


def _can_see(viewer: Membership) -> bool:
    return viewer.can("followups.work") or viewer.can("followups.view_all")


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "403.html", status=403)


def _may_assign(viewer: Membership) -> bool:
    """Who may hand a follow-up over (the service's own rule)."""
    return viewer.can("followups.manage") or (viewer.can("followups.view_all") and viewer.can("followups.work"))


def _visible_followup(viewer: Membership, pk: int) -> Followup:
    try:
        return selectors.followup_get_visible(viewer=viewer, followup_id=pk)
    except Followup.DoesNotExist:
        raise Http404 from None


def _with_mobiles(viewer: Membership, followups: list[Followup]) -> list[tuple[Followup, str]]:
    return [(f, customer_masked_value(viewer=viewer, customer=f.customer, field="mobile")) for f in followups]


def _safe_next(request: HttpRequest, target: str) -> str | None:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


# --- My follow-ups today ---------------------------------------------------------------------------


@require_GET
def today(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    if not _can_see(viewer):
        return _forbidden(request)
    form = QueuePersonForm(request.GET or None)
    holder: Membership | None = None
    tab = "mine"
    if form.is_valid():
        tab = form.cleaned_data.get("tab") or "mine"
        holder = form.cleaned_data.get("assignee")
        if holder is not None and not viewer.can("followups.manage"):
            messages.info(request, _("Only managers can open a colleague's queue; this is yours."))
            holder = None
    elif request.GET:
        messages.warning(request, _("That queue cannot be shown; this is yours."))
    if tab == "pool" and not viewer.can("followups.view_all"):
        tab = "mine"
    if tab == "mine" and holder is None and not viewer.can("followups.work"):
        tab = "pool"  # auditors hold no follow-ups of their own
    on = timezone.localdate()
    pool = selectors.followup_pool(viewer=viewer, on=on)
    if tab == "pool":
        rows = list(pool[:200])
    else:
        rows = list(selectors.followup_queue(viewer=viewer, on=on, assignee=holder)[:200])
    return render(
        request,
        "followups/today.html",
        {
            "form": form,
            "tab": tab,
            "holder": holder,
            "rows": _with_mobiles(viewer, rows),
            "today": on,
            "pool_count": pool.count() if viewer.can("followups.view_all") else None,
            "quick_outcomes": [(d.value, d.label) for d in QUICK_OUTCOMES],
            "can_work": viewer.can("followups.work"),
            "can_take": _may_assign(viewer),
            "can_pick_person": viewer.can("followups.manage"),
        },
    )


# --- One follow-up -----------------------------------------------------------------------------------


def _detail_page(
    request: HttpRequest,
    followup: Followup,
    *,
    outcome_form: OutcomeForm | None = None,
    assign_form: AssignForm | None = None,
    cancel_form: CancelForm | None = None,
    status: int = 200,
) -> HttpResponse:
    viewer = membership_of(request)
    context: dict[str, Any] = {
        "followup": followup,
        "mobile": customer_masked_value(viewer=viewer, customer=followup.customer, field="mobile"),
        "attempts": list(selectors.followup_attempts(followup=followup)),
        "today": timezone.localdate(),
        "can_work": services.may_work(viewer, followup),
        "can_assign": _may_assign(viewer),
        "can_cancel": viewer.can("followups.manage"),
        "outcome_form": outcome_form or OutcomeForm(initial={"next": request.GET.get("next", "")}),
        "assign_form": assign_form or AssignForm(initial={"assignee": followup.assignee_id}),
        "cancel_form": cancel_form or CancelForm(),
        "callback": Disposition.CALLBACK.value,
        # what the call is about lives in another app (a sales lead): where that work is done
        "subject_url": subject_url(followup),
    }
    return render(request, "followups/detail.html", context, status=status)


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    if not _can_see(viewer):
        return _forbidden(request)
    return _detail_page(request, _visible_followup(viewer, pk))


def _refused_status(error: ApplicationError) -> int:
    return 403 if isinstance(error, NotAllowed) else 400


@require_POST
@require_capability("followups.work")
def outcome(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    followup = _visible_followup(viewer, pk)
    form = OutcomeForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            attempt, _created = services.followup_log_outcome(
                actor=viewer,
                followup=followup,
                disposition=data["disposition"],
                notes=data.get("notes") or "",
                callback_on=data.get("callback_on"),
            )
        except ApplicationError as error:
            form_errors_from(form, error)
            return _detail_page(request, followup, outcome_form=form, status=_refused_status(error))
        messages.success(
            request,
            _("%(customer)s: “%(outcome)s” recorded.")
            % {"customer": followup.customer.name, "outcome": attempt.get_disposition_display()},
        )
        return redirect(_safe_next(request, data.get("next") or "") or reverse("followups:detail", args=[followup.pk]))
    return _detail_page(request, followup, outcome_form=form, status=400)


@require_POST
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    if not _can_see(viewer):
        return _forbidden(request)
    followup = _visible_followup(viewer, pk)
    if not _may_assign(viewer):
        return _forbidden(request)
    form = AssignForm(request.POST)
    if form.is_valid():
        try:
            services.followup_assign(actor=viewer, followup=followup, assignee=form.cleaned_data.get("assignee"))
        except ApplicationError as error:
            form_errors_from(form, error)
            return _detail_page(request, followup, assign_form=form, status=_refused_status(error))
        messages.success(request, _("Handed over."))
        return redirect("followups:detail", followup.pk)
    return _detail_page(request, followup, assign_form=form, status=400)


@require_POST
def take(request: HttpRequest, pk: int) -> HttpResponse:
    """From the pool: the follow-up is mine now."""
    viewer = membership_of(request)
    if not _can_see(viewer):
        return _forbidden(request)
    followup = _visible_followup(viewer, pk)
    if not _may_assign(viewer):
        return _forbidden(request)
    try:
        services.followup_assign(actor=viewer, followup=followup, assignee=viewer)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("%(customer)s is in your queue now.") % {"customer": followup.customer.name})
    return redirect(_safe_next(request, request.POST.get("next", "")) or reverse("followups:today") + "?tab=pool")


@require_POST
@require_capability("followups.manage")
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    followup = _visible_followup(viewer, pk)
    form = CancelForm(request.POST)
    if form.is_valid():
        try:
            services.followup_cancel(actor=viewer, followup=followup, note=form.cleaned_data["note"])
        except ApplicationError as error:
            form_errors_from(form, error)
            return _detail_page(request, followup, cancel_form=form, status=_refused_status(error))
        messages.success(request, _("Follow-up cancelled."))
        return redirect("followups:detail", followup.pk)
    return _detail_page(request, followup, cancel_form=form, status=400)


# --- Calendar and list ------------------------------------------------------------------------------


@require_GET
def calendar(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    if not _can_see(viewer):
        return _forbidden(request)
    form = CalendarForm(request.GET or None, viewer=viewer)
    today_ = timezone.localdate()
    month = today_.replace(day=1)
    who = "" if viewer.can("followups.work") else "team"
    if form.is_valid():
        month = form.cleaned_data.get("month") or month
        who = form.cleaned_data.get("assignee") or who
    elif request.GET:
        messages.warning(request, _("That month or person cannot be shown; showing this month."))
    assignee: Membership | None
    if who == "team":
        assignee = None
    elif who:
        assignee = form.people[who]
    else:
        assignee = viewer
    cal = selectors.followup_calendar(viewer=viewer, month=month, assignee=assignee)
    return render(
        request,
        "followups/calendar.html",
        {
            "form": form,
            "cal": cal,
            "today": today_,
            "who": who,
            # the list shows "mine" as what I hold; the team as everything
            "list_holder": "" if who == "team" else str(assignee.pk if assignee else ""),
        },
    )


@require_GET
def followup_list(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    if not _can_see(viewer):
        return _forbidden(request)
    form = ListFilterForm(request.GET or None)
    filters = selectors.FollowupFilters()
    status = 200
    if form.is_valid():
        data = form.cleaned_data
        holder = data.get("assignee") or ""
        filters = selectors.FollowupFilters(
            status=data.get("status") or "",
            reason=data.get("reason") or "",
            assignee=form.people.get(holder) if holder != POOL else None,
            pool=holder == POOL,
            customer_id=data.get("customer"),
            scheduled_from=data.get("scheduled_from"),
            scheduled_to=data.get("scheduled_to"),
            overdue=bool(data.get("overdue")),
            sort=data.get("sort") or "scheduled",
        )
    elif request.GET:
        status = 400
    rows: list[Followup] = []
    page_context: dict[str, Any] = {}
    if status == 200:
        page = page_of(request, selectors.followup_list(viewer=viewer, filters=filters), size=PAGE_SIZE)
        rows, page_context = page.items, page.context()
    return render(
        request,
        "followups/list.html",
        {
            "form": form,
            "rows": _with_mobiles(viewer, rows),
            "today": timezone.localdate(),
            "sees_all": viewer.can("followups.view_all"),
            **page_context,
        },
        status=status,
    )


# --- The manager's view -----------------------------------------------------------------------------


def _team_page(request: HttpRequest, *, hand_over_form: HandOverForm | None = None, status: int = 200) -> HttpResponse:
    viewer = membership_of(request)
    on = timezone.localdate()
    query = request.GET.copy()
    query.setdefault("start", str(on - timedelta(days=29)))
    query.setdefault("end", str(on))
    form = TeamPeriodForm(query)
    figures = None
    pool_open = 0
    by_reason: list[dict[str, Any]] = []
    if form.is_valid():
        figures = selectors.followup_team_figures(
            viewer=viewer, period=Period(form.cleaned_data["start"], form.cleaned_data["end"]), on=on
        )
        pool = next((p for p in figures.people if p.member is None), None)
        pool_open = pool.due_today + pool.overdue + pool.upcoming if pool else 0
        by_reason = [{**row, "label": Reason(row["reason"]).label} for row in figures.by_reason]
    else:
        status = max(status, 400)
    return render(
        request,
        "followups/team.html",
        {
            "form": form,
            "figures": figures,
            "pool_open": pool_open,
            "by_reason": by_reason,
            "can_manage": viewer.can("followups.manage"),
            "hand_over_form": hand_over_form or HandOverForm(),
        },
        status=status,
    )


@require_GET
@require_capability("followups.view_all")
def team(request: HttpRequest) -> HttpResponse:
    return _team_page(request)


@require_POST
@require_capability("followups.manage")
def hand_over(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    form = HandOverForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            moved = services.followups_hand_over(
                actor=viewer, from_member=data["from_member"], to_member=data.get("to_member")
            )
        except ApplicationError as error:
            form_errors_from(form, error)
            return _team_page(request, hand_over_form=form, status=_refused_status(error))
        to = data.get("to_member")
        messages.success(
            request,
            _("%(n)s open follow-ups of %(from)s went to %(to)s.")
            % {"n": moved, "from": data["from_member"].display_name, "to": to.display_name if to else _("the pool")},
        )
        return redirect("followups:team")
    return _team_page(request, hand_over_form=form, status=400)


# --- Planning by hand, and the rules ------------------------------------------------------------------


@require_capability("followups.work")
def plan(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    raw = request.GET.get("customer", "")
    customer: Customer | None = None
    if raw.isdigit() and len(raw) < 19:
        customer = customer_visible_to(viewer=viewer).filter(pk=int(raw)).first()
        if customer is None:
            raise Http404
    if customer is None:
        messages.error(request, _("Plan a follow-up from the customer's page."))
        return render(request, "followups/plan.html", {"form": None, "customer": None}, status=400)
    may_assign = viewer.can("followups.view_all")
    form = PlanForm(
        request.POST or None,
        customer=customer,
        may_assign=may_assign,
        initial={"due_from": timezone.localdate() + timedelta(days=1)},
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                followup = services.followup_create(
                    actor=viewer,
                    customer=customer,
                    reason=data["reason"],
                    due_from=data["due_from"],
                    due_until=data.get("due_until"),
                    vehicle=data.get("vehicle"),
                    channel=data["channel"],
                    note=data.get("note") or "",
                    assignee=data.get("assignee") if may_assign else None,
                )
            except ApplicationError as error:
                form_errors_from(form, error)
                status = _refused_status(error)
            else:
                messages.success(request, _("Follow-up planned for %(day)s.") % {"day": followup.due_from})
                return redirect("followups:detail", followup.pk)
    return render(request, "followups/plan.html", {"form": form, "customer": customer}, status=status)


@require_capability("followups.manage")
def settings_page(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    form = SettingsForm(request.POST or None, instance=selectors.followup_settings_current())
    if request.method == "POST" and form.is_valid():
        try:
            services.followup_settings_update(actor=viewer, data={f: form.cleaned_data[f] for f in form.Meta.fields})
        except ApplicationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect("followups:settings")
    return render(request, "followups/settings.html", {"form": form}, status=400 if form.errors else 200)
