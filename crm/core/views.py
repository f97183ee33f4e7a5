"""The staff home page, health check and error pages."""

from __future__ import annotations

import sys

from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.api.errors import error_body
from crm.core.errors import ApplicationError
from crm.core.extensions import fragments_shown
from crm.core.forms import NotificationFilterForm
from crm.core.home import home_cards
from crm.core.models import NightlyRun, Notification
from crm.core.notifications import inbox, kind_choices, notifications_mark_read
from crm.core.paging import page_of
from crm.core.services import nightly_request_run
from crm.tenancy.audit import RequestMeta
from crm.tenancy.decorators import membership_of, require_capability
from crm.tenancy.models import Membership


def home(request: HttpRequest) -> HttpResponse:
    membership: Membership = membership_of(request)
    cards = fragments_shown(home_cards, viewer=membership)
    context: dict[str, object] = {"cards": cards}
    for card in cards:  # each card's figures join the page's context, under their own names
        context.update(card["context"])
    if membership.can("nightly.run"):
        context["recent_runs"] = NightlyRun.objects.order_by("-started_at")[:5]
    return render(request, "home.html", context)


@require_capability("nightly.run")
def nightly_runs(request: HttpRequest) -> HttpResponse:
    """Managers see every night's run per step, and can start one now."""
    membership: Membership = membership_of(request)
    if request.method == "POST":
        try:
            nightly_request_run(actor=membership, meta=RequestMeta.from_request(request))
            messages.success(request, _("The nightly run is queued; this page shows its progress."))
        except ApplicationError as error:
            messages.error(request, error.message)
        return redirect("nightly_runs")
    runs = list(NightlyRun.objects.order_by("-started_at", "-id")[:200])
    running = any(run.status == NightlyRun.Status.RUNNING for run in runs)
    template = "core/_nightly_table.html" if request.htmx else "core/nightly_runs.html"  # type: ignore[attr-defined]
    return render(request, template, {"runs": runs, "running": running})


NOTIFICATIONS_PER_PAGE = 50


def notifications(request: HttpRequest) -> HttpResponse:
    """The staff member's notifications: unread urgent ones first, then newest first, filtered by
    kind and unread. Reading the page marks nothing; opening one, or "mark all read", does."""
    membership: Membership = membership_of(request)
    form = NotificationFilterForm(request.GET or None)
    kind, unread = "", None
    if form.is_bound and form.is_valid():
        kind, unread = form.cleaned_data["kind"], (True if form.cleaned_data["unread"] else None)
    items = inbox(member=membership, kind=kind, unread=unread).prefetch_related("items")
    if form.is_bound and not form.is_valid():
        items = items.none()
    page = page_of(request, items, size=NOTIFICATIONS_PER_PAGE)
    labels = dict(kind_choices())
    context = {"form": form, "page": page, "kind": kind, "kind_label": labels.get(kind, ""), **page.context()}
    return render(request, "core/notifications.html", context)


@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark all read: every unread notification, or those of the kind the page was filtered by."""
    membership: Membership = membership_of(request)
    form = NotificationFilterForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Unknown kind."))
        return redirect("notifications")
    kind = form.cleaned_data["kind"]
    marked = notifications_mark_read(member=membership, kind=kind)
    messages.success(request, _("%(count)d marked read.") % {"count": marked})
    return redirect(f"{reverse('notifications')}?{urlencode({'kind': kind})}" if kind else reverse("notifications"))


@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    membership: Membership = membership_of(request)
    notification = get_object_or_404(Notification, pk=pk, recipient=membership)
    notifications_mark_read(member=membership, ids=[notification.pk])
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("notifications")


def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Follow a notification's link; opening it marks it read (only the recipient's own)."""
    membership: Membership = membership_of(request)
    notification = get_object_or_404(Notification, pk=pk, recipient=membership)
    notifications_mark_read(member=membership, ids=[notification.pk])
    if notification.url and url_has_allowed_host_and_scheme(notification.url, allowed_hosts=None):
        return redirect(notification.url)
    return redirect("notifications")


# The error pages: JSON in the API's error shape under /api/, the product's own pages elsewhere.


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def error_400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A request Django refused before any view (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a bad host…)."""
    too_large = isinstance(exception, RequestDataTooBig)
    status = 413 if too_large else 400
    if _is_api(request):
        if too_large:
            body = error_body("request_too_large", _("The request body is too large."))
        else:
            body = error_body("bad_request", _("The request could not be read."))
        return JsonResponse(body, status=status)
    return HttpResponse(loader.get_template("400.html").render({"too_large": too_large}), status=status)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", _("Not found.")), status=404)
    return render(request, "404.html", status=404)


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("permission_denied", _("You do not have permission to do this.")), status=403)
    return render(request, "403.html", status=403)


def error_500(request: HttpRequest) -> HttpResponse:
    """An unhandled error. The database being unreachable is a 503 with Retry-After (try again soon),
    not a 500; the page is rendered without the request's context (which would need the database)."""
    unavailable = isinstance(sys.exc_info()[1], OperationalError | InterfaceError)
    status = 503 if unavailable else 500
    if _is_api(request):
        if unavailable:
            body = error_body("service_unavailable", _("The service is unavailable for a moment; try again shortly."))
        else:
            body = error_body("server_error", _("Something went wrong; it has been logged."))
        response: HttpResponse = JsonResponse(body, status=status)
    else:
        response = HttpResponse(
            loader.get_template("503.html" if unavailable else "500.html").render({}), status=status
        )
    if unavailable:
        response["Retry-After"] = "30"
    return response
