"""Staff pages of complaints: the queue, a ticket with its timeline and quick actions, a new ticket,
manager metrics and settings. Every write goes through complaints.services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from django.views.decorators.http import require_POST

from complaints import selectors, services
from complaints.forms import (
    AdvanceForm,
    AssignForm,
    AttachForm,
    CategoryForm,
    CloseForm,
    MetricsForm,
    NoteForm,
    QueueForm,
    SettingsForm,
    SlaPolicyForm,
    TicketForm,
)
from complaints.models import ComplaintCategory, SlaPolicy, Status, Ticket, TicketWatcher
from complaints.sla import DEFAULT_TARGETS
from crm.core.errors import ApplicationError
from crm.core.forms import form_errors_from
from crm.core.paging import page_of
from crm.tenancy.audit import RequestMeta
from crm.tenancy.decorators import membership_of, require_capability
from crm.tenancy.models import Membership

PAGE_SIZE = 50
QUEUE_LABELS = {
    "mine": gettext_lazy("Mine"),
    "team": gettext_lazy("All open"),
    "unassigned": gettext_lazy("Unassigned"),
    "soon": gettext_lazy("Breaching soon"),
    "breached": gettext_lazy("Breached"),
    "waiting": gettext_lazy("Waiting on customer"),
    "follow_up": gettext_lazy("Follow-up due"),
    "closed": gettext_lazy("Closed"),
    "all": gettext_lazy("All"),
}


def _can_use(viewer: Membership) -> bool:
    return viewer.can("complaints.view_all") or viewer.can("complaints.work")


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "403.html", status=403)


def contact_mobile_for(viewer: Membership, ticket: Ticket) -> str:
    return selectors.ticket_contact_mobile(viewer=viewer, ticket=ticket)


def queue(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    if not _can_use(viewer):
        return _forbidden(request)
    form = QueueForm(request.GET or None)
    filters = form.filters() if form.is_valid() else selectors.TicketFilters()
    if not request.GET.get("queue") and not viewer.can("complaints.work"):
        filters.queue = "team"  # auditors have no tickets of their own
    now = timezone.now()
    page = page_of(request, selectors.ticket_queue(viewer=viewer, filters=filters, now=now), size=PAGE_SIZE)
    rows = [(t, contact_mobile_for(viewer, t), _clock_state(t, now)) for t in page.items]
    counts = selectors.queue_counts(viewer=viewer, now=now)
    tabs = [(key, QUEUE_LABELS[key], counts[key]) for key in selectors.QUEUES]
    return render(
        request,
        "complaints/queue.html",
        {
            "form": form,
            "rows": rows,
            "tabs": tabs,
            "current": filters.queue,
            **page.context(),
            "can_open": viewer.can("complaints.work"),
        },
    )


def _clock_state(ticket: Ticket, now: Any) -> dict[str, Any]:
    """Which target is running, when it is due, and how it stands: ok, soon, breached, paused, done."""
    if not ticket.is_open:
        met = ticket.resolved_at is not None and ticket.resolved_at <= ticket.resolution_due_at
        return {
            "label": pgettext("sla clock", "Resolution"),
            "due": ticket.resolution_due_at,
            "state": "met" if met else "missed",
        }
    if ticket.first_response_at is None:
        label, due = pgettext("sla clock", "First response"), ticket.response_due_at
    else:
        label, due = pgettext("sla clock", "Resolution"), ticket.resolution_due_at
    if ticket.paused_at is not None:
        state = "paused"
    elif due <= now:
        state = "breached"
    elif due <= now + selectors.SOON:
        state = "soon"
    else:
        state = "ok"
    return {"label": label, "due": due, "state": state}


def ticket_new(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    if not viewer.can("complaints.work"):
        return _forbidden(request)
    services.categories_ensure()
    form = TicketForm(request.POST or None, initial={"channel": "phone"})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = services.ticket_open(
                actor=viewer,
                data=services.TicketInput(
                    contact_name=data["contact_name"],
                    contact_mobile=data["contact_mobile"],
                    channel=data["channel"],
                    category=data["category"],
                    severity=data["severity"],
                    subject=data["subject"],
                    description=data["description"],
                    assignee=data.get("assignee"),
                ),
            )
        except ApplicationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, _("Ticket %(number)s opened.") % {"number": ticket.number})
            return redirect("complaints:detail", ticket.pk)
    return render(request, "complaints/ticket_new.html", {"form": form})


def _visible_ticket(request: HttpRequest, pk: int) -> tuple[Membership, Ticket]:
    viewer = membership_of(request)
    if not _can_use(viewer):
        raise Http404
    return viewer, get_object_or_404(selectors.ticket_visible_to(viewer=viewer), pk=pk)


def ticket_detail(request: HttpRequest, pk: int, **forms_: Any) -> HttpResponse:
    viewer, ticket = _visible_ticket(request, pk)
    next_step = services.NEXT_STEP.get(ticket.status)
    advance_form = forms_.get("advance_form")
    if advance_form is None and next_step:
        form_class = CloseForm if next_step == Status.CLOSED else AdvanceForm
        advance_form = form_class(initial={"to_status": next_step})
    context = {
        "ticket": ticket,
        "contact_mobile": contact_mobile_for(viewer, ticket),
        "mobile_masked": not selectors.ticket_shows_full_mobile(viewer=viewer, ticket=ticket),
        "can_reveal": viewer.can("customers.reveal_pii"),
        "clock": _clock_state(ticket, timezone.now()),
        "steps": _step_track(ticket),
        "next_step": next_step,
        "next_label": Status(next_step).label if next_step else "",
        "advance_form": advance_form,
        "note_form": forms_.get("note_form") or NoteForm(),
        "assign_form": forms_.get("assign_form") or AssignForm(initial={"assignee": ticket.assignee_id}),
        "attach_form": forms_.get("attach_form") or AttachForm(),
        "reopen_form": forms_.get("reopen_form") or NoteForm(),
        "events": list(selectors.ticket_events(ticket=ticket)),
        "attachments": list(ticket.attachments.order_by("created_at")),
        "watching": TicketWatcher.objects.filter(ticket=ticket, membership=viewer).exists(),
        "watchers": list(TicketWatcher.objects.filter(ticket=ticket).select_related("membership__user")),
        "can_work": viewer.can("complaints.work"),
        "can_assign": viewer.can("complaints.manage") or ticket.assignee_id in (None, viewer.pk),
    }
    status = 400 if any(f is not None and f.errors for f in forms_.values()) else 200
    return render(request, "complaints/ticket_detail.html", context, status=status)


@require_POST
def ticket_reveal(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: swap the masked contact mobile for the full one, recording the reveal in the audit log."""
    viewer, ticket = _visible_ticket(request, pk)
    try:
        value = services.ticket_reveal_mobile(viewer=viewer, ticket=ticket, meta=RequestMeta.from_request(request))
    except ApplicationError as error:
        return render(request, "customers/_revealed.html", {"error": error.message}, status=error.status_code)
    return render(request, "customers/_revealed.html", {"value": value})


def _step_track(ticket: Ticket) -> list[dict[str, Any]]:
    order = [Status.GREET, Status.LISTEN, Status.CALM, Status.HANDLE, Status.CLOSED, Status.FOLLOWED_UP]
    current = Status.LISTEN if ticket.status == Status.REOPENED else Status(ticket.status)
    index = order.index(current)
    return [
        {"key": s, "label": s.label, "state": "done" if i < index else ("current" if i == index else "todo")}
        for i, s in enumerate(order)
    ]


def _act(request: HttpRequest, pk: int, action: Any, success: str, form_name: str, form: Any) -> HttpResponse:
    """Run a quick action; on a refused input show the ticket again with the errors on the form."""
    viewer, ticket = _visible_ticket(request, pk)
    if not viewer.can("complaints.work"):
        return _forbidden(request)
    if form is not None and not form.is_valid():
        return ticket_detail(request, pk, **{form_name: form})
    try:
        action(viewer, ticket, form.cleaned_data if form is not None else {})
    except ApplicationError as error:
        if form is None:
            messages.error(request, error.message)
            return redirect("complaints:detail", pk)
        form_errors_from(form, error)
        return ticket_detail(request, pk, **{form_name: form})
    messages.success(request, success)
    return redirect("complaints:detail", pk)


@require_POST
def ticket_advance(request: HttpRequest, pk: int) -> HttpResponse:
    to_status = request.POST.get("to_status", "")
    form = (CloseForm if to_status == Status.CLOSED else AdvanceForm)(request.POST)

    def run(viewer: Membership, ticket: Ticket, data: dict[str, Any]) -> None:
        closing = services.Closing.from_data(data) if data["to_status"] == Status.CLOSED else None
        services.ticket_advance(
            actor=viewer, ticket=ticket, to_status=data["to_status"], note=data.get("note") or "", closing=closing
        )

    label = Status(to_status).label if to_status in Status.values else ""
    return _act(request, pk, run, _("Moved to “%(step)s”.") % {"step": label}, "advance_form", form)


@require_POST
def ticket_note(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda viewer, ticket, data: services.ticket_note(actor=viewer, ticket=ticket, note=data["note"]),
        _("Note added."),
        "note_form",
        NoteForm(request.POST),
    )


@require_POST
def ticket_assign(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda viewer, ticket, data: services.ticket_assign(actor=viewer, ticket=ticket, assignee=data["assignee"]),
        _("Assigned."),
        "assign_form",
        AssignForm(request.POST),
    )


@require_POST
def ticket_take(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda viewer, ticket, data: services.ticket_assign(actor=viewer, ticket=ticket, assignee=viewer),
        _("The ticket is yours."),
        "assign_form",
        None,
    )


@require_POST
def ticket_pause(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda viewer, ticket, data: services.ticket_pause(
            actor=viewer, ticket=ticket, note=request.POST.get("note", "")
        ),
        _("Waiting on the customer: the SLA clocks are stopped."),
        "note_form",
        None,
    )


@require_POST
def ticket_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda viewer, ticket, data: services.ticket_resume(actor=viewer, ticket=ticket),
        _("Resumed: the SLA clocks run again."),
        "note_form",
        None,
    )


@require_POST
def ticket_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda viewer, ticket, data: services.ticket_reopen(actor=viewer, ticket=ticket, note=data["note"]),
        _("Reopened."),
        "reopen_form",
        NoteForm(request.POST),
    )


@require_POST
def ticket_watch(request: HttpRequest, pk: int) -> HttpResponse:
    watch = request.POST.get("watch") == "1"
    return _act(
        request,
        pk,
        lambda viewer, ticket, data: services.ticket_watch(actor=viewer, ticket=ticket, watch=watch),
        _("You will be told about this ticket.") if watch else _("You no longer watch this ticket."),
        "note_form",
        None,
    )


@require_POST
def ticket_attach(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda viewer, ticket, data: services.ticket_attach(actor=viewer, ticket=ticket, upload=data["file"]),
        _("File attached."),
        "attach_form",
        AttachForm(request.POST, request.FILES),
    )


def attachment_download(request: HttpRequest, pk: int, attachment_id: int) -> FileResponse:
    _viewer, ticket = _visible_ticket(request, pk)
    attachment = get_object_or_404(ticket.attachments.all(), pk=attachment_id)
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.original_name,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    # The body is the stored file, read from storage after the request's transaction: no row of
    # any dealership is read while streaming (the ticket was checked above).
    response.crm_tenant_safe = True  # type: ignore[attr-defined]
    return response


@require_capability("dashboards.view")
def metrics(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    today = timezone.localdate()
    form = MetricsForm(request.GET or {"start": today - timedelta(days=89), "end": today})
    figures = None
    if form.is_valid():
        figures = selectors.complaint_metrics(
            period=selectors.Period(form.cleaned_data["start"], form.cleaned_data["end"]), zone=membership.tenant.zone
        )
    return render(request, "complaints/metrics.html", {"form": form, "figures": figures})


@require_capability("complaints.manage")
def settings_page(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    settings = services.complaint_settings()
    services.categories_ensure()
    forms_: dict[str, Any] = {
        "settings_form": SettingsForm(
            initial={
                "reopen_window_days": settings.reopen_window_days,
                "follow_up_after_days": settings.follow_up_after_days,
                "public_form_enabled": settings.public_form_enabled,
            }
        ),
        "category_form": CategoryForm(),
        "policy_form": SlaPolicyForm(),
    }
    if request.method == "POST":
        which = request.POST.get("form")
        form: Any = None
        try:
            if which == "settings":
                form = forms_["settings_form"] = SettingsForm(request.POST)
                if form.is_valid():
                    services.complaint_settings_update(actor=membership, data=form.cleaned_data)
                    messages.success(request, _("Saved."))
                    return redirect("complaints:settings")
            elif which == "category":
                form = forms_["category_form"] = CategoryForm(request.POST)
                if form.is_valid():
                    services.category_save(actor=membership, **form.cleaned_data)
                    messages.success(request, _("Category saved."))
                    return redirect("complaints:settings")
            elif which == "policy":
                form = forms_["policy_form"] = SlaPolicyForm(request.POST)
                if form.is_valid():
                    data = form.cleaned_data
                    services.sla_policy_set(
                        actor=membership,
                        severity=data["severity"],
                        category=data.get("category"),
                        response_minutes=data["first_response_minutes"],
                        resolution_minutes=data["resolution_minutes"],
                    )
                    messages.success(request, _("SLA target saved."))
                    return redirect("complaints:settings")
        except ApplicationError as error:
            form_errors_from(form, error)
    policies = list(SlaPolicy.objects.select_related("category").order_by("severity", "category__position"))
    context = {
        **forms_,
        "settings": settings,
        "categories": list(ComplaintCategory.objects.order_by("position", "name")),
        "policies": policies,
        "defaults": [(severity, targets) for severity, targets in DEFAULT_TARGETS.items()],
        "public_url": request.build_absolute_uri(f"/c/{membership.tenant.code}/"),
    }
    return render(request, "complaints/settings.html", context)
