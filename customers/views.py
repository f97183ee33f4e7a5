"""Customer pages: the list, the customer page with its timeline, create/edit with a duplicate
warning, log a contact, vehicles and mileage, red/black list, and merging duplicates."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.core.errors import ApplicationError
from crm.core.extensions import fragments_shown
from crm.core.forms import form_errors_from
from crm.core.paging import page_of
from crm.tenancy.audit import RequestMeta
from crm.tenancy.decorators import membership_of
from crm.tenancy.models import Membership
from customers import records, selectors, services
from customers.forms import (
    BulkForm,
    CustomerFilterForm,
    CustomerForm,
    ListFlagForm,
    MergeForm,
    MileageForm,
    TouchpointForm,
    VehicleForm,
)
from customers.import_views import export_response
from customers.models import Customer, MileageReading
from customers.normalize import normalize_fields
from customers.panels import customer_panels
from customers.quality import quality_issue_label
from customers.timeline import customer_timeline

PAGE_SIZE = 25


def _viewer(request: HttpRequest) -> Membership:
    return membership_of(request)


def _can_see_customers(viewer: Membership) -> bool:
    return viewer.can("customers.view_all") or viewer.can("customers.view_own")


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "403.html", status=403)


_form_errors_from = form_errors_from


def customer_list(request: HttpRequest) -> HttpResponse:
    viewer = _viewer(request)
    if not _can_see_customers(viewer):
        return _forbidden(request)
    form = CustomerFilterForm(request.GET or None, viewer=viewer)
    filters = form.filters() if form.is_valid() else selectors.CustomerFilters()
    page = page_of(request, selectors.customer_list(viewer=viewer, filters=filters), size=PAGE_SIZE)
    rows = [(c, selectors.customer_masked_value(viewer=viewer, customer=c, field="mobile")) for c in page.items]
    bulk = BulkForm(viewer=viewer)
    context = {"form": form, "rows": rows, "bulk": bulk if bulk.fields["action"].choices else None, **page.context()}  # type: ignore[attr-defined]
    template = "customers/_rows.html" if request.htmx else "customers/customer_list.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@require_POST
def customer_bulk(request: HttpRequest) -> HttpResponse:
    """An action on the customers ticked in the list: give them to a colleague, put them on the red
    list, or export them. Back to the list (its filters kept) with what was done."""
    viewer = _viewer(request)
    if not _can_see_customers(viewer):
        return _forbidden(request)
    back = QueryDict(request.POST.get("back", "")).urlencode()  # the list's filters, re-encoded
    back_url = f"{reverse('customers:list')}?{back}" if back else reverse("customers:list")
    form = BulkForm(request.POST, viewer=viewer)
    if not form.is_valid():
        messages.error(request, " ".join(str(m) for ms in form.errors.values() for m in ms))
        return redirect(back_url)
    data, meta = form.cleaned_data, RequestMeta.from_request(request)
    action = data["action"]
    try:
        if action.startswith("export"):
            if not data["id"]:
                raise ApplicationError(_("Select at least one customer."))
            filters = selectors.CustomerFilters(ids=tuple(sorted(set(data["id"]))[: services.BULK_LIMIT]))
            return export_response(
                request, viewer=viewer, export_format=action.removeprefix("export_"), filters=filters
            )
        if action == "assign":
            moved = services.customers_bulk_assign(
                actor=viewer, customer_ids=data["id"], to_member=data["to_member"], meta=meta
            )
            messages.success(
                request, _("%(n)s customers given to %(name)s.") % {"n": moved, "name": data["to_member"].display_name}
            )
        else:
            listed, kept = services.customers_bulk_red_list(
                actor=viewer, customer_ids=data["id"], reason=data["reason"], meta=meta
            )
            messages.success(
                request,
                _("%(listed)s customers put on the red list; %(kept)s were on a list already.")
                % {"listed": listed, "kept": kept},
            )
    except ApplicationError as error:
        messages.error(request, " ".join([error.message, *(m for ms in error.fields.values() for m in ms)]))
    return redirect(back_url)


def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = _viewer(request)
    if not _can_see_customers(viewer):
        return _forbidden(request)
    customer = get_object_or_404(selectors.customer_visible_to(viewer=viewer), pk=pk)
    services.customer_record_viewed(viewer=viewer, customer=customer, meta=RequestMeta.from_request(request))
    return render(request, "customers/customer_detail.html", _detail_context(viewer, customer))


def _detail_context(viewer: Membership, customer: Customer, **extra: Any) -> dict[str, Any]:
    vehicles = list(customer.vehicles.all().order_by("-purchase_date", "-id"))
    readings: dict[int, list[MileageReading]] = {}
    consent_change = selectors.customer_consent_history(customer=customer).first()
    for reading in MileageReading.objects.filter(vehicle__in=vehicles).order_by("-read_on", "-km"):
        readings.setdefault(reading.vehicle_id, []).append(reading)
    context = {
        "customer": customer,
        "mobile": selectors.customer_masked_value(viewer=viewer, customer=customer, field="mobile"),
        "mobile_secondary": selectors.customer_masked_value(viewer=viewer, customer=customer, field="mobile_secondary"),
        "email": selectors.customer_masked_value(viewer=viewer, customer=customer, field="email"),
        "id_number": selectors.customer_masked_value(viewer=viewer, customer=customer, field="id_number"),
        "masked": not selectors.customer_shows_full_pii(viewer=viewer, customer=customer),
        "can_reveal": viewer.can("customers.reveal_pii"),
        "can_edit": viewer.can("customers.edit"),
        "can_merge": viewer.can("customers.merge"),
        "can_flag": viewer.can("customers.list_flag"),
        "vehicles": [(v, readings.get(v.pk, [])[:5]) for v in vehicles],
        "timeline": customer_timeline(customer=customer, viewer=viewer, limit=100),
        "panels": fragments_shown(customer_panels, customer=customer, viewer=viewer),
        "quality_issues": [quality_issue_label(code) for code in customer.quality_issues],
        "consent_change": consent_change,
        "consent_set_by": selectors.consent_set_by_name(consent_change) if consent_change else None,
        "touchpoint_form": TouchpointForm(),
        "flag_form": ListFlagForm(initial={"flag": customer.list_flag, "reason": customer.list_reason}),
        "vehicle_form": VehicleForm(),
        "mileage_form": MileageForm(),
    }
    context.update(extra)
    return context


@require_POST
def customer_reveal(request: HttpRequest, pk: int, field: str) -> HttpResponse:
    """htmx: swap a masked number for the full one, recording the reveal in the audit log."""
    viewer = _viewer(request)
    customer = get_object_or_404(selectors.customer_visible_to(viewer=viewer), pk=pk)
    try:
        value = services.customer_reveal_pii(
            viewer=viewer, customer=customer, field=field, meta=RequestMeta.from_request(request)
        )
    except ApplicationError as error:
        return render(request, "customers/_revealed.html", {"error": error.message}, status=error.status_code)
    return render(request, "customers/_revealed.html", {"value": value})


def customer_create(request: HttpRequest) -> HttpResponse:
    viewer = _viewer(request)
    if not viewer.can("customers.edit"):
        return _forbidden(request)
    form = CustomerForm(request.POST or None, viewer=viewer)
    duplicates: list[Customer] = []
    if request.method == "POST" and form.is_valid():
        data = form.service_data()
        if not request.POST.get("confirm_duplicate"):
            try:
                mobile = normalize_fields({"mobile": data.get("mobile", "")})["mobile"]
            except ValidationError:
                mobile = ""
            duplicates = selectors.customer_find_duplicates(mobile=mobile)
        if not duplicates:
            try:
                customer = records.customer_create(actor=viewer, data=data, meta=RequestMeta.from_request(request))
            except (ValidationError, ApplicationError) as error:
                _form_errors_from(form, error)
            else:
                messages.success(request, _("Customer %(name)s created.") % {"name": customer.name})
                return redirect("customers:detail", pk=customer.pk)
    visible_ids = set(
        selectors.customer_visible_to(viewer=viewer)
        .filter(pk__in=[d.pk for d in duplicates])
        .values_list("pk", flat=True)
    )
    return render(
        request,
        "customers/customer_form.html",
        {"form": form, "duplicates": [(d, d.pk in visible_ids) for d in duplicates], "creating": True},
    )


def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = _viewer(request)
    if not viewer.can("customers.edit"):
        return _forbidden(request)
    customer = get_object_or_404(selectors.customer_visible_to(viewer=viewer), pk=pk)
    form = CustomerForm(request.POST or None, instance=customer, viewer=viewer)
    if request.method == "POST" and form.is_valid():
        data = form.service_data()
        if "owner" not in form.fields:
            data.pop("owner", None)
        try:
            records.customer_update(actor=viewer, customer=customer, data=data)
        except (ValidationError, ApplicationError) as error:
            _form_errors_from(form, error)
            customer.refresh_from_db()
        else:
            messages.success(request, _("Saved."))
            return redirect("customers:detail", pk=customer.pk)
    return render(request, "customers/customer_form.html", {"form": form, "customer": customer, "creating": False})


@require_POST
def touchpoint_log(request: HttpRequest, pk: int) -> HttpResponse:
    """Log a call (or any contact) from the customer page in one step; htmx refreshes the timeline."""
    viewer = _viewer(request)
    customer = get_object_or_404(selectors.customer_visible_to(viewer=viewer), pk=pk)
    form = TouchpointForm(request.POST)
    if form.is_valid():
        try:
            records.touchpoint_log(actor=viewer, customer=customer, **form.cleaned_data)
        except (ValidationError, ApplicationError) as error:
            _form_errors_from(form, error)
        else:
            form = TouchpointForm()
            messages.success(request, _("Contact logged."))
    context = _detail_context(viewer, customer, touchpoint_form=form)
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "customers/_timeline_block.html", context, status=200 if not form.errors else 400)
    if form.errors:
        return render(request, "customers/customer_detail.html", context, status=400)
    return redirect("customers:detail", pk=customer.pk)


@require_POST
def customer_list_flag(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = _viewer(request)
    customer = get_object_or_404(selectors.customer_visible_to(viewer=viewer), pk=pk)
    form = ListFlagForm(request.POST)
    if form.is_valid():
        try:
            records.customer_set_list_flag(
                actor=viewer,
                customer=customer,
                flag=form.cleaned_data["flag"] or "",
                reason=form.cleaned_data["reason"],
                meta=RequestMeta.from_request(request),
            )
            messages.success(request, _("List updated."))
        except ApplicationError as error:
            messages.error(request, error.message + " " + " ".join(m for ms in error.fields.values() for m in ms))
    return redirect("customers:detail", pk=customer.pk)


@require_POST
def vehicle_add(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = _viewer(request)
    customer = get_object_or_404(selectors.customer_visible_to(viewer=viewer), pk=pk)
    form = VehicleForm(request.POST)
    if form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "mileage_km" and v not in (None, "")}
        try:
            records.vehicle_create(
                actor=viewer, customer=customer, data=data, mileage_km=form.cleaned_data["mileage_km"]
            )
        except (ValidationError, ApplicationError) as error:
            _form_errors_from(form, error)
        else:
            messages.success(request, _("Vehicle added."))
            return redirect("customers:detail", pk=customer.pk)
    return render(
        request, "customers/customer_detail.html", _detail_context(viewer, customer, vehicle_form=form), status=400
    )


@require_POST
def mileage_add(request: HttpRequest, pk: int, vehicle_pk: int) -> HttpResponse:
    viewer = _viewer(request)
    customer = get_object_or_404(selectors.customer_visible_to(viewer=viewer), pk=pk)
    vehicle = get_object_or_404(customer.vehicles.all(), pk=vehicle_pk)
    form = MileageForm(request.POST)
    if form.is_valid() and viewer.can("customers.edit"):
        try:
            records.mileage_record(vehicle=vehicle, source=MileageReading.Source.MANUAL, **form.cleaned_data)
            messages.success(request, _("Mileage recorded."))
        except ApplicationError as error:
            messages.error(request, error.message)
    elif form.errors:
        messages.error(request, " ".join(str(m) for ms in form.errors.values() for m in ms))
    return redirect("customers:detail", pk=customer.pk)


def customer_merge(request: HttpRequest, pk: int) -> HttpResponse:
    """Find the duplicate, compare side by side, confirm; the duplicate's history moves over."""
    viewer = _viewer(request)
    if not viewer.can("customers.merge"):
        return _forbidden(request)
    visible = selectors.customer_visible_to(viewer=viewer)
    survivor = get_object_or_404(visible, pk=pk)
    duplicate = None
    candidates: list[Customer] = []
    form = MergeForm(request.POST or None)
    if request.method == "POST":
        duplicate = get_object_or_404(visible, pk=request.POST.get("duplicate") or 0)
        if form.is_valid():
            try:
                records.customer_merge(
                    actor=viewer, survivor=survivor, duplicate=duplicate, meta=RequestMeta.from_request(request)
                )
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, _("%(dup)s was merged into this record.") % {"dup": duplicate.name})
                return redirect("customers:detail", pk=survivor.pk)
    elif request.GET.get("duplicate"):
        duplicate = get_object_or_404(visible, pk=request.GET["duplicate"])
        form = MergeForm(initial={"duplicate": duplicate.pk})
    else:
        query = request.GET.get("q", "").strip()
        found = selectors.customer_search(visible, query=query) if query else visible.none()
        suggested = selectors.customer_find_duplicates(mobile=survivor.mobile, exclude_id=survivor.pk)
        candidates = [c for c in [*suggested, *found.exclude(pk=survivor.pk)[:20]] if c.pk != survivor.pk]
    return render(
        request,
        "customers/customer_merge.html",
        {
            "survivor": survivor,
            "duplicate": duplicate,
            "pair": [survivor, duplicate] if duplicate else [],
            "candidates": candidates,
            "form": form,
        },
    )
