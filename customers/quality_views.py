"""The data-quality page (客户信息准确率): what to fix in the customer records, worst first."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from crm.tenancy.decorators import membership_of
from customers import quality


@require_safe
def customer_quality(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    if not (viewer.can("customers.view_all") or viewer.can("customers.view_own")):
        return render(request, "403.html", status=403)
    issue = request.GET.get("issue", "")
    if issue not in quality.ISSUES_BY_CODE:
        issue = ""
    try:
        number = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        number = 1
    page = quality.quality_worst_first(viewer=viewer, issue=issue or None, page=number, page_size=quality.PAGE_SIZE)
    rows = [(c, [quality.quality_issue_label(code) for code in c.quality_issues]) for c in page.rows]
    context = {"page": page, "rows": rows, "issue": issue}
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:  # a page of rows; a history restore needs the whole page
        return render(request, "customers/_quality_rows.html", context)
    context["summary"] = quality.quality_summary(viewer=viewer)
    return render(request, "customers/quality.html", context)
