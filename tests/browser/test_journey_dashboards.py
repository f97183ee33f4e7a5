"""Journey: the demo dealership's manager opens the manager dashboard (四度). The headline cards show
numbers, each of the five charts is drawn with data, a click on a bar of the value-tier chart opens
the customers in that tier, and every table downloads as one XLSX workbook.

Runs on the demo data as `make demo` seeds it (60 customers a dealership), signed in with the
printed demo password."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.utils import timezone
from openpyxl import load_workbook
from playwright.sync_api import expect

from crm.tenancy.context import tenant_context
from crm.tenancy.models import Tenant
from segmentation.models import CustomerValue
from surveys.models import Response
from tests.browser.conftest import shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MANAGER = "manager@sz-yuetong.demo.crm"
CHARTS = ["tiers", "funnel", "ladder", "revenue", "service"]
HEADLINE = ["satisfaction", "contribution", "loyalty", "dependency", "accuracy", "points"]

# The middle of bar `index` of the first dataset ("this period") of the chart on `canvas`, in CSS
# pixels from the canvas' top left: where a person would click.
BAR_MIDDLE = """(canvas, index) => {
    const bar = window.Chart.getChart(canvas).getDatasetMeta(0).data[index];
    return {x: bar.x, y: (bar.y + bar.base) / 2};
}"""


def test_a_demo_manager_reads_the_dashboard_drills_into_a_tier_and_downloads_it(page, tmp_path):
    with open("/dev/null", "w") as sink:
        call_command("seed_demo", customers=60, stdout=sink)
    tenant = Tenant.objects.get(code="sz-yuetong")

    sign_in(page, MANAGER)
    page.get_by_test_id("nav-dashboard").click()
    expect(page).to_have_url(re.compile(r"/dashboards/$"))
    expect(page.get_by_test_id("dashboard-period")).to_be_visible()

    # every chart drawn, each with at least one non-empty value
    for name in CHARTS:
        canvas = page.get_by_test_id(f"chart-{name}")
        expect(canvas).to_have_attribute("data-drawn", "true")
    points = {name: int(page.get_by_test_id(f"chart-{name}").get_attribute("data-points") or 0) for name in CHARTS}
    assert all(n > 0 for n in points.values()), f"charts without data on the demo: {points}"

    # the headline cards show numbers, not "—"; satisfaction only when the period (this month so far)
    # has answers, which 60 customers a dealership do not always give in the first days of a month
    figures = {key: page.get_by_test_id(f"headline-{key}").locator(".card-figure").inner_text() for key in HEADLINE}
    with tenant_context(tenant.pk):
        month_start = timezone.localtime(timezone=tenant.zone).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        answered = Response.objects.filter(overall__isnull=False, submitted_at__gte=month_start).exists()
    numbers = [key for key in HEADLINE if key != "satisfaction" or answered]
    assert all(re.search(r"\d", figures[key]) for key in numbers), f"headline cards without a number: {figures}"
    if not answered:
        assert figures["satisfaction"] == "—", figures
    shot(page, "dashboard")

    # a click on the first non-empty bar of the value tiers opens its customers
    charts = page.evaluate("JSON.parse(document.getElementById('dashboard-charts').textContent)")
    tiers = charts["tiers"]
    index = next(i for i, n in enumerate(tiers["now"]) if n)
    canvas = page.get_by_test_id("chart-tiers")
    canvas.scroll_into_view_if_needed()
    where = canvas.evaluate(BAR_MIDDLE, index)
    canvas.click(position=where)
    expect(page).to_have_url(re.compile(r"/dashboards/customers/\?.*figure=tier"))
    tier = re.search(r"[?&]value=([a-z]*)", page.url)
    assert tier is not None
    with tenant_context(tenant.pk):
        in_tier = CustomerValue.objects.filter(tier=tier.group(1), customer__merged_into__isnull=True).count()
    rows = page.get_by_test_id("drill-table").locator("tbody tr")
    expect(rows).to_have_count(min(in_tier, 50))
    assert in_tier > 0 and tier.group(1) == (["key", "consolidate", "maintain", "exit", ""][index])
    expect(page.get_by_test_id("drill-title")).to_contain_text(tiers["labels"][index])
    shot(page, "dashboard-drill-tier")

    # back on the dashboard: every table as one workbook, one sheet per table
    page.go_back()
    with page.expect_download() as download_info:
        page.get_by_test_id("dashboard-xlsx").click()
    download = download_info.value
    assert download.suggested_filename.startswith("dashboard-") and download.suggested_filename.endswith(".xlsx")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    book = load_workbook(path, read_only=True)
    assert len(book.sheetnames) == 5
    tier_sheet = [list(r) for r in book.worksheets[1].iter_rows(values_only=True)][1:]
    assert [row[1] for row in tier_sheet] == tiers["now"]
    assert [row[2] for row in tier_sheet] == tiers["before"]
