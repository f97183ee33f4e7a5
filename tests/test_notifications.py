"""Notifications: automatic events arrive as one daily digest per kind, urgent ones come first and
cannot be turned off, each member chooses the other kinds, and the inbox has mark-all-read and a
kind filter, on the page and in the API."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from crm.core.models import DigestItem, Notification, NotificationOptOut
from crm.core.notifications import (
    DIGEST_LOCAL_HOUR,
    digest_cutoff,
    notification_kinds,
    notifications_digest,
    notify,
)
from crm.core.tasks import notifications_digest_fan_out_task
from loyalty import batch, services
from loyalty.models import Programme
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def local(dealer: Any, *args: int) -> datetime:
    return timezone.make_aware(datetime(*args), dealer.tenant.zone)  # type: ignore[misc]


def _step(dealer: Any, recipient: Any, n: int, **extra: Any) -> None:
    notify(
        recipients=[recipient], kind="ticket_step", title=f"Complaint T{n}: now “Listen”", url="/complaints/", **extra
    )


def _breach(recipient: Any, n: int) -> None:
    notify(recipients=[recipient], kind="sla_breach", title=f"Complaint T{n}: overdue", url="/complaints/", key=f"b{n}")


@pytest.fixture
def quiet_a(dealer_a, in_tenant):  # type: ignore[no-untyped-def]
    """Dealership A with empty inboxes (the shared data has a notification for its manager)."""
    with in_tenant(dealer_a):
        Notification.objects.all().delete()
    return dealer_a


# --- The daily digest -------------------------------------------------------------------------------


def test_fifty_automatic_level_changes_for_one_owner_make_one_digest(dealer_b, in_tenant):
    with in_tenant(dealer_b):
        Programme.objects.filter().update(starts_on=date(2024, 1, 1), expiry_months=12)
        for _n in range(50):
            member = services.member_enrol(actor=dealer_b.agent, customer=CustomerFactory(owner=dealer_b.consultant2))
            OrderFactory(
                customer=member.customer, kind="vehicle_sale", ordered_on=date(2025, 2, 1), amount=Decimal("250000")
            )
        batch.orders_earn(run_date=date(2025, 2, 2))
        assert batch.levels_recompute(run_date=date(2025, 2, 2)) >= 50
        # nothing arrives one by one: 50 events wait for the morning's digest
        assert not Notification.objects.filter(recipient=dealer_b.consultant2, kind="loyalty_level").exists()
        assert DigestItem.objects.filter(recipient=dealer_b.consultant2, digest__isnull=True).count() == 50

        assert notifications_digest(now=timezone.now() + timedelta(days=1)) >= 1
        digest = Notification.objects.get(recipient=dealer_b.consultant2, kind="loyalty_level")
        assert digest.item_count == 50 and digest.items.count() == 50 and digest.read_at is None
        assert not digest.urgent and "50" in digest.title
        assert digest.body.count("\n") == 20  # 20 titles and "… and 30 more"
        # repeating the run changes nothing
        assert notifications_digest(now=timezone.now() + timedelta(days=1)) == 0
        assert Notification.objects.filter(recipient=dealer_b.consultant2, kind="loyalty_level").count() == 1


def test_the_digest_is_made_after_seven_local_and_holds_what_came_before(dealer_b, in_tenant):
    assert DIGEST_LOCAL_HOUR == 7
    with in_tenant(dealer_b):
        notify(recipients=[dealer_b.consultant], kind="loyalty_level", title="early", key="early")
        notify(recipients=[dealer_b.consultant], kind="loyalty_level", title="on the hour", key="hour")
        DigestItem.objects.filter(key="early").update(created_at=local(dealer_b, 2026, 3, 10, 6, 59, 59))
        DigestItem.objects.filter(key="hour").update(created_at=local(dealer_b, 2026, 3, 10, 7, 0, 0))
        # 06:59 on the 10th: the 9th's digest (events before 07:00 on the 9th), so nothing yet
        assert digest_cutoff(tenant=dealer_b.tenant, now=local(dealer_b, 2026, 3, 10, 6, 59))[0] == date(2026, 3, 9)
        assert notifications_digest(now=local(dealer_b, 2026, 3, 10, 6, 59)) == 0
        # 07:00 on the 10th: the event of 06:59:59 only; 07:00:00 waits for the 11th
        assert notifications_digest(now=local(dealer_b, 2026, 3, 10, 7, 0)) == 1
        first = Notification.objects.get(kind="loyalty_level", recipient=dealer_b.consultant)
        assert (first.digest_date, first.item_count, first.key) == (
            date(2026, 3, 10),
            1,
            "digest:loyalty_level:2026-03-10",
        )
        assert notifications_digest(now=local(dealer_b, 2026, 3, 11, 8, 0)) == 1
        second = Notification.objects.get(kind="loyalty_level", digest_date=date(2026, 3, 11))
        assert [i.title for i in second.items.all()] == ["on the hour"]


def test_a_late_event_joins_the_days_digest_and_shows_it_again(dealer_b, in_tenant):
    with in_tenant(dealer_b):
        notify(recipients=[dealer_b.consultant], kind="loyalty_level", title="one", key="one")
        DigestItem.objects.update(created_at=local(dealer_b, 2026, 3, 10, 3, 0))
        notifications_digest(now=local(dealer_b, 2026, 3, 10, 7, 5))
        Notification.objects.filter(kind="loyalty_level").update(read_at=timezone.now())
        notify(recipients=[dealer_b.consultant], kind="loyalty_level", title="two", key="two")
        DigestItem.objects.filter(key="two").update(created_at=local(dealer_b, 2026, 3, 10, 4, 0))
        assert notifications_digest(now=local(dealer_b, 2026, 3, 10, 7, 20)) == 1
        digest = Notification.objects.get(kind="loyalty_level")
        assert digest.item_count == 2 and digest.read_at is None


def test_the_beat_task_makes_every_dealerships_digest(dealer_a, dealer_b, in_tenant):
    for dealer in (dealer_a, dealer_b):
        with in_tenant(dealer):
            notify(recipients=[dealer.consultant], kind="loyalty_level", title="moved up", key="x")
            DigestItem.objects.update(created_at=timezone.now() - timedelta(days=2))
    assert sorted(notifications_digest_fan_out_task.delay().get()) == sorted([dealer_a.tenant.pk, dealer_b.tenant.pk])
    for dealer in (dealer_a, dealer_b):
        with in_tenant(dealer):
            assert Notification.objects.filter(kind="loyalty_level", recipient=dealer.consultant).count() == 1


def test_without_a_broker_the_command_makes_the_digests(dealer_b, in_tenant):
    from io import StringIO

    from django.core.management import CommandError, call_command

    with in_tenant(dealer_b):
        notify(recipients=[dealer_b.consultant], kind="loyalty_level", title="moved up", key="x")
        DigestItem.objects.update(created_at=timezone.now() - timedelta(days=2))
    out = StringIO()
    call_command("notifications_digest", "--tenant", dealer_b.tenant.code, stdout=out)
    assert "digests=1" in out.getvalue()
    with in_tenant(dealer_b):
        assert Notification.objects.filter(kind="loyalty_level", recipient=dealer_b.consultant).count() == 1
    with pytest.raises(CommandError):
        call_command("notifications_digest", "--tenant", "no-such-dealer")


def test_every_kind_sent_is_declared_and_urgent_ones_are_never_digested():
    kinds = {k.name: k for k in notification_kinds.contributions()}
    assert {n for n, k in kinds.items() if k.urgent} == {"sla_warning", "sla_breach", "survey_low_score"}
    assert {n for n, k in kinds.items() if k.digest} == {"loyalty_level"}
    assert {"ticket_assigned", "ticket_unassigned", "ticket_step"} <= set(kinds)


def test_an_undeclared_kind_is_refused(dealer_b, in_tenant):
    from django.core.exceptions import ImproperlyConfigured

    with in_tenant(dealer_b), pytest.raises(ImproperlyConfigured):
        notify(recipients=[dealer_b.consultant], kind="no_such_kind", title="?")


# --- Urgent first, mark read, filter by kind: the page --------------------------------------------


def test_unread_urgent_notifications_come_first_on_the_page_and_in_the_api(quiet_a, web, api, in_tenant):
    with in_tenant(quiet_a):
        _breach(quiet_a.manager, 1)
        for n in range(3):
            _step(quiet_a, quiet_a.manager, n)
        old_breach = Notification.objects.get(kind="sla_breach", recipient=quiet_a.manager)
        Notification.objects.filter(pk=old_breach.pk).update(created_at=timezone.now() - timedelta(days=3))
    page = web(quiet_a.manager).get("/notifications/")
    kinds = [n.kind for n in page.context["page"].items]
    assert kinds == ["sla_breach", "ticket_step", "ticket_step", "ticket_step"]
    assert 'data-testid="urgent"' in page.content.decode()
    listed = api(quiet_a.manager).get("/api/v1/notifications/").json()["results"]
    assert [n["kind"] for n in listed] == kinds and listed[0]["urgent"] is True
    # read, an urgent one takes its place by time again
    with in_tenant(quiet_a):
        Notification.objects.filter(pk=old_breach.pk).update(read_at=timezone.now())
    kinds = [n.kind for n in web(quiet_a.manager).get("/notifications/").context["page"].items]
    assert kinds == ["ticket_step", "ticket_step", "ticket_step", "sla_breach"]


def test_opening_the_page_marks_nothing_and_mark_all_read_marks_everything(quiet_a, web, in_tenant):
    with in_tenant(quiet_a):
        _breach(quiet_a.manager, 1)
        for n in range(3):
            _step(quiet_a, quiet_a.manager, n)
        _step(quiet_a, quiet_a.agent, 9)
    client = web(quiet_a.manager)
    client.get("/notifications/")
    with in_tenant(quiet_a):
        assert Notification.objects.filter(recipient=quiet_a.manager, read_at__isnull=True).count() == 4
    # of one kind only
    assert client.post("/notifications/read/", {"kind": "ticket_step"}).status_code == 302
    with in_tenant(quiet_a):
        unread = Notification.objects.filter(recipient=quiet_a.manager, read_at__isnull=True)
        assert [n.kind for n in unread] == ["sla_breach"]
    assert client.post("/notifications/read/", {"kind": ""}).status_code == 302
    with in_tenant(quiet_a):
        assert not Notification.objects.filter(recipient=quiet_a.manager, read_at__isnull=True).exists()
        # a colleague's stay unread
        assert Notification.objects.filter(recipient=quiet_a.agent, read_at__isnull=True).count() == 1


def test_the_page_filters_by_kind_and_unread_and_refuses_an_unknown_kind(quiet_a, web, in_tenant):
    with in_tenant(quiet_a):
        _breach(quiet_a.manager, 1)
        _step(quiet_a, quiet_a.manager, 1)
        _step(quiet_a, quiet_a.manager, 2)
        Notification.objects.filter(kind="ticket_step", title__contains="T2").update(read_at=timezone.now())
    client = web(quiet_a.manager)
    steps = client.get("/notifications/?kind=ticket_step").context["page"].items
    assert [n.kind for n in steps] == ["ticket_step", "ticket_step"]
    unread_steps = client.get("/notifications/?kind=ticket_step&unread=on").context["page"].items
    assert [n.title for n in unread_steps] == ["Complaint T1: now “Listen”"]
    bad = client.get("/notifications/?kind=nonsense")
    assert bad.status_code == 200 and "kind" in bad.context["form"].errors and not bad.context["page"].items


def test_opening_one_marks_it_read_and_follows_only_its_own_link(quiet_a, web, in_tenant):
    with in_tenant(quiet_a):
        _step(quiet_a, quiet_a.manager, 1)
        mine = Notification.objects.get(recipient=quiet_a.manager)
        _step(quiet_a, quiet_a.agent, 2)
        theirs = Notification.objects.get(recipient=quiet_a.agent)
        evil = Notification.objects.create(recipient=quiet_a.manager, kind="ticket_step", title="x", url="//evil.test/")
    client = web(quiet_a.manager)
    opened = client.get(f"/notifications/{mine.pk}/open/")
    assert opened.status_code == 302 and opened["Location"] == "/complaints/"
    assert client.get(f"/notifications/{evil.pk}/open/")["Location"] == "/notifications/"
    assert client.get(f"/notifications/{theirs.pk}/open/").status_code == 404
    assert client.post(f"/notifications/{theirs.pk}/read/").status_code == 404
    with in_tenant(quiet_a):
        mine.refresh_from_db()
        theirs.refresh_from_db()
        assert mine.read_at is not None and theirs.read_at is None


def test_a_digest_lists_its_events_with_links_on_the_page(dealer_b, web, in_tenant):
    with in_tenant(dealer_b):
        for n in range(3):
            notify(recipients=[dealer_b.consultant], kind="loyalty_level", title=f"客户{n} moved up", url=f"/m/{n}/")
        DigestItem.objects.update(created_at=timezone.now() - timedelta(days=2))
        notifications_digest()
    html = web(dealer_b.consultant).get("/notifications/").content.decode()
    assert 'data-testid="digest-items"' in html and 'href="/m/2/"' in html and "客户0 moved up" in html


# --- The API -----------------------------------------------------------------------------------------


def test_the_api_filters_marks_read_and_refuses_bad_input(quiet_a, api, in_tenant):
    with in_tenant(quiet_a):
        _breach(quiet_a.manager, 1)
        _step(quiet_a, quiet_a.manager, 1)
        _step(quiet_a, quiet_a.agent, 2)
        theirs = Notification.objects.get(recipient=quiet_a.agent)
    client = api(quiet_a.manager)
    assert [n["kind"] for n in client.get("/api/v1/notifications/?kind=ticket_step").json()["results"]] == [
        "ticket_step"
    ]
    bad = client.get("/api/v1/notifications/?kind=nonsense")
    assert bad.status_code == 400 and "kind" in bad.json()["error"]["fields"]
    assert client.get(f"/api/v1/notifications/{theirs.pk}/").status_code == 404
    refused = client.post("/api/v1/notifications/read-all/", {"kind": "ticket_step", "extra": 1}, format="json")
    assert refused.status_code == 400 and "extra" in refused.json()["error"]["fields"]
    marked = client.post("/api/v1/notifications/read-all/", {"kind": "ticket_step"}, format="json")
    assert marked.json() == {"marked": 1}
    assert [n["kind"] for n in client.get("/api/v1/notifications/?unread=true").json()["results"]] == ["sla_breach"]
    urgent_id = client.get("/api/v1/notifications/?unread=true").json()["results"][0]["id"]
    assert client.post(f"/api/v1/notifications/{urgent_id}/read/").json()["unread"] is False
    assert client.post("/api/v1/notifications/read-all/", {}, format="json").json() == {"marked": 0}
    with in_tenant(quiet_a):
        theirs.refresh_from_db()
        assert theirs.read_at is None


def test_the_api_is_documented(api, dealer_a):
    schema = api(dealer_a.manager).get("/api/v1/schema/?format=json").json()
    listing = schema["paths"]["/api/v1/notifications/"]["get"]
    assert {"kind", "unread"} <= {p["name"] for p in listing["parameters"]}
    assert "post" in schema["paths"]["/api/v1/notifications/read-all/"]
    assert {"get", "put"} <= set(schema["paths"]["/api/v1/notifications/preferences/"])


# --- Preferences -------------------------------------------------------------------------------------


def test_a_kind_turned_off_is_not_sent_and_urgent_kinds_cannot_be_turned_off(quiet_a, api, in_tenant):
    client = api(quiet_a.consultant)
    saved = client.put(
        "/api/v1/notifications/preferences/", {"turned_off": ["ticket_step", "loyalty_level"]}, format="json"
    )
    assert saved.status_code == 200
    enabled = {p["kind"]: p["enabled"] for p in saved.json()}
    assert enabled["ticket_step"] is False and enabled["loyalty_level"] is False and enabled["sla_breach"] is True
    refused = client.put("/api/v1/notifications/preferences/", {"turned_off": ["sla_breach"]}, format="json")
    assert refused.status_code == 400 and "turned_off" in refused.json()["error"]["fields"]
    unknown = client.put("/api/v1/notifications/preferences/", {"turned_off": ["nonsense"]}, format="json")
    assert unknown.status_code == 400 and "turned_off" in unknown.json()["error"]["fields"]
    with in_tenant(quiet_a):
        assert set(NotificationOptOut.objects.filter(member=quiet_a.consultant).values_list("kind", flat=True)) == {
            "ticket_step",
            "loyalty_level",
        }
        _step(quiet_a, quiet_a.consultant, 1, email=True)
        notify(recipients=[quiet_a.consultant], kind="loyalty_level", title="moved up")
        _breach(quiet_a.consultant, 1)
        assert [n.kind for n in Notification.objects.filter(recipient=quiet_a.consultant)] == ["sla_breach"]
        assert not DigestItem.objects.filter(recipient=quiet_a.consultant).exists()
        _step(quiet_a, quiet_a.consultant2, 1)  # a colleague still gets it
        assert Notification.objects.filter(recipient=quiet_a.consultant2, kind="ticket_step").exists()


def test_the_preferences_page_saves_choices_and_keeps_urgent_kinds_on(dealer_a, web, in_tenant):
    client = web(dealer_a.consultant)
    page = client.get("/accounts/notifications/")
    form = page.context["form"]
    assert form.fields["sla_breach"].disabled and not form.fields["ticket_step"].disabled
    # every box unticked: the urgent ones stay on
    assert client.post("/accounts/notifications/", {}).status_code == 302
    with in_tenant(dealer_a):
        off = set(NotificationOptOut.objects.filter(member=dealer_a.consultant).values_list("kind", flat=True))
    assert "ticket_step" in off and "loyalty_level" in off
    assert not off & {"sla_warning", "sla_breach", "survey_low_score"}
    client.post("/accounts/notifications/", {"ticket_step": "on"})
    with in_tenant(dealer_a):
        assert not NotificationOptOut.objects.filter(member=dealer_a.consultant, kind="ticket_step").exists()
