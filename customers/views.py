"""Customer pages: the list (own book or whole dealership) and the customer page with masked numbers."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from crm.core.errors import ApplicationError
from crm.tenancy.audit import RequestMeta
from crm.tenancy.decorators import membership_of
from crm.tenancy.models import Membership
from customers import selectors, services
from customers.models import LifecycleStage


def _viewer(request: HttpRequest) -> Membership:
    return membership_of(request)


def _can_see_customers(viewer: Membership) -> bool:
    return viewer.can("customers.view_all") or viewer.can("customers.view_own")


def customer_list(request: HttpRequest) -> HttpResponse:
    viewer = _viewer(request)
    if not _can_see_customers(viewer):
        return render(request, "403.html", status=403)
    customers = selectors.customer_visible_to(viewer=viewer)
    query = request.GET.get("q", "").strip()
    if query:
        customers = selectors.customer_search(customers, query=query)
    stage = request.GET.get("stage", "")
    if stage in LifecycleStage.values:
        customers = customers.filter(lifecycle_stage=stage)
    page = Paginator(customers.order_by("-created_at", "-id"), 25).get_page(request.GET.get("page"))
    rows = [(c, selectors.customer_masked_value(viewer=viewer, customer=c, field="mobile")) for c in page.object_list]
    template = "customers/_rows.html" if request.htmx else "customers/customer_list.html"  # type: ignore[attr-defined]
    return render(
        request,
        template,
        {"page": page, "rows": rows, "query": query, "stage": stage, "stages": LifecycleStage.choices},
    )


def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = _viewer(request)
    if not _can_see_customers(viewer):
        return render(request, "403.html", status=403)
    customer = get_object_or_404(selectors.customer_visible_to(viewer=viewer), pk=pk)
    services.customer_record_viewed(viewer=viewer, customer=customer, meta=RequestMeta.from_request(request))
    context = {
        "customer": customer,
        "mobile": selectors.customer_masked_value(viewer=viewer, customer=customer, field="mobile"),
        "id_number": selectors.customer_masked_value(viewer=viewer, customer=customer, field="id_number"),
        "masked": not selectors.customer_shows_full_pii(viewer=viewer, customer=customer),
        "can_reveal": viewer.can("customers.reveal_pii"),
        "vehicles": customer.vehicles.all().order_by("-purchase_date"),
        "orders": customer.orders.select_related("vehicle").order_by("-ordered_on")[:50],
    }
    return render(request, "customers/customer_detail.html", context)


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
