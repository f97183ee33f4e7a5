"""Follow-up scheduling rules with fixed dates, the nightly run's filters (consent, black list,
open duplicates), spreading work under a daily cap, releasing the work of staff who left, and
logging outcomes (retries, call-backs, touchpoints, idempotency keys, the complaint loop)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any

import pytest
from django.utils import timezone

from complaints import services as complaints
from complaints.models import Status as TicketStatus
from crm.core.errors import ApplicationError, NotAllowed
from crm.core.nightly import nightly_run_tenant
from crm.tenancy.context import tenant_context
from customers.models import Customer, ListFlag, MileageReading, Order, Touchpoint
from followups import services
from followups.models import Attempt, Disposition, Followup, FollowupSettings, Reason, Status
from followups.scheduling import followups_schedule
from segmentation.models import CustomerValue
from tests.factories import CustomerFactory, OrderFactory, VehicleFactory

pytestmark = pytest.mark.django_db

ONLY_RULES = {
    "delivery_enabled": False,
    "service_enabled": False,
    "maintenance_enabled": False,
    "warranty_enabled": False,
    "insurance_enabled": False,
    "birthday_enabled": False,
    "cadence_enabled": False,
    "win_back_enabled": False,
    "complaint_enabled": False,
}


@pytest.fixture
def dealer(dealer_b) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Dealership B inside its tenant, with every rule off: each test switches on what it checks.
    (build_dealership's own rows would otherwise fire rules of their own.)"""
    with tenant_context(dealer_b.tenant.pk):
        Followup.objects.update(status=Status.CANCELLED)  # build_dealership's own, out of the way
        services.followup_settings()
        FollowupSettings.objects.update(**ONLY_RULES)
        yield dealer_b


def rules(**values: Any) -> None:
    FollowupSettings.objects.update(**values)


def night(day: date) -> dict[str, int]:
    return followups_schedule(run_date=day)


def created(reason: str | None = None) -> list[Followup]:
    # build_dealership's own: its isolation follow-ups and its sales lead's follow-up
    followups = (
        Followup.objects.exclude(source_key__contains=":isolation-")
        .exclude(reason=Reason.LEAD)
        .order_by("due_from", "id")
    )
    return list(followups.filter(reason=reason) if reason else followups)


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=timezone.get_current_timezone())


def customer(dealer: Any, **fields: Any) -> Customer:
    fields.setdefault("owner", dealer.consultant)
    return CustomerFactory(**fields)


# --- the rules, with fixed dates ---------------------------------------------------------------------


def test_post_delivery_calls_on_day_1_7_and_30_and_a_second_run_creates_nothing(dealer):
    rules(delivery_enabled=True, delivery_days=[1, 7, 30], window_days=3)
    buyer = customer(dealer)
    vehicle = VehicleFactory(customer=buyer)
    sale = OrderFactory(customer=buyer, vehicle=vehicle, kind=Order.Kind.VEHICLE_SALE, ordered_on=date(2026, 3, 1))
    assert night(date(2026, 3, 1))["created"] == 0  # the day of delivery itself: nothing yet
    first = night(date(2026, 3, 2))
    assert first["post_delivery"] == 1 and first["created"] == 1
    [call] = created(Reason.POST_DELIVERY)
    assert call.source_key == f"delivery:{sale.pk}:1"
    assert (call.due_from, call.due_until, call.scheduled_on) == (date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 2))
    assert call.assignee == dealer.consultant and call.vehicle == vehicle and call.channel == "call"
    again = night(date(2026, 3, 2))
    assert again["created"] == 0 and again["expired"] == 0 and again["spread"] == 0
    # D+1 never worked: it expires after its window, then D+7 comes
    week = night(date(2026, 3, 8))
    assert week["expired"] == 1 and week["post_delivery"] == 1
    assert Followup.objects.get(source_key=f"delivery:{sale.pk}:1").status == Status.EXPIRED
    assert Followup.objects.get(source_key=f"delivery:{sale.pk}:7").due_from == date(2026, 3, 8)
    assert night(date(2026, 3, 31))["post_delivery"] == 1
    assert len(created(Reason.POST_DELIVERY)) == 3


def test_a_missed_night_catches_up_within_the_window_and_not_after(dealer):
    rules(delivery_enabled=True, delivery_days=[1, 7], window_days=3)
    buyer = customer(dealer)
    OrderFactory(customer=buyer, kind=Order.Kind.VEHICLE_SALE, ordered_on=date(2026, 3, 1))
    other = customer(dealer)
    OrderFactory(customer=other, kind=Order.Kind.VEHICLE_SALE, ordered_on=date(2026, 2, 24))
    night(date(2026, 3, 4))  # D+1 = 3 Mar, window until 5 Mar: still made; the other's D+7 too
    keys = sorted(f.source_key.rsplit(":", 1)[1] + f"@{f.customer_id == buyer.pk}" for f in created())
    assert keys == ["1@True", "7@False"]
    assert night(date(2026, 3, 12))["created"] == 0  # D+7 of 1 Mar = 8 Mar, window ended 10 Mar


def test_service_satisfaction_call_after_a_repair_order(dealer):
    rules(service_enabled=True, service_after_days=2, window_days=5)
    person = customer(dealer)
    repair = OrderFactory(customer=person, kind=Order.Kind.REPAIR, ordered_on=date(2026, 4, 10))
    OrderFactory(customer=person, kind=Order.Kind.PARTS, ordered_on=date(2026, 4, 10))  # parts: no call
    assert night(date(2026, 4, 11))["created"] == 0
    assert night(date(2026, 4, 12))["service"] == 1
    [call] = created()
    assert call.source_key == f"service:{repair.pk}" and call.due_until == date(2026, 4, 16)


def test_maintenance_due_by_months_since_the_last_service(dealer):
    rules(maintenance_enabled=True, maintenance_months=6, maintenance_km=10000, maintenance_lead_days=7)
    person = customer(dealer)
    car = VehicleFactory(customer=person, purchase_date=date(2025, 1, 10))
    OrderFactory(customer=person, vehicle=car, kind=Order.Kind.MAINTENANCE, ordered_on=date(2025, 7, 1))
    last = OrderFactory(customer=person, vehicle=car, kind=Order.Kind.MAINTENANCE, ordered_on=date(2026, 1, 15))
    assert night(date(2026, 7, 7))["created"] == 0
    assert night(date(2026, 7, 8))["maintenance"] == 1  # due 15 Jul, 7 days ahead
    [reminder] = created()
    assert reminder.source_key == f"maintenance:{car.pk}:{last.ordered_on}"
    assert (reminder.due_from, reminder.vehicle_id) == (date(2026, 7, 8), car.pk)


def test_maintenance_due_earlier_by_the_mileage_the_vehicle_really_drives(dealer):
    rules(maintenance_enabled=True, maintenance_months=6, maintenance_km=10000, maintenance_lead_days=7)
    person = customer(dealer)
    car = VehicleFactory(customer=person)
    OrderFactory(
        customer=person, vehicle=car, kind=Order.Kind.MAINTENANCE, ordered_on=date(2026, 1, 15), mileage_km=20000
    )
    MileageReading.objects.create(vehicle=car, read_on=date(2026, 3, 15), km=26000)  # 6,000 km in 59 days
    # 4,000 km to go at 101.7 km a day: 40 days after 15 Mar = 24 Apr, reminded 7 days ahead
    assert night(date(2026, 4, 16))["created"] == 0
    assert night(date(2026, 4, 17))["maintenance"] == 1
    assert created()[0].due_until == date(2026, 4, 24) + timedelta(days=4)


def test_a_new_vehicle_is_reminded_of_its_first_service_from_the_purchase_date(dealer):
    rules(maintenance_enabled=True, maintenance_months=6, maintenance_lead_days=0)
    car = VehicleFactory(customer=customer(dealer), purchase_date=date(2026, 2, 28))
    assert night(date(2026, 8, 28))["maintenance"] == 1
    assert created()[0].source_key == f"maintenance:{car.pk}:2026-02-28"


def test_only_a_maintenance_order_restarts_the_maintenance_cycle_not_a_repair(dealer):
    """docs/followups.md: a completed maintenance order starts a cycle; a repair, an open or a reversed
    maintenance order does not; without any maintenance the purchase date starts the first cycle."""
    rules(maintenance_enabled=True, maintenance_months=6, maintenance_km=10000, maintenance_lead_days=7)
    person = customer(dealer)
    serviced = VehicleFactory(customer=person, purchase_date=date(2025, 6, 1))
    last = OrderFactory(customer=person, vehicle=serviced, kind=Order.Kind.MAINTENANCE, ordered_on=date(2026, 1, 15))
    # a repair two months later, and a maintenance that was reversed and one still open
    OrderFactory(customer=person, vehicle=serviced, kind=Order.Kind.REPAIR, ordered_on=date(2026, 3, 20))
    OrderFactory(
        customer=person, vehicle=serviced, kind=Order.Kind.MAINTENANCE, ordered_on=date(2026, 4, 1), status="reversed"
    )
    OrderFactory(
        customer=person, vehicle=serviced, kind=Order.Kind.MAINTENANCE, ordered_on=date(2026, 4, 2), status="open"
    )
    # a new car whose only workshop visit was a repair: its first cycle runs from the purchase date
    other = customer(dealer)
    bought = VehicleFactory(customer=other, purchase_date=date(2026, 1, 10))
    OrderFactory(customer=other, vehicle=bought, kind=Order.Kind.REPAIR, ordered_on=date(2026, 2, 1))
    assert night(date(2026, 7, 2))["created"] == 0
    assert night(date(2026, 7, 3))["maintenance"] == 1  # 10 Jan + 6 months = 10 Jul, 7 days ahead
    assert night(date(2026, 7, 8))["maintenance"] == 1  # 15 Jan + 6 months = 15 Jul, 7 days ahead
    reminders = {f.vehicle_id: f for f in created(Reason.MAINTENANCE)}
    assert reminders[bought.pk].source_key == f"maintenance:{bought.pk}:2026-01-10"
    assert reminders[serviced.pk].source_key == f"maintenance:{serviced.pk}:{last.ordered_on}"
    assert (reminders[serviced.pk].due_from, reminders[serviced.pk].due_until) == (date(2026, 7, 8), date(2026, 7, 19))
    # the repair's own date never starts a cycle (20 Mar + 6 months = 20 Sep)
    assert night(date(2026, 9, 13))["maintenance"] == 0
    assert len(created(Reason.MAINTENANCE)) == 2


def test_warranty_and_insurance_expiry(dealer):
    rules(warranty_enabled=True, warranty_lead_days=30, insurance_enabled=True, insurance_lead_days=30)
    person = customer(dealer)
    car = VehicleFactory(customer=person, warranty_end=date(2026, 6, 30))
    other_car = VehicleFactory(customer=customer(dealer))
    OrderFactory(customer=person, vehicle=car, kind=Order.Kind.INSURANCE, ordered_on=date(2024, 7, 1))
    policy = OrderFactory(customer=person, vehicle=car, kind=Order.Kind.INSURANCE, ordered_on=date(2025, 8, 10))
    renewed = OrderFactory(
        customer=other_car.customer, vehicle=other_car, kind=Order.Kind.INSURANCE, ordered_on=date(2025, 8, 10)
    )
    OrderFactory(customer=other_car.customer, vehicle=other_car, kind=Order.Kind.INSURANCE, ordered_on=date(2026, 7, 1))
    assert night(date(2026, 5, 30))["created"] == 0
    assert night(date(2026, 5, 31))["warranty"] == 1
    assert created(Reason.WARRANTY)[0].due_from == date(2026, 5, 31)
    assert night(date(2026, 7, 10))["insurance"] == 0
    counts = night(date(2026, 7, 11))  # renews 10 Aug 2026: 30 days ahead
    assert counts["insurance"] == 1
    [call] = created(Reason.INSURANCE)
    assert call.source_key == f"insurance:{policy.pk}" and call.vehicle == car
    assert not Followup.objects.filter(source_key=f"insurance:{renewed.pk}").exists()  # renewed early already


def test_birthdays_including_29_february_and_the_turn_of_the_year(dealer):
    rules(birthday_enabled=True, birthday_lead_days=3, birthday_channel="wechat")
    leap = customer(dealer, birthday=date(1992, 2, 29))
    january = customer(dealer, birthday=date(1985, 1, 2))
    assert night(date(2027, 2, 24))["created"] == 0
    assert night(date(2027, 2, 25))["birthday"] == 1  # 28 Feb 2027, 3 days ahead
    assert created()[0].source_key == f"birthday:{leap.pk}:2027"
    assert night(date(2027, 12, 30))["birthday"] == 1
    call = Followup.objects.get(customer=january)
    assert call.source_key == f"birthday:{january.pk}:2028" and call.due_from == date(2027, 12, 30)
    assert call.channel == "wechat"


def test_tier_cadence_spreads_calls_over_the_interval_and_counts_contacts(dealer):
    rules(cadence_enabled=True, cadence_key_days=30, cadence_consolidate_days=0, cadence_maintain_days=0, window_days=5)
    key = customer(dealer)
    contacted = customer(dealer)
    exit_tier = customer(dealer)
    for person, tier in ((key, "key"), (contacted, "key"), (exit_tier, "exit")):
        CustomerValue.objects.create(customer=person, tier=tier)
    day = date(2026, 1, 1)
    made: list[date] = []
    for _ in range(70):
        counts = night(day)
        for call in Followup.objects.filter(reason=Reason.CADENCE, customer=key, status=Status.OPEN):
            made.append(day)
            services.followup_log_outcome(
                actor=dealer.consultant, followup=call, disposition=Disposition.SATISFIED, occurred_at=noon(day)
            )
        if day == date(2026, 1, 1):
            # the other key customer was reached yesterday: no cadence call for 30 days
            Touchpoint.objects.create(
                customer=contacted, channel="call", outcome="reached", occurred_at=noon(day - timedelta(days=1))
            )
            Followup.objects.filter(customer=contacted).delete()
        assert counts["created"] <= 2
        day += timedelta(days=1)
    assert len(made) >= 2 and all(b - a >= timedelta(days=26) for a, b in pairwise(made))
    reached_after = Followup.objects.filter(customer=contacted).values_list("created_on", flat=True)
    assert all(day >= date(2026, 1, 30) for day in reached_after)  # reached 31 Dec: quiet for 30 days
    assert not Followup.objects.filter(customer=exit_tier).exists()  # exit: never


def test_win_back_for_dormant_key_and_consolidate_customers_once_per_dormant_spell(dealer):
    rules(win_back_enabled=True, win_back_months=9)
    dormant = customer(dealer)
    recent = customer(dealer)
    low = customer(dealer)
    Customer.objects.filter(pk__in=[dormant.pk, low.pk]).update(last_visit_on=date(2026, 1, 20))
    Customer.objects.filter(pk=recent.pk).update(last_visit_on=date(2026, 3, 1))
    CustomerValue.objects.create(customer=dormant, tier="consolidate")
    CustomerValue.objects.create(customer=recent, tier="key")
    CustomerValue.objects.create(customer=low, tier="maintain")
    assert night(date(2026, 10, 20))["created"] == 0  # exactly 9 months: not yet
    assert night(date(2026, 10, 21))["win_back"] == 1
    [call] = created()
    assert call.customer == dormant and call.priority == 2
    services.followup_log_outcome(actor=dealer.consultant, followup=call, disposition=Disposition.NOT_INTERESTED)
    assert night(date(2026, 11, 21))["created"] == 0  # still dormant, same spell: asked once


def test_a_closed_complaint_gets_its_follow_up_call_which_closes_the_loop(dealer):
    rules(complaint_enabled=True)
    person = customer(dealer)
    ticket = complaints.ticket_open(
        actor=dealer.agent,
        data=complaints.TicketInput(
            contact_name="王先生",
            contact_mobile=person.mobile,
            channel="phone",
            category=complaints.categories_ensure()[1],
            subject="保养后异响",
            description="保养后发动机有异响",
            severity="normal",
            customer=person,
            assignee=dealer.agent,
        ),
    )
    for step in (TicketStatus.LISTEN, TicketStatus.CALM, TicketStatus.HANDLE):
        ticket = complaints.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=step)
    ticket = complaints.ticket_advance(
        actor=dealer.agent,
        ticket=ticket,
        to_status=TicketStatus.CLOSED,
        closing=complaints.Closing(root_cause="机油加注过量", resolution="重新放油", compensation_note=""),
    )
    due = ticket.follow_up_due_on
    assert night(due - timedelta(days=1))["created"] == 0
    assert night(due)["complaint"] == 1
    [call] = created()
    assert call.ticket_id == ticket.pk and call.assignee == dealer.agent
    services.followup_log_outcome(
        actor=dealer.agent, followup=call, disposition=Disposition.SATISFIED, notes="客户表示满意"
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.FOLLOWED_UP


# --- who is skipped ----------------------------------------------------------------------------------


def test_consent_black_list_merged_records_and_open_duplicates_are_skipped(dealer):
    rules(service_enabled=True, service_after_days=1, birthday_enabled=True, birthday_channel="wechat")
    no_calls = customer(dealer, consent_call=False, birthday=date(1990, 5, 2))
    black = customer(dealer)
    Customer.objects.filter(pk=black.pk).update(list_flag=ListFlag.BLACK)
    no_mobile = customer(dealer, mobile="")
    busy = customer(dealer)
    services.followup_create(actor=dealer.consultant, customer=busy, reason=Reason.SERVICE, due_from=date(2026, 4, 30))
    survivor = customer(dealer)
    merged = customer(dealer)
    for person in (no_calls, black, no_mobile, busy, merged):
        OrderFactory(customer=person, kind=Order.Kind.MAINTENANCE, ordered_on=date(2026, 5, 1))
    Customer.objects.filter(pk=merged.pk).update(merged_into=survivor)
    counts = night(date(2026, 5, 2))
    assert counts["service"] == 0
    # the customer who may not be called may still get a birthday message on WeChat
    assert counts["birthday"] == 1 and created(Reason.BIRTHDAY)[0].customer == no_calls


def test_tier_cadence_gives_way_to_any_open_follow_up(dealer):
    rules(cadence_enabled=True, cadence_key_days=1, window_days=1)
    person = customer(dealer)
    CustomerValue.objects.create(customer=person, tier="key")
    services.followup_create(actor=dealer.consultant, customer=person, due_from=date(2026, 5, 1))
    assert night(date(2026, 5, 1))["cadence"] == 0


# --- spreading the work ------------------------------------------------------------------------------


def test_daily_cap_sends_overflow_to_the_agents_then_to_later_days(dealer):
    rules(service_enabled=True, service_after_days=1, daily_cap=2, window_days=3)
    people = [customer(dealer) for _ in range(7)]
    for person in people:
        OrderFactory(customer=person, kind=Order.Kind.MAINTENANCE, ordered_on=date(2026, 5, 1))
    CustomerValue.objects.create(customer=people[6], tier="key")  # called first
    counts = night(date(2026, 5, 2))
    assert counts["created"] == 7 and counts["assigned"] == 2 and counts["spread"] == 5
    held = {f.customer_id: f for f in created()}
    assert held[people[6].pk].assignee == dealer.consultant and held[people[6].pk].priority == 1
    by_person_day: dict[tuple[int | None, date], int] = {}
    for followup in held.values():
        slot = (followup.assignee_id, followup.scheduled_on)
        by_person_day[slot] = by_person_day.get(slot, 0) + 1
    assert max(by_person_day.values()) <= 2  # nobody gets more than the cap on any day
    assert by_person_day == {
        (dealer.consultant.pk, date(2026, 5, 2)): 2,
        (dealer.agent.pk, date(2026, 5, 2)): 2,
        (dealer.agent.pk, date(2026, 5, 3)): 2,
        (dealer.agent.pk, date(2026, 5, 4)): 1,
    }
    assert night(date(2026, 5, 2))["spread"] == 0


def test_work_of_deactivated_staff_goes_back_to_the_pool_and_to_an_agent(dealer):
    rules(service_enabled=True, service_after_days=1)
    person = customer(dealer)
    OrderFactory(customer=person, kind=Order.Kind.REPAIR, ordered_on=date(2026, 5, 1))
    night(date(2026, 5, 2))
    assert created()[0].assignee == dealer.consultant
    dealer.consultant.is_active = False
    dealer.consultant.save()
    counts = night(date(2026, 5, 3))
    assert counts["released"] == 1 and counts["spread"] == 1
    assert created()[0].assignee == dealer.agent


def test_the_nightly_pipeline_runs_the_step_and_a_second_run_creates_nothing(dealer):
    rules(service_enabled=True, service_after_days=1)
    OrderFactory(customer=customer(dealer), kind=Order.Kind.REPAIR, ordered_on=date(2026, 5, 1))
    tenant_id = dealer.tenant.pk
    [first] = nightly_run_tenant(
        tenant_id=tenant_id, trigger="manual", run_date=date(2026, 5, 2), only=["followups.schedule"]
    )
    [second] = nightly_run_tenant(
        tenant_id=tenant_id, trigger="manual", run_date=date(2026, 5, 2), only=["followups.schedule"]
    )
    assert (first.status, first.rows, second.status, second.rows) == ("succeeded", 1, "succeeded", 0)


# --- working a follow-up -----------------------------------------------------------------------------


@pytest.fixture
def call(dealer) -> Followup:  # type: ignore[no-untyped-def]
    rules(max_attempts=3, retry_after_days=1)
    person = customer(dealer)
    return services.followup_create(
        actor=dealer.consultant, customer=person, reason=Reason.MANUAL, due_from=timezone.localdate()
    )


def test_no_answer_is_retried_until_the_last_attempt_then_unreachable(dealer, call):
    today = timezone.localdate()
    for attempt in (1, 2):
        services.followup_log_outcome(actor=dealer.consultant, followup=call, disposition=Disposition.NO_ANSWER)
        call.refresh_from_db()
        assert (call.status, call.attempts, call.scheduled_on) == (Status.NO_ANSWER, attempt, today + timedelta(days=1))
    services.followup_log_outcome(actor=dealer.consultant, followup=call, disposition=Disposition.NO_ANSWER)
    call.refresh_from_db()
    assert (call.status, call.attempts) == (Status.UNREACHABLE, 3) and call.completed_by == dealer.consultant
    assert Touchpoint.objects.filter(customer=call.customer, outcome="no_answer").count() == 3
    with pytest.raises(ApplicationError) as finished:
        services.followup_log_outcome(actor=dealer.consultant, followup=call, disposition=Disposition.SATISFIED)
    assert finished.value.code == "not_open"


def test_a_reached_call_is_done_and_recorded_in_the_customers_history(dealer, call):
    attempt, made = services.followup_log_outcome(
        actor=dealer.consultant, followup=call, disposition=Disposition.FEEDBACK, notes="希望周末能预约保养"
    )
    call.refresh_from_db()
    assert made and call.status == Status.DONE and call.disposition == "feedback"
    touchpoint = attempt.touchpoint
    assert touchpoint.customer == call.customer and touchpoint.outcome == "reached"
    assert "希望周末能预约保养" in touchpoint.notes and touchpoint.staff == dealer.consultant


def test_call_back_later_reschedules_within_limits(dealer, call):
    today = timezone.localdate()
    with pytest.raises(ApplicationError) as missing:
        services.followup_log_outcome(actor=dealer.consultant, followup=call, disposition=Disposition.CALLBACK)
    assert "callback_on" in missing.value.fields
    with pytest.raises(ApplicationError) as past:
        services.followup_log_outcome(
            actor=dealer.consultant, followup=call, disposition=Disposition.CALLBACK, callback_on=today
        )
    assert "callback_on" in past.value.fields
    assert not Attempt.objects.filter(followup=call).exists()
    assert not Touchpoint.objects.filter(customer=call.customer).exists()
    later = today + timedelta(days=10)
    services.followup_log_outcome(
        actor=dealer.consultant, followup=call, disposition=Disposition.CALLBACK, callback_on=later
    )
    call.refresh_from_db()
    assert (call.status, call.scheduled_on) == (Status.OPEN, later) and call.due_until >= later


def test_an_idempotency_key_records_an_outcome_once(dealer, call):
    first, made = services.followup_log_outcome(
        actor=dealer.agent, followup=call, disposition=Disposition.NO_ANSWER, idempotency_key="cc-2026-0001"
    )
    replay, again = services.followup_log_outcome(
        actor=dealer.agent, followup=call, disposition=Disposition.NO_ANSWER, idempotency_key="cc-2026-0001"
    )
    assert made and not again and replay.pk == first.pk
    call.refresh_from_db()
    assert call.attempts == 1
    with pytest.raises(ApplicationError) as reused:
        services.followup_log_outcome(
            actor=dealer.agent, followup=call, disposition=Disposition.SATISFIED, idempotency_key="cc-2026-0001"
        )
    assert reused.value.code == "key_reused"


def test_a_consultant_cannot_work_a_colleagues_follow_up(dealer, call):
    with pytest.raises(NotAllowed):
        services.followup_log_outcome(actor=dealer.consultant2, followup=call, disposition=Disposition.SATISFIED)
    with pytest.raises(NotAllowed):
        services.followup_log_outcome(actor=dealer.auditor, followup=call, disposition=Disposition.SATISFIED)


def test_planning_by_hand_respects_consent_and_one_open_per_reason(dealer):
    quiet = customer(dealer, consent_call=False)
    with pytest.raises(ApplicationError) as refused:
        services.followup_create(actor=dealer.consultant, customer=quiet, due_from=date(2026, 5, 1))
    assert "channel" in refused.value.fields
    visit = services.followup_create(
        actor=dealer.consultant, customer=quiet, due_from=date(2026, 5, 1), channel="visit"
    )
    assert visit.assignee == dealer.consultant and visit.due_until == date(2026, 5, 5)
    with pytest.raises(ApplicationError) as twice:
        services.followup_create(actor=dealer.consultant, customer=quiet, due_from=date(2026, 5, 2), channel="visit")
    assert twice.value.code == "duplicate"


def test_settings_are_validated_field_by_field(dealer):
    with pytest.raises(ApplicationError) as bad:
        services.followup_settings_update(actor=dealer.manager, data={"daily_cap": 0, "window_days": 99})
    assert set(bad.value.fields) == {"daily_cap", "window_days"}
    with pytest.raises(NotAllowed):
        services.followup_settings_update(actor=dealer.consultant, data={"daily_cap": 10})
    settings = services.followup_settings_update(actor=dealer.manager, data={"delivery_days": [30, 1, 7, 7]})
    assert settings.delivery_days == [1, 7, 30]


def test_merging_customers_cancels_the_duplicates_open_follow_ups_and_keeps_the_history(dealer):
    from customers.records import customer_merge

    survivor, duplicate = customer(dealer), customer(dealer)
    open_call = services.followup_create(actor=dealer.consultant, customer=duplicate, due_from=date(2026, 5, 1))
    done_call = services.followup_create(
        actor=dealer.consultant, customer=duplicate, reason=Reason.SERVICE, due_from=date(2026, 5, 1)
    )
    services.followup_log_outcome(actor=dealer.consultant, followup=done_call, disposition=Disposition.SATISFIED)
    customer_merge(actor=dealer.agent, survivor=survivor, duplicate=duplicate)
    open_call.refresh_from_db()
    done_call.refresh_from_db()
    assert (open_call.status, open_call.customer_id) == (Status.CANCELLED, survivor.pk)
    assert (done_call.status, done_call.customer_id) == (Status.DONE, survivor.pk)
