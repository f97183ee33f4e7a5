"""The consultant's sales pages: who may open each, a colleague's lead is a 404, every form's
refusal is a field message (never a 500), and the main path capture → lead → test drive → quote
→ order → delivery through the pages, with a manager deciding a defeat.

One small dealership per test: a manager, two consultants (Alice and Bob), an auditor, a tenant
admin and a service advisor (who has no sales capability)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from crm.tenancy.context import tenant_context
from crm.tenancy.models import Membership, Tenant
from crm.tenancy.roles import Role
from customers.validators import vin_check_digit
from followups.models import Followup, Reason, Status
from sales import services
from sales.models import DefeatStatus, DemoVehicle, Lead, LeadEvent, Quote, ShowroomVisit, Stage
from sales.models import TestDrive as Drive  # not collected as a test class
from tests.factories import MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db


@dataclass
class Shop:
    tenant: Tenant
    manager: Membership
    alice: Membership
    bob: Membership
    auditor: Membership
    admin: Membership
    advisor: Membership
    alices_lead: Lead
    bobs_lead: Lead
    pool_lead: Lead
    car: DemoVehicle


@pytest.fixture
def shop(db) -> Shop:  # type: ignore[no-untyped-def]
    tenant = TenantFactory(name="销售测试店", code="sales-shop")
    with tenant_context(tenant.pk):
        people = {
            name: MembershipFactory(user__email=f"{name}@sales-shop.test", user__first_name=name, role=role)
            for name, role in [
                ("manager", Role.MANAGER),
                ("alice", Role.SALES_CONSULTANT),
                ("bob", Role.SALES_CONSULTANT),
                ("auditor", Role.AUDITOR),
                ("admin", Role.TENANT_ADMIN),
                ("advisor", Role.SERVICE_ADVISOR),
            ]
        }
        services.sales_settings_update(actor=people["manager"], data={"auto_assign": False})
        alices = services.lead_capture(
            actor=people["alice"],
            data={"name": "张三", "mobile": "13912345678", "source": "phone", "brand": "Tesla", "series": "Model Y"},
        ).lead
        bobs = services.lead_capture(
            actor=people["bob"], data={"name": "李四", "mobile": "13887654321", "source": "walk_in"}
        ).lead
        pool = services.lead_capture(
            actor=people["manager"], data={"name": "王五", "mobile": "13700001111", "source": "online"}
        ).lead
        car = services.demo_vehicle_save(
            actor=people["manager"], data={"brand": "Tesla", "series": "Model Y", "plate": "粤B·D0001"}
        )
    assert pool.owner_id is None
    return Shop(tenant=tenant, **people, alices_lead=alices, bobs_lead=bobs, pool_lead=pool, car=car)


def _reload(shop: Shop, lead: Lead) -> Lead:
    with tenant_context(shop.tenant.pk):
        return Lead.objects.get(pk=lead.pk)


def _events(shop: Shop) -> int:
    with tenant_context(shop.tenant.pk):
        return LeadEvent.objects.count()


def _tomorrow_at(hour: int) -> datetime:
    day = timezone.localdate() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time(hour, 0)))


def _local(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%dT%H:%M}"


def _valid_vin(body: str = "LSVAX60E0N2000123") -> str:
    return body[:8] + vin_check_digit(body) + body[9:]


# --- who may open what ------------------------------------------------------------------------------

PAGES = ["/sales/", "/sales/leads/", "/sales/leads/new/", "/sales/showroom/", "/sales/test-drives/"]


def test_anonymous_visitors_are_sent_to_sign_in(shop, client):
    lead = shop.alices_lead
    for path in [*PAGES, f"/sales/leads/{lead.pk}/", f"/sales/leads/{lead.pk}/quote/"]:
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/sign-in/"), path


def test_each_role_reaches_only_the_pages_its_capabilities_allow(shop, web):
    lead = f"/sales/leads/{shop.alices_lead.pk}/"
    expected = {
        shop.alice: {"/sales/": 200, "/sales/leads/": 200, "/sales/leads/new/": 200, "/sales/showroom/": 200,
                     "/sales/test-drives/": 200, lead: 200},
        shop.manager: {"/sales/": 200, "/sales/leads/": 200, "/sales/leads/new/": 200, "/sales/showroom/": 200,
                       "/sales/test-drives/": 200, lead: 200},
        shop.auditor: {"/sales/": 403, "/sales/leads/": 200, "/sales/leads/new/": 403, "/sales/showroom/": 200,
                       "/sales/test-drives/": 200, lead: 200},
        shop.admin: {"/sales/": 403, "/sales/leads/": 403, "/sales/leads/new/": 403, "/sales/showroom/": 403,
                     "/sales/test-drives/": 403, lead: 403},
        shop.advisor: {"/sales/": 403, "/sales/leads/": 403, "/sales/leads/new/": 403, "/sales/showroom/": 403,
                       "/sales/test-drives/": 403, lead: 403},
    }  # fmt: skip
    for member, pages in expected.items():
        client = web(member)
        got = {path: client.get(path).status_code for path in pages}
        assert got == pages, member.role


def test_the_nav_shows_sales_to_those_with_the_capability(shop, web):
    alice = web(shop.alice).get("/").content.decode()
    assert 'data-testid="nav-leads-today"' in alice and 'data-testid="nav-sales-settings"' not in alice
    assert 'data-testid="nav-conflicts"' not in alice and 'data-testid="nav-funnel"' not in alice
    manager = web(shop.manager).get("/").content.decode()
    for item in ("nav-leads-today", "nav-funnel", "nav-pool", "nav-conflicts", "nav-duty", "nav-sales-settings"):
        assert f'data-testid="{item}"' in manager, item
    auditor = web(shop.auditor).get("/").content.decode()
    assert 'data-testid="nav-leads"' in auditor and 'data-testid="nav-leads-today"' not in auditor
    assert 'data-testid="nav-sales"' not in web(shop.admin).get("/").content.decode()


def test_a_consultant_cannot_open_or_move_a_colleagues_lead(shop, web):
    bobs = shop.bobs_lead
    client = web(shop.alice)
    before = _events(shop)
    for path in [
        f"/sales/leads/{bobs.pk}/",
        f"/sales/leads/{bobs.pk}/edit/",
        f"/sales/leads/{bobs.pk}/quote/",
        f"/sales/leads/{bobs.pk}/test-drive/",
        f"/sales/customers/{bobs.customer_id}/lead/",
    ]:
        assert client.get(path).status_code == 404, path
    for path, data in [
        (f"/sales/leads/{bobs.pk}/contact/", {"disposition": "feedback", "channel": "call"}),
        (f"/sales/leads/{bobs.pk}/take/", {}),
        (f"/sales/leads/{bobs.pk}/defeat/", {"reason": "1"}),
        (f"/sales/leads/{bobs.pk}/edit/", {"name": "改名", "level": "H", "timeframe": "7d", "payment": "cash"}),
    ]:
        assert client.post(path, data).status_code == 404, path
    assert _events(shop) == before
    assert _reload(shop, bobs).owner_id == shop.bob.pk and _reload(shop, bobs).name == "李四"
    listed = client.get("/sales/leads/").content.decode()
    assert "李四" not in listed and "张三" in listed and "王五" in listed


def test_mobiles_are_shown_in_full_only_to_the_leads_consultant(shop, web):
    lead = f"/sales/leads/{shop.alices_lead.pk}/"
    assert "+8613912345678" in web(shop.alice).get(lead).content.decode()
    managers = web(shop.manager).get(lead).content.decode()
    assert "+8613912345678" not in managers and "139****5678" in managers
    assert "+8613912345678" not in web(shop.manager).get("/sales/leads/").content.decode()


def test_the_auditor_sees_a_lead_but_is_offered_no_action_and_may_take_none(shop, web):
    client = web(shop.auditor)
    page = client.get(f"/sales/leads/{shop.alices_lead.pk}/").content.decode()
    assert 'data-testid="contact-form"' not in page and 'data-testid="defeat-form"' not in page
    before = _events(shop)
    response = client.post(f"/sales/leads/{shop.alices_lead.pk}/contact/", {"disposition": "feedback"})
    assert response.status_code == 403 and _events(shop) == before


# --- my leads today, the list ----------------------------------------------------------------------


def test_my_leads_today_lists_what_is_due_with_overdue_marked_and_the_pool_to_take(shop, web):
    with tenant_context(shop.tenant.pk):
        Lead.objects.filter(pk=shop.alices_lead.pk).update(next_followup_on=timezone.localdate() - timedelta(days=2))
    client = web(shop.alice)
    page = client.get("/sales/")
    body = page.content.decode()
    assert page.status_code == 200 and "张三" in body and 'data-testid="overdue"' in body
    assert "李四" not in body
    assert f'data-lead="{shop.pool_lead.pk}"' in body  # the pool, with a take button
    taken = client.post(f"/sales/leads/{shop.pool_lead.pk}/take/", {"next": "/sales/"})
    assert taken.status_code == 302 and taken["Location"] == f"/sales/leads/{shop.pool_lead.pk}/"
    assert _reload(shop, shop.pool_lead).owner_id == shop.alice.pk


def test_the_lead_list_filters_sorts_and_refuses_a_bad_filter_with_a_message(shop, web):
    client = web(shop.manager)
    body = client.get("/sales/leads/", {"source": "walk_in"}).content.decode()
    assert "李四" in body and "张三" not in body
    body = client.get("/sales/leads/", {"owner": "pool"}).content.decode()
    assert "王五" in body and "张三" not in body
    body = client.get("/sales/leads/", {"owner": str(shop.alice.pk), "sort": "level"}).content.decode()
    assert "张三" in body and "李四" not in body and 'aria-sort="ascending"' in body
    body = client.get("/sales/leads/", {"reached": "contacted"}).content.decode()
    assert "张三" in body and "王五" not in body
    bad = client.get("/sales/leads/", {"created_from": "2026-05-02", "created_to": "2026-05-01"})
    assert bad.status_code == 400 and "created_to" in bad.context["form"].errors
    junk = client.get("/sales/leads/", {"stage": "nonsense"})
    assert junk.status_code == 400 and "stage" in junk.context["form"].errors


# --- capture ----------------------------------------------------------------------------------------


def test_capture_leads_to_the_lead_page(shop, web):
    client = web(shop.alice)
    response = client.post(
        "/sales/leads/new/",
        {"name": "赵六", "mobile": "137 0000 2222", "source": "phone", "series": "Model 3", "timeframe": "7d",
         "payment": "loan", "budget": "250000"},
    )  # fmt: skip
    with tenant_context(shop.tenant.pk):
        lead = Lead.objects.get(mobile="+8613700002222")
    assert response.status_code == 302 and response["Location"] == f"/sales/leads/{lead.pk}/"
    assert lead.owner_id == shop.alice.pk and lead.level == "H" and lead.stage == Stage.CONTACTED
    page = client.get(response["Location"]).content.decode()
    assert "赵六" in page and "Model 3" in page


def test_a_capture_of_a_colleagues_person_tells_whose_lead_it_is_and_goes_back(shop, web):
    client = web(shop.alice)
    response = client.post(
        "/sales/leads/new/", {"name": "李四", "mobile": "13887654321", "source": "phone", "timeframe": "30d",
                              "payment": "undecided"}
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"] == "/sales/leads/new/"
    shown = client.get(response["Location"]).content.decode()
    assert "bob" in shown  # the notice names the owner
    with tenant_context(shop.tenant.pk):
        assert Lead.objects.filter(mobile="+8613887654321").count() == 1
    assert _reload(shop, shop.bobs_lead).owner_id == shop.bob.pk


def test_a_bad_capture_shows_field_messages_and_saves_nothing(shop, web):
    client = web(shop.alice)
    with tenant_context(shop.tenant.pk):
        before = Lead.objects.count()
    response = client.post(
        "/sales/leads/new/", {"name": "钱七", "mobile": "12345", "source": "referral", "timeframe": "30d",
                              "payment": "cash", "referrer": "999999"}
    )  # fmt: skip
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "referrer" in errors
    assert 'class="field field-error"' in response.content.decode()
    response = client.post(
        "/sales/leads/new/", {"name": "钱七", "mobile": "12345", "source": "phone", "timeframe": "30d",
                              "payment": "cash"}
    )  # fmt: skip
    assert response.status_code == 400 and "mobile" in response.context["form"].errors
    past = _local(timezone.now() - timedelta(days=1))
    response = client.post(
        "/sales/leads/new/", {"name": "钱七", "mobile": "13600003333", "source": "phone", "timeframe": "30d",
                              "payment": "cash", "appointment_at": past}
    )  # fmt: skip
    assert response.status_code == 400 and "appointment_at" in response.context["form"].errors
    with tenant_context(shop.tenant.pk):
        assert Lead.objects.count() == before


# --- working a lead ----------------------------------------------------------------------------------


def test_an_invitation_in_the_past_is_a_field_message_on_the_lead_page(shop, web):
    client = web(shop.alice)
    response = client.post(
        f"/sales/leads/{shop.alices_lead.pk}/invite/", {"appointment_at": _local(timezone.now() - timedelta(hours=2))}
    )
    assert response.status_code == 400
    assert "appointment_at" in response.context["invite_form"].errors
    assert 'class="field field-error"' in response.content.decode()
    assert _reload(shop, shop.alices_lead).stage == Stage.CONTACTED
    ok = client.post(
        f"/sales/leads/{shop.alices_lead.pk}/invite/", {"appointment_at": _local(timezone.now() + timedelta(days=1))}
    )
    assert ok.status_code == 302 and _reload(shop, shop.alices_lead).stage == Stage.INVITED


def test_contact_edit_and_callback_day(shop, web):
    client = web(shop.alice)
    lead = shop.alices_lead
    day = timezone.localdate() + timedelta(days=5)
    response = client.post(
        f"/sales/leads/{lead.pk}/contact/",
        {"disposition": "callback", "channel": "wechat", "notes": "周末再说", "callback_on": day.isoformat()},
    )
    assert response.status_code == 302
    assert _reload(shop, lead).next_followup_on == day
    edit = client.get(f"/sales/leads/{lead.pk}/edit/")
    assert edit.status_code == 200 and edit.context["form"].initial["level"] == lead.level
    saved = client.post(
        f"/sales/leads/{lead.pk}/edit/",
        {"name": "张三", "level": "H", "timeframe": "7d", "payment": "cash", "next_followup_on": day.isoformat()},
    )
    assert saved.status_code == 302
    reloaded = _reload(shop, lead)
    assert reloaded.level == "H" and reloaded.payment == "cash" and reloaded.next_followup_on != day  # the H cadence
    bad = client.post(
        f"/sales/leads/{lead.pk}/edit/",
        {"name": "张三", "level": "H", "timeframe": "7d", "payment": "cash", "next_followup_on": "2020-01-01"},
    )
    assert bad.status_code == 400 and "next_followup_on" in bad.context["form"].errors


def test_test_drive_booking_recording_and_the_agreement(shop, web):
    client = web(shop.alice)
    lead = shop.alices_lead
    page = client.get(f"/sales/leads/{lead.pk}/test-drive/", {"day": (timezone.localdate() + timedelta(days=1))})
    assert page.status_code == 200 and str(shop.car) in page.content.decode()
    start = _tomorrow_at(10)
    booked = client.post(
        f"/sales/leads/{lead.pk}/test-drive/", {"vehicle": shop.car.pk, "starts_at": _local(start), "minutes": "60"}
    )
    assert booked.status_code == 302
    with tenant_context(shop.tenant.pk):
        drive = Drive.objects.get(lead=lead)
    assert booked["Location"] == f"/sales/test-drives/{drive.pk}/"
    # the same car at an overlapping time: a field message, not a second booking
    clash = client.post(
        f"/sales/leads/{lead.pk}/test-drive/",
        {"vehicle": shop.car.pk, "starts_at": _local(start + timedelta(minutes=30)), "minutes": "60"},
    )
    assert clash.status_code == 409 and "starts_at" in clash.context["form"].errors
    assert "张三" in client.get("/sales/test-drives/").content.decode()
    # Bob cannot open it; a wrong file type is refused on its field
    assert web(shop.bob).get(f"/sales/test-drives/{drive.pk}/").status_code == 404
    client = web(shop.alice)
    fake = SimpleUploadedFile("a.pdf", b"not a pdf", content_type="application/pdf")
    refused = client.post(
        f"/sales/test-drives/{drive.pk}/",
        {"status": "done", "licence_number": "440301199001011234", "licence_expiry": "2099-01-01",
         "licence_consent": "on", "agreement": fake},
    )  # fmt: skip
    assert refused.status_code == 400 and "agreement" in refused.context["form"].errors
    no_consent = client.post(
        f"/sales/test-drives/{drive.pk}/",
        {"status": "done", "licence_number": "440301199001011234", "licence_expiry": "2099-01-01"},
    )
    assert no_consent.status_code == 400 and "licence_consent" in no_consent.context["form"].errors
    recorded = client.post(
        f"/sales/test-drives/{drive.pk}/",
        {"status": "done", "licence_number": "440301199001011234", "licence_expiry": "2099-01-01",
         "licence_consent": "on", "rating": "5", "feedback": "很满意",
         "agreement": SimpleUploadedFile("signed.pdf", b"%PDF-1.4 signed", content_type="application/pdf")},
    )  # fmt: skip
    assert recorded.status_code == 302
    assert _reload(shop, lead).stage == Stage.TEST_DRIVE
    download = client.get(f"/sales/test-drives/{drive.pk}/agreement/")
    assert download.status_code == 200 and b"".join(download.streaming_content).startswith(b"%PDF-")
    assert web(shop.bob).get(f"/sales/test-drives/{drive.pk}/agreement/").status_code == 404
    assert web(shop.manager).get(f"/sales/test-drives/{drive.pk}/agreement/").status_code == 200


def _quote(client: Any, lead: Lead, **extra: str) -> Any:
    data = {
        "brand": "Tesla",
        "series": "Model Y",
        "list_price": "263900",
        "discount": "10000",
        "insurance": "5000",
        "acc-TOTAL_FORMS": "6",
        "acc-INITIAL_FORMS": "0",
        "acc-0-name": "脚垫",
        "acc-0-price": "800",
        **extra,
    }
    return client.post(f"/sales/leads/{lead.pk}/quote/", data)


def test_quote_order_and_delivery_through_the_pages(shop, web):
    client = web(shop.alice)
    lead = shop.alices_lead
    assert client.get(f"/sales/leads/{lead.pk}/quote/").status_code == 200
    negative = _quote(client, lead, trade_in_value="999999")
    assert negative.status_code == 400 and "trade_in_value" in negative.context["form"].errors
    saved = _quote(client, lead)
    with tenant_context(shop.tenant.pk):
        quote = Quote.objects.get(lead=lead)
    assert saved.status_code == 302 and saved["Location"] == f"/sales/quotes/{quote.pk}/"
    printable = client.get(saved["Location"]).content.decode()
    assert quote.total == 259700 and "259,700.00" in printable and "css/print.css" in printable
    assert web(shop.bob).get(f"/sales/quotes/{quote.pk}/").status_code == 404
    client = web(shop.alice)
    too_much = client.post(f"/sales/leads/{lead.pk}/order/", {"quote": quote.pk, "deposit": "999999"})
    assert too_much.status_code == 400 and "deposit" in too_much.context["order_form"].errors
    ordered = client.post(f"/sales/leads/{lead.pk}/order/", {"quote": quote.pk, "deposit": "5000"})
    assert ordered.status_code == 302 and _reload(shop, lead).stage == Stage.ORDERED
    bad_vin = client.post(f"/sales/leads/{lead.pk}/deliver/", {"vin": "LSVAX60E0N2000123"[:16] + "X"})
    assert bad_vin.status_code == 400 and "vin" in bad_vin.context["deliver_form"].errors
    delivered = client.post(f"/sales/leads/{lead.pk}/deliver/", {"vin": _valid_vin(), "plate": "粤B·D1234"})
    assert delivered.status_code == 302
    done = _reload(shop, lead)
    assert done.stage == Stage.DELIVERED and done.sale_order_id is not None
    page = client.get(f"/sales/leads/{lead.pk}/").content.decode()
    assert 'data-testid="deliver-form"' not in page and 'data-testid="lead-delivered"' in page
    customer = client.get(f"/customers/{lead.customer_id}/").content.decode()
    assert 'data-testid="sales-panel"' in customer and f"/sales/leads/{lead.pk}/" in customer


def test_a_defeat_is_reported_then_a_manager_approves_it_and_reopens_it(shop, web):
    lead = shop.alices_lead
    with tenant_context(shop.tenant.pk):
        reasons = {r.code: r for r in services.defeat_reasons_ensure()}
    client = web(shop.alice)
    missing = client.post(f"/sales/leads/{lead.pk}/defeat/", {"reason": reasons["competitor"].pk})
    assert missing.status_code == 400 and "competitor_brand" in missing.context["defeat_form"].errors
    reported = client.post(
        f"/sales/leads/{lead.pk}/defeat/", {"reason": reasons["competitor"].pk, "competitor_brand": "BYD"}
    )
    assert reported.status_code == 302 and _reload(shop, lead).defeat_status == DefeatStatus.PENDING
    # only a manager decides
    assert client.post(f"/sales/leads/{lead.pk}/defeat/decide/", {"approve": "yes"}).status_code == 403
    manager = web(shop.manager)
    page = manager.get(f"/sales/leads/{lead.pk}/").content.decode()
    assert 'data-testid="decide-form"' in page
    no_note = manager.post(f"/sales/leads/{lead.pk}/defeat/decide/", {"approve": "no"})
    assert no_note.status_code == 400 and "note" in no_note.context["decide_form"].errors
    approved = manager.post(f"/sales/leads/{lead.pk}/defeat/decide/", {"approve": "yes"})
    assert approved.status_code == 302 and _reload(shop, lead).stage == Stage.DEFEATED
    reopened = manager.post(f"/sales/leads/{lead.pk}/reopen/", {"note": "又来了"})
    assert reopened.status_code == 302 and _reload(shop, lead).stage == Stage.CONTACTED


# --- showroom, lead of a customer, follow-up link, home card -------------------------------------------


def test_a_walk_in_with_name_and_mobile_captures_a_lead_and_leaves_later(shop, web):
    client = web(shop.alice)
    arrived = timezone.now() - timedelta(minutes=20)
    bad = client.post("/sales/showroom/", {"arrived_at": _local(arrived), "party_size": "0", "name": "孙八"})
    assert bad.status_code == 400
    assert {"party_size", "mobile"} <= set(bad.context["form"].errors)
    response = client.post(
        "/sales/showroom/",
        {"arrived_at": _local(arrived), "party_size": "3", "first_visit": "on", "series": "Model Y",
         "name": "孙八", "mobile": "13600004444"},
    )  # fmt: skip
    assert response.status_code == 302
    with tenant_context(shop.tenant.pk):
        visit = ShowroomVisit.objects.select_related("lead").get(lead__mobile="+8613600004444")
        assert visit.lead is not None and visit.lead.owner_id == shop.alice.pk and visit.lead.stage == Stage.VISITED
    page = client.get("/sales/showroom/").content.decode()
    assert "孙八" in page and f"/sales/showroom/{visit.pk}/left/" in page
    assert web(shop.bob).post(f"/sales/showroom/{visit.pk}/left/").status_code == 404
    left = web(shop.alice).post(f"/sales/showroom/{visit.pk}/left/")
    assert left.status_code == 302
    with tenant_context(shop.tenant.pk):
        assert ShowroomVisit.objects.get(pk=visit.pk).left_at is not None
    anonymous = web(shop.alice).post("/sales/showroom/", {"arrived_at": _local(arrived), "party_size": "2"})
    assert anonymous.status_code == 302


def test_the_lead_of_a_customer_and_the_follow_up_page_link_to_the_lead(shop, web):
    lead = shop.alices_lead
    client = web(shop.alice)
    response = client.get(f"/sales/customers/{lead.customer_id}/lead/")
    assert response.status_code == 302 and response["Location"] == f"/sales/leads/{lead.pk}/"
    with tenant_context(shop.tenant.pk):
        followup = Followup.objects.get(customer=lead.customer, reason=Reason.LEAD, status=Status.OPEN)
    page = client.get(f"/followups/{followup.pk}/").content.decode()
    assert 'data-testid="work-subject"' in page and f"/sales/customers/{lead.customer_id}/lead/" in page


def test_the_home_card_counts_my_leads_due_and_the_pool(shop, web):
    with tenant_context(shop.tenant.pk):
        Lead.objects.filter(pk=shop.alices_lead.pk).update(next_followup_on=timezone.localdate())
    home = web(shop.alice).get("/").content.decode()
    assert 'data-testid="sales-card"' in home
    assert 'data-testid="leads-due">1<' in home
    assert 'data-testid="sales-card"' not in web(shop.auditor).get("/").content.decode()
