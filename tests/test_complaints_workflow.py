"""Complaint tickets: the six steps, closing rules, reopening, waiting on the customer, SLA clocks
across nights, weekends, holidays and make-up days with a fixed clock, and escalation that fires once."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from complaints import services
from complaints.models import SlaPolicy, Status, Ticket, TicketEvent
from complaints.services import Closing, TicketInput
from crm.core.errors import ApplicationError, NotAllowed
from crm.core.models import Notification
from crm.tenancy.models import Tenant

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
WEEKDAY = [["08:30", "12:00"], ["13:30", "18:00"]]
STEPS = [Status.LISTEN, Status.CALM, Status.HANDLE]


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SHANGHAI)


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = at(date(2026, 9, 14), 9)  # Monday 09:00
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def set(self, moment: datetime) -> None:
        self.now = moment


@pytest.fixture
def clock(monkeypatch):  # type: ignore[no-untyped-def]
    return Clock(monkeypatch)


@pytest.fixture
def dealer(dealer_a):  # type: ignore[no-untyped-def]
    Tenant.objects.filter(pk=dealer_a.tenant.pk).update(
        time_zone="Asia/Shanghai",
        business_hours=dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), WEEKDAY) | {"sat": [], "sun": []},
    )  # China's public holidays and make-up days by default: none typed by hand
    return dealer_a


def open_ticket(dealer: Any, *, severity: str = "normal", actor: Any = None, **extra: Any) -> Ticket:
    category = services.categories_ensure()[1]  # repair quality
    data = TicketInput(
        contact_name="王先生",
        contact_mobile="139 0000 1111",
        channel="phone",
        category=category,
        subject="保养后异响",
        description="保养后发动机有异响，客户很生气。",
        severity=severity,
        **extra,
    )
    return services.ticket_open(actor=actor or dealer.agent, data=data)


CLOSING = Closing(root_cause="机油加注过量", resolution="重新放油并免费检查", compensation_note="")


def test_steps_go_one_at_a_time_and_every_move_is_recorded(dealer, in_tenant, clock):
    with in_tenant(dealer):
        ticket = open_ticket(dealer)
        assert ticket.status == Status.GREET and ticket.number.startswith("260914")
        with pytest.raises(ApplicationError) as skipped:
            services.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=Status.CALM)
        assert skipped.value.code == "step_not_allowed" and "to_status" in skipped.value.fields
        clock.set(at(date(2026, 9, 14), 9, 20))
        for step in STEPS:
            ticket = services.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=step, note=f"到{step}")
        assert ticket.first_response_at == at(date(2026, 9, 14), 9, 20) and ticket.response_minutes == 20
        with pytest.raises(ApplicationError):  # no going back
            services.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=Status.LISTEN)
        moves = list(
            TicketEvent.objects.filter(ticket=ticket, kind="transition").values_list("from_status", "to_status", "note")
        )
        assert moves == [("greet", "listen", "到listen"), ("listen", "calm", "到calm"), ("calm", "handle", "到handle")]
        assert all(e.actor_id == dealer.agent.pk for e in TicketEvent.objects.filter(ticket=ticket, kind="transition"))


def test_closing_needs_cause_resolution_and_compensation_details(dealer, in_tenant, clock):
    with in_tenant(dealer):
        ticket = open_ticket(dealer)
        for step in STEPS:
            ticket = services.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=step)
        with pytest.raises(ApplicationError) as missing:
            services.ticket_advance(
                actor=dealer.agent,
                ticket=ticket,
                to_status=Status.CLOSED,
                closing=Closing(root_cause="", resolution=""),
            )
        assert {"root_cause", "resolution"} <= set(missing.value.fields)
        with pytest.raises(ApplicationError) as unexplained:
            services.ticket_advance(
                actor=dealer.agent,
                ticket=ticket,
                to_status=Status.CLOSED,
                closing=Closing(root_cause="x", resolution="y", compensation_amount=Decimal("200")),
            )
        assert "compensation_note" in unexplained.value.fields
        assert Ticket.objects.get(pk=ticket.pk).status == Status.HANDLE  # nothing changed
        clock.set(at(date(2026, 9, 15), 10))
        closed = services.ticket_advance(
            actor=dealer.agent,
            ticket=ticket,
            to_status=Status.CLOSED,
            closing=Closing(
                root_cause="机油加注过量",
                resolution="重新放油",
                compensation_amount=Decimal("200"),
                compensation_points=500,
                compensation_note="保养代金券",
            ),
        )
        assert closed.resolved_at == at(date(2026, 9, 15), 10)
        assert closed.follow_up_due_on == date(2026, 9, 18)  # 3 days later (setting)
        assert closed.resolution_minutes == 450 + 90  # Mon 09:00-18:00 and Tue 08:30-10:00, lunch excluded
        with pytest.raises(ApplicationError) as no_note:
            services.ticket_advance(actor=dealer.agent, ticket=closed, to_status=Status.FOLLOWED_UP)
        assert "note" in no_note.value.fields
        done = services.ticket_advance(
            actor=dealer.agent, ticket=closed, to_status=Status.FOLLOWED_UP, note="客户满意，感谢回访"
        )
        assert done.status == Status.FOLLOWED_UP and done.followed_up_at


def test_closing_runs_the_closed_loop_hooks_after_commit(dealer, in_tenant, clock, django_capture_on_commit_callbacks):
    seen: list[str] = []
    handlers = services.ticket_closed_handlers
    test_handler = services.TicketClosedHandler(name="test.seen", handle=lambda ticket: seen.append(ticket.number))
    with handlers.replaced(*handlers.contributions(), test_handler), in_tenant(dealer):
        ticket = open_ticket(dealer)
        for step in STEPS:
            ticket = services.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=step)
        with django_capture_on_commit_callbacks(execute=True):
            services.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=Status.CLOSED, closing=CLOSING)
    assert seen == [ticket.number]


def _closed(dealer: Any) -> Ticket:
    ticket = open_ticket(dealer)
    for step in STEPS:
        ticket = services.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=step)
    return services.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=Status.CLOSED, closing=CLOSING)


def test_reopening_within_the_window_counts_against_the_resolution(dealer, in_tenant, clock):
    with in_tenant(dealer):
        ticket = _closed(dealer)
        with pytest.raises(ApplicationError):
            services.ticket_reopen(actor=dealer.agent, ticket=ticket, note="")
        clock.set(clock.now + timedelta(days=10))
        reopened = services.ticket_reopen(actor=dealer.agent, ticket=ticket, note="异响又出现了")
        assert reopened.status == Status.REOPENED and reopened.resolution_failed and reopened.reopen_count == 1
        assert reopened.resolution_due_at > clock.now  # a fresh resolution clock
        again = services.ticket_advance(actor=dealer.agent, ticket=reopened, to_status=Status.LISTEN)
        assert again.status == Status.LISTEN
        late = _closed(dealer)
        clock.set(clock.now + timedelta(days=45))
        assert not services.ticket_reopen(actor=dealer.agent, ticket=late, note="新问题").resolution_failed


def test_roles_and_visibility(dealer, dealer_b, in_tenant, clock):
    from complaints.selectors import ticket_visible_to

    with in_tenant(dealer):
        ticket = open_ticket(dealer, actor=dealer.agent)
        with pytest.raises(NotAllowed):
            services.ticket_advance(actor=dealer.auditor, ticket=ticket, to_status=Status.LISTEN)
        assert ticket in ticket_visible_to(viewer=dealer.manager)
        assert ticket in ticket_visible_to(viewer=dealer.auditor)
        assert ticket not in ticket_visible_to(viewer=dealer.consultant2)
        services.ticket_assign(actor=dealer.manager, ticket=ticket, assignee=dealer.consultant2)
        assert ticket in ticket_visible_to(viewer=dealer.consultant2)
        with pytest.raises(NotAllowed):  # not theirs to hand over
            services.ticket_assign(actor=dealer.consultant, ticket=ticket, assignee=dealer.consultant)
        with pytest.raises(ApplicationError):  # the auditor does not work complaints
            services.ticket_assign(actor=dealer.manager, ticket=ticket, assignee=dealer.auditor)
        assert Notification.objects.filter(recipient=dealer.consultant2, kind="ticket_assigned").count() == 1
    with in_tenant(dealer_b):
        assert not Ticket.objects.filter(pk=ticket.pk).exists()


def test_a_known_mobile_links_the_customer(dealer, in_tenant, clock):
    with in_tenant(dealer):
        customer = dealer.objects["customer"]
        ticket = open_ticket(dealer)
        assert ticket.customer is None  # 139 0000 1111 is not A's customer (B's, in another dealership)
        data = TicketInput(
            contact_name=customer.name,
            contact_mobile=customer.mobile,
            channel="wechat",
            category=services.categories_ensure()[0],
            subject="销售承诺未兑现",
            description="x",
        )
        assert services.ticket_open(actor=dealer.agent, data=data).customer == customer
        with pytest.raises(ApplicationError) as bad:
            services.ticket_open(actor=dealer.agent, data=TicketInput(**{**data.__dict__, "contact_mobile": "12"}))
        assert "contact_mobile" in bad.value.fields


# --- SLA clocks --------------------------------------------------------------------------------------


def test_due_times_count_business_hours_across_nights_weekends_holidays_and_make_up_days(dealer, in_tenant, clock):
    with in_tenant(dealer):
        SlaPolicy.objects.create(severity="high", first_response_minutes=60, resolution_minutes=960)
        clock.set(at(date(2026, 9, 11), 17, 30))  # Friday 17:30
        friday = open_ticket(dealer, severity="high")
        assert friday.response_due_at == at(date(2026, 9, 14), 9)  # 30 min Fri + 30 min Mon
        assert friday.response_warn_at == at(date(2026, 9, 14), 8, 48)  # 80% of 60 = 48 min
        assert friday.resolution_due_at == at(date(2026, 9, 15), 17, 30)  # two working days on
        clock.set(at(date(2026, 9, 30), 16))  # Wed 30 Sep, before the National Day week (no date typed)
        holiday = open_ticket(dealer, severity="high")
        # 2h on 30 Sep, then 1-7 Oct off, Thu 8 Oct 8h, Fri 9 Oct 6h → 16h
        assert holiday.resolution_due_at == at(date(2026, 10, 9), 16)
        clock.set(at(date(2026, 9, 18), 17))  # Friday 18 Sep; Sunday 20 Sep is a make-up working day
        makeup = open_ticket(dealer, severity="high")
        assert makeup.response_due_at == at(date(2026, 9, 18), 18)  # 60 min: Fri 17-18, due at closing
        assert makeup.resolution_due_at == at(date(2026, 9, 21), 17)  # Fri 1h + Sun 8h (make-up) + Mon 7h
        clock.set(at(date(2026, 9, 24), 17))  # Thursday before Mid-Autumn: Fri 25 - Sun 27 Sep off
        mid_autumn = open_ticket(dealer, severity="high")
        assert mid_autumn.resolution_due_at == at(date(2026, 9, 29), 17)  # Thu 1h + Mon 8h + Tue 7h
        # the dealership's own closing day on top of the public calendar
        Tenant.objects.filter(pk=dealer.tenant.pk).update(holidays=["2026-09-28"])
        own = open_ticket(dealer, severity="high")
        assert own.resolution_due_at == at(date(2026, 9, 30), 17)  # Thu 1h + Tue 8h + Wed 7h
        Tenant.objects.filter(pk=dealer.tenant.pk).update(holidays=[])
        # beyond the years the calendar covers: weekly hours only (Fri 1 Oct 2027 counts as a weekday)
        clock.set(at(date(2027, 9, 30), 17))
        beyond = open_ticket(dealer, severity="high")
        assert beyond.resolution_due_at == at(date(2027, 10, 4), 17)  # Thu 1h + Fri 8h + Mon 7h
        # category-specific policy wins over the severity's
        category = services.categories_ensure()[1]
        SlaPolicy.objects.create(severity="high", category=category, first_response_minutes=15, resolution_minutes=120)
        clock.set(at(date(2026, 9, 14), 9))
        assert open_ticket(dealer, severity="high").response_due_at == at(date(2026, 9, 14), 9, 15)


def test_waiting_on_the_customer_stops_the_clocks(dealer, in_tenant, clock):
    with in_tenant(dealer):
        ticket = open_ticket(dealer)  # normal: 240 / 1440 min, Monday 09:00
        response_due, resolution_due = ticket.response_due_at, ticket.resolution_due_at
        clock.set(at(date(2026, 9, 14), 10))
        ticket = services.ticket_pause(actor=dealer.agent, ticket=ticket, note="等客户发照片")
        clock.set(at(date(2026, 9, 15), 10))  # waited 8 business hours
        assert services.sla_check(now=at(date(2026, 9, 15), 10)) == {
            "response_breached": 0,
            "resolution_breached": 0,
            "response_warned": 0,
            "resolution_warned": 0,
        }
        ticket = services.ticket_resume(actor=dealer.agent, ticket=ticket)
        assert ticket.paused_duration == timedelta(hours=8)
        assert ticket.response_due_at == response_due + timedelta(days=1)
        assert ticket.resolution_due_at > resolution_due
        assert TicketEvent.objects.filter(ticket=ticket, kind="resumed").get().data == {"waited_seconds": 28800.0}


def test_a_wait_moves_the_clocks_by_exactly_the_time_waited_never_rounded_to_minutes(dealer, in_tenant, clock):
    monday = date(2026, 9, 14)
    with in_tenant(dealer):
        ticket = open_ticket(dealer)  # normal: 240 / 1440 min from Monday 09:00
        assert ticket.response_due_at == at(monday, 14, 30)  # 09:00-12:00 and 13:30-14:30
        resolution_due = ticket.resolution_due_at
        clock.set(at(monday, 10))
        ticket = services.ticket_pause(actor=dealer.agent, ticket=ticket)
        clock.set(at(monday, 10, 28) + timedelta(seconds=30))  # 28 min 30 s: round() made it 28 min
        ticket = services.ticket_resume(actor=dealer.agent, ticket=ticket)
        assert ticket.response_due_at == at(monday, 14, 58) + timedelta(seconds=30)
        clock.set(at(monday, 10, 30))
        ticket = services.ticket_pause(actor=dealer.agent, ticket=ticket)
        clock.set(at(monday, 10, 30) + timedelta(seconds=29.5))  # 29.5 s: round() made it nothing
        ticket = services.ticket_resume(actor=dealer.agent, ticket=ticket)
        waited = timedelta(minutes=28, seconds=59.5)
        assert ticket.paused_duration == waited
        assert ticket.response_due_at == at(monday, 14, 30) + waited
        assert ticket.response_warn_at == at(monday, 13, 42) + waited  # 80% of 240 = 192 min, then the wait
        assert ticket.resolution_due_at == resolution_due + waited  # both due moments within opening hours
        assert [e.data for e in TicketEvent.objects.filter(ticket=ticket, kind="resumed").order_by("pk")] == [
            {"waited_seconds": 1710.0},
            {"waited_seconds": 29.5},
        ]
        # the figure in whole minutes: 119 min 29.5 s since opening less 28 min 59.5 s waited = 90 min 30 s → 91
        clock.set(at(monday, 10, 59) + timedelta(seconds=29.5))
        ticket = services.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=Status.LISTEN)
        assert ticket.response_minutes == 91


def test_escalation_warns_at_80_percent_and_escalates_at_breach_exactly_once(
    dealer, in_tenant, clock, django_capture_on_commit_callbacks
):
    with in_tenant(dealer), django_capture_on_commit_callbacks(execute=True):
        ticket = open_ticket(dealer, severity="critical", actor=dealer.agent)  # 30 min / 480 min
        mail.outbox.clear()
        assert services.sla_check(now=at(date(2026, 9, 14), 9, 20))["response_warned"] == 0
        warned = services.sla_check(now=at(date(2026, 9, 14), 9, 24))
        assert warned["response_warned"] == 1
        assert services.sla_check(now=at(date(2026, 9, 14), 9, 25))["response_warned"] == 0  # once
        warning = Notification.objects.get(kind="sla_warning")
        assert warning.recipient == dealer.agent and ticket.number in warning.title
        breached = services.sla_check(now=at(date(2026, 9, 14), 9, 31))
        assert breached["response_breached"] == 1
        assert services.sla_check(now=at(date(2026, 9, 14), 9, 45))["response_breached"] == 0
        escalated = Notification.objects.filter(kind="sla_breach")
        assert set(escalated.values_list("recipient", flat=True)) == {dealer.manager.pk, dealer.agent.pk}
        assert TicketEvent.objects.filter(ticket=ticket, kind__in=["sla_warning", "sla_breach"]).count() == 2
        # answering stops the response clock; the resolution clock goes on
        services.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=Status.LISTEN)
        late = services.sla_check(now=at(date(2026, 9, 16), 9))  # found late: escalated, never warned
        assert late == {"response_breached": 0, "resolution_breached": 1, "response_warned": 0, "resolution_warned": 0}
    assert len(mail.outbox) == 1 + 2 + 2  # warning to the agent; two breaches to manager and agent


def test_attachments_are_checked_by_size_and_content(dealer, in_tenant, clock, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with in_tenant(dealer):
        ticket = open_ticket(dealer)
        png = SimpleUploadedFile("异响.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, content_type="image/png")
        attachment = services.ticket_attach(actor=dealer.agent, ticket=ticket, upload=png)
        assert attachment.content_type == "image/png" and attachment.size == 108
        fake = SimpleUploadedFile("invoice.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
        with pytest.raises(ApplicationError) as refused:
            services.ticket_attach(actor=dealer.agent, ticket=ticket, upload=fake)
        assert "file" in refused.value.fields
        big = SimpleUploadedFile("big.pdf", b"%PDF-" + b"0" * (10 * 1024 * 1024), content_type="application/pdf")
        with pytest.raises(ApplicationError):
            services.ticket_attach(actor=dealer.agent, ticket=ticket, upload=big)


def test_watchers_hear_of_every_step_but_not_of_their_own(dealer, in_tenant, clock):
    with in_tenant(dealer):
        ticket = open_ticket(dealer, actor=dealer.agent)
        services.ticket_watch(actor=dealer.manager, ticket=ticket)
        services.ticket_watch(actor=dealer.consultant, ticket=ticket)
        services.ticket_watch(actor=dealer.consultant, ticket=ticket, watch=False)
        services.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=Status.LISTEN)
        services.ticket_advance(actor=dealer.manager, ticket=ticket, to_status=Status.CALM)
        steps = Notification.objects.filter(kind="ticket_step")
        titles = list(steps.filter(recipient=dealer.manager).values_list("title", flat=True))
        assert len(titles) == 1 and ticket.number in titles[0] and str(Status.LISTEN.label) in titles[0]
        assert steps.filter(recipient=dealer.agent).count() == 1  # the manager moved the agent's ticket
        assert not steps.filter(recipient=dealer.consultant).exists()


def test_a_known_mobile_links_only_a_customer_the_actor_may_see(dealer, in_tenant, clock):
    with in_tenant(dealer):
        customer = dealer.objects["customer"]  # Alice's (consultant) customer
        data = TicketInput(
            contact_name="x",
            contact_mobile=customer.mobile,
            channel="phone",
            category=services.categories_ensure()[0],
            subject="s",
            description="d",
        )
        assert services.ticket_open(actor=dealer.consultant2, data=data).customer is None  # Bob's view
        assert services.ticket_open(actor=dealer.consultant, data=data).customer == customer
