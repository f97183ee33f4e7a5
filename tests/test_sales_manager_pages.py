"""The managers' sales pages: the funnel's figures are the counts of the leads themselves, each
figure's link lists exactly its leads, the downloads carry the same numbers, consultants are kept
out, a manager approves a defeat and gives leads out from the pages, and bad input is a 400.

Leads are built through sales.services in dealer B (which already holds Alice's online lead with
a driven test drive): a call, a walk-in, an invitation, a delivered car, a reported defeat."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db.models import Q
from django.utils import timezone
from openpyxl import load_workbook

from crm.core.period import Period
from crm.tenancy.context import tenant_context
from crm.tenancy.models import AuditEvent
from customers.validators import vin_check_digit
from sales import selectors, services
from sales.models import Conflict, ConsultantDuty, DemoVehicle, Lead, LeadEvent, SalesSettings, Stage

pytestmark = pytest.mark.django_db

# The milestones at or after each step, written out here rather than taken from the selectors
AT_OR_AFTER = {
    "new": [],
    "contacted": [
        "first_contact_at",
        "invited_at",
        "visited_at",
        "test_drive_at",
        "quoted_at",
        "ordered_at",
        "delivered_at",
    ],
    "invited": ["invited_at", "visited_at", "test_drive_at", "quoted_at", "ordered_at", "delivered_at"],
    "visited": ["visited_at", "test_drive_at", "quoted_at", "ordered_at", "delivered_at"],
    "test_drive": ["test_drive_at", "quoted_at", "ordered_at", "delivered_at"],
    "ordered": ["ordered_at", "delivered_at"],
    "delivered": ["delivered_at"],
}


@pytest.fixture
def dealer(dealer_b: Any) -> Iterator[Any]:
    from django.contrib.auth import get_user_model

    # the pages and downloads in English: the tests name sheets and headings as written in the code
    get_user_model().objects.filter(pk=dealer_b.manager.user_id).update(preferred_language="en")
    with tenant_context(dealer_b.tenant.pk):
        yield dealer_b


def _vin(body: str) -> str:
    return body[:8] + vin_check_digit(body) + body[9:]


def _build_leads(dealer: Any) -> dict[str, Lead]:
    alice, bob, manager = dealer.consultant, dealer.consultant2, dealer.manager
    called = services.lead_capture(
        actor=alice, data={"name": "孙 先生", "mobile": "13700002001", "source": "phone", "series": "Model 3"}
    ).lead
    walked = services.lead_capture(
        actor=bob, data={"name": "周 女士", "mobile": "13700002002", "source": "walk_in", "series": "Model Y"}
    ).lead
    invited = services.lead_capture(
        actor=bob, data={"name": "吴 先生", "mobile": "13700002003", "source": "phone", "series": "Model Y"}
    ).lead
    invited = services.lead_invite(actor=bob, lead=invited, appointment_at=timezone.now() + timedelta(days=2))
    bought = services.lead_capture(
        actor=alice, data={"name": "郑 女士", "mobile": "13700002004", "source": "walk_in", "series": "Model Y"}
    ).lead
    car = DemoVehicle.objects.create(brand="Tesla", series="Model Y", plate="粤B·T0001")
    start = timezone.now() + timedelta(hours=3)
    drive = services.test_drive_book(
        actor=alice, lead=bought, vehicle=car, starts_at=start, ends_at=start + timedelta(minutes=30)
    )
    services.test_drive_record(
        actor=alice,
        drive=drive,
        status="done",
        licence_number="440301199001015678",
        licence_expiry=_today() + timedelta(days=365),
        licence_consent=True,
    )
    quote = services.quote_create(
        actor=alice, lead=bought, data={"brand": "Tesla", "series": "Model Y", "list_price": "263900"}
    )
    bought = services.lead_order(actor=alice, lead=Lead.objects.get(pk=bought.pk), quote=quote, deposit="5000")
    bought = services.lead_deliver(actor=alice, lead=bought, vin=_vin("LSVAX60E0N2000777"))
    lost = services.lead_capture(
        actor=alice, data={"name": "冯 先生", "mobile": "13700002005", "source": "walk_in", "series": "Model 3"}
    ).lead
    reasons = {r.code: r for r in services.defeat_reasons_ensure()}
    lost = services.lead_defeat(actor=alice, lead=lost, reason=reasons["price"], note="太贵")
    online = services.lead_capture(
        actor=manager, data={"name": "陈 先生", "mobile": "13700002006", "source": "online", "series": "Model 3"}
    ).lead
    return {"called": called, "walked": walked, "invited": invited, "bought": bought, "lost": lost, "online": online}


def _today() -> date:
    return timezone.localdate()


def _cohort() -> Any:
    today = _today()
    return Lead.objects.filter(created_at__date__gte=today.replace(day=1), created_at__date__lte=today)


def _reached(stage: str) -> Q:
    condition = Q()
    for name in AT_OR_AFTER[stage]:
        condition |= Q(**{f"{name}__isnull": False})
    return condition


def _figure(page: str, key: str) -> str:
    match = re.search(rf'data-figure="{key}">([^<]*)<', page)
    assert match, key
    return match.group(1).strip()


def _link(page: str, testid: str) -> str:
    match = re.search(rf'href="([^"]+)"[^>]*data-testid="{testid}"', page)
    assert match, testid
    return html.unescape(match.group(1))


def _listed(client: Any, url: str) -> set[int]:
    """The leads the lead list page shows at `url`; and its download lists the same ones."""
    parts = urlsplit(url)
    assert parts.path == "/sales/leads/"
    response = client.get(url)
    assert response.status_code == 200, url
    shown = {int(pk) for pk in re.findall(r'data-testid="lead-row" data-lead="(\d+)"', response.content.decode())}
    assert len(shown) < 50, "more than a page"
    sheet = _xlsx(client.get("/sales/leads/export/?" + parts.query))["Leads"]
    assert {row[0] for row in sheet.iter_rows(min_row=2, values_only=True)} == shown, url
    return shown


def _xlsx(response: Any) -> Any:
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    return load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)


# --- the funnel -------------------------------------------------------------------------------------


def test_the_funnel_shows_the_counts_of_the_leads_themselves(dealer, web):
    _build_leads(dealer)
    page = web(dealer.manager).get("/sales/funnel/").content.decode()
    cohort = _cohort()
    expected = {step: cohort.filter(_reached(step)).count() for step in AT_OR_AFTER}
    assert expected["new"] >= 7 and expected["visited"] >= 4 and expected["delivered"] == 1
    assert {step: int(_figure(page, step)) for step in AT_OR_AFTER} == expected
    assert _figure(page, "visit_rate") == f"{expected['visited'] * 100 / expected['new']:.1f}%"
    assert _figure(page, "close_rate") == f"{expected['ordered'] * 100 / expected['visited']:.1f}%"
    assert int(_figure(page, "pending_defeats")) == cohort.filter(defeat_status="pending").count() == 1
    assert int(_figure(page, "pool")) == Lead.objects.filter(owner__isnull=True, stage__in=["new", "contacted"]).count()


def test_each_figure_links_to_exactly_its_leads(dealer, web):
    _build_leads(dealer)
    client = web(dealer.manager)
    page = client.get("/sales/funnel/").content.decode()
    cohort = _cohort()
    for step in AT_OR_AFTER:
        expected = set(cohort.filter(_reached(step)).values_list("pk", flat=True))
        assert _listed(client, _link(page, f"step-{step}")) == expected, step
    pending = set(cohort.filter(defeat_status="pending").values_list("pk", flat=True))
    assert _listed(client, _link(page, "pending-defeats")) == pending
    open_stages = [s.value for s in Stage if s not in (Stage.DELIVERED, Stage.DEFEATED)]
    pool = set(Lead.objects.filter(owner__isnull=True, stage__in=open_stages).values_list("pk", flat=True))
    assert _listed(client, _link(page, "pool")) == pool
    fresh = cohort.filter(stage__in=open_stages, created_at__date__gte=_today() - timedelta(days=7))
    bucket = re.search(r'<tr data-bucket="0">.*?<a href="([^"]+)">(\d+)<', page, re.S)
    assert bucket and int(bucket.group(2)) == fresh.count() > 0
    assert _listed(client, html.unescape(bucket.group(1))) == set(fresh.values_list("pk", flat=True))
    # a breakdown's cell: Bob's visited leads
    bob_visited = set(cohort.filter(_reached("visited"), owner=dealer.consultant2).values_list("pk", flat=True))
    row = re.search(rf'<tr data-key="{dealer.consultant2.pk}">(.*?)</tr>', page, re.S)
    assert row and bob_visited
    cell = re.search(r'data-stage="visited"><a href="([^"]+)">(\d+)<', row.group(1))
    assert cell and int(cell.group(2)) == len(bob_visited)
    assert _listed(client, html.unescape(cell.group(1))) == bob_visited


def test_the_funnel_filters_by_consultant_and_model(dealer, web):
    _build_leads(dealer)
    client = web(dealer.manager)
    page = client.get(
        "/sales/funnel/",
        {"start": _today().replace(day=1), "end": _today(), "owner": dealer.consultant.pk, "series": "Model Y"},
    ).content.decode()
    mine = _cohort().filter(owner=dealer.consultant, series="Model Y")
    assert int(_figure(page, "new")) == mine.count()
    assert int(_figure(page, "delivered")) == mine.filter(delivered_at__isnull=False).count() == 1
    assert _listed(client, _link(page, "step-new")) == set(mine.values_list("pk", flat=True))


def test_the_funnel_download_has_the_same_numbers(dealer, web):
    _build_leads(dealer)
    client = web(dealer.manager)
    page = client.get("/sales/funnel/").content.decode()
    workbook = _xlsx(client.get(_link(page, "funnel-xlsx")))
    assert {"Funnel", "Figures", "By source", "By consultant", "By model"} <= set(workbook.sheetnames)
    rows = list(workbook["Funnel"].iter_rows(values_only=True))[2:]  # headers, the period
    cohort = _cohort()
    assert [row[1] for row in rows] == [cohort.filter(_reached(step)).count() for step in AT_OR_AFTER]
    figures = {row[0]: row[1] for row in workbook["Figures"].iter_rows(min_row=2, values_only=True)}
    assert figures["Defeats waiting for approval"] == 1
    by_owner = {row[0]: row for row in workbook["By consultant"].iter_rows(min_row=2, values_only=True)}
    assert by_owner[dealer.consultant2.display_name][1] == cohort.filter(owner=dealer.consultant2).count()


def test_bad_periods_are_field_errors(dealer, web):
    client = web(dealer.manager)
    for query in ({"start": "2024-13-01", "end": "2024-12-31"}, {"start": "2025-02-01", "end": "2025-01-01"},
                  {"start": "1900-01-01", "end": "2025-01-01"}, {"start": "2020-01-01", "end": "2025-01-01"},
                  {"start": "2025-01-01", "end": "2025-01-31", "owner": "x"}):  # fmt: skip
        assert client.get("/sales/funnel/", query).status_code == 400, query
        assert client.get("/sales/funnel/export/", query).status_code == 400, query
    assert client.get("/sales/leads/export/", {"created_from": "2025-02-30"}).status_code == 400
    assert client.get("/sales/leads/export/", {"stage": "nonsense"}).status_code == 400


def test_the_dashboard_shows_the_funnel_card(dealer, web):
    _build_leads(dealer)
    page = web(dealer.manager).get("/dashboards/").content.decode()
    assert 'data-testid="sales-funnel-card"' in page
    link = _link(page, "sales-funnel-link")
    assert link.startswith("/sales/funnel/?start=")
    assert web(dealer.admin).get("/dashboards/").content.decode().count("sales-funnel-card") == 0


# --- the lead list's download ------------------------------------------------------------------------


def test_the_lead_download_lists_the_filtered_leads_masked(dealer, web):
    leads = _build_leads(dealer)
    client = web(dealer.manager)
    before = AuditEvent.objects.count()
    sheet = _xlsx(client.get("/sales/leads/export/", {"reached": "visited", "sort": "created"}))["Leads"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert {row[0] for row in rows} == set(_cohort().filter(_reached("visited")).values_list("pk", flat=True))
    walked = next(row for row in rows if row[0] == leads["walked"].pk)
    assert walked[2] == "137****2002"  # Bob's lead: the manager sees it masked
    assert AuditEvent.objects.count() == before + 1
    # a manager's own lead is shown in full
    services.lead_assign(actor=dealer.manager, lead=leads["called"], to=dealer.manager)
    sheet = _xlsx(client.get("/sales/leads/export/", {"owner": dealer.manager.pk}))["Leads"]
    assert [row[2] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["+8613700002001"]


# --- who may open what ------------------------------------------------------------------------------


def test_consultants_are_kept_out_of_the_manager_pages(dealer, web):
    leads = _build_leads(dealer)
    alice = web(dealer.consultant)
    for path in ["/sales/funnel/", "/sales/funnel/export/", "/sales/leads/export/", "/sales/conflicts/",
                 "/sales/settings/"]:  # fmt: skip
        assert alice.get(path).status_code == 403, path
    owner_before = Lead.objects.get(pk=leads["walked"].pk).owner_id
    response = alice.post(f"/sales/leads/{leads['walked'].pk}/assign/", {"to": dealer.consultant.pk})
    assert response.status_code == 403
    assert Lead.objects.get(pk=leads["walked"].pk).owner_id == owner_before
    response = alice.post("/sales/conflicts/", {"lead": leads["lost"].pk, "decision": "approve"})
    assert response.status_code == 403 and Lead.objects.get(pk=leads["lost"].pk).defeat_status == "pending"
    assert alice.post("/sales/settings/", {"form": "settings", "response_minutes": 5}).status_code == 403
    assert SalesSettings.objects.get().response_minutes == 30
    # the pool and their own duty are theirs to see
    assert alice.get("/sales/leads/pool/").status_code == 200
    duty = alice.get("/sales/duty/").content.decode()
    assert f'data-member="{dealer.consultant.pk}"' in duty and f'data-member="{dealer.consultant2.pk}"' not in duty
    # the auditor reads the funnel, decides nothing
    auditor = web(dealer.auditor)
    assert auditor.get("/sales/funnel/").status_code == 200
    assert auditor.get("/sales/conflicts/").status_code == 403
    assert web(dealer.advisor).get("/sales/leads/pool/").status_code == 403


# --- deciding -----------------------------------------------------------------------------------------


def test_a_manager_approves_a_defeat_from_the_page(dealer, web):
    leads = _build_leads(dealer)
    lost = leads["lost"]
    client = web(dealer.manager)
    page = client.get("/sales/conflicts/").content.decode()
    assert f'data-testid="defeat-{lost.pk}"' in page and "137****2005" in page
    # a rejection needs its reason: a field error, nothing changed
    response = client.post("/sales/conflicts/", {"lead": lost.pk, "decision": "reject", "note": " "})
    assert response.status_code == 400 and Lead.objects.get(pk=lost.pk).defeat_status == "pending"
    response = client.post("/sales/conflicts/", {"lead": lost.pk, "decision": "approve"})
    assert response.status_code == 302
    lost = Lead.objects.get(pk=lost.pk)
    assert lost.stage == Stage.DEFEATED and lost.defeat_status == "approved"
    assert LeadEvent.objects.filter(lead=lost, kind=LeadEvent.Kind.DEFEAT_APPROVED, actor=dealer.manager).exists()
    # twice: told, not a 500
    assert client.post("/sales/conflicts/", {"lead": lost.pk, "decision": "approve"}).status_code == 409
    assert client.post("/sales/conflicts/", {"lead": "abc", "decision": "approve"}).status_code == 400
    # and the funnel counts it
    figures = selectors.funnel(
        viewer=dealer.manager, filters=selectors.FunnelFilters(period=Period(_today().replace(day=1), _today()))
    )
    assert figures["defeats"][0]["reason"] == "price" and figures["pending_defeats"] == 0


def test_a_manager_reassigns_a_lead_and_takes_one_back(dealer, web):
    leads = _build_leads(dealer)
    walked = leads["walked"]
    client = web(dealer.manager)
    response = client.post(
        f"/sales/leads/{walked.pk}/assign/", {"to": dealer.consultant.pk, "next": "/sales/leads/pool/"}
    )
    assert response.status_code == 302 and response["Location"] == "/sales/leads/pool/"
    walked = Lead.objects.get(pk=walked.pk)
    assert walked.owner == dealer.consultant
    event = LeadEvent.objects.filter(lead=walked, kind=LeadEvent.Kind.ASSIGNED).latest("id")
    assert (event.from_owner, event.to_owner, event.actor) == (dealer.consultant2, dealer.consultant, dealer.manager)
    # back to the pool, where the pool page lists it with a form to give it out again
    client.post(f"/sales/leads/{walked.pk}/assign/", {"to": ""})
    assert Lead.objects.get(pk=walked.pk).owner is None
    pool = client.get("/sales/leads/pool/").content.decode()
    assert f'data-testid="assign-{walked.pk}"' in pool and "137****2002" in pool
    # to somebody who does not sell: refused with a message, nothing changed
    response = client.post(f"/sales/leads/{walked.pk}/assign/", {"to": dealer.advisor.pk})
    assert response.status_code == 302 and Lead.objects.get(pk=walked.pk).owner is None
    assert client.post("/sales/leads/999999999/assign/", {"to": ""}).status_code == 404


def test_a_manager_decides_an_ownership_conflict(dealer, web):
    leads = _build_leads(dealer)
    called = leads["called"]  # Alice's
    long_ago = timezone.now() - timedelta(days=60)
    Lead.objects.filter(pk=called.pk).update(last_contact_at=long_ago, assigned_at=long_ago)
    services.lead_capture(actor=dealer.consultant2, data={"name": "孙先生", "mobile": "13700002001", "source": "phone"})
    conflict = Conflict.objects.get(lead=called, status="pending")
    client = web(dealer.manager)
    page = client.get("/sales/conflicts/").content.decode()
    assert f'data-conflict="{conflict.pk}"' in page
    response = client.post(f"/sales/conflicts/{conflict.pk}/", {"outcome": "claimant"})
    assert response.status_code == 302
    assert Conflict.objects.get(pk=conflict.pk).status == "moved"
    assert Lead.objects.get(pk=called.pk).owner == dealer.consultant2
    # decided: no longer there
    assert client.post(f"/sales/conflicts/{conflict.pk}/", {"outcome": "owner"}).status_code == 404


# --- duty and rules -------------------------------------------------------------------------------------


def test_a_consultant_switches_only_their_own_duty(dealer, web):
    alice = web(dealer.consultant)
    response = alice.post("/sales/duty/", {"member": dealer.consultant.pk, "brands": "Tesla, BYD"})
    assert response.status_code == 302
    duty = ConsultantDuty.objects.get(member=dealer.consultant)
    assert duty.on_duty is False and duty.brands == ["BYD", "Tesla"]
    response = alice.post("/sales/duty/", {"member": dealer.consultant2.pk, "on_duty": "on"})
    assert response.status_code == 403
    assert not ConsultantDuty.objects.filter(member=dealer.consultant2, on_duty=True).exists()
    manager = web(dealer.manager)
    assert manager.post("/sales/duty/", {"member": dealer.consultant2.pk, "on_duty": "on"}).status_code == 302
    assert ConsultantDuty.objects.get(member=dealer.consultant2).on_duty is True
    assert manager.post("/sales/duty/", {"member": dealer.advisor.pk, "on_duty": "on"}).status_code == 400


def test_the_rules_reasons_and_demo_vehicles_are_set_on_the_settings_page(dealer, web):
    client = web(dealer.manager)
    page = client.get("/sales/settings/").content.decode()
    assert 'data-reason="price"' in page
    data = {f: getattr(SalesSettings.objects.get(), f) for f in ("reclaim_hours", "reclaim_overdue_days",
            "protection_days", "cadence_h_days", "cadence_a_days", "cadence_b_days", "cadence_c_days",
            "dormant_days", "wake_days")}  # fmt: skip
    response = client.post("/sales/settings/", {"form": "settings", **data, "response_minutes": 0})
    assert response.status_code == 400 and SalesSettings.objects.get().response_minutes == 30
    response = client.post("/sales/settings/", {"form": "settings", **data, "response_minutes": 15})
    assert response.status_code == 302 and SalesSettings.objects.get().response_minutes == 15
    assert client.post("/sales/settings/", {"form": "reason", "code": "bad code!", "label": "x"}).status_code == 400
    response = client.post("/sales/settings/", {"form": "reason", "code": "finance", "label": "金融方案不满意"})
    assert response.status_code == 302
    assert client.post("/sales/settings/", {"form": "vehicle", "brand": "", "series": "汉"}).status_code == 400
    response = client.post("/sales/settings/", {"form": "vehicle", "brand": "BYD", "series": "汉", "is_active": "on"})
    assert response.status_code == 302
    car = DemoVehicle.objects.get(brand="BYD")
    client.post("/sales/settings/", {"form": "vehicle_state", "vehicle": car.pk})
    assert DemoVehicle.objects.get(pk=car.pk).is_active is False
    assert client.post("/sales/settings/", {"form": "vehicle_state", "vehicle": "x"}).status_code == 400
