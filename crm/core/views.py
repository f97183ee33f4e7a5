"""The staff home page, health check and error pages."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError
from crm.core.extensions import fragments_shown
from crm.core.home import home_cards
from crm.core.models import NightlyRun
from crm.core.notifications import inbox, notifications_mark_read
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


def notifications(request: HttpRequest) -> HttpResponse:
    """The staff member's notifications, newest first; opening the page marks them read."""
    membership: Membership = membership_of(request)
    if request.method == "POST":
        notifications_mark_read(member=membership)
        return redirect("notifications")
    items = list(inbox(member=membership)[:100])
    unread = [n.pk for n in items if n.read_at is None]
    response = render(request, "core/notifications.html", {"items": items, "unread": set(unread)})
    notifications_mark_read(member=membership, ids=unread)
    return response


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and docker compose."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "ok"})
    except Exception:  # noqa: BLE001 - report, never raise, from a health check
        return JsonResponse({"status": "database unavailable"}, status=503)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    return render(request, "500.html", status=500)


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)
