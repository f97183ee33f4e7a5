"""The public complaint form and status check of a dealership: no sign-in, rate-limited, a honeypot
against bots, made for phones. /c/<dealership code>/ and /c/<dealership code>/status/."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from complaints import selectors, services
from complaints.forms import PublicComplaintForm, PublicStatusForm
from complaints.models import CUSTOMER_STATE_OF_STATUS, Channel, CustomerState, Status, Ticket
from crm.core.errors import ApplicationError
from crm.core.forms import form_errors_from
from crm.core.ratelimit import attempt_over_limit, client_address
from crm.tenancy.context import tenant_context
from crm.tenancy.middleware import public_language_activate
from crm.tenancy.models import Tenant
from customers.models import Vehicle
from customers.validators import normalize_cn_mobile, normalize_plate

SUBMISSIONS_PER_HOUR = 5
LOOKUPS_PER_HOUR = 20
SESSION_ACK = "crm_complaint_ack"


def _tenant(request: HttpRequest, code: str) -> Tenant:
    """The active dealership the link names; its page speaks the dealership's language."""
    tenant = Tenant.objects.filter(code=code, is_active=True).first()
    if tenant is None:
        raise Http404
    public_language_activate(request, tenant)
    return tenant


def _over_limit(request: HttpRequest, what: str, tenant: Tenant, limit: int) -> bool:
    """Count this client's attempts per dealership and clock hour; True once over `limit`."""
    key = f"public:{what}:{tenant.pk}:{client_address(request)}"
    return attempt_over_limit(key=key, limit=limit, window=timedelta(hours=1))


@login_not_required
def complaint_form(request: HttpRequest, code: str) -> HttpResponse:
    tenant = _tenant(request, code)
    with tenant_context(tenant.pk):
        settings = services.complaint_settings()
        if not settings.public_form_enabled:
            return render(request, "complaints/public/closed.html", {"tenant": tenant}, status=404)
        services.categories_ensure()
        form = PublicComplaintForm(request.POST or None)
        if request.method == "POST":
            if _over_limit(request, "complaint", tenant, SUBMISSIONS_PER_HOUR):
                form.add_error(None, _("Too many complaints from this connection; please call us or try again later."))
                return render(request, "complaints/public/form.html", {"tenant": tenant, "form": form}, status=429)
            if form.is_valid():
                data = form.cleaned_data
                if data.get("website"):  # the honeypot: looks accepted, nothing is stored
                    request.session[SESSION_ACK] = ""
                    return redirect("complaint_public_thanks", code=code)
                try:
                    ticket = services.ticket_open(
                        actor=None, data=_ticket_input(data), source=Ticket.Source.PUBLIC_FORM
                    )
                except ApplicationError as error:
                    form_errors_from(form, error)
                else:
                    request.session[SESSION_ACK] = ticket.number
                    return redirect("complaint_public_thanks", code=code)
        return render(request, "complaints/public/form.html", {"tenant": tenant, "form": form})


def _ticket_input(data: dict) -> services.TicketInput:
    vehicle = None
    if data.get("plate"):
        try:
            plate = normalize_plate(data["plate"])
            mobile = normalize_cn_mobile(data["contact_mobile"])
        except Exception:  # noqa: BLE001 - a plate or mobile we cannot read is just not linked
            plate = mobile = ""
        # link the vehicle only when it belongs to the person complaining (same mobile)
        vehicle = (
            Vehicle.objects.filter(plate=plate, customer__mobile=mobile).select_related("customer").first()
            if plate and mobile
            else None
        )
    description = data["description"]
    if data.get("plate") and vehicle is None:
        description += "\n\n" + _("Plate given: %(plate)s") % {"plate": data["plate"]}
    return services.TicketInput(
        contact_name=data["contact_name"],
        contact_mobile=data["contact_mobile"],
        channel=Channel.WEB_FORM,
        category=data["category"],
        subject=data["subject"],
        description=description,
        customer=vehicle.customer if vehicle else None,
        vehicle=vehicle,
    )


@login_not_required
def complaint_thanks(request: HttpRequest, code: str) -> HttpResponse:
    tenant = _tenant(request, code)
    number = request.session.get(SESSION_ACK)
    if number is None:
        return redirect("complaint_public_form", code=code)
    return render(request, "complaints/public/thanks.html", {"tenant": tenant, "number": number})


@login_not_required
def complaint_status(request: HttpRequest, code: str) -> HttpResponse:
    tenant = _tenant(request, code)
    form = PublicStatusForm(request.POST or None)
    ticket = None
    status = 200
    if request.method == "POST":
        if _over_limit(request, "status", tenant, LOOKUPS_PER_HOUR):
            form.add_error(None, _("Too many look-ups from this connection; please try again later."))
            status = 429
        elif form.is_valid():
            try:
                mobile = normalize_cn_mobile(form.cleaned_data["mobile"])
            except Exception:  # noqa: BLE001 - reported like a miss: no hint which part was wrong
                mobile = ""
            with tenant_context(tenant.pk):
                ticket = selectors.ticket_for_customer(number=form.cleaned_data["number"], mobile=mobile)
                if ticket is None:
                    form.add_error(None, _("No complaint matches this number and mobile."))
                else:
                    steps = _public_steps(ticket)
                    return render(
                        request,
                        "complaints/public/status.html",
                        {"tenant": tenant, "form": form, "ticket": ticket, "steps": steps},
                    )
    return render(request, "complaints/public/status.html", {"tenant": tenant, "form": form}, status=status)


def _public_steps(ticket: Ticket) -> list[dict[str, object]]:
    """The customer's four states (never the staff's steps), the ticket's one current."""
    order = list(CustomerState)
    index = order.index(CUSTOMER_STATE_OF_STATUS[Status(ticket.status)])
    return [{"label": s.label, "done": i < index, "current": i == index} for i, s in enumerate(order)]
