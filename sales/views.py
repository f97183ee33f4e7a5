"""The consultant's sales pages: my leads today, the lead list, capture, one lead with the forms
that work it (contact, invitation, test drive, quote, order, delivery, defeat, and a manager's
decisions), test drives, a printable quote and the showroom's walk-in log.

Every read is a selector of sales.selectors, every write one service of sales.services; a
service's field errors land on the form's fields. A consultant sees only their own leads and the
pool: any other lead (or its drive, quote or walk-in) is a 404, as if it did not exist. The
manager pages (funnel, pool, conflicts, duty, rules, assignment) are in manager_views.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.core.errors import ApplicationError
from crm.core.formatting import money
from crm.core.forms import form_errors_from
from crm.core.paging import page_of
from crm.tenancy.decorators import membership_of, require_capability
from crm.tenancy.models import Membership
from customers.selectors import customer_visible_to
from sales import selectors, services
from sales.forms import (
    AccessoryFormSet,
    AssignForm,
    ContactForm,
    DefeatDecideForm,
    DefeatForm,
    DeliverForm,
    InviteForm,
    LeadCaptureForm,
    LeadEditForm,
    LeadFilterForm,
    OrderForm,
    QuoteForm,
    ReopenForm,
    SlotDayForm,
    TestDriveBookForm,
    TestDriveRecordForm,
    WalkInForm,
)
from sales.models import OPEN_STAGES, DefeatStatus, Lead, Quote, Stage, TestDrive

PAGE_SIZE = 50
POOL_SHOWN = 10  # "my leads today" shows the newest pool leads; the pool page has them all


def _sees_sales(viewer: Membership) -> bool:
    return viewer.can("sales.work") or viewer.can("sales.view_all")


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "403.html", status=403)


def _refused_status(error: ApplicationError) -> int:
    return error.status_code if error.status_code in (400, 403, 409) else 400


def _safe_next(request: HttpRequest, target: str) -> str | None:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


def _visible_lead(viewer: Membership, pk: int) -> Lead:
    try:
        return selectors.lead_get_visible(viewer=viewer, lead_id=pk)
    except Lead.DoesNotExist:
        raise Http404 from None


def _with_mobiles(viewer: Membership, leads: list[Lead]) -> list[tuple[Lead, str]]:
    return [(lead, selectors.lead_mobile_shown(viewer=viewer, lead=lead)) for lead in leads]


def _visible_drive(viewer: Membership, pk: int) -> TestDrive:
    """A test drive of a lead the viewer may see (else 404)."""
    drive = TestDrive.objects.select_related("vehicle", "consultant__user").filter(pk=pk).first()
    if drive is None:
        raise Http404
    drive.lead = _visible_lead(viewer, drive.lead_id)
    return drive


# --- My leads today ---------------------------------------------------------------------------------


@require_GET
@require_capability("sales.work")
def today(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    on = timezone.localdate()
    due = list(selectors.leads_today(viewer=viewer, on=on)[:200])
    pool = selectors.lead_pool(viewer=viewer)
    return render(
        request,
        "sales/today.html",
        {
            "rows": _with_mobiles(viewer, due),
            "today": on,
            "pool_rows": _with_mobiles(viewer, list(pool[:POOL_SHOWN])),
            "pool_count": pool.count(),
        },
    )


# --- The lead list ----------------------------------------------------------------------------------


@require_GET
def lead_list(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    if not _sees_sales(viewer):
        return _forbidden(request)
    sees_all = viewer.can("sales.view_all")
    form = LeadFilterForm(request.GET or None, sees_all=sees_all)
    filters = selectors.LeadFilters()
    status = 200
    if form.is_valid():
        filters = form.filters()
    elif request.GET:
        status = 400
    rows: list[Lead] = []
    page_context: dict[str, Any] = {}
    if status == 200:
        page = page_of(request, selectors.lead_list(viewer=viewer, filters=filters), size=PAGE_SIZE)
        rows, page_context = page.items, page.context()
    return render(
        request,
        "sales/lead_list.html",
        {
            "form": form,
            "rows": _with_mobiles(viewer, rows),
            "today": timezone.localdate(),
            "sees_all": sees_all,
            "can_work": viewer.can("sales.work"),
            **page_context,
        },
        status=status,
    )


# --- Capture ----------------------------------------------------------------------------------------


def _capture_data(form: LeadCaptureForm, viewer: Membership) -> dict[str, Any]:
    data = dict(form.cleaned_data)
    referrer_id = data.pop("referrer", None)
    data["referrer"] = None
    if referrer_id is not None:
        referrer = customer_visible_to(viewer=viewer).filter(pk=referrer_id).first()
        if referrer is None:
            raise ApplicationError(
                _("The lead cannot be saved."),
                fields={"referrer": [_("No customer with this number that you may see.")]},
            )
        data["referrer"] = referrer
    if data.get("owner") is None:
        data.pop("owner", None)
    if data.get("appointment_at") is None:
        data.pop("appointment_at", None)
    return data


@require_capability("sales.work")
def lead_new(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    may_assign = viewer.can("sales.manage")
    initial = {"source": request.GET.get("source", "")}
    form = LeadCaptureForm(request.POST or None, may_assign=may_assign, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                captured = services.lead_capture(actor=viewer, data=_capture_data(form, viewer))
            except ApplicationError as error:
                form_errors_from(form, error)
                status = _refused_status(error)
            else:
                lead = captured.lead
                if captured.notice:
                    messages.info(request, captured.notice)
                elif captured.created:
                    messages.success(request, _("Lead of %(name)s captured.") % {"name": lead.name})
                else:
                    messages.info(
                        request, _("%(name)s had a lead already: the enquiry is on it.") % {"name": lead.name}
                    )
                if selectors.lead_visible_to(viewer=viewer).filter(pk=lead.pk).exists():
                    return redirect("sales:lead", lead.pk)
                return redirect("sales:lead_new")
    return render(request, "sales/lead_new.html", {"form": form}, status=status)


# --- One lead ---------------------------------------------------------------------------------------

# The action forms of the lead page, by the name the template knows each one by
ACTION_FORMS = ("contact", "invite", "order", "deliver", "defeat", "decide", "reopen", "assign")


def _lead_forms(lead: Lead, quotes: QuerySet[Quote], reasons: list[Any]) -> dict[str, forms.Form]:
    return {
        "contact": ContactForm(),
        "invite": InviteForm(),
        "order": OrderForm(quotes=quotes, initial={"quote": quotes.first()}),
        "deliver": DeliverForm(initial={"delivered_on": timezone.localdate()}),
        "defeat": DefeatForm(reasons=reasons),
        "decide": DefeatDecideForm(),
        "reopen": ReopenForm(),
        "assign": AssignForm(initial={"to": lead.owner_id}),
    }


def _actions(viewer: Membership, lead: Lead, has_quotes: bool) -> dict[str, bool]:
    """What the viewer may do with the lead now: only these forms are shown."""
    works = services.may_work(viewer, lead)
    is_open = lead.is_open
    manages = viewer.can("sales.manage")
    return {
        "work": works and is_open,
        "take": works and lead.in_pool and not manages,
        "edit": works and is_open,
        "contact": works and is_open,
        "invite": works and is_open,
        "test_drive": works and is_open,
        "quote": works and is_open,
        "order": works and is_open and has_quotes and lead.stage != Stage.ORDERED,
        "deliver": works and lead.stage == Stage.ORDERED,
        "defeat": works and is_open and lead.stage != Stage.ORDERED and lead.defeat_status != DefeatStatus.PENDING,
        "decide": manages and lead.defeat_status == DefeatStatus.PENDING,
        "reopen": manages and lead.stage == Stage.DEFEATED,
        "assign": manages and is_open,
    }


def _lead_page(
    request: HttpRequest, lead: Lead, *, bound: dict[str, forms.Form] | None = None, status: int = 200
) -> HttpResponse:
    viewer = membership_of(request)
    quotes = selectors.lead_quotes(lead=lead)
    reasons = services.defeat_reasons_ensure() if services.may_work(viewer, lead) else []
    page_forms = _lead_forms(lead, quotes, reasons) | (bound or {})
    quote_list = list(quotes)
    context: dict[str, Any] = {
        "lead": lead,
        "mobile": selectors.lead_mobile_shown(viewer=viewer, lead=lead),
        "history": list(selectors.lead_history(lead=lead)),
        "quotes": quote_list,
        "test_drives": list(selectors.lead_test_drives(lead=lead)),
        "visits": list(lead.visits.select_related("consultant__user").order_by("-arrived_at")[:50]),
        "can": _actions(viewer, lead, bool(quote_list)),
        "today": timezone.localdate(),
        "open_form": next(iter(bound)) if bound else "",
        **{f"{name}_form": form for name, form in page_forms.items()},
    }
    return render(request, "sales/lead_detail.html", context, status=status)


@require_GET
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    if not _sees_sales(viewer):
        return _forbidden(request)
    return _lead_page(request, _visible_lead(viewer, pk))


def _lead_action(
    request: HttpRequest,
    pk: int,
    *,
    name: str,
    form: forms.Form,
    run: Callable[[Membership, Lead, dict[str, Any]], Any],
    done: Callable[[Lead], str],
) -> HttpResponse:
    """One form of the lead page: valid input → the service → back to the lead with a message;
    anything refused → the lead page again with the form and its errors."""
    viewer = membership_of(request)
    lead = _visible_lead(viewer, pk)
    if form.is_valid():
        try:
            run(viewer, lead, form.cleaned_data)
        except ApplicationError as error:
            form_errors_from(form, error)
            return _lead_page(request, lead, bound={name: form}, status=_refused_status(error))
        messages.success(request, done(lead))
        return redirect("sales:lead", lead.pk)
    return _lead_page(request, lead, bound={name: form}, status=400)


@require_POST
@require_capability("sales.work")
def lead_contact(request: HttpRequest, pk: int) -> HttpResponse:
    return _lead_action(
        request,
        pk,
        name="contact",
        form=ContactForm(request.POST),
        run=lambda viewer, lead, data: services.lead_contact_log(
            actor=viewer,
            lead=lead,
            disposition=data["disposition"],
            channel=data["channel"],
            notes=data.get("notes") or "",
            callback_on=data.get("callback_on"),
        ),
        done=lambda lead: _("Contact with %(name)s recorded.") % {"name": lead.name},
    )


@require_POST
@require_capability("sales.work")
def lead_invite(request: HttpRequest, pk: int) -> HttpResponse:
    return _lead_action(
        request,
        pk,
        name="invite",
        form=InviteForm(request.POST),
        run=lambda viewer, lead, data: services.lead_invite(
            actor=viewer, lead=lead, appointment_at=data["appointment_at"], note=data.get("note") or ""
        ),
        done=lambda lead: _("%(name)s is invited.") % {"name": lead.name},
    )


@require_POST
@require_capability("sales.work")
def lead_order(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    lead = _visible_lead(viewer, pk)
    return _lead_action(
        request,
        pk,
        name="order",
        form=OrderForm(request.POST, quotes=selectors.lead_quotes(lead=lead)),
        run=lambda viewer, lead, data: services.lead_order(
            actor=viewer,
            lead=lead,
            quote=data["quote"],
            deposit=data["deposit"],
            expected_delivery_on=data.get("expected_delivery_on"),
        ),
        done=lambda lead: _("Order of %(name)s taken.") % {"name": lead.name},
    )


@require_POST
@require_capability("sales.work")
def lead_deliver(request: HttpRequest, pk: int) -> HttpResponse:
    return _lead_action(
        request,
        pk,
        name="deliver",
        form=DeliverForm(request.POST),
        run=lambda viewer, lead, data: services.lead_deliver(
            actor=viewer,
            lead=lead,
            vin=data["vin"].strip().upper(),
            plate=data.get("plate") or "",
            delivered_on=data.get("delivered_on"),
            amount=data.get("amount"),
            mileage_km=data.get("mileage_km"),
        ),
        done=lambda lead: _("The car of %(name)s is delivered.") % {"name": lead.name},
    )


@require_POST
@require_capability("sales.work")
def lead_defeat(request: HttpRequest, pk: int) -> HttpResponse:
    return _lead_action(
        request,
        pk,
        name="defeat",
        form=DefeatForm(request.POST, reasons=services.defeat_reasons_ensure()),
        run=lambda viewer, lead, data: services.lead_defeat(
            actor=viewer,
            lead=lead,
            reason=data["reason"],
            note=data.get("note") or "",
            competitor_brand=data.get("competitor_brand") or "",
            competitor_model=data.get("competitor_model") or "",
        ),
        done=lambda lead: _("Defeat of %(name)s reported.") % {"name": lead.name},
    )


@require_POST
@require_capability("sales.manage")
def lead_defeat_decide(request: HttpRequest, pk: int) -> HttpResponse:
    return _lead_action(
        request,
        pk,
        name="decide",
        form=DefeatDecideForm(request.POST),
        run=lambda viewer, lead, data: services.lead_defeat_decide(
            actor=viewer, lead=lead, approve=data["approve"], note=data.get("note") or ""
        ),
        done=lambda lead: _("Defeat of %(name)s decided.") % {"name": lead.name},
    )


@require_POST
@require_capability("sales.manage")
def lead_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    return _lead_action(
        request,
        pk,
        name="reopen",
        form=ReopenForm(request.POST),
        run=lambda viewer, lead, data: services.lead_reopen(actor=viewer, lead=lead, note=data.get("note") or ""),
        done=lambda lead: _("The lead of %(name)s is open again.") % {"name": lead.name},
    )


@require_capability("sales.work")
def lead_edit(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    lead = _visible_lead(viewer, pk)
    initial = {field: getattr(lead, field) for field in LeadEditForm.base_fields}
    form = LeadEditForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = dict(form.cleaned_data)
            # an unchanged follow-up day is left out, so that a new level sets it from its cadence
            if data.get("next_followup_on") in (None, lead.next_followup_on):
                data.pop("next_followup_on")
            try:
                services.lead_update(actor=viewer, lead=lead, data=data)
            except ApplicationError as error:
                form_errors_from(form, error)
                status = _refused_status(error)
            else:
                messages.success(request, _("Saved."))
                return redirect("sales:lead", lead.pk)
    return render(request, "sales/lead_edit.html", {"lead": lead, "form": form}, status=status)


@require_POST
@require_capability("sales.work")
def lead_take(request: HttpRequest, pk: int) -> HttpResponse:
    """A consultant takes a lead from the pool: it is theirs now."""
    viewer = membership_of(request)
    lead = _visible_lead(viewer, pk)
    try:
        services.lead_assign(actor=viewer, lead=lead, to=viewer)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect(_safe_next(request, request.POST.get("next", "")) or reverse("sales:today"))
    messages.success(request, _("%(name)s is your lead now.") % {"name": lead.name})
    return redirect("sales:lead", lead.pk)


@require_GET
def lead_of_customer(request: HttpRequest, customer_id: int) -> HttpResponse:
    """From a follow-up or the customer page: the person's open lead, else their latest one."""
    viewer = membership_of(request)
    if not _sees_sales(viewer):
        return _forbidden(request)
    leads = selectors.lead_list(viewer=viewer, filters=selectors.LeadFilters(customer_id=customer_id))
    lead = leads.filter(stage__in=OPEN_STAGES).first()
    lead = lead or leads.first()
    if lead is None:
        raise Http404
    return redirect("sales:lead", lead.pk)


# --- Test drives ------------------------------------------------------------------------------------


def _slot_grid(vehicles: list[Any], day: Any) -> list[dict[str, Any]]:
    now = timezone.now()
    return [
        {
            "vehicle": vehicle,
            "slots": [
                {"slot": slot, "bookable": slot.free and slot.starts_at >= now}
                for slot in selectors.test_drive_slots(vehicle=vehicle, on=day)
            ],
        }
        for vehicle in vehicles
    ]


@require_capability("sales.work")
def test_drive_new(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    lead = _visible_lead(viewer, pk)
    vehicles = selectors.demo_vehicles()
    day_form = SlotDayForm(request.GET)
    day = day_form.cleaned_data["day"] if day_form.is_valid() else timezone.localdate()
    initial: dict[str, Any] = {"vehicle": request.GET.get("vehicle", ""), "starts_at": request.GET.get("start", "")}
    form = TestDriveBookForm(request.POST or None, vehicles=vehicles, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            starts_at: datetime = data["starts_at"]
            try:
                drive = services.test_drive_book(
                    actor=viewer,
                    lead=lead,
                    vehicle=data["vehicle"],
                    starts_at=starts_at,
                    ends_at=starts_at + timedelta(minutes=data["minutes"]),
                )
            except ApplicationError as error:
                form_errors_from(form, error)
                status = _refused_status(error)
            else:
                messages.success(
                    request,
                    _("Test drive booked: %(car)s, %(when)s.")
                    % {"car": drive.vehicle, "when": f"{timezone.localtime(drive.starts_at):%Y-%m-%d %H:%M}"},
                )
                return redirect("sales:test_drive", drive.pk)
    return render(
        request,
        "sales/test_drive_new.html",
        {"lead": lead, "form": form, "day_form": day_form, "day": day, "grid": _slot_grid(list(vehicles), day)},
        status=status,
    )


def _upcoming_test_drives(viewer: Membership) -> QuerySet[TestDrive]:
    # the bookings of the leads the viewer may see, from an hour ago on (a drive under way is listed)
    return (
        TestDrive.objects.filter(
            lead__in=selectors.lead_visible_to(viewer=viewer).values("pk"),
            status=TestDrive.Status.BOOKED,
            ends_at__gte=timezone.now() - timedelta(hours=1),
        )
        .select_related("vehicle", "lead", "consultant__user")
        .order_by("starts_at", "id")
    )


@require_GET
def test_drives(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    if not _sees_sales(viewer):
        return _forbidden(request)
    page = page_of(request, _upcoming_test_drives(viewer), size=PAGE_SIZE)
    return render(request, "sales/test_drives.html", {"rows": page.items, **page.context()})


def _test_drive_page(
    request: HttpRequest, drive: TestDrive, *, form: TestDriveRecordForm | None = None, status: int = 200
) -> HttpResponse:
    viewer = membership_of(request)
    may_record = services.may_work(viewer, drive.lead) and drive.status == TestDrive.Status.BOOKED
    return render(
        request,
        "sales/test_drive_detail.html",
        {
            "drive": drive,
            "lead": drive.lead,
            "may_record": may_record,
            "form": form or TestDriveRecordForm(initial={"status": TestDrive.Status.DONE}),
        },
        status=status,
    )


def test_drive_detail(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    if not _sees_sales(viewer):
        return _forbidden(request)
    drive = _visible_drive(viewer, pk)
    if request.method != "POST":
        return _test_drive_page(request, drive)
    if not viewer.can("sales.work"):
        return _forbidden(request)
    form = TestDriveRecordForm(request.POST, request.FILES)
    if not form.is_valid():
        return _test_drive_page(request, drive, form=form, status=400)
    data = form.cleaned_data
    try:
        services.test_drive_record(
            actor=viewer,
            drive=drive,
            status=data["status"],
            licence_number=data.get("licence_number") or "",
            licence_expiry=data.get("licence_expiry"),
            licence_consent=bool(data.get("licence_consent")),
            feedback=data.get("feedback") or "",
            rating=data.get("rating"),
            agreement=data.get("agreement"),
        )
    except ApplicationError as error:
        form_errors_from(form, error)
        return _test_drive_page(request, drive, form=form, status=_refused_status(error))
    messages.success(request, _("Test drive recorded."))
    return redirect("sales:lead", drive.lead_id)


@require_GET
def test_drive_agreement(request: HttpRequest, pk: int) -> FileResponse:
    viewer = membership_of(request)
    if not _sees_sales(viewer):
        raise Http404
    drive = _visible_drive(viewer, pk)
    if not drive.agreement:
        raise Http404
    extension = drive.agreement.name.rsplit(".", 1)[-1].lower() if "." in drive.agreement.name else "pdf"
    response = FileResponse(
        drive.agreement.open("rb"),
        as_attachment=True,
        filename=f"test-drive-{drive.pk}-agreement.{extension}",
        content_type=drive.agreement_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    # the body is the stored file, read after the request's transaction; the drive was checked above
    response.crm_tenant_safe = True  # type: ignore[attr-defined]
    return response


# --- Quotes -----------------------------------------------------------------------------------------


def _quote_data(form: QuoteForm, accessories: Any) -> dict[str, Any]:
    data = dict(form.cleaned_data)
    data["accessories"] = [
        {"name": row["name"], "price": row.get("price")} for row in accessories.cleaned_data if row and row.get("name")
    ]
    return data


@require_capability("sales.work")
def quote_new(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    lead = _visible_lead(viewer, pk)
    latest = selectors.lead_quotes(lead=lead).first()
    if latest is not None:  # a new version starts from the last one
        initial = {field: getattr(latest, field) for field in QuoteForm.base_fields if hasattr(latest, field)}
        rows = list(latest.accessories)
    else:
        initial = {"brand": lead.brand, "series": lead.series, "trade_in_vehicle": lead.trade_in}
        rows = []
    form = QuoteForm(request.POST or None, initial=initial)
    accessories = AccessoryFormSet(request.POST or None, prefix="acc", initial=rows)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid() and accessories.is_valid():
            try:
                quote = services.quote_create(actor=viewer, lead=lead, data=_quote_data(form, accessories))
            except ApplicationError as error:
                form_errors_from(form, error)
                status = _refused_status(error)
            else:
                messages.success(
                    request,
                    _("Quote v%(version)s saved: %(total)s to pay.")
                    % {"version": quote.version, "total": money(quote.total)},
                )
                return redirect("sales:quote_print", quote.pk)
    return render(
        request, "sales/quote_new.html", {"lead": lead, "form": form, "accessories": accessories}, status=status
    )


@require_GET
def quote_print(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    if not _sees_sales(viewer):
        return _forbidden(request)
    quote = Quote.objects.select_related("created_by__user").filter(pk=pk).first()
    if quote is None:
        raise Http404
    lead = _visible_lead(viewer, quote.lead_id)
    return render(
        request,
        "sales/quote_print.html",
        {
            "quote": quote,
            "lead": lead,
            "mobile": selectors.lead_mobile_shown(viewer=viewer, lead=lead),
            "may_work": services.may_work(viewer, lead) and lead.is_open,
        },
    )


# --- Showroom ---------------------------------------------------------------------------------------


def _showroom_page(request: HttpRequest, *, form: WalkInForm | None = None, status: int = 200) -> HttpResponse:
    viewer = membership_of(request)
    on = timezone.localdate()
    visits = list(selectors.showroom_visits(viewer=viewer, on=on)[:300])
    return render(
        request,
        "sales/showroom.html",
        {
            "visits": visits,
            "today": on,
            "people": sum(v.party_size for v in visits),
            "can_log": viewer.can("sales.work"),
            "form": form or WalkInForm(initial={"arrived_at": timezone.localtime().replace(second=0, microsecond=0)}),
        },
        status=status,
    )


def showroom(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    if not _sees_sales(viewer):
        return _forbidden(request)
    if request.method != "POST":
        return _showroom_page(request)
    if not viewer.can("sales.work"):
        return _forbidden(request)
    form = WalkInForm(request.POST)
    if not form.is_valid():
        return _showroom_page(request, form=form, status=400)
    try:
        visit = services.showroom_visit_log(actor=viewer, data=form.visit_data(), lead_data=form.lead_data())
    except ApplicationError as error:
        form_errors_from(form, error)
        return _showroom_page(request, form=form, status=_refused_status(error))
    if visit.lead is not None:
        messages.success(request, _("Walk-in logged: %(name)s.") % {"name": visit.lead.name})
    else:
        messages.success(request, _("Walk-in logged."))
    return redirect("sales:showroom")


@require_POST
@require_capability("sales.work")
def showroom_left(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = membership_of(request)
    visit = selectors.showroom_visits(viewer=viewer).filter(pk=pk).first()
    if visit is None:
        raise Http404
    try:
        services.showroom_visit_leave(actor=viewer, visit=visit)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Marked as left."))
    return redirect("sales:showroom")
