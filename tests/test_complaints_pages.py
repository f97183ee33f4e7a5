"""Complaint pages, the public form and status check, the API, notifications and the SLA task."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from complaints import services
from complaints.models import ComplaintSettings, Status, Ticket
from complaints.tasks import sla_check_fan_out_task
from crm.core.models import Notification


def _ticket(dealer: Any, **extra: Any) -> Ticket:
    category = services.categories_ensure()[2]
    return services.ticket_open(
        actor=dealer.agent,
        data=services.TicketInput(
            contact_name="赵女士",
            contact_mobile="13711112222",
            channel="phone",
            category=category,
            subject="交车时承诺的贴膜没有做",
            description="销售承诺送贴膜，交车时没有。",
            **extra,
        ),
    )


def test_an_agent_works_a_ticket_through_the_pages(dealer_a, web, in_tenant):
    client = web(dealer_a.agent)
    assert client.get("/complaints/new/").status_code == 200
    with in_tenant(dealer_a):
        category = services.categories_ensure()[2]
    created = client.post(
        "/complaints/new/",
        {
            "contact_name": "赵女士",
            "contact_mobile": "137 1111 2222",
            "channel": "phone",
            "category": category.pk,
            "severity": "high",
            "subject": "交车时承诺的贴膜没有做",
            "description": "销售承诺送贴膜，交车时没有。",
        },
    )
    assert created.status_code == 302
    with in_tenant(dealer_a):
        ticket = Ticket.objects.get(subject="交车时承诺的贴膜没有做")
    assert ticket.assignee_id == dealer_a.agent.pk and ticket.contact_mobile == "+8613711112222"
    queue = client.get("/complaints/")
    assert ticket.pk in [t.pk for t, _m, _c in queue.context["rows"]]
    skipped = client.post(f"/complaints/{ticket.pk}/advance/", {"to_status": "calm"})
    assert skipped.status_code == 400 and "to_status" in skipped.context["advance_form"].errors
    for step in ("listen", "calm", "handle"):
        assert client.post(f"/complaints/{ticket.pk}/advance/", {"to_status": step, "note": step}).status_code == 302
    refused = client.post(
        f"/complaints/{ticket.pk}/advance/",
        {"to_status": "closed", "compensation_amount": "100", "compensation_points": "0"},
    )
    errors = refused.context["advance_form"].errors
    assert refused.status_code == 400 and {"root_cause", "resolution"} <= set(errors)
    closed = client.post(
        f"/complaints/{ticket.pk}/advance/",
        {
            "to_status": "closed",
            "root_cause": "销售未登记赠品",
            "resolution": "补做贴膜",
            "compensation_amount": "0",
            "compensation_points": "300",
            "compensation_note": "积分补偿",
        },
    )
    assert closed.status_code == 302
    page = client.get(f"/complaints/{ticket.pk}/")
    html = page.content.decode()
    assert "销售未登记赠品" in html and 'data-testid="ticket-timeline"' in html
    assert [s["state"] for s in page.context["steps"]] == ["done"] * 4 + ["current", "todo"]


def test_who_sees_and_works_what(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        ticket = _ticket(dealer_a)
    assert web(dealer_a.consultant2).get(f"/complaints/{ticket.pk}/").status_code == 404
    auditor = web(dealer_a.auditor)
    assert auditor.get(f"/complaints/{ticket.pk}/").status_code == 200
    assert auditor.post(f"/complaints/{ticket.pk}/advance/", {"to_status": "listen"}).status_code == 403
    assert auditor.get("/complaints/new/").status_code == 403
    assert web(dealer_a.admin).get("/complaints/").status_code == 403
    masked = web(dealer_a.consultant).get("/complaints/?queue=team")  # no tickets of hers: masked or none
    assert "13711112222" not in masked.content.decode()
    manager = web(dealer_a.manager)
    manager_page = manager.get(f"/complaints/{ticket.pk}/").content.decode()
    # managers see the number masked, like on the customer page, and may reveal it (audited)
    assert "+8613711112222" not in manager_page and "137****2222" in manager_page
    assert 'data-testid="reveal-contact-mobile"' in manager_page
    assert "+8613711112222" in manager.post(f"/complaints/{ticket.pk}/reveal/").content.decode()


def test_queues_show_breached_and_waiting_tickets(dealer_a, web, in_tenant):
    from django.utils import timezone

    with in_tenant(dealer_a):
        late = _ticket(dealer_a)
        Ticket.objects.filter(pk=late.pk).update(response_due_at=timezone.now(), resolution_due_at=timezone.now())
        waiting = services.ticket_pause(actor=dealer_a.agent, ticket=_ticket(dealer_a))
    client = web(dealer_a.agent)
    breached = client.get("/complaints/?queue=breached")
    assert [t.pk for t, _m, _c in breached.context["rows"]] == [late.pk]
    assert breached.context["rows"][0][2]["state"] == "breached"
    assert [t.pk for t, _m, _c in client.get("/complaints/?queue=waiting").context["rows"]] == [waiting.pk]
    counts = {key: n for key, _label, n in breached.context["tabs"]}
    assert counts["breached"] == 1 and counts["waiting"] == 1 and counts["mine"] >= 3


def test_the_queue_sorts_by_its_number_and_due_headers(dealer_a, web, in_tenant):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    with in_tenant(dealer_a):
        made = [_ticket(dealer_a) for _ in range(3)]
        for n, ticket in enumerate(made):  # the first opened is due last
            Ticket.objects.filter(pk=ticket.pk).update(
                opened_at=now - timedelta(hours=3 - n), resolution_due_at=now + timedelta(days=9 - n)
            )
    client = web(dealer_a.agent)

    def order(sort: str) -> list[int]:
        rows = client.get("/complaints/", {"queue": "team", "sort": sort}).context["rows"]
        return [t.pk for t, _m, _c in rows if t.pk in {m.pk for m in made}]

    first, second, third = (t.pk for t in made)
    assert order("") == order("due") == [third, second, first]  # the open queue: soonest due first
    assert order("-due") == [first, second, third]
    assert order("newest") == [third, second, first] and order("oldest") == [first, second, third]
    assert order("nonsense") == [third, second, first]  # an unknown key: the queue's own order
    page = client.get("/complaints/", {"queue": "team", "sort": "due"}).content.decode()
    assert 'aria-sort="ascending"' in page and "sort=-due" in page and "queue=team" in page


def test_the_sla_task_checks_every_dealership_and_notifies_once(dealer_a, dealer_b, web, in_tenant):
    from django.utils import timezone

    with in_tenant(dealer_a):
        ticket = _ticket(dealer_a)
        Ticket.objects.filter(pk=ticket.pk).update(response_due_at=timezone.now(), response_warn_at=timezone.now())
    assert sorted(sla_check_fan_out_task.delay().get()) == sorted([dealer_a.tenant.pk, dealer_b.tenant.pk])
    sla_check_fan_out_task.delay().get()
    with in_tenant(dealer_a):
        assert Notification.objects.filter(kind="sla_breach", recipient=dealer_a.manager).count() == 1
    client = web(dealer_a.manager)
    page = client.get("/notifications/")
    assert ticket.number in page.content.decode()
    assert page.context["page"].items[0].kind == "sla_breach" and page.context["page"].items[0].urgent
    client.post("/notifications/read/", {"kind": ""})
    with in_tenant(dealer_a):
        assert not Notification.objects.filter(recipient=dealer_a.manager, read_at__isnull=True).exists()


def test_settings_page_for_managers(dealer_a, web, in_tenant):
    client = web(dealer_a.manager)
    assert client.get("/complaints/settings/").status_code == 200
    saved = client.post(
        "/complaints/settings/",
        {"form": "policy", "severity": "low", "first_response_minutes": 600, "resolution_minutes": 100},
    )
    assert saved.status_code == 200 and "resolution_minutes" in saved.context["policy_form"].errors
    ok = client.post(
        "/complaints/settings/",
        {"form": "policy", "severity": "low", "first_response_minutes": 60, "resolution_minutes": 600},
    )
    assert ok.status_code == 302
    client.post("/complaints/settings/", {"form": "settings", "reopen_window_days": 14, "follow_up_after_days": 2})
    with in_tenant(dealer_a):
        settings = ComplaintSettings.objects.get()
        assert (settings.reopen_window_days, settings.public_form_enabled) == (14, False)
    assert web(dealer_a.agent).get("/complaints/settings/").status_code == 403


# --- The public form ---------------------------------------------------------------------------------


@pytest.fixture
def public(client):  # type: ignore[no-untyped-def]
    cache.clear()
    return client


def _public_post(client: Any, code: str, **extra: Any) -> Any:
    from crm.tenancy.context import tenant_context
    from crm.tenancy.models import Tenant

    assert client.get(f"/c/{code}/").status_code == 200
    with tenant_context(Tenant.objects.get(code=code).pk):
        category = services.categories_ensure()[5]
    data = {
        "contact_name": "钱先生",
        "contact_mobile": "13622223333",
        "category": category.pk,
        "subject": "等待时间太长",
        "description": "保养等了四个小时",
        "website": "",
    } | extra
    return client.post(f"/c/{code}/", data)


def test_the_public_form_files_a_ticket_and_the_status_check_finds_it(dealer_a, public, in_tenant):
    response = _public_post(public, "dealer-a")
    assert response.status_code == 302
    thanks = public.get(response["Location"])
    number = thanks.context["number"]
    with in_tenant(dealer_a):
        ticket = Ticket.objects.get(number=number)
        assert ticket.source == "public_form" and ticket.channel == "web_form" and ticket.assignee is None
        assert Notification.objects.filter(kind="ticket_unassigned", recipient=dealer_a.manager).exists()
    wrong = public.post("/c/dealer-a/status/", {"number": number, "mobile": "13600000000"})
    assert "ticket" not in wrong.context or wrong.context["ticket"] is None
    found = public.post("/c/dealer-a/status/", {"number": number, "mobile": "136 2222 3333"})
    assert found.context["ticket"].pk == ticket.pk
    assert "保养等了四个小时" not in found.content.decode()  # the page shows progress, not internals
    assert public.post("/c/dealer-b/status/", {"number": number, "mobile": "13622223333"}).context.get("ticket") is None


# The customer sees four states, never the staff's steps ("greet, listen, calm" read as being
# handled, not helped). (staff status, what the page shows in English, in Chinese)
CUSTOMER_STATES = [
    (Status.GREET, "Received", "已受理"),
    (Status.LISTEN, "Being handled", "处理中"),
    (Status.CALM, "Being handled", "处理中"),
    (Status.HANDLE, "Being handled", "处理中"),
    (Status.REOPENED, "Being handled", "处理中"),
    (Status.CLOSED, "Resolved", "已解决"),
    (Status.FOLLOWED_UP, "Closed", "已关闭"),
]
INTERNAL_STEPS = ["问候", "倾听", "平息", "Greet", "Listen", "Calm", "Handle", "Followed up", "Reopened"]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_public_status_page_shows_customer_states_never_the_internal_steps(dealer_a, public, in_tenant, language):
    with in_tenant(dealer_a):
        ticket = _ticket(dealer_a)
    public.cookies["django_language"] = language  # the visitor chose it with the language switch
    for status, english, chinese in CUSTOMER_STATES:
        with in_tenant(dealer_a):
            Ticket.objects.filter(pk=ticket.pk).update(status=status)
        page = public.post(
            "/c/dealer-a/status/",
            {"number": ticket.number, "mobile": "13711112222"},
            HTTP_ACCEPT_LANGUAGE=language,
        )
        assert page.context["ticket"].pk == ticket.pk
        html = page.content.decode()
        shown = english if language == "en" else chinese
        current = [s for s in page.context["steps"] if s["current"]]
        assert [str(s["label"]) for s in current] == [shown], status
        assert [str(s["label"]) for s in page.context["steps"]] == (
            ["Received", "Being handled", "Resolved", "Closed"]
            if language == "en"
            else ["已受理", "处理中", "已解决", "已关闭"]
        )
        assert not [word for word in INTERNAL_STEPS if word in html], status


def test_the_public_form_refuses_bad_input_bots_and_floods(dealer_a, public, in_tenant):
    bad = _public_post(public, "dealer-a", contact_mobile="123")
    assert bad.status_code == 200 and "contact_mobile" in bad.context["form"].errors
    bot = _public_post(public, "dealer-a", website="http://spam.example")
    assert bot.status_code == 302
    with in_tenant(dealer_a):
        before = Ticket.objects.count()
        assert not Ticket.objects.filter(subject="等待时间太长").exists()
    for _ in range(4):
        _public_post(public, "dealer-a")
    assert _public_post(public, "dealer-a").status_code == 429
    with in_tenant(dealer_a):
        assert Ticket.objects.count() == before + 3  # 5 per hour, the bad one and the bot counted
    assert public.get("/c/no-such-dealer/").status_code == 404


def test_a_dealership_can_close_its_public_form(dealer_a, public, in_tenant):
    with in_tenant(dealer_a):
        ComplaintSettings.objects.update_or_create(defaults={"public_form_enabled": False})
    assert public.get("/c/dealer-a/").status_code == 404


# --- API ---------------------------------------------------------------------------------------------


def test_api_tickets_workflow_filters_and_metrics(dealer_a, api, in_tenant, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    agent = api(dealer_a.agent)
    created = agent.post(
        "/api/v1/complaints/tickets/",
        {
            "contact_name": "孙先生",
            "contact_mobile": "13533334444",
            "channel": "12315",
            "category": "price_fees",
            "severity": "critical",
            "subject": "维修报价与结算不符",
            "description": "结算比报价多了800元",
            "customer": dealer_a.objects["customer"].pk,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    ticket = created.json()
    assert ticket["status"] == "greet" and ticket["customer"] == dealer_a.objects["customer"].pk
    bad = agent.post("/api/v1/complaints/tickets/", {"category": "vip", "channel": "fax"}, format="json")
    assert bad.status_code == 400 and {"channel", "contact_name"} <= set(bad.json()["error"]["fields"])
    url = f"/api/v1/complaints/tickets/{ticket['id']}/"
    skip = agent.post(url + "advance/", {"to_status": "handle"}, format="json")
    assert skip.status_code == 400 and skip.json()["error"]["code"] == "step_not_allowed"
    for step in ("listen", "calm", "handle"):
        assert agent.post(url + "advance/", {"to_status": step}, format="json").status_code == 200
    no_cause = agent.post(url + "advance/", {"to_status": "closed"}, format="json")
    assert no_cause.status_code == 400 and "root_cause" in no_cause.json()["error"]["fields"]
    done = agent.post(
        url + "advance/",
        {
            "to_status": "closed",
            "root_cause": "报价单漏项",
            "resolution": "退还差价",
            "compensation_amount": "800",
            "compensation_note": "退款",
        },
        format="json",
    )
    assert done.status_code == 200 and done.json()["compensation_amount"] == "800.00"
    assert agent.post(url + "events/", {"note": "已电话致歉"}, format="json").status_code == 201
    kinds = [e["kind"] for e in agent.get(url + "events/").json()]
    assert kinds[0] == "opened" and kinds.count("transition") == 4 and kinds[-1] == "note"
    png = SimpleUploadedFile("结算单.png", b"\x89PNG\r\n\x1a\n0000", content_type="image/png")
    assert agent.post(url + "attachments/", {"file": png}, format="multipart").status_code == 201
    exe = SimpleUploadedFile("x.png", b"MZ\x90\x00", content_type="image/png")
    refused = agent.post(url + "attachments/", {"file": exe}, format="multipart")
    assert refused.status_code == 400 and "file" in refused.json()["error"]["fields"]
    listed = agent.get("/api/v1/complaints/tickets/", {"status": "closed", "category": "price_fees"}).json()
    assert [t["id"] for t in listed["results"]] == [ticket["id"]]
    assert api(dealer_a.consultant2).get(url).status_code == 404
    assert api(dealer_a.auditor).post(url + "reopen/", {"note": "x"}, format="json").status_code == 403
    reopened = agent.post(url + "reopen/", {"note": "客户仍不满意"}, format="json").json()
    assert reopened["status"] == "reopened" and reopened["resolution_failed"] is True
    metrics = api(dealer_a.manager).get("/api/v1/complaints/metrics/", {"start": "2020-01-01", "end": "2030-12-31"})
    assert metrics.status_code == 200 and metrics.json()["overall"]["tickets"] >= 2
    assert (
        api(dealer_a.agent).get("/api/v1/complaints/metrics/", {"start": "2020-01-01", "end": "2030-12-31"}).status_code
        == 403
    )
    assert api(key=dealer_a.raw_key).get("/api/v1/complaints/tickets/").status_code == 403  # no scope


def test_metrics_page(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        ticket = _ticket(dealer_a)
        for step in (Status.LISTEN, Status.CALM, Status.HANDLE):
            ticket = services.ticket_advance(actor=dealer_a.agent, ticket=ticket, to_status=step)
        services.ticket_advance(
            actor=dealer_a.agent,
            ticket=ticket,
            to_status=Status.CLOSED,
            closing=services.Closing(
                root_cause="a", resolution="b", compensation_amount=Decimal("50"), compensation_note="c"
            ),
        )
    page = web(dealer_a.manager).get("/complaints/metrics/")
    assert page.status_code == 200
    figures = page.context["figures"]
    assert figures["overall"]["tickets"] == 2 and figures["overall"]["closed"] == 1  # with conftest's ticket
    assert {row["label"] for row in figures["by_category"]} >= {ticket.category.name}
    assert web(dealer_a.agent).get("/complaints/metrics/").status_code == 403


def test_the_home_page_counts_my_open_and_overdue_complaints(dealer_a, web, in_tenant):
    from django.utils import timezone

    with in_tenant(dealer_a):
        late = _ticket(dealer_a)
        Ticket.objects.filter(pk=late.pk).update(resolution_due_at=timezone.now())
    home = web(dealer_a.agent).get("/")
    assert home.context["complaints_mine"] == 2 and home.context["complaints_breached"] == 1  # with conftest's
    assert "complaints_mine" not in web(dealer_a.admin).get("/").context


def test_an_attachment_downloads_for_those_who_see_the_ticket(dealer_a, web, in_tenant, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with in_tenant(dealer_a):
        ticket = _ticket(dealer_a)
        png = SimpleUploadedFile("划痕.png", b"\x89PNG\r\n\x1a\nPIXELS", content_type="image/png")
        attachment = services.ticket_attach(actor=dealer_a.agent, ticket=ticket, upload=png)
    url = f"/complaints/{ticket.pk}/attachments/{attachment.pk}/"
    response = web(dealer_a.agent).get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89PNG\r\n\x1a\nPIXELS"
    assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in response["Content-Disposition"]
    assert web(dealer_a.consultant2).get(url).status_code == 404  # cannot see the ticket
