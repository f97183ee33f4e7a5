"""Test set-up: the real PostgreSQL with both roles, and one persona set for every suite.

The test database is created and migrated as the owning role (DATABASE_OWNER_URL), exactly as
in production; the tests themselves then connect as the application role, so row-level
security is in force for everything they do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import dj_database_url
import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from crm.tenancy.context import tenant_context
from crm.tenancy.models import ApiCredential, Membership, Tenant
from crm.tenancy.roles import Role
from tests.fixtures_shared import SharedData, is_transactional, uses_db


def _owner_settings() -> dict[str, Any]:
    url = os.environ.get("DATABASE_OWNER_URL")
    if not url:
        pytest.exit("DATABASE_OWNER_URL is not set: tests need the owning role to migrate (use `make test`).", 2)
    return dj_database_url.parse(url)


@pytest.fixture(scope="session")
def django_db_setup(
    request, django_test_environment, django_db_blocker, django_db_keepdb, django_db_modify_db_settings
):  # type: ignore[no-untyped-def]
    from django.test.utils import setup_databases, teardown_databases

    default = connections["default"]
    app = {"USER": default.settings_dict["USER"], "PASSWORD": default.settings_dict["PASSWORD"]}
    owner = _owner_settings()
    as_owner = {"USER": owner["USER"], "PASSWORD": owner.get("PASSWORD", "")}

    def switch(credentials: dict[str, Any]) -> None:
        default.close()
        default.settings_dict.update(credentials)

    with django_db_blocker.unblock():
        switch(as_owner)
        try:
            db_cfg = setup_databases(verbosity=0, interactive=False, keepdb=django_db_keepdb, aliases={"default"})
            with default.cursor() as cursor:
                # Transactional tests empty the tables with TRUNCATE between tests; in this
                # throwaway database only, the application role may do that.
                cursor.execute(f'GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO "{app["USER"]}"')
        finally:
            switch(app)
    yield
    with django_db_blocker.unblock():
        SHARED.release()
        switch(as_owner)
        try:
            teardown_databases(db_cfg, verbosity=0, keepdb=django_db_keepdb)
        finally:
            switch(app)


@pytest.fixture
def owner_cursor(django_db_blocker):  # type: ignore[no-untyped-def]
    """A cursor on the test database as the owning role (schema checks, out-of-band reads)."""
    import psycopg

    owner = _owner_settings()
    name = connections["default"].settings_dict["NAME"]
    conn = psycopg.connect(
        host=owner["HOST"],
        port=owner["PORT"] or 5432,
        user=owner["USER"],
        password=owner.get("PASSWORD") or None,
        dbname=name,
        autocommit=True,
    )
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


@dataclass
class Dealership:
    tenant: Tenant
    admin: Membership
    manager: Membership
    consultant: Membership
    consultant2: Membership
    advisor: Membership
    agent: Membership
    auditor: Membership
    objects: dict[str, Any] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)

    def ids(self) -> set[int]:
        return {obj.pk for obj in self.objects.values()}


def _member(tenant_code: str, local: str, role: str, name: str) -> Membership:
    from tests.factories import MembershipFactory

    return MembershipFactory(
        user__email=f"{local}@{tenant_code}.test", user__first_name=name[1:], user__last_name=name[:1], role=role
    )


def build_dealership(code: str, name: str, *, variant: int) -> Dealership:
    """A dealership with one member per role and data owned by `consultant`."""
    from crm.tenancy.services import credential_create
    from customers.models import ImportJob, MileageReading, Order, Touchpoint, VehicleOwnership
    from tests.factories import CustomerFactory, OrderFactory, VehicleFactory

    mobiles = ["+8613900001111", "+8613812345678"]
    masked = ["139****1111", "138****5678"]
    vins = ["LVGBE40K0PG000002", "LFV2A21K3R3000001"]  # valid check digits
    plates = ["粤A·B5678", "粤B·A1234"]
    tenant = Tenant.objects.create(name=name, code=code)
    with tenant_context(tenant.pk):
        dealer = Dealership(
            tenant=tenant,
            admin=_member(code, "admin", Role.TENANT_ADMIN, "周管理"),
            manager=_member(code, "manager", Role.MANAGER, "林经理"),
            consultant=_member(code, "alice", Role.SALES_CONSULTANT, "王爱丽"),
            consultant2=_member(code, "bob", Role.SALES_CONSULTANT, "李博"),
            advisor=_member(code, "advisor", Role.SERVICE_ADVISOR, "赵服务"),
            agent=_member(code, "charlie", Role.CR_AGENT, "陈客服"),
            auditor=_member(code, "auditor", Role.AUDITOR, "郑审计"),
        )
        marker = code.upper().replace("-", "")
        customer = CustomerFactory(
            name=f"机密客户{marker}",
            mobile=mobiles[variant],
            id_number="11010519491231002X",
            owner=dealer.consultant,
            external_id=f"EXT-{marker}",
        )
        vehicle = VehicleFactory(customer=customer, vin=vins[variant], plate=plates[variant])
        order = OrderFactory(
            customer=customer,
            vehicle=vehicle,
            kind=Order.Kind.VEHICLE_SALE,
            ordered_on=date(2025, 5, 1),
            amount=Decimal("219900.00"),
            staff=dealer.consultant,
            external_id=f"ORD-{marker}",
        )
        touchpoint = Touchpoint.objects.create(
            customer=customer, channel="call", outcome="reached", staff=dealer.consultant, notes=f"机密备注{marker}"
        )
        reading = MileageReading.objects.create(vehicle=vehicle, read_on=date(2025, 6, 1), km=12345, source="manual")
        ownership = VehicleOwnership.objects.create(vehicle=vehicle, customer=customer, started_on=date(2025, 5, 1))
        import_job = ImportJob.objects.create(
            kind=ImportJob.Kind.CUSTOMERS,
            status=ImportJob.Status.READY,
            file=f"imports/isolation-{marker}.csv",
            original_name=f"机密导入{marker}.csv",
            created_by=dealer.manager.user,
            total_rows=1,
            errors=[{"row": 2, "column": "手机", "message": f"机密错误{marker}"}],
            mapping={
                "header_row": 1,
                "headers": ["客户编号"],
                "fields": {"external_id": 0},
                "sample": [[f"机密样本{marker}"]],
            },
        )
        credential, raw_key = credential_create(
            actor=dealer.admin,
            kind=ApiCredential.Kind.INTEGRATION,
            name=f"DMS同步{marker}",
            scopes=["customers:read", "customers:write", "admin:read", "admin:write"],
        )
        # Segmentation: settings with a marked strategy, then a real run (values, history, run record).
        from segmentation.engine import segmentation_recompute
        from segmentation.models import CustomerValue, SegmentationSettings, ValueHistory

        seg_settings = SegmentationSettings.objects.create(strategy_key=f"机密策略{marker}")
        seg_run = segmentation_recompute(run_date=date(2025, 6, 1)).run
        # Complaints: a ticket with its event, watcher, attachment, a policy, settings, a notification.
        from django.core.files.base import ContentFile

        from complaints import services as complaint_services
        from complaints.models import ComplaintSettings, SlaPolicy, TicketAttachment, TicketEvent, TicketWatcher
        from crm.core.models import Notification

        category = complaint_services.categories_ensure()[0]
        ticket = complaint_services.ticket_open(
            actor=dealer.agent,
            data=complaint_services.TicketInput(
                contact_name=f"投诉人{marker}",
                contact_mobile=customer.mobile,
                channel="phone",
                category=category,
                subject=f"机密投诉{marker}",
                description=f"机密投诉内容{marker}",
                customer=customer,
            ),
        )
        complaint_services.ticket_watch(actor=dealer.consultant, ticket=ticket)
        attachment = TicketAttachment.objects.create(
            ticket=ticket,
            file=ContentFile(b"%PDF-1.4 secret", name=f"isolation-{marker}.pdf"),
            original_name=f"机密附件{marker}.pdf",
            content_type="application/pdf",
            size=15,
        )
        policy = SlaPolicy.objects.create(
            severity="high", category=category, first_response_minutes=30, resolution_minutes=600
        )
        complaint_settings = ComplaintSettings.objects.get_or_create()[0]
        notification = Notification.objects.create(
            recipient=dealer.manager, kind="test", title=f"机密通知{marker}", url=f"/complaints/{ticket.pk}/"
        )
        # Surveys: the ready-made templates, an answered invitation, an outbox message.
        from crm.messaging.models import OutboxMessage
        from surveys import services as survey_services
        from surveys.models import Answer, Response, SurveySettings

        survey_settings = SurveySettings.objects.create(channels=["sms"], min_days_between=0)
        survey_template = {t.code: t for t in survey_services.templates_ensure()}["service"]
        invitation = survey_services.invitation_create(actor=dealer.agent, customer=customer, template=survey_template)
        survey_services.answers_submit(
            invitation=invitation,
            raw={
                q.key: (
                    q.choices[0:1]
                    if q.kind == "multi"
                    else q.choices[0]
                    if q.choices
                    else {"rating": 5, "nps": 9}[q.kind]
                    if q.kind in ("rating", "nps")
                    else f"机密答卷{marker}"
                )
                for q in invitation.version.questions.all()
            },
        )
        response = Response.objects.get(invitation=invitation)
        outbox_message = OutboxMessage.objects.filter(purpose=f"survey:{invitation.pk}").first()
        # Loyalty: the programme (ready-made levels, earning rules, greetings), a reward, the customer
        # as a member with points, a redemption, a level change and a referral.
        from loyalty import services as loyalty_services
        from loyalty.models import CareTemplate, EarningRule, LedgerEntry, Level, LevelChange, Referral, Reward

        loyalty_programme = loyalty_services.programme()
        reward = Reward.objects.create(name="精洗一次", points_cost=100, stock=10)
        member = loyalty_services.member_enrol(actor=dealer.agent, customer=customer)
        loyalty_services.points_adjust(actor=dealer.manager, member=member, points=500, note=f"机密积分{marker}")
        redemption = loyalty_services.points_redeem(
            actor=dealer.agent,
            member=member,
            reward=reward,
            idempotency_key=f"isolation-{marker}",
            note=f"机密兑换{marker}",
        ).redemption
        loyalty_services.member_set_level(
            actor=dealer.manager,
            member=member,
            level=Level.objects.get(code="gold"),
            keep=False,
            note=f"机密升级{marker}",
        )
        # One customer per dealership keeps the other suites' counts, so this referral names the
        # customer twice (the service would refuse that): it only gives the isolation suite a row.
        referral = Referral.objects.create(referrer=member, referee=customer, note=f"机密推荐{marker}")
        # Follow-ups: the rules, one done (with its attempt, recorded on the existing contact so the
        # other suites' counts stay) and one open in the consultant's queue.
        from followups import services as followup_services
        from followups.models import Attempt, Followup

        followup_settings = followup_services.followup_settings()
        followup_done = Followup.objects.create(
            customer=customer,
            vehicle=vehicle,
            reason="post_delivery",
            source_key=f"manual:isolation-{marker}-done",
            note=f"机密回访{marker}",
            due_from=date(2025, 5, 2),
            due_until=date(2025, 5, 6),
            scheduled_on=date(2025, 5, 2),
            assignee=dealer.consultant,
            status="done",
            attempts=1,
            disposition="satisfied",
            outcome_notes=f"机密回访结果{marker}",
        )
        followup_attempt = Attempt.objects.create(
            followup=followup_done,
            disposition="satisfied",
            notes=f"机密回访结果{marker}",
            staff=dealer.consultant,
            touchpoint=touchpoint,
            idempotency_key=f"isolation-{marker}",
        )
        followup_open = Followup.objects.create(
            customer=customer,
            reason="manual",
            source_key=f"manual:isolation-{marker}-open",
            note=f"机密待访{marker}",
            due_from=date(2025, 6, 1),
            due_until=date(2099, 12, 31),
            scheduled_on=date(2025, 6, 1),
            assignee=dealer.consultant,
        )
        # sales: Alice's lead on the same person (no touchpoint: its history stays as it was), with a
        # quote and a booked test drive, and a walk-in of her own
        from sales import services as sales_services
        from sales.models import LeadEvent, SalesSettings

        lead = sales_services.lead_capture(
            actor=dealer.consultant,
            data={
                "name": f"机密线索{marker}",
                "mobile": customer.mobile,
                "source": "online",
                "series": "Model Y",
                "source_system": "portal",
                "external_id": f"LEAD-{marker}",
                "notes": f"机密线索备注{marker}",
            },
        ).lead
        demo_car = sales_services.demo_vehicle_save(
            actor=dealer.manager, data={"brand": "Tesla", "series": "Model Y", "plate": "试驾车"}
        )
        drive_start = timezone.now() + timedelta(days=1)
        drive = sales_services.test_drive_book(
            actor=dealer.consultant,
            lead=lead,
            vehicle=demo_car,
            starts_at=drive_start,
            ends_at=drive_start + timedelta(minutes=30),
        )
        quote = sales_services.quote_create(
            actor=dealer.consultant,
            lead=lead,
            data={"brand": "Tesla", "series": "Model Y", "list_price": "263900", "note": f"机密报价{marker}"},
        )
        # anonymous traffic: a walk-in of the lead would add a touchpoint to the shared customer
        visit = sales_services.showroom_visit_log(
            actor=dealer.consultant, data={"arrived_at": timezone.now(), "note": f"机密客流{marker}"}
        )
        sales_services.duty_set(actor=dealer.manager, member=dealer.consultant, on_duty=True)
        sales_services.defeat_reasons_ensure()
        sales_services.sales_settings()
        from dashboards.aggregates import dashboard_figures_refresh
        from dashboards.models import CustomerStateDay, RevenueDay, RevenueDayTotal

        dashboard_figures_refresh(run_date=timezone.localdate())
        dealer.objects = {
            "customer": customer,
            "dashboard_state": CustomerStateDay.objects.order_by("pk").first(),
            "dashboard_revenue": RevenueDay.objects.order_by("pk").first(),
            "dashboard_revenue_total": RevenueDayTotal.objects.order_by("pk").first(),
            "followup_settings": followup_settings,
            "followup_done": followup_done,
            "followup_attempt": followup_attempt,
            "followup_open": followup_open,
            "vehicle": vehicle,
            "order": order,
            "credential": credential,
            "credential_membership": credential.membership,
            "touchpoint": touchpoint,
            "mileage": reading,
            "ownership": ownership,
            "import_job": import_job,
            "survey_settings": survey_settings,
            "survey_template": survey_template,
            "survey_version": survey_template.current_version,
            "survey_question": survey_template.current_version.questions.first(),
            "survey_invitation": invitation,
            "survey_response": response,
            "survey_answer": Answer.objects.filter(response=response).first(),
            "outbox_message": outbox_message,
            "ticket": ticket,
            "ticket_event": TicketEvent.objects.filter(ticket=ticket).first(),
            "ticket_watcher": TicketWatcher.objects.get(ticket=ticket),
            "ticket_attachment": attachment,
            "complaint_category": category,
            "sla_policy": policy,
            "complaint_settings": complaint_settings,
            "notification": notification,
            "segmentation_settings": seg_settings,
            "segmentation_run": seg_run,
            "customer_value": CustomerValue.objects.get(customer=customer),
            "value_history": ValueHistory.objects.get(customer=customer),
            "loyalty_programme": loyalty_programme,
            "loyalty_level": Level.objects.get(code="gold"),
            "loyalty_rule": EarningRule.objects.order_by("pk").first(),
            "loyalty_care": CareTemplate.objects.order_by("pk").first(),
            "loyalty_reward": reward,
            "loyalty_member": member,
            "loyalty_entry": LedgerEntry.objects.filter(member=member).order_by("pk").first(),
            "loyalty_redemption": redemption,
            "loyalty_level_change": LevelChange.objects.get(member=member),
            "loyalty_referral": referral,
            "lead": lead,
            "lead_event": LeadEvent.objects.filter(lead=lead).order_by("pk").first(),
            "demo_vehicle": demo_car,
            "test_drive": drive,
            "quote": quote,
            "showroom_visit": visit,
            "sales_settings": SalesSettings.objects.get(),
            "manager": dealer.manager,
            "consultant": dealer.consultant,
        }
        dealer.secrets = [
            customer.name,
            customer.mobile,
            customer.mobile[3:],
            masked[variant],
            customer.external_id,
            vehicle.vin,
            vehicle.plate,
            order.external_id,
            touchpoint.notes,
            import_job.original_name,
            f"机密错误{marker}",
            f"机密样本{marker}",
            credential.name,
            f"机密策略{marker}",
            f"机密投诉{marker}",
            f"机密投诉内容{marker}",
            f"投诉人{marker}",
            f"机密附件{marker}",
            f"机密通知{marker}",
            f"机密答卷{marker}",
            f"机密积分{marker}",
            f"机密兑换{marker}",
            f"机密升级{marker}",
            f"机密推荐{marker}",
            f"机密回访{marker}",
            f"机密回访结果{marker}",
            f"机密待访{marker}",
            f"机密线索{marker}",
            f"机密线索备注{marker}",
            f"机密报价{marker}",
            f"机密客流{marker}",
            dealer.manager.user.email,
            dealer.consultant.user.email,
        ]
    dealer.raw_key = raw_key  # type: ignore[attr-defined]
    return dealer


def bump_sequences(owner_settings: dict[str, Any], name: str) -> None:
    """Move every id sequence far ahead, so rows created next share no id with earlier rows."""
    import psycopg

    with psycopg.connect(
        host=owner_settings["HOST"],
        port=owner_settings["PORT"] or 5432,
        user=owner_settings["USER"],
        password=owner_settings.get("PASSWORD") or None,
        dbname=name,
        autocommit=True,
    ) as conn:
        conn.execute(
            "SELECT setval(c.oid, coalesce((SELECT last_value FROM pg_sequences s WHERE s.schemaname = 'public' "
            "AND s.sequencename = c.relname), 0) + 900000, true) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' AND n.nspname = 'public'"
        )


def _build_dealer_b() -> Dealership:
    return build_dealership("dealer-b", "乙店 Dealer B", variant=0)


def _build_dealer_a() -> Dealership:
    # Built after B, between two jumps in every sequence: no id of A's is also an id of any row
    # B had before or creates later (the isolation suite's attackers create rows of their own).
    name = connections["default"].settings_dict["NAME"]
    bump_sequences(_owner_settings(), name)
    dealer = build_dealership("dealer-a", "甲店 Dealer A", variant=1)
    bump_sequences(_owner_settings(), name)
    return dealer


# B, then A on top of it: built once per test process and shared (tests/fixtures_shared.py).
SHARED = SharedData([("dealer_b", _build_dealer_b), ("dealer_a", _build_dealer_a)])


@pytest.fixture
def _shared_data(request, django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Before the test's own transaction starts: the shared layers this test asked for, no more."""
    depth = SHARED.wanted(request.fixturenames, is_transactional(request.node))
    with django_db_blocker.unblock():
        SHARED.prepare(request.node.nodeid, depth)


@pytest.fixture
def _django_db_helper(_shared_data, _django_db_helper):  # type: ignore[no-untyped-def]
    # pytest-django's own helper (every kind of database access goes through it: the db and
    # transactional_db fixtures, the django_db marker, live_server), preceded by _shared_data.
    yield


@pytest.fixture
def dealer_b(db, request) -> Dealership:  # type: ignore[no-untyped-def]
    shared = SHARED.value(request, "dealer_b")
    return shared if shared is not None else _build_dealer_b()


@pytest.fixture
def dealer_a(db, dealer_b, request) -> Dealership:  # type: ignore[no-untyped-def]
    shared = SHARED.value(request, "dealer_a")
    return shared if shared is not None else _build_dealer_a()


# Modules whose tests take a minute each: started first, so that with several workers (-n 2)
# they do not end up last on one worker while the other has nothing left to do.
LONG_RUNNING = ("tests/test_isolation.py", "tests/test_bad_input.py")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """After pytest-django's own ordering (database tests, then transactional ones, then the rest),
    the database tests are grouped by the shared data they ask for: A and B, B only, none. Each
    group then builds (or rolls back) its layers once; any order still works (see SharedData)."""

    def order(item: pytest.Item) -> tuple[int, int]:
        if is_transactional(item):
            return (1, 0)
        if not uses_db(item):
            return (2, 0)
        depth = SHARED.wanted(item.fixturenames, False)  # type: ignore[attr-defined]
        long_running = item.nodeid.split("::")[0] in LONG_RUNNING
        return (0, (0 if long_running else 1) if depth == 2 else 4 - depth)

    items.sort(key=order)


@pytest.fixture
def web(client):  # type: ignore[no-untyped-def]
    """The Django test client, signed in as a membership (its dealership active)."""

    def sign_in(membership: Membership) -> Any:
        from crm.tenancy.middleware import SESSION_TENANT_KEY

        client.force_login(membership.user)
        session = client.session
        session[SESSION_TENANT_KEY] = membership.tenant_id
        session.save()
        return client

    return sign_in


@pytest.fixture
def api() -> Iterator[Any]:
    """DRF's test client: `api(membership)` for a session, `api(key=raw)` for a Bearer key."""
    clients: list[APIClient] = []

    def make(membership: Membership | None = None, *, key: str | None = None) -> APIClient:
        from crm.tenancy.middleware import SESSION_TENANT_KEY

        client = APIClient()
        if membership is not None:
            client.force_login(membership.user)
            session = client.session
            session[SESSION_TENANT_KEY] = membership.tenant_id
            session.save()
        if key is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        clients.append(client)
        return client

    yield make


@pytest.fixture
def in_tenant():  # type: ignore[no-untyped-def]
    """`with in_tenant(dealer):` — run ORM code inside that dealership."""

    def enter(dealer: Dealership | Tenant) -> Any:
        tenant = dealer.tenant if isinstance(dealer, Dealership) else dealer
        return tenant_context(tenant.pk)

    return enter


@pytest.fixture(autouse=True)
def _no_tenant_leaks_between_tests() -> Iterator[None]:
    from crm.tenancy.context import current_tenant_id

    assert current_tenant_id() is None, "a tenant was left active before this test"
    yield
    assert current_tenant_id() is None, "the test left a tenant active"


@pytest.fixture(autouse=True)
def _locmem_cache_clear() -> Iterator[None]:
    from django.core.cache import cache

    cache.clear()
    yield


__all__ = ["Dealership", "build_dealership", "settings"]
