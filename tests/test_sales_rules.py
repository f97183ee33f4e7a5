"""Every rule of sales/services.py, sales/selectors.py and sales/nightly.py at service level, with
fixed figures: capture and its field errors, duplicates and ownership (撞单), intent level and
cadence, first response in business time, round-robin, stages and milestones, test drives, quote
maths, order and delivery, defeats (战败审核), the nightly lead work and the funnel's figures.
docs/sales.md states the rules these tests hold the code to."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Q
from django.utils import timezone

from crm.core.errors import ApplicationError, NotAllowed
from crm.core.models import Notification
from crm.core.period import Period
from crm.tenancy.context import tenant_context
from crm.tenancy.models import Membership
from customers.models import Customer, ListFlag, Order, Vehicle
from customers.validators import vin_check_digit
from followups import services as followups
from followups.models import ACTIVE_STATUSES, Followup, Reason, Status
from sales import nightly, selectors, services
from sales.models import (
    STAGE_ORDER,
    Conflict,
    ConsultantDuty,
    DefeatReason,
    DemoVehicle,
    Lead,
    LeadEvent,
    SalesSettings,
    Stage,
)
from sales.models import (
    TestDrive as Drive,  # not collected as a test class
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SHANGHAI = timezone.get_fixed_timezone(8 * 60)


@pytest.fixture
def dealer(dealer_b) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Dealership B inside its tenant; nobody on duty unless a test puts them there."""
    with tenant_context(dealer_b.tenant.pk):
        services.sales_settings()
        ConsultantDuty.objects.update(on_duty=False)
        yield dealer_b


_mobiles = iter(range(10_000, 99_999))


def mobile() -> str:
    return f"137{next(_mobiles):08d}"


def capture(actor: Membership, **data: Any) -> services.Captured:
    data.setdefault("name", "测试客户")
    data.setdefault("mobile", mobile())
    data.setdefault("source", "phone")
    return services.lead_capture(actor=actor, data=data)


def fresh(lead: Lead) -> Lead:
    return Lead.objects.get(pk=lead.pk)


def fields_of(error: pytest.ExceptionInfo[ApplicationError]) -> set[str]:
    return set(error.value.fields)


def open_lead_followups(lead: Lead) -> list[Followup]:
    return list(Followup.objects.filter(customer=lead.customer_id, reason=Reason.LEAD, status__in=ACTIVE_STATUSES))


def on_duty(member: Membership, *, last: datetime | None = None, brands: list[str] | None = None) -> ConsultantDuty:
    duty, _ = ConsultantDuty.objects.update_or_create(
        member=member, defaults={"on_duty": True, "last_assigned_at": last, "brands": brands or []}
    )
    return duty


def settings(**values: Any) -> None:
    SalesSettings.objects.update(**values)


def local_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=timezone.get_current_timezone())


def valid_vin(body: str = "LSVAX60E0N2000123") -> str:
    return body[:8] + vin_check_digit(body) + body[9:]


def run_night(dealer: Any, day: date | None = None) -> int:
    return nightly.leads_nightly(tenant_id=dealer.tenant.pk, run_date=day or timezone.localdate())


# --- capture ---------------------------------------------------------------------------------------


def test_capture_normalises_the_mobile_and_records_consent_to_calls(dealer: Any) -> None:
    captured = capture(dealer.consultant, name=" 赵  先生 ", mobile="+86 137-0000-1234")
    lead = captured.lead
    assert captured.created
    assert lead.mobile == "+8613700001234" and lead.customer.mobile == "+8613700001234"
    customer = lead.customer
    assert customer.consent_call and not customer.consent_sms and not customer.consent_wechat
    assert customer.owner == dealer.consultant
    assert list(LeadEvent.objects.filter(lead=lead).values_list("kind", flat=True)) == ["created", "assigned"]


def test_bad_capture_gives_an_error_per_field(dealer: Any) -> None:
    with pytest.raises(ApplicationError) as error:
        services.lead_capture(
            actor=dealer.consultant,
            data={
                "name": "",
                "mobile": "12345",
                "source": "carrier-pigeon",
                "budget": "-1",
                "appointment_at": timezone.now() - timedelta(hours=1),
                "timeframe": "someday",
                "level": "Z",
                "colour": "red",
            },
        )
    assert fields_of(error) == {
        "name",
        "mobile",
        "source",
        "budget",
        "appointment_at",
        "timeframe",
        "level",
        "colour",
    }
    assert not Lead.objects.filter(mobile__endswith="12345").exists()


def test_a_lead_needs_a_mobile_and_an_external_id_needs_its_system(dealer: Any) -> None:
    with pytest.raises(ApplicationError) as error:
        services.lead_capture(actor=dealer.consultant, data={"name": "王", "source": "online", "external_id": "X1"})
    assert fields_of(error) == {"mobile", "source_system"}


def test_a_referral_needs_its_referrer(dealer: Any) -> None:
    with pytest.raises(ApplicationError) as error:
        capture(dealer.consultant, source="referral")
    assert fields_of(error) == {"referrer"}
    referrer = CustomerFactory(owner=dealer.consultant)
    lead = capture(dealer.consultant, source="referral", referrer=referrer).lead
    assert lead.referrer == referrer
    assert LeadEvent.objects.filter(lead=lead, kind="edited", summary__contains=referrer.name).exists()


def test_the_same_external_id_twice_is_one_lead(dealer: Any) -> None:
    number = mobile()
    first = capture(dealer.consultant, mobile=number, source="online", source_system="autohome", external_id="A-1")
    again = capture(dealer.consultant2, mobile=mobile(), source="online", source_system="autohome", external_id="A-1")
    assert first.created and not again.created and again.lead.pk == first.lead.pk and again.notice == ""
    assert Lead.objects.filter(source_system="autohome", external_id="A-1").count() == 1
    # the same id from another system is another lead
    other = capture(dealer.consultant, source="online", source_system="dongchedi", external_id="A-1")
    assert other.created


def test_the_same_mobile_attaches_to_the_open_lead_and_tells_the_owner(dealer: Any) -> None:
    number = mobile()
    lead = capture(dealer.consultant, mobile=number).lead
    again = capture(dealer.manager, mobile="+86 " + number, source="online", series="Model 3")
    assert not again.created and again.lead.pk == lead.pk
    assert Lead.objects.filter(customer=lead.customer).count() == 1
    assert LeadEvent.objects.filter(lead=lead, kind="enquiry").count() == 1
    assert Notification.objects.filter(recipient=dealer.consultant, kind="lead_enquiry").exists()
    assert fresh(lead).owner == dealer.consultant


def test_a_pool_lead_captured_again_by_a_consultant_becomes_theirs(dealer: Any) -> None:
    settings(auto_assign=False)
    number = mobile()
    lead = capture(dealer.manager, mobile=number, source="online").lead
    assert lead.owner is None
    again = capture(dealer.consultant2, mobile=number)
    assert not again.created and again.notice
    assert fresh(lead).owner == dealer.consultant2
    assert LeadEvent.objects.filter(lead=lead, kind="assigned", to_owner=dealer.consultant2).exists()


def test_a_colleagues_claim_within_protection_only_gets_the_notice(dealer: Any) -> None:
    number = mobile()
    lead = capture(dealer.consultant, mobile=number).lead
    # 29 days 23 hours after the owner's last contact: still protected (protection_days 30)
    Lead.objects.filter(pk=lead.pk).update(last_contact_at=timezone.now() - timedelta(days=29, hours=23))
    again = capture(dealer.consultant2, mobile=number)
    assert not again.created and dealer.consultant.display_name in again.notice
    assert not Conflict.objects.filter(lead=lead).exists()
    assert fresh(lead).owner == dealer.consultant
    assert Notification.objects.filter(recipient=dealer.consultant, kind="lead_enquiry").exists()


def test_after_protection_a_conflict_is_raised_once_and_a_manager_moves_it(dealer: Any) -> None:
    number = mobile()
    lead = capture(dealer.consultant, mobile=number).lead
    Lead.objects.filter(pk=lead.pk).update(last_contact_at=timezone.now() - timedelta(days=30))
    capture(dealer.consultant2, mobile=number)
    capture(dealer.consultant2, mobile=number)  # the same claim again: still one conflict
    conflict = Conflict.objects.get(lead=lead)
    assert conflict.status == "pending" and conflict.claimant == dealer.consultant2
    assert conflict.owner == dealer.consultant
    assert Notification.objects.filter(recipient=dealer.manager, kind="lead_conflict").count() == 1
    with pytest.raises(NotAllowed):
        services.conflict_decide(actor=dealer.consultant2, conflict=conflict, give_to_claimant=True)
    services.conflict_decide(actor=dealer.manager, conflict=conflict, give_to_claimant=True)
    conflict.refresh_from_db()
    assert conflict.status == "moved" and conflict.decided_by == dealer.manager
    lead = fresh(lead)
    assert lead.owner == dealer.consultant2
    assert LeadEvent.objects.filter(
        lead=lead, kind="assigned", from_owner=dealer.consultant, to_owner=dealer.consultant2
    ).exists()
    assert [f.assignee for f in open_lead_followups(lead)] == [dealer.consultant2]
    with pytest.raises(ApplicationError) as twice:
        services.conflict_decide(actor=dealer.manager, conflict=conflict, give_to_claimant=False)
    assert twice.value.code == "decided"


def test_a_manager_may_keep_the_lead_with_its_owner(dealer: Any) -> None:
    number = mobile()
    lead = capture(dealer.consultant, mobile=number).lead
    Lead.objects.filter(pk=lead.pk).update(last_contact_at=timezone.now() - timedelta(days=31))
    capture(dealer.consultant2, mobile=number)
    conflict = services.conflict_decide(
        actor=dealer.manager, conflict=Conflict.objects.get(lead=lead), give_to_claimant=False
    )
    assert conflict.status == "kept" and fresh(lead).owner == dealer.consultant


def test_a_known_customers_consultant_becomes_the_owner(dealer: Any) -> None:
    on_duty(dealer.consultant)
    known = CustomerFactory(owner=dealer.consultant2, mobile="+8613711112222")
    lead = capture(dealer.manager, mobile="13711112222", source="online").lead
    assert lead.customer == known and lead.owner == dealer.consultant2
    assert Customer.objects.filter(mobile="+8613711112222").count() == 1


def test_a_black_listed_person_is_refused(dealer: Any) -> None:
    CustomerFactory(mobile="+8613722223333", list_flag=ListFlag.BLACK)
    with pytest.raises(ApplicationError) as error:
        capture(dealer.consultant, mobile="13722223333")
    assert error.value.code == "black_listed" and fields_of(error) == {"mobile"}


def test_roles_without_sales_work_may_not_capture(dealer: Any) -> None:
    for member in (dealer.advisor, dealer.agent, dealer.auditor):
        with pytest.raises(NotAllowed):
            capture(member)


# --- level and cadence -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeframe", "level", "days"),
    [("7d", "H", 2), ("15d", "A", 3), ("30d", "B", 7), ("90d", "C", 14), ("later", "C", 14)],
)
def test_level_from_timeframe_and_the_next_follow_up_from_the_level(
    dealer: Any, timeframe: str, level: str, days: int
) -> None:
    lead = capture(dealer.consultant, timeframe=timeframe).lead  # a call: contacted now
    assert lead.level == level
    assert lead.next_followup_on == timezone.localdate() + timedelta(days=days)
    (followup,) = open_lead_followups(lead)
    assert followup.assignee == dealer.consultant and followup.scheduled_on == lead.next_followup_on
    assert followup.source_key.startswith(f"lead:{lead.pk}:{lead.next_followup_on.isoformat()}:")


def test_a_given_level_wins_over_the_timeframe(dealer: Any) -> None:
    assert capture(dealer.consultant, timeframe="later", level="H").lead.level == "H"


def test_a_lead_nobody_has_reached_is_due_today(dealer: Any) -> None:
    lead = capture(dealer.consultant, source="online").lead
    assert lead.stage == Stage.NEW and lead.next_followup_on == timezone.localdate()
    assert lead in selectors.leads_today(viewer=dealer.consultant)


def test_a_new_level_restarts_the_cadence_from_the_last_contact(dealer: Any) -> None:
    lead = capture(dealer.consultant, timeframe="30d").lead
    contact = timezone.now() - timedelta(days=1)
    Lead.objects.filter(pk=lead.pk).update(last_contact_at=contact)
    lead = services.lead_update(actor=dealer.consultant, lead=lead, data={"level": "H"})
    assert lead.next_followup_on == timezone.localdate(contact) + timedelta(days=2)
    assert LeadEvent.objects.filter(lead=lead, kind="level", summary="B → H").exists()
    (followup,) = open_lead_followups(lead)
    assert followup.scheduled_on == lead.next_followup_on and followup.priority == 1


def test_a_contact_moves_the_next_follow_up_and_keeps_exactly_one_open(dealer: Any) -> None:
    lead = capture(dealer.consultant, source="online", timeframe="15d").lead
    lead = services.lead_contact_log(actor=dealer.consultant, lead=lead, disposition="feedback", notes="白色")
    assert lead.stage == Stage.CONTACTED and lead.first_contact_at is not None
    assert lead.next_followup_on == timezone.localdate() + timedelta(days=3)
    (followup,) = open_lead_followups(lead)
    assert followup.scheduled_on == lead.next_followup_on and followup.assignee == dealer.consultant


def test_no_answer_is_a_response_but_not_a_contact(dealer: Any) -> None:
    lead = capture(dealer.consultant, source="online").lead
    lead = services.lead_contact_log(actor=dealer.consultant, lead=lead, disposition="no_answer")
    assert lead.stage == Stage.NEW and lead.first_contact_at is None and lead.last_contact_at is None
    assert lead.response_minutes is not None and lead.response_due_at is None
    assert len(open_lead_followups(lead)) == 1


def test_logging_the_outcome_in_the_follow_up_queue_updates_the_lead(dealer: Any) -> None:
    lead = capture(dealer.consultant, source="online", timeframe="7d").lead
    (followup,) = open_lead_followups(lead)
    followups.followup_log_outcome(actor=dealer.consultant, followup=followup, disposition="appointment")
    lead = fresh(lead)
    assert lead.stage == Stage.CONTACTED and lead.last_contact_at is not None
    assert lead.response_minutes is not None
    assert lead.next_followup_on == timezone.localdate() + timedelta(days=2)
    (planned,) = open_lead_followups(lead)
    assert planned.pk != followup.pk and planned.scheduled_on == lead.next_followup_on
    assert LeadEvent.objects.filter(lead=lead, kind="contact", data__disposition="appointment").exists()


def test_a_call_back_day_becomes_the_next_follow_up(dealer: Any) -> None:
    lead = capture(dealer.consultant, source="online").lead
    day = timezone.localdate() + timedelta(days=5)
    lead = services.lead_contact_log(actor=dealer.consultant, lead=lead, disposition="callback", callback_on=day)
    assert lead.next_followup_on == day
    (followup,) = open_lead_followups(lead)
    assert followup.scheduled_on == day


# --- first response in business time ---------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "minutes"), [(29, 25), (30, 26)])
def test_response_minutes_count_business_time_halves_up(dealer: Any, seconds: int, minutes: int) -> None:
    # Monday 30 November 2026, hours 08:30–12:00 and 13:30–18:00 (the default week)
    given = datetime(2026, 11, 30, 11, 50, tzinfo=SHANGHAI)
    lead = services.lead_capture(
        actor=dealer.consultant, data={"name": "孙", "mobile": mobile(), "source": "online"}, at=given
    ).lead
    assert lead.response_due_at == datetime(2026, 11, 30, 13, 50, tzinfo=SHANGHAI)  # 10 + 20 business minutes
    called = datetime(2026, 11, 30, 13, 45, seconds, tzinfo=SHANGHAI)  # 10 min + 15 min + seconds
    lead = services.lead_contact_log(
        actor=dealer.consultant, lead=lead, disposition="feedback", notes="ok", occurred_at=called
    )
    assert lead.response_minutes == minutes and lead.response_due_at is None


def test_only_online_and_brand_leads_have_a_response_limit(dealer: Any) -> None:
    assert capture(dealer.consultant, source="brand").lead.response_due_at is not None
    assert capture(dealer.consultant, source="event").lead.response_due_at is None
    phone = capture(dealer.consultant, source="phone").lead
    assert phone.response_due_at is None and phone.response_minutes == 0


# --- assignment -------------------------------------------------------------------------------------


def test_round_robin_takes_whoever_never_had_a_lead_then_the_longest_waiting(dealer: Any) -> None:
    on_duty(dealer.consultant, last=timezone.now() - timedelta(hours=1))
    on_duty(dealer.consultant2)  # never had one: first
    owners = [capture(dealer.manager, source="online").lead.owner for _ in range(3)]
    assert owners == [dealer.consultant2, dealer.consultant, dealer.consultant2]


def test_round_robin_ties_go_by_duty_id_and_skips_who_is_off_duty(dealer: Any) -> None:
    first, second = on_duty(dealer.consultant), on_duty(dealer.consultant2)
    assert first.pk < second.pk
    assert capture(dealer.manager, source="online").lead.owner == dealer.consultant
    ConsultantDuty.objects.filter(pk=second.pk).update(on_duty=False)
    assert capture(dealer.manager, source="online").lead.owner == dealer.consultant


def test_round_robin_by_brand(dealer: Any) -> None:
    settings(assign_by_brand=True)
    on_duty(dealer.consultant, last=timezone.now() - timedelta(hours=1), brands=["BMW"])
    on_duty(dealer.consultant2, brands=["Audi"])
    assert capture(dealer.manager, source="online", brand="BMW").lead.owner == dealer.consultant
    ConsultantDuty.objects.filter(member=dealer.consultant2).update(brands=[])  # no brands: every brand
    assert capture(dealer.manager, source="online", brand="BMW").lead.owner == dealer.consultant2
    settings(assign_by_brand=False)


def test_nobody_on_duty_or_no_auto_assign_leaves_it_in_the_pool(dealer: Any) -> None:
    lead = capture(dealer.manager, source="online").lead
    assert lead.owner is None and lead.assigned_at is None and lead.in_pool
    assert open_lead_followups(lead) == []
    on_duty(dealer.consultant)
    settings(auto_assign=False)
    assert capture(dealer.manager, source="online").lead.owner is None


def test_a_consultants_own_capture_is_theirs_even_off_duty(dealer: Any) -> None:
    on_duty(dealer.consultant2)
    assert capture(dealer.consultant, source="online").lead.owner == dealer.consultant


def test_every_change_of_owner_is_audited(dealer: Any) -> None:
    settings(auto_assign=False)
    lead = capture(dealer.manager, source="online").lead
    lead = services.lead_assign(actor=dealer.consultant, lead=lead, to=dealer.consultant)  # takes it
    lead = services.lead_assign(actor=dealer.manager, lead=lead, to=dealer.consultant2, note="desk")
    lead = services.lead_assign(actor=dealer.manager, lead=lead, to=None)
    moves = list(
        LeadEvent.objects.filter(lead=lead, kind__in=["assigned", "reclaimed"])
        .order_by("at", "id")
        .values_list("kind", "from_owner", "to_owner", "actor")
    )
    c1, c2, m = dealer.consultant.pk, dealer.consultant2.pk, dealer.manager.pk
    assert moves == [("assigned", None, c1, c1), ("assigned", c1, c2, m), ("reclaimed", c2, None, m)]
    assert lead.owner is None and open_lead_followups(lead) == []


def test_only_a_manager_gives_leads_out(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    with pytest.raises(NotAllowed):
        services.lead_assign(actor=dealer.consultant, lead=lead, to=dealer.consultant2)
    with pytest.raises(ApplicationError) as error:
        services.lead_assign(actor=dealer.manager, lead=lead, to=dealer.advisor)
    assert fields_of(error) == {"to"}


# --- stages and milestones --------------------------------------------------------------------------


def test_a_walk_in_is_visited(dealer: Any) -> None:
    lead = capture(dealer.consultant, source="walk_in").lead
    assert lead.stage == Stage.VISITED and lead.visited_at == lead.created_at


def test_a_walk_in_is_a_first_contact_too(dealer: Any) -> None:
    lead = capture(dealer.consultant, source="walk_in").lead
    assert lead.first_contact_at == lead.created_at and lead.response_minutes == 0
    assert lead.next_followup_on == timezone.localdate() + timedelta(days=7)


def test_a_walk_in_is_not_reclaimed_as_never_contacted(dealer: Any) -> None:
    lead = capture(dealer.consultant, source="walk_in").lead
    Lead.objects.filter(pk=lead.pk).update(assigned_at=timezone.now() - timedelta(hours=25))
    run_night(dealer)
    assert fresh(lead).owner == dealer.consultant


def test_an_appointment_at_capture_makes_it_invited(dealer: Any) -> None:
    when = timezone.now() + timedelta(days=2)
    lead = capture(dealer.consultant, source="online", appointment_at=when).lead
    assert lead.stage == Stage.INVITED and lead.appointment_at == when and lead.invited_at is not None


def test_stages_never_move_back_and_milestones_are_set_once(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    car = DemoVehicle.objects.create(brand="Tesla", series="Model Y")
    start = timezone.now() + timedelta(minutes=5)
    drive = services.test_drive_book(
        actor=dealer.consultant, lead=lead, vehicle=car, starts_at=start, ends_at=start + timedelta(minutes=30)
    )
    services.test_drive_record(
        actor=dealer.consultant,
        drive=drive,
        status="done",
        licence_number="A1234567",
        licence_expiry=timezone.localdate() + timedelta(days=1),
        licence_consent=True,
    )
    lead = fresh(lead)
    assert lead.stage == Stage.TEST_DRIVE and lead.test_drive_at == start and lead.visited_at == start
    first_contact = lead.first_contact_at
    services.showroom_visit_log(actor=dealer.consultant, data={"arrived_at": timezone.now()}, lead=lead)
    lead = services.lead_invite(
        actor=dealer.consultant, lead=fresh(lead), appointment_at=timezone.now() + timedelta(days=1)
    )
    assert lead.stage == Stage.TEST_DRIVE  # not back to visited or invited
    assert lead.visited_at == start and lead.first_contact_at == first_contact
    invited = lead.invited_at
    assert invited is not None  # a milestone missed on the way is filled in when it happens
    lead = services.lead_invite(actor=dealer.consultant, lead=lead, appointment_at=timezone.now() + timedelta(days=2))
    assert lead.invited_at == invited


def test_an_invitation_needs_a_future_appointment_within_90_days(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    for when in (timezone.now() - timedelta(minutes=1), timezone.now() + timedelta(days=91)):
        with pytest.raises(ApplicationError) as error:
            services.lead_invite(actor=dealer.consultant, lead=lead, appointment_at=when)
        assert fields_of(error) == {"appointment_at"}


def test_a_visit_logs_the_first_visit_flag_from_the_leads_own_visits(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    one = services.showroom_visit_log(actor=dealer.consultant, data={"arrived_at": timezone.now()}, lead=lead)
    two = services.showroom_visit_log(
        actor=dealer.consultant, data={"arrived_at": timezone.now(), "first_visit": True}, lead=lead
    )
    assert one.first_visit and not two.first_visit
    anonymous = services.showroom_visit_log(actor=dealer.consultant, data={"arrived_at": timezone.now()})
    assert anonymous.lead is None and anonymous.consultant == dealer.consultant
    with pytest.raises(ApplicationError) as error:
        services.showroom_visit_log(
            actor=dealer.consultant,
            data={"arrived_at": timezone.now(), "left_at": timezone.now() - timedelta(hours=1), "party_size": 0},
        )
    assert fields_of(error) == {"left_at", "party_size"}


# --- test drives ------------------------------------------------------------------------------------


def _booked(dealer: Any, lead: Lead, car: DemoVehicle, start: datetime, minutes: int = 30) -> Drive:
    return services.test_drive_book(
        actor=dealer.consultant, lead=lead, vehicle=car, starts_at=start, ends_at=start + timedelta(minutes=minutes)
    )


def test_a_car_is_never_booked_twice_at_once(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    car = DemoVehicle.objects.create(brand="BYD", series="汉")
    start = timezone.now() + timedelta(days=1)
    first = _booked(dealer, lead, car, start)
    with pytest.raises(ApplicationError) as clash:
        _booked(dealer, lead, car, start + timedelta(minutes=29))
    assert clash.value.code == "booked" and clash.value.status_code == 409 and fields_of(clash) == {"starts_at"}
    _booked(dealer, lead, car, start + timedelta(minutes=30))  # back to back is fine: [from, until)
    other = DemoVehicle.objects.create(brand="BYD", series="汉")
    _booked(dealer, lead, other, start)  # another car, the same slot
    services.test_drive_record(actor=dealer.consultant, drive=first, status="cancelled")
    _booked(dealer, lead, car, start)  # a cancelled booking frees its slot


def test_a_booking_is_checked(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    car = DemoVehicle.objects.create(brand="BYD", series="汉", is_active=False)
    start = timezone.now() - timedelta(minutes=16)
    with pytest.raises(ApplicationError) as error:
        _booked(dealer, lead, car, start, minutes=5 * 60)
    assert fields_of(error) == {"vehicle", "starts_at", "ends_at"}


def test_a_drive_that_happened_needs_a_valid_licence_with_consent(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    car = DemoVehicle.objects.create(brand="BYD", series="汉")
    start = timezone.now() + timedelta(hours=2)
    drive = _booked(dealer, lead, car, start)
    with pytest.raises(ApplicationError) as error:
        services.test_drive_record(
            actor=dealer.consultant,
            drive=drive,
            status="done",
            licence_number="A1234567",
            licence_expiry=timezone.localdate(start) - timedelta(days=1),
            licence_consent=False,
            rating=6,
        )
    assert fields_of(error) == {"licence_expiry", "licence_consent", "rating"}
    with pytest.raises(ApplicationError) as error:
        services.test_drive_record(actor=dealer.consultant, drive=drive, status="done", licence_consent=True)
    assert fields_of(error) == {"licence_number", "licence_expiry"}
    # valid on the day of the drive is enough
    drive = services.test_drive_record(
        actor=dealer.consultant,
        drive=drive,
        status="done",
        licence_number=" a1234567 ",
        licence_expiry=timezone.localdate(start),
        licence_consent=True,
        rating=4,
    )
    assert drive.status == "done" and drive.licence_number == "A1234567" and drive.driven_at == start
    with pytest.raises(ApplicationError) as twice:
        services.test_drive_record(actor=dealer.consultant, drive=drive, status="no_show")
    assert twice.value.code == "recorded"


def test_a_no_show_moves_no_stage(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    car = DemoVehicle.objects.create(brand="BYD", series="汉")
    drive = _booked(dealer, lead, car, timezone.now() + timedelta(hours=1))
    services.test_drive_record(actor=dealer.consultant, drive=drive, status="no_show")
    lead = fresh(lead)
    assert lead.stage == Stage.CONTACTED and lead.test_drive_at is None


# --- quotes -----------------------------------------------------------------------------------------


def test_quote_example_1_cash_with_trade_in_and_accessories(dealer: Any) -> None:
    # vehicle 150,000 − 8,000 = 142,000; accessories 1,200 + 800.50 = 2,000.50;
    # total 142,000 + 2,000.50 + 4,500 + 500 − 30,000 = 119,000.50; no loan
    lead = capture(dealer.consultant).lead
    quote = services.quote_create(
        actor=dealer.consultant,
        lead=lead,
        data={
            "brand": "一汽-大众",
            "series": "ID.4",
            "list_price": "150000",
            "discount": "8000",
            "accessories": [{"name": "脚垫", "price": "1200"}, {"name": "膜", "price": "800.50"}],
            "insurance": "4500",
            "fees": "500",
            "trade_in_value": "30000",
            "down_payment": "20000",  # ignored without a loan
        },
    )
    assert quote.vehicle_price == Decimal("142000.00") and quote.accessories_total == Decimal("2000.50")
    assert quote.total == Decimal("119000.50")
    assert quote.loan_amount == Decimal("0.00") and quote.monthly_payment == Decimal("0.00")
    assert quote.down_payment == Decimal("0") and quote.version == 1
    lead = fresh(lead)
    assert lead.stage == Stage.NEGOTIATION and lead.quoted_at is not None


def test_quote_example_2_a_loan_at_0_percent() -> None:
    # total 120,000 + 3,600 = 123,600; loan 123,600 − 36,000 = 87,600; 87,600 ÷ 36 = 2,433.333… → 2,433.33
    figures = services.quote_totals(
        {
            "list_price": "120000",
            "insurance": "3600",
            "financed": True,
            "down_payment": "36000",
            "term_months": 36,
            "monthly_rate": "0",
        }
    )
    assert figures["total"] == Decimal("123600.00") and figures["loan_amount"] == Decimal("87600.00")
    assert figures["monthly_payment"] == Decimal("2433.33")


def test_quote_example_3_an_annuity_loan() -> None:
    # loan 100,000 at 0.5 % a month over 12 months: 100,000 × 0.005 ÷ (1 − 1.005^−12) = 8,606.6429… → 8,606.64
    figures = services.quote_totals(
        {"list_price": "100000", "financed": True, "term_months": 12, "monthly_rate": "0.5"}
    )
    assert figures["total"] == Decimal("100000.00") and figures["loan_amount"] == Decimal("100000.00")
    assert figures["monthly_payment"] == Decimal("8606.64") and figures["monthly_rate"] == Decimal("0.5")


def test_quote_errors_name_their_fields() -> None:
    with pytest.raises(ApplicationError) as error:
        services.quote_totals({"list_price": "50000", "trade_in_value": "60000"})
    assert fields_of(error) == {"trade_in_value"}
    with pytest.raises(ApplicationError) as error:
        services.quote_totals({"list_price": "50000", "discount": "50000.01", "insurance": "1.005"})
    assert fields_of(error) == {"discount", "insurance"}
    with pytest.raises(ApplicationError) as error:
        services.quote_totals(
            {"list_price": "50000", "financed": True, "term_months": 5, "monthly_rate": "6", "down_payment": "60000"}
        )
    assert fields_of(error) == {"term_months", "monthly_rate", "down_payment"}
    with pytest.raises(ApplicationError) as error:
        services.quote_totals({"accessories": [{"name": "", "price": "1"}]})
    assert fields_of(error) == {"list_price", "accessories"}


def test_quote_versions_are_kept(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    data = {"brand": "BYD", "series": "汉", "list_price": "200000"}
    one = services.quote_create(actor=dealer.consultant, lead=lead, data=data)
    two = services.quote_create(actor=dealer.consultant, lead=lead, data={**data, "discount": "5000"})
    assert (one.version, two.version) == (1, 2)
    one.refresh_from_db()
    assert one.total == Decimal("200000.00") and two.total == Decimal("195000.00")


# --- order and delivery -----------------------------------------------------------------------------


def _quoted(dealer: Any, total: str = "100000") -> tuple[Lead, Any]:
    lead = capture(dealer.consultant, brand="BYD", series="汉").lead
    quote = services.quote_create(
        actor=dealer.consultant, lead=lead, data={"brand": "BYD", "series": "汉", "trim": "EV", "list_price": total}
    )
    return fresh(lead), quote


def test_an_order_needs_a_deposit_up_to_the_total(dealer: Any) -> None:
    lead, quote = _quoted(dealer)
    for deposit in ("0", "100000.01", "abc"):
        with pytest.raises(ApplicationError) as error:
            services.lead_order(actor=dealer.consultant, lead=lead, quote=quote, deposit=deposit)
        assert fields_of(error) == {"deposit"}
    lead = services.lead_order(actor=dealer.consultant, lead=lead, quote=quote, deposit="100000")
    assert lead.stage == Stage.ORDERED and lead.deposit == Decimal("100000.00") and lead.order_quote == quote
    with pytest.raises(ApplicationError) as again:
        services.lead_order(actor=dealer.consultant, lead=lead, quote=quote, deposit="1")
    assert fields_of(again) == {"quote"}


def test_delivery_creates_the_vehicle_and_the_sale_and_closes_the_lead(dealer: Any) -> None:
    lead, quote = _quoted(dealer, "188000")
    with pytest.raises(ApplicationError) as not_ordered:
        services.lead_deliver(actor=dealer.consultant, lead=lead, vin=valid_vin())
    assert not_ordered.value.code == "not_ordered"
    lead = services.lead_order(actor=dealer.consultant, lead=lead, quote=quote, deposit="5000")
    with pytest.raises(ApplicationError) as bad_vin:
        services.lead_deliver(actor=dealer.consultant, lead=lead, vin="LSVAX60E0N2000124")
    assert "vin" in bad_vin.value.fields and not Vehicle.objects.filter(vin="LSVAX60E0N2000124").exists()
    vin = valid_vin()
    lead = services.lead_deliver(actor=dealer.consultant, lead=lead, vin=vin, plate="粤B·D1234")
    assert lead.stage == Stage.DELIVERED and lead.delivered_at is not None and lead.closed_at is not None
    assert lead.next_followup_on is None and open_lead_followups(lead) == []
    vehicle = Vehicle.objects.get(pk=lead.vehicle_id)
    assert vehicle.vin == vin and vehicle.customer_id == lead.customer_id and vehicle.series == "汉"
    assert vehicle.purchase_date == timezone.localdate()
    order = Order.objects.get(pk=lead.sale_order_id)
    assert order.kind == "vehicle_sale" and order.status == "completed" and order.amount == Decimal("188000.00")
    assert order.vehicle_id == vehicle.pk and order.staff == dealer.consultant and order.customer_id == lead.customer_id
    assert LeadEvent.objects.filter(lead=lead, kind="delivery").count() == 1
    # a closed lead takes no more work; the next enquiry is a new lead for the same person
    with pytest.raises(ApplicationError) as closed:
        services.lead_contact_log(actor=dealer.consultant, lead=lead, disposition="feedback", notes="x")
    assert closed.value.code == "closed"
    again = capture(dealer.consultant, mobile=lead.mobile)
    assert again.created and again.lead.customer_id == lead.customer_id


def test_delivery_cannot_be_in_the_future(dealer: Any) -> None:
    lead, quote = _quoted(dealer)
    lead = services.lead_order(actor=dealer.consultant, lead=lead, quote=quote, deposit="1000")
    with pytest.raises(ApplicationError) as error:
        services.lead_deliver(
            actor=dealer.consultant, lead=lead, vin=valid_vin(), delivered_on=timezone.localdate() + timedelta(days=1)
        )
    assert fields_of(error) == {"delivered_on"}


# --- defeats ----------------------------------------------------------------------------------------


def reasons() -> dict[str, DefeatReason]:
    return {r.code: r for r in services.defeat_reasons_ensure()}


def test_a_reported_defeat_waits_open_until_a_manager_approves(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    lead = services.lead_defeat(actor=dealer.consultant, lead=lead, reason=reasons()["price"], note="贵")
    assert lead.defeat_status == "pending" and lead.stage == Stage.CONTACTED and lead.is_open
    assert lead.closed_at is None and len(open_lead_followups(lead)) == 1
    assert Notification.objects.filter(recipient=dealer.manager, kind="lead_defeat").exists()
    with pytest.raises(ApplicationError) as twice:
        services.lead_defeat(actor=dealer.consultant, lead=lead, reason=reasons()["price"])
    assert fields_of(twice) == {"reason"}
    with pytest.raises(NotAllowed):
        services.lead_defeat_decide(actor=dealer.consultant, lead=lead, approve=True)
    lead = services.lead_defeat_decide(actor=dealer.manager, lead=lead, approve=True)
    assert lead.stage == Stage.DEFEATED and lead.defeat_status == "approved" and lead.closed_at is not None
    assert lead.next_followup_on is None and open_lead_followups(lead) == []
    assert Notification.objects.filter(recipient=dealer.consultant, kind="lead_defeat").exists()


def test_a_rejection_needs_a_note_and_keeps_the_lead_open(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    lead = services.lead_defeat(actor=dealer.consultant, lead=lead, reason=reasons()["unreachable"])
    with pytest.raises(ApplicationError) as error:
        services.lead_defeat_decide(actor=dealer.manager, lead=lead, approve=False, note=" ")
    assert fields_of(error) == {"note"}
    lead = services.lead_defeat_decide(actor=dealer.manager, lead=lead, approve=False, note="再联系一次")
    assert lead.defeat_status == "rejected" and lead.is_open
    assert LeadEvent.objects.filter(lead=lead, kind="defeat_rejected", summary="再联系一次").exists()
    with pytest.raises(ApplicationError) as nothing:
        services.lead_defeat_decide(actor=dealer.manager, lead=lead, approve=True)
    assert nothing.value.code == "no_defeat"


def test_a_managers_own_defeat_and_no_approval_close_at_once(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    assert services.lead_defeat(actor=dealer.manager, lead=lead, reason=reasons()["price"]).stage == Stage.DEFEATED
    settings(defeat_needs_approval=False)
    lead = capture(dealer.consultant).lead
    assert services.lead_defeat(actor=dealer.consultant, lead=lead, reason=reasons()["price"]).stage == "defeated"


def test_a_defeat_needs_a_reason_and_the_competitor_when_asked(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    with pytest.raises(ApplicationError) as error:
        services.lead_defeat(actor=dealer.consultant, lead=lead, reason=None)
    assert fields_of(error) == {"reason"}
    with pytest.raises(ApplicationError) as error:
        services.lead_defeat(actor=dealer.consultant, lead=lead, reason=reasons()["competitor"], competitor_model="X")
    assert fields_of(error) == {"competitor_brand"}
    lead = services.lead_defeat(
        actor=dealer.consultant,
        lead=lead,
        reason=reasons()["competitor"],
        competitor_brand="比亚迪",
        competitor_model="汉",
    )
    assert lead.competitor_brand == "比亚迪" and lead.defeat_status == "pending"


def test_an_ordered_lead_cannot_be_defeated(dealer: Any) -> None:
    lead, quote = _quoted(dealer)
    lead = services.lead_order(actor=dealer.consultant, lead=lead, quote=quote, deposit="1000")
    with pytest.raises(ApplicationError) as error:
        services.lead_defeat(actor=dealer.manager, lead=lead, reason=reasons()["price"])
    assert fields_of(error) == {"reason"}


def test_reopening_goes_back_to_the_furthest_stage_reached(dealer: Any) -> None:
    lead, _quote = _quoted(dealer)  # contacted, then negotiation
    lead = services.lead_defeat(actor=dealer.manager, lead=lead, reason=reasons()["price"])
    with pytest.raises(NotAllowed):
        services.lead_reopen(actor=dealer.consultant, lead=lead)
    lead = services.lead_reopen(actor=dealer.manager, lead=lead, note="回来了")
    assert lead.stage == Stage.NEGOTIATION and lead.defeat_status == "" and lead.closed_at is None
    assert lead.next_followup_on == timezone.localdate() and len(open_lead_followups(lead)) == 1
    with pytest.raises(ApplicationError) as not_defeated:
        services.lead_reopen(actor=dealer.manager, lead=lead)
    assert not_defeated.value.code == "not_defeated"


def test_reopening_is_refused_while_the_person_has_another_open_lead(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    lead = services.lead_defeat(actor=dealer.manager, lead=lead, reason=reasons()["price"])
    capture(dealer.consultant, mobile=lead.mobile)
    with pytest.raises(ApplicationError) as error:
        services.lead_reopen(actor=dealer.manager, lead=lead)
    assert error.value.code == "open_lead"


# --- the nightly lead work --------------------------------------------------------------------------


def events(lead: Lead, kind: str) -> list[LeadEvent]:
    return list(LeadEvent.objects.filter(lead=lead, kind=kind).order_by("at", "id"))


def test_reclaim_after_reclaim_hours_without_any_attempt_and_reassign_to_someone_else(dealer: Any) -> None:
    late = capture(dealer.consultant, source="online").lead
    early = capture(dealer.consultant, source="online").lead
    called = capture(dealer.consultant, source="online").lead
    services.lead_contact_log(actor=dealer.consultant, lead=called, disposition="no_answer")  # an attempt
    now = timezone.now()
    Lead.objects.filter(pk__in=[late.pk, called.pk]).update(assigned_at=now - timedelta(hours=24, minutes=1))
    Lead.objects.filter(pk=early.pk).update(assigned_at=now - timedelta(hours=23))
    on_duty(dealer.consultant)  # the former owner: never again
    on_duty(dealer.consultant2, last=now)
    run_night(dealer)
    (reclaimed,) = events(late, "reclaimed")
    assert reclaimed.from_owner == dealer.consultant and reclaimed.to_owner is None and reclaimed.actor is None
    late = fresh(late)
    assert late.owner == dealer.consultant2
    assert events(late, "assigned")[-1].from_owner is None and events(late, "assigned")[-1].to_owner == late.owner
    assert [f.assignee for f in open_lead_followups(late)] == [dealer.consultant2]
    assert fresh(early).owner == dealer.consultant and fresh(called).owner == dealer.consultant


def test_a_reclaimed_lead_stays_in_the_pool_when_only_its_former_owner_is_on_duty(dealer: Any) -> None:
    lead = capture(dealer.consultant, source="online").lead
    Lead.objects.filter(pk=lead.pk).update(assigned_at=timezone.now() - timedelta(hours=25))
    on_duty(dealer.consultant)
    run_night(dealer)
    lead = fresh(lead)
    assert lead.owner is None and lead.assigned_at is None and open_lead_followups(lead) == []
    assert lead.customer.owner is None


def test_reclaim_after_reclaim_overdue_days_overdue(dealer: Any) -> None:
    today = timezone.localdate()
    overdue = capture(dealer.consultant).lead
    boundary = capture(dealer.consultant).lead
    Lead.objects.filter(pk=overdue.pk).update(next_followup_on=today - timedelta(days=8))
    Lead.objects.filter(pk=boundary.pk).update(next_followup_on=today - timedelta(days=7))
    run_night(dealer)
    assert fresh(overdue).owner is None and events(overdue, "reclaimed")
    assert fresh(boundary).owner == dealer.consultant


def test_a_lead_waiting_for_defeat_approval_is_not_reclaimed(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    services.lead_defeat(actor=dealer.consultant, lead=lead, reason=reasons()["price"])
    Lead.objects.filter(pk=lead.pk).update(next_followup_on=timezone.localdate() - timedelta(days=30))
    run_night(dealer)
    assert fresh(lead).owner == dealer.consultant


def test_an_overdue_lead_given_out_again_is_not_reclaimed_a_second_time(dealer: Any) -> None:
    lead = capture(dealer.consultant).lead
    Lead.objects.filter(pk=lead.pk).update(next_followup_on=timezone.localdate() - timedelta(days=10))
    on_duty(dealer.consultant2)
    run_night(dealer)
    assert fresh(lead).owner == dealer.consultant2
    assert run_night(dealer) == 0
    assert fresh(lead).owner == dealer.consultant2 and len(events(lead, "reclaimed")) == 1


def test_dormant_after_dormant_days_without_contact(dealer: Any) -> None:
    today = timezone.localdate()
    asleep = capture(dealer.consultant).lead
    awake = capture(dealer.consultant).lead
    for lead, days in ((asleep, 60), (awake, 59)):
        Lead.objects.filter(pk=lead.pk).update(
            created_at=local_noon(today - timedelta(days=100)),
            last_contact_at=local_noon(today - timedelta(days=days)),
            next_followup_on=today,
        )
    run_night(dealer)
    asleep, awake = fresh(asleep), fresh(awake)
    assert asleep.dormant_since == today and events(asleep, "dormant")
    assert open_lead_followups(asleep) == [] and asleep.owner == dealer.consultant
    assert asleep not in selectors.leads_today(viewer=dealer.consultant)
    assert awake.dormant_since is None and awake in selectors.leads_today(viewer=dealer.consultant)


def test_a_dormant_lead_wakes_after_wake_days_due_today(dealer: Any) -> None:
    today = timezone.localdate()
    waking = capture(dealer.consultant).lead
    sleeping = capture(dealer.consultant).lead
    Followup.objects.filter(customer__in=[waking.customer, sleeping.customer], reason=Reason.LEAD).update(
        status=Status.CANCELLED
    )
    Lead.objects.filter(pk=waking.pk).update(dormant_since=today - timedelta(days=30))
    Lead.objects.filter(pk=sleeping.pk).update(dormant_since=today - timedelta(days=29))
    run_night(dealer)
    waking, sleeping = fresh(waking), fresh(sleeping)
    assert waking.dormant_since is None and waking.woken_on == today and waking.next_followup_on == today
    assert events(waking, "woken")
    (followup,) = open_lead_followups(waking)
    assert followup.scheduled_on == today and followup.assignee == dealer.consultant
    assert followup.source_key == f"lead:{waking.pk}:{today.isoformat()}:night"
    assert sleeping.dormant_since == today - timedelta(days=29) and open_lead_followups(sleeping) == []


def test_the_night_plans_a_missing_follow_up_for_a_due_lead(dealer: Any) -> None:
    yesterday = timezone.localdate() - timedelta(days=1)
    lead = capture(dealer.consultant, timeframe="7d").lead
    pool = capture(dealer.manager, source="online").lead  # nobody's: no follow-up
    Followup.objects.filter(customer=lead.customer, reason=Reason.LEAD).update(status=Status.CANCELLED)
    Lead.objects.filter(pk=lead.pk).update(next_followup_on=yesterday)
    run_night(dealer)
    (followup,) = open_lead_followups(lead)
    assert followup.due_from == yesterday and followup.assignee == dealer.consultant and followup.priority == 1
    assert followup.channel == "call" and followup.source_key == f"lead:{lead.pk}:{yesterday.isoformat()}:night"
    assert open_lead_followups(pool) == []


def test_a_second_night_changes_nothing(dealer: Any) -> None:
    today = timezone.localdate()
    reclaim = capture(dealer.consultant, source="online").lead
    Lead.objects.filter(pk=reclaim.pk).update(assigned_at=timezone.now() - timedelta(hours=30))
    dormant = capture(dealer.consultant).lead
    Lead.objects.filter(pk=dormant.pk).update(
        created_at=local_noon(today - timedelta(days=90)), last_contact_at=local_noon(today - timedelta(days=61))
    )
    wake = capture(dealer.consultant).lead
    Lead.objects.filter(pk=wake.pk).update(dormant_since=today - timedelta(days=40))
    Followup.objects.filter(customer=wake.customer, reason=Reason.LEAD).update(status=Status.CANCELLED)
    on_duty(dealer.consultant2)
    assert run_night(dealer) > 0
    before = (
        list(Lead.objects.order_by("pk").values_list("pk", "owner", "dormant_since", "next_followup_on", "updated_at")),
        LeadEvent.objects.count(),
        list(Followup.objects.order_by("pk").values_list("pk", "status", "scheduled_on", "assignee")),
    )
    assert run_night(dealer) == 0
    after = (
        list(Lead.objects.order_by("pk").values_list("pk", "owner", "dormant_since", "next_followup_on", "updated_at")),
        LeadEvent.objects.count(),
        list(Followup.objects.order_by("pk").values_list("pk", "status", "scheduled_on", "assignee")),
    )
    assert after == before


# --- the funnel -------------------------------------------------------------------------------------


def figures(dealer: Any, series: str, start: date | None = None) -> dict[str, Any]:
    today = timezone.localdate()
    period = Period(start or today, today)
    return selectors.funnel(viewer=dealer.manager, filters=selectors.FunnelFilters(period=period, series=series))


def steps_of(result: dict[str, Any]) -> dict[str, int]:
    return {step["stage"]: step["leads"] for step in result["steps"]}


def test_the_funnel_counts_each_lead_at_every_stage_up_to_its_furthest(dealer: Any) -> None:
    new = capture(dealer.consultant, source="online", series="F1").lead
    capture(dealer.consultant, source="phone", series="F1")
    capture(dealer.consultant, source="walk_in", series="F1")
    jumped = capture(dealer.consultant, source="online", series="F1").lead
    # reached or later: a lead with only its order milestone has reached every stage before it
    Lead.objects.filter(pk=jumped.pk).update(ordered_at=timezone.now())
    result = figures(dealer, "F1")
    steps = steps_of(result)
    assert steps == {
        "new": 4,
        "contacted": 3,
        "invited": 2,
        "visited": 2,
        "test_drive": 1,
        "ordered": 1,
        "delivered": 0,
    }
    # the same from the rows directly
    fields = [selectors.REACHED_FIELD[stage] for stage in STAGE_ORDER]
    leads = list(Lead.objects.filter(series="F1").values(*[f for f in fields if f]))
    for step in selectors.FUNNEL_STEPS:
        index = STAGE_ORDER.index(step)
        later = [f for f in fields[index:] if f]
        direct = len(leads) if step == Stage.NEW else sum(1 for row in leads if any(row[f] for f in later))
        assert steps[step.value] == direct
        assert steps[step.value] == Lead.objects.filter(series="F1").filter(selectors.reached(step)).count()
    assert result["visit_rate"] == Decimal("50.0")  # 2 of 4
    assert result["test_drive_rate"] == Decimal("50.0")  # 1 of 2 visited
    assert result["close_rate"] == Decimal("50.0")  # 1 ordered of 2 visited
    assert result["lead_close_rate"] == Decimal("25.0")  # 1 of 4
    assert new.stage == Stage.NEW


def test_rates_are_rounded_half_up_to_one_decimal() -> None:
    assert selectors._rate(1, 16) == Decimal("6.3")  # 6.25 (half-even would give 6.2)
    assert selectors._rate(3, 16) == Decimal("18.8")  # 18.75
    assert selectors._rate(1, 3) == Decimal("33.3") and selectors._rate(2, 3) == Decimal("66.7")
    assert selectors._rate(0, 5) == Decimal("0.0") and selectors._rate(1, 0) is None
    assert selectors._median([10, 30, 45, 50]) == Decimal("37.5") and selectors._median([]) is None


def test_the_funnel_of_an_empty_period_has_no_rates(dealer: Any) -> None:
    result = figures(dealer, "nothing-here")
    assert set(steps_of(result).values()) == {0}
    assert result["visit_rate"] is None and result["response"]["within_share"] is None
    assert result["response"]["median_minutes"] is None


def test_median_response_and_the_share_within_the_limit_count_unanswered_overdue_leads(dealer: Any) -> None:
    now = timezone.now()
    leads = [capture(dealer.consultant, source="online", series="R1").lead for _ in range(5)]
    for lead, minutes in zip(leads[:3], (10, 30, 45), strict=True):
        Lead.objects.filter(pk=lead.pk).update(response_minutes=minutes, response_due_at=None)
    Lead.objects.filter(pk=leads[3].pk).update(response_minutes=None, response_due_at=now - timedelta(minutes=1))
    Lead.objects.filter(pk=leads[4].pk).update(response_minutes=None, response_due_at=now + timedelta(minutes=10))
    capture(dealer.consultant, source="phone", series="R1")  # not an online lead: not judged
    response = figures(dealer, "R1")["response"]
    assert response["limit_minutes"] == 30
    assert response["median_minutes"] == Decimal("30.0")
    assert response["responded"] == 3 and response["within_limit"] == 2  # 30 minutes is within 30
    assert response["overdue_unanswered"] == 1
    assert response["within_share"] == Decimal("50.0")  # 2 of (3 answered + 1 overdue)


def test_lead_ageing_buckets_count_open_leads_by_days_since_capture(dealer: Any) -> None:
    today = timezone.localdate()
    for days in (0, 7, 8, 30, 31, 90, 91, 200):
        lead = capture(dealer.consultant, series="AGE").lead
        Lead.objects.filter(pk=lead.pk).update(created_at=local_noon(today - timedelta(days=days)))
    closed = capture(dealer.consultant, series="AGE").lead
    services.lead_defeat(actor=dealer.manager, lead=closed, reason=reasons()["price"])
    result = figures(dealer, "AGE", start=today - timedelta(days=365))
    assert [(b["from_days"], b["to_days"], b["leads"]) for b in result["ageing"]] == [
        (0, 7, 2),
        (8, 30, 2),
        (31, 90, 2),
        (91, None, 2),
    ]
    assert steps_of(result)["new"] == 9
    assert result["defeats"] == [{"reason": "price", "label": reasons()["price"].label, "leads": 1}]


def test_the_funnel_counts_only_what_the_viewer_may_see(dealer: Any) -> None:
    capture(dealer.consultant, series="V1")
    capture(dealer.consultant2, series="V1")
    today = timezone.localdate()
    mine = selectors.funnel(
        viewer=dealer.consultant, filters=selectors.FunnelFilters(period=Period(today, today), series="V1")
    )
    assert steps_of(mine)["new"] == 1 and steps_of(figures(dealer, "V1"))["new"] == 2


def test_the_breakdown_by_consultant_sums_to_the_funnel(dealer: Any) -> None:
    capture(dealer.consultant, series="B1")
    capture(dealer.consultant, series="B1", source="walk_in")
    capture(dealer.consultant2, series="B1")
    today = timezone.localdate()
    rows = selectors.funnel_breakdown(
        viewer=dealer.manager, filters=selectors.FunnelFilters(period=Period(today, today), series="B1"), by="owner"
    )
    assert [(row["key"], row["steps"]["new"], row["steps"]["visited"]) for row in rows] == [
        (dealer.consultant.pk, 2, 1),
        (dealer.consultant2.pk, 1, 0),
    ]
    assert rows[0]["visit_rate"] == Decimal("50.0") and rows[0]["label"] == dealer.consultant.display_name


def test_the_reached_filter_of_the_lead_list_follows_the_funnel(dealer: Any) -> None:
    walk_in = capture(dealer.consultant, source="walk_in", series="L1").lead
    capture(dealer.consultant, source="online", series="L1")
    found = selectors.lead_list(viewer=dealer.manager, filters=selectors.LeadFilters(series="L1", reached="contacted"))
    assert list(found) == [walk_in]
    assert not Lead.objects.filter(Q(pk=walk_in.pk) & ~selectors.reached(Stage.INVITED)).exists()


# --- my leads today ---------------------------------------------------------------------------------


def test_my_leads_today_most_overdue_first_then_h_before_a(dealer: Any) -> None:
    today = timezone.localdate()
    older = capture(dealer.consultant, level="C").lead
    a_lead = capture(dealer.consultant, level="A").lead
    h_lead = capture(dealer.consultant, level="H").lead
    Lead.objects.filter(pk=older.pk).update(next_followup_on=today - timedelta(days=2))
    Lead.objects.filter(pk__in=[a_lead.pk, h_lead.pk]).update(next_followup_on=today)
    mine = [lead.pk for lead in selectors.leads_today(viewer=dealer.consultant) if lead.series != "Model Y"]
    assert mine == [older.pk, h_lead.pk, a_lead.pk]


def test_my_leads_today_are_my_open_awake_leads_due_up_to_today(dealer: Any) -> None:
    today = timezone.localdate()
    due = capture(dealer.consultant, source="online").lead
    later = capture(dealer.consultant).lead  # next follow-up in a week
    asleep = capture(dealer.consultant, source="online").lead
    Lead.objects.filter(pk=asleep.pk).update(dormant_since=today)
    colleague = capture(dealer.consultant2, source="online").lead
    mine = set(selectors.leads_today(viewer=dealer.consultant).values_list("pk", flat=True))
    assert due.pk in mine and not mine & {later.pk, asleep.pk, colleague.pk}


# --- the first response is measured once --------------------------------------------------------------


def test_an_invitation_keeps_the_response_an_earlier_attempt_recorded(dealer: Any) -> None:
    lead = capture(dealer.consultant, source="online").lead
    services.lead_contact_log(actor=dealer.consultant, lead=lead, disposition="no_answer")
    Lead.objects.filter(pk=lead.pk).update(response_minutes=7)
    lead = services.lead_invite(
        actor=dealer.consultant, lead=fresh(lead), appointment_at=timezone.now() + timedelta(days=1)
    )
    assert lead.response_minutes == 7


def test_a_wrong_number_moves_the_lead_to_its_next_cadence_step_with_one_open_follow_up(dealer: Any) -> None:
    lead = capture(dealer.consultant, source="online").lead
    day = lead.next_followup_on
    lead = services.lead_contact_log(actor=dealer.consultant, lead=lead, disposition="wrong_number")
    # the follow-up ended unreached: the lead is tried again at its next cadence step
    assert lead.stage == Stage.NEW and lead.next_followup_on == day + timedelta(days=7)
    (followup,) = open_lead_followups(lead)
    assert followup.status == Status.OPEN and followup.scheduled_on == lead.next_followup_on


def test_reassigning_goes_on_after_a_lead_nobody_may_take(dealer: Any) -> None:
    first = capture(dealer.consultant, source="online").lead
    second = capture(dealer.consultant2, source="online").lead
    Lead.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=2))
    Lead.objects.filter(pk__in=[first.pk, second.pk]).update(assigned_at=timezone.now() - timedelta(hours=25))
    on_duty(dealer.consultant)  # may not take back his own, may take his colleague's
    run_night(dealer)
    assert fresh(first).owner is None
    assert fresh(second).owner == dealer.consultant
