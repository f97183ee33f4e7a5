"""The loyalty programme's rules: earning from orders (rates, caps, level multipliers), reversals,
expiry oldest first, levels up and down with notices, referrals rewarded once, care greetings
through the outbox with consent, manual adjustments, redemption with idempotency keys, complaint
compensation and customer merges. After every test, each balance equals the sum of its ledger."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from complaints.models import Ticket
from crm.core.errors import ApplicationError, NotAllowed
from crm.core.models import DigestItem
from crm.messaging.models import OutboxMessage
from crm.tenancy.context import tenant_context
from customers import records
from customers.models import Order
from loyalty import batch, services
from loyalty.holidays import holiday_on, next_holiday
from loyalty.models import CareTemplate, LedgerEntry, Level, LevelChange, Member, Programme, Redemption, Reward
from loyalty.nightly import loyalty_care, loyalty_earn, loyalty_levels, loyalty_points_expiry
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def ledger_drift() -> list[tuple[int, int, int]]:
    """Members whose balance differs from the sum of their ledger (always none)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT m.id, m.points_balance, coalesce(sum(e.points), 0) FROM loyalty_member m
                 LEFT JOIN loyalty_ledgerentry e ON e.member_id = m.id
                GROUP BY m.id HAVING m.points_balance <> coalesce(sum(e.points), 0)"""
        )
        return cursor.fetchall()


@pytest.fixture
def dealer(dealer_b) -> Iterator:  # type: ignore[no-untyped-def]
    """Dealership B, inside its tenant, programme counting orders from 2024, 12-month expiry."""
    with tenant_context(dealer_b.tenant.pk):
        Programme.objects.filter().update(starts_on=date(2024, 1, 1), expiry_months=12, channels=["sms", "email"])
        yield dealer_b
        assert ledger_drift() == []


def member_for(dealer, **customer):  # type: ignore[no-untyped-def]
    customer.setdefault("owner", dealer.consultant)
    return services.member_enrol(actor=dealer.agent, customer=CustomerFactory(**customer))


def run_night(day: date) -> None:
    batch.orders_earn(run_date=day)
    batch.points_expire(run_date=day)
    batch.levels_recompute(run_date=day)


# --- Earning ---------------------------------------------------------------------------------------


def test_a_completed_order_earns_by_its_rule_and_level_once_and_the_cap_holds(dealer):
    buyer = CustomerFactory(owner=dealer.consultant)
    service = OrderFactory(customer=buyer, kind="maintenance", ordered_on=date(2025, 3, 1), amount=Decimal("880.50"))
    car = OrderFactory(customer=buyer, kind="vehicle_sale", ordered_on=date(2025, 3, 2), amount=Decimal("300000"))
    OrderFactory(customer=buyer, kind="repair", status="open", ordered_on=date(2025, 3, 3), amount=Decimal("999"))
    OrderFactory(customer=buyer, kind="parts", ordered_on=date(2023, 12, 31), amount=Decimal("999"))  # before start
    counts = batch.orders_earn(run_date=date(2025, 3, 5))
    member = Member.objects.get(customer=buyer)  # enrolled automatically, from the first order
    assert counts["enrolled"] == 1 and counts["earned"] == 2
    assert member.joined_on == date(2025, 3, 1) and member.level.code == "regular"
    entries = {e.order_id: e for e in LedgerEntry.objects.filter(member=member)}
    assert entries[service.pk].points == 880  # 1 point per CNY, rounded down
    assert entries[car.pk].points == 20_000  # 0.1 per CNY = 30,000, capped at 20,000
    assert entries[service.pk].expires_on == date(2026, 3, 1) and entries[service.pk].source == "nightly"
    assert member.points_balance == 20_880
    # a second run the same night changes nothing
    assert loyalty_earn(tenant_id=dealer.tenant.pk, run_date=date(2025, 3, 5)) == 0
    assert LedgerEntry.objects.filter(member=member).count() == 2
    # a gold member earns 1.5×
    Member.objects.filter(pk=member.pk).update(level=Level.objects.get(code="gold"))
    later = OrderFactory(customer=buyer, kind="maintenance", ordered_on=date(2025, 4, 1), amount=Decimal("1000"))
    batch.orders_earn(run_date=date(2025, 4, 2))
    assert LedgerEntry.objects.get(order=later, kind="earn").points == 1500


def test_a_reversed_order_gives_back_its_points_but_never_below_zero(dealer):
    member = member_for(dealer)
    member.joined_on = date(2025, 1, 1)
    member.save()
    first = OrderFactory(customer=member.customer, kind="repair", ordered_on=date(2025, 2, 1), amount=Decimal("500"))
    second = OrderFactory(customer=member.customer, kind="repair", ordered_on=date(2025, 2, 2), amount=Decimal("300"))
    batch.orders_earn(run_date=date(2025, 2, 3))
    reward = Reward.objects.create(name="机油", points_cost=600)
    services.points_redeem(actor=dealer.agent, member=member, reward=reward, idempotency_key="rev-test-0001")
    records.order_reverse(actor=dealer.manager, order=first)
    records.order_reverse(actor=dealer.manager, order=second)
    assert batch.orders_earn(run_date=date(2025, 2, 4))["reversed"] == 2
    member.refresh_from_db()
    reversals = {e.order_id: e.points for e in LedgerEntry.objects.filter(kind="reversal")}
    assert reversals == {first.pk: -200, second.pk: 0}  # only 200 were left after the redemption
    assert member.points_balance == 0
    assert batch.orders_earn(run_date=date(2025, 2, 5))["reversed"] == 0  # once


# --- Expiry ----------------------------------------------------------------------------------------


def test_points_expire_oldest_first(dealer):
    """Three lots: 100 (expire 2026-01-10), 200 (2026-03-05), 50 (2026-06-01). Redeeming 150
    takes all of the oldest lot and 50 of the next, so nothing expires on 10 January (LIFO would
    expire 100 there), 150 expire on 5 March, and the last 50 on 1 June."""
    member = member_for(dealer)
    Member.objects.filter(pk=member.pk).update(joined_on=date(2025, 1, 1))
    for day, amount in ((date(2025, 1, 10), 100), (date(2025, 3, 5), 200), (date(2025, 6, 1), 50)):
        OrderFactory(customer=member.customer, kind="maintenance", ordered_on=day, amount=Decimal(amount))
    batch.orders_earn(run_date=date(2025, 6, 2))
    lots = list(LedgerEntry.objects.filter(member=member).order_by("expires_on").values_list("points", "expires_on"))
    assert lots == [(100, date(2026, 1, 10)), (200, date(2026, 3, 5)), (50, date(2026, 6, 1))]
    reward = Reward.objects.create(name="洗车", points_cost=150)
    services.points_redeem(actor=dealer.agent, member=member, reward=reward, idempotency_key="fifo-test-001")

    def expire(day: date) -> int:
        loyalty_points_expiry(tenant_id=dealer.tenant.pk, run_date=day)
        member.refresh_from_db()
        return -sum(LedgerEntry.objects.filter(member=member, kind="expire").values_list("points", flat=True))

    assert expire(date(2026, 1, 9)) == 0 and member.points_balance == 200
    assert expire(date(2026, 1, 10)) == 0 and member.points_balance == 200  # the oldest lot was spent
    assert expire(date(2026, 3, 5)) == 150 and member.points_balance == 50
    assert expire(date(2026, 3, 5)) == 150  # a second run the same day expires nothing more
    assert expire(date(2026, 5, 31)) == 150 and member.points_balance == 50
    assert expire(date(2026, 6, 1)) == 200 and member.points_balance == 0
    entry = LedgerEntry.objects.filter(member=member, kind="expire").order_by("occurred_at").first()
    assert entry.key == f"expire:{member.pk}:2026-03-05" and entry.source == "nightly"
    assert services.expiring_points(member=member, by=date(2027, 1, 1)) == 0


def test_points_about_to_expire_are_shown_by_the_same_rule(dealer):
    member = member_for(dealer)
    Member.objects.filter(pk=member.pk).update(joined_on=date(2025, 1, 1))
    OrderFactory(customer=member.customer, kind="maintenance", ordered_on=date(2025, 1, 10), amount=Decimal("100"))
    OrderFactory(customer=member.customer, kind="maintenance", ordered_on=date(2025, 5, 10), amount=Decimal("80"))
    batch.orders_earn(run_date=date(2025, 6, 1))
    services.points_adjust(actor=dealer.manager, member=member, points=-30, note="更正")
    assert services.expiring_points(member=member, by=date(2026, 1, 10)) == 70
    assert services.expiring_points(member=member, by=date(2026, 5, 10)) == 150


# --- Levels ----------------------------------------------------------------------------------------


def test_levels_go_up_and_down_with_history_and_notices_once(dealer):
    member = member_for(dealer, consent_sms=True)
    Member.objects.filter(pk=member.pk).update(joined_on=date(2025, 1, 1))
    OrderFactory(customer=member.customer, kind="vehicle_sale", ordered_on=date(2025, 2, 1), amount=Decimal("250000"))
    run_night(date(2025, 2, 2))
    member.refresh_from_db()
    assert member.level.code == "gold"  # spend 250,000 ≥ 200,000 (its 20,000 points also qualify)
    change = LevelChange.objects.get(member=member, changed_on=date(2025, 2, 2))
    assert (change.from_level.code, change.to_level.code, change.reason) == ("regular", "gold", "nightly")
    notice = OutboxMessage.objects.get(key=f"loyalty-level:{member.pk}:2025-02-02")
    assert notice.channel == "sms" and notice.to == member.customer.mobile and member.customer.name in notice.body
    # the owner hears of it in the next daily digest (docs/notifications.md), once
    told = DigestItem.objects.filter(recipient=dealer.consultant, key=f"loyalty-level:{member.pk}:2025-02-02")
    assert told.count() == 1 and member.customer.name in told.get().title
    assert loyalty_levels(tenant_id=dealer.tenant.pk, run_date=date(2025, 2, 2)) == 0  # idempotent
    # a year on, without new spend: down to regular
    assert loyalty_levels(tenant_id=dealer.tenant.pk, run_date=date(2026, 2, 3)) >= 1
    member.refresh_from_db()
    assert member.level.code == "regular" and LevelChange.objects.filter(member=member).count() == 2


def test_a_level_kept_by_hand_is_left_alone(dealer):
    member = member_for(dealer)
    butler = Level.objects.get(code="butler")
    services.member_set_level(actor=dealer.manager, member=member, level=butler, keep=True, note="总经理指定")
    with pytest.raises(NotAllowed):
        services.member_set_level(actor=dealer.agent, member=member, level=None, keep=False, note="x")
    with pytest.raises(ApplicationError):
        services.member_set_level(actor=dealer.manager, member=member, level=None, keep=False, note=" ")
    batch.levels_recompute(run_date=date(2026, 1, 1))
    member.refresh_from_db()
    assert member.level == butler and member.level_locked


# --- Referrals --------------------------------------------------------------------------------------


def test_a_referral_is_rewarded_once_when_the_referee_buys_a_vehicle(dealer):
    referrer = CustomerFactory(owner=dealer.consultant)
    referee = CustomerFactory(owner=dealer.consultant2)
    referral = services.referral_create(actor=dealer.agent, referrer=referrer, referee=referee, note="朋友")
    member = Member.objects.get(customer=referrer)  # the referrer joined
    with pytest.raises(ApplicationError):
        services.referral_create(actor=dealer.agent, referrer=CustomerFactory(), referee=referee)
    with pytest.raises(ApplicationError):
        services.referral_create(actor=dealer.agent, referrer=referrer, referee=referrer)
    today = timezone.localdate(timezone=dealer.tenant.zone)
    OrderFactory(customer=referee, kind="maintenance", ordered_on=today)  # not a vehicle
    assert batch.referrals_reward(run_date=today) == 0
    OrderFactory(customer=referee, kind="vehicle_sale", ordered_on=today, amount=Decimal("150000"))
    OrderFactory(customer=referee, kind="vehicle_sale", ordered_on=today, amount=Decimal("90000"))
    batch.orders_earn(run_date=today)
    batch.orders_earn(run_date=today)
    batch.referrals_reward(run_date=today)
    referral.refresh_from_db()
    member.refresh_from_db()
    bonus = LedgerEntry.objects.filter(member=member, kind="referral")
    assert bonus.count() == 1 and bonus.get().points == 1000 and bonus.get().referral_id == referral.pk
    assert referral.status == "rewarded" and referral.order_id is not None
    assert member.points_balance == 1000
    buyer = OrderFactory(kind="vehicle_sale", ordered_on=today).customer
    with pytest.raises(ApplicationError) as bought:  # a buyer cannot be referred any more
        services.referral_create(actor=dealer.agent, referrer=referrer, referee=buyer)
    assert "referee" in bought.value.fields


# --- Care ---------------------------------------------------------------------------------------------


def test_birthday_and_holiday_greetings_go_out_once_with_consent(dealer):
    day = date(2026, 2, 17)  # Spring Festival
    assert holiday_on(day) == "spring_festival" and holiday_on(date(2026, 10, 1)) == "national_day"
    texted = member_for(dealer, name="生日客户", birthday=date(1990, 2, 17), consent_sms=True)
    mailed = member_for(dealer, birthday=date(1985, 2, 17), consent_sms=False, consent_wechat=False,
                        consent_email=True, email="a@example.test")  # fmt: skip
    silent = member_for(dealer, birthday=date(1991, 2, 17), consent_sms=False, consent_wechat=False)
    black = member_for(dealer, birthday=date(1992, 2, 17))
    black.customer.list_flag = "black"
    black.customer.save()
    assert loyalty_care(tenant_id=dealer.tenant.pk, run_date=day) > 0
    assert loyalty_care(tenant_id=dealer.tenant.pk, run_date=day) == 0  # once
    birthday = OutboxMessage.objects.filter(purpose="care:birthday")
    assert {(m.channel, m.to) for m in birthday} == {("sms", texted.customer.mobile), ("email", "a@example.test")}
    assert "生日客户" in birthday.get(channel="sms").body
    festival = OutboxMessage.objects.filter(purpose="care:spring_festival")
    recipients = set(festival.values_list("to", flat=True))
    assert texted.customer.mobile in recipients and silent.customer.mobile not in recipients
    assert black.customer.mobile not in recipients
    assert festival.first().next_attempt_at.hour == 1  # 09:00 in Shanghai
    bonuses = LedgerEntry.objects.filter(kind="birthday")
    assert set(bonuses.values_list("member_id", flat=True)) == {texted.pk, mailed.pk, silent.pk}  # not black
    assert {b.points for b in bonuses} == {200}
    # a greeting switched off is not sent
    CareTemplate.objects.filter(occasion="national_day").update(is_active=False)
    batch.care_send(run_date=date(2026, 10, 1))
    assert not OutboxMessage.objects.filter(purpose="care:national_day").exists()


# The festivals' Gregorian dates as printed calendars give them (written down here, not computed).
KNOWN_LUNAR_HOLIDAYS = {
    date(2023, 1, 22): "spring_festival",
    date(2031, 1, 23): "spring_festival",
    date(2032, 2, 11): "spring_festival",
    date(2035, 2, 8): "spring_festival",
    date(2023, 6, 22): "dragon_boat",
    date(2033, 6, 1): "dragon_boat",
    date(2023, 9, 29): "mid_autumn",
    date(2032, 9, 19): "mid_autumn",
}


def test_lunar_holidays_come_from_the_lunar_calendar_in_any_year(dealer):
    for day, occasion in KNOWN_LUNAR_HOLIDAYS.items():
        assert holiday_on(day) == occasion, day
        assert holiday_on(day - timedelta(days=1)) is None
    assert holiday_on(date(2031, 10, 1)) == "national_day"  # Mid-Autumn that day too: one greeting
    assert next_holiday(date(2032, 12, 2)) == ("new_year", date(2033, 1, 1))
    assert next_holiday(date(2033, 1, 2)) == ("spring_festival", date(2033, 1, 31))
    member = member_for(dealer, consent_sms=True)
    batch.care_send(run_date=date(2032, 2, 11))  # after the old hand table's last year (2030)
    assert OutboxMessage.objects.filter(key=f"care:spring_festival:2032:{member.customer_id}").exists()


def test_29_february_birthdays_are_greeted_on_28_february_in_other_years(dealer):
    leap = member_for(dealer, birthday=date(2000, 2, 29))
    batch.care_send(run_date=date(2026, 2, 28))
    assert OutboxMessage.objects.filter(key=f"care:birthday:2026:{leap.customer_id}").exists()


# --- Staff actions ---------------------------------------------------------------------------------


def test_a_manual_adjustment_needs_a_note_and_a_permitted_role(dealer):
    member = member_for(dealer)
    with pytest.raises(NotAllowed):
        services.points_adjust(actor=dealer.agent, member=member, points=100, note="补偿")
    with pytest.raises(ApplicationError) as refused:
        services.points_adjust(actor=dealer.manager, member=member, points=100, note="  ")
    assert "note" in refused.value.fields
    entry = services.points_adjust(actor=dealer.manager, member=member, points=100, note="活动补发")
    assert (entry.kind, entry.actor, entry.reason, entry.source) == ("adjust", dealer.manager, "活动补发", "staff")
    with pytest.raises(ApplicationError) as overdrawn:
        services.points_adjust(actor=dealer.manager, member=member, points=-101, note="更正")
    assert overdrawn.value.code == "insufficient_points"
    services.points_adjust(actor=dealer.manager, member=member, points=-100, note="更正")
    member.refresh_from_db()
    assert member.points_balance == 0


def test_redeeming_replays_by_key_and_refuses_what_it_cannot_honour(dealer):
    member = member_for(dealer)
    services.points_adjust(actor=dealer.manager, member=member, points=1000, note="开卡礼")
    reward = Reward.objects.create(name="车载香氛", points_cost=300, stock=2)
    first = services.points_redeem(actor=dealer.agent, member=member, reward=reward, idempotency_key="key-00000001")
    again = services.points_redeem(actor=dealer.agent, member=member, reward=reward, idempotency_key="key-00000001")
    assert not first.replayed and again.replayed and again.redemption.pk == first.redemption.pk
    assert len(first.redemption.voucher_code) == 8
    with pytest.raises(ApplicationError) as reused:
        services.points_redeem(
            actor=dealer.agent, member=member, reward=reward, quantity=2, idempotency_key="key-00000001"
        )
    assert reused.value.code == "idempotency_key_reused" and reused.value.status_code == 409
    with pytest.raises(ApplicationError) as sold_out:
        services.points_redeem(actor=dealer.agent, member=member, reward=reward, quantity=2, idempotency_key="key-2")
    assert sold_out.value.fields  # a short key is refused before anything
    with pytest.raises(ApplicationError) as sold_out:
        services.points_redeem(
            actor=dealer.agent, member=member, reward=reward, quantity=2, idempotency_key="key-00000002"
        )
    assert sold_out.value.code == "out_of_stock"
    expensive = Reward.objects.create(name="保养", points_cost=800)
    with pytest.raises(ApplicationError) as poor:
        services.points_redeem(actor=dealer.agent, member=member, reward=expensive, idempotency_key="key-00000003")
    assert poor.value.code == "insufficient_points"
    with pytest.raises(NotAllowed):
        services.points_redeem(actor=dealer.auditor, member=member, reward=reward, idempotency_key="key-00000004")
    gated = Reward.objects.create(name="品鉴会", points_cost=10, min_level=Level.objects.get(code="gold"))
    with pytest.raises(ApplicationError) as low:
        services.points_redeem(actor=dealer.agent, member=member, reward=gated, idempotency_key="key-00000005")
    assert low.value.code == "level_too_low"
    member.refresh_from_db()
    reward.refresh_from_db()
    assert member.points_balance == 700 and reward.stock == 1
    # cancelling gives back the points and the stock, once
    services.redemption_cancel(actor=dealer.manager, redemption=first.redemption, note="客户未到店")
    with pytest.raises(ApplicationError):
        services.redemption_cancel(actor=dealer.manager, redemption=first.redemption, note="again")
    member.refresh_from_db()
    reward.refresh_from_db()
    assert member.points_balance == 1000 and reward.stock == 2
    assert Redemption.objects.get(pk=first.redemption.pk).status == "cancelled"


def test_the_ledger_is_append_only_for_the_application_role(dealer):
    from django.db import IntegrityError, ProgrammingError, transaction

    member = member_for(dealer)
    entry = services.points_adjust(actor=dealer.manager, member=member, points=10, note="x")
    for statement in (
        "UPDATE loyalty_ledgerentry SET points = 99 WHERE id = %s",
        "DELETE FROM loyalty_ledgerentry WHERE id = %s",
    ):
        with pytest.raises(ProgrammingError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [entry.pk])
    with pytest.raises(IntegrityError), transaction.atomic():  # the balance can never go below zero
        Member.objects.filter(pk=member.pk).update(points_balance=-1)


# --- Hooks: complaints and merges ----------------------------------------------------------------


def test_complaint_compensation_points_land_on_the_ledger_once(dealer):
    ticket = dealer.objects["ticket"]
    Ticket.objects.filter(pk=ticket.pk).update(compensation_points=300, compensation_note="赠送积分")
    ticket.refresh_from_db()
    member = Member.objects.get(customer=ticket.customer)
    before = member.points_balance
    services.complaint_compensation_credit(ticket)
    services.complaint_compensation_credit(ticket)  # a retried hook
    Ticket.objects.filter(pk=ticket.pk).update(compensation_points=500)  # reopened, closed with more
    ticket.refresh_from_db()
    services.complaint_compensation_credit(ticket)
    member.refresh_from_db()
    credits = LedgerEntry.objects.filter(ticket_id=ticket.pk, kind="compensation").order_by("pk")
    assert [c.points for c in credits] == [300, 200] and member.points_balance == before + 500


def test_closing_a_ticket_with_points_credits_them(dealer, django_capture_on_commit_callbacks):
    from complaints import services as complaints

    customer = CustomerFactory(owner=dealer.consultant)
    category = complaints.categories_ensure()[0]
    ticket = complaints.ticket_open(
        actor=dealer.agent,
        data=complaints.TicketInput(
            contact_name=customer.name, contact_mobile=customer.mobile, channel="phone", category=category,
            subject="等待太久", description="保养等了三小时", customer=customer, assignee=dealer.agent,
        ),
    )  # fmt: skip
    for step in ("listen", "calm", "handle"):
        ticket = complaints.ticket_advance(actor=dealer.agent, ticket=ticket, to_status=step, note=step)
    with django_capture_on_commit_callbacks(execute=True):
        complaints.ticket_advance(
            actor=dealer.agent,
            ticket=ticket,
            to_status="closed",
            note="done",
            closing=complaints.Closing(
                root_cause="排班不足", resolution="致歉并赠送积分", compensation_points=800, compensation_note="800积分"
            ),
        )
    member = Member.objects.get(customer=customer)
    assert member.points_balance == 800
    assert LedgerEntry.objects.get(member=member).ticket_id == ticket.pk


def test_merging_customers_merges_their_points_and_keeps_expiry_order(dealer):
    survivor = member_for(dealer)
    duplicate = member_for(dealer)
    Member.objects.filter(pk__in=[survivor.pk, duplicate.pk]).update(joined_on=date(2025, 1, 1))
    OrderFactory(customer=duplicate.customer, kind="maintenance", ordered_on=date(2025, 1, 5), amount=Decimal("100"))
    OrderFactory(customer=survivor.customer, kind="maintenance", ordered_on=date(2025, 4, 5), amount=Decimal("40"))
    batch.orders_earn(run_date=date(2025, 5, 1))
    records.customer_merge(actor=dealer.agent, survivor=survivor.customer, duplicate=duplicate.customer)
    survivor.refresh_from_db()
    duplicate.refresh_from_db()
    assert survivor.points_balance == 140 and duplicate.points_balance == 0
    copied = LedgerEntry.objects.get(member=survivor, merged_from__isnull=False)
    assert (copied.points, copied.expires_on, copied.kind) == (100, date(2026, 1, 5), "earn")
    batch.points_expire(run_date=date(2026, 1, 5))  # the duplicate's older lot expires first
    survivor.refresh_from_db()
    assert survivor.points_balance == 40
    # a merge into a customer who is not a member moves the membership whole
    newcomer = CustomerFactory()
    records.customer_merge(actor=dealer.agent, survivor=newcomer, duplicate=survivor.customer)
    assert Member.objects.get(pk=survivor.pk).customer_id == newcomer.pk


def test_a_new_dealership_gets_a_working_programme(dealer):
    programme = services.programme()
    assert set(Level.objects.values_list("code", flat=True)) == {"regular", "silver", "gold", "butler"}
    assert {t.occasion for t in services.care_templates_ensure()} == set(CareTemplate.Occasion.values)
    assert "{name}" in CareTemplate.objects.get(occasion="birthday").text
    assert programme.preferred_channels() == ["sms", "email"]
    with pytest.raises(ApplicationError):
        services.programme_update(actor=dealer.manager, data={"channels": ["fax"]})
    with pytest.raises(NotAllowed):
        services.programme_update(actor=dealer.agent, data={"expiry_months": 6})
    template = CareTemplate.objects.get(occasion="birthday")
    template.text = "{nme} 生日快乐"
    with pytest.raises(ApplicationError):
        services.care_template_save(actor=dealer.manager, template=template)


def test_the_nightly_steps_are_registered_in_order():
    from crm.core.nightly import nightly_steps

    order = {s.name: position for position, s in enumerate(nightly_steps.contributions())}
    assert order["loyalty.earn"] < order["loyalty.points_expiry"] < order["loyalty.levels"] < order["loyalty.care"]
    # the dependencies that put them there (they replace the order numbers 25, 30, 35 and 70)
    after = {s.name: s.after for s in nightly_steps.contributions()}
    assert after["loyalty.points_expiry"] == ("loyalty.earn",) and after["loyalty.levels"] == ("loyalty.points_expiry",)
    assert after["loyalty.care"] == ("loyalty.levels",)


def test_orders_of_a_programme_that_is_paused_earn_nothing(dealer):
    Programme.objects.update(is_active=False)
    member = member_for(dealer)
    OrderFactory(customer=member.customer, kind="maintenance", ordered_on=date(2025, 5, 1))
    assert batch.orders_earn(run_date=date(2025, 5, 2)) == {
        "enrolled": 0,
        "earned": 0,
        "reversed": 0,
        "referrals": 0,
    }
    assert Order.objects.filter(customer=member.customer).exists()
