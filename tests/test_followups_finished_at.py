"""A follow-up is finished when the call that finished it happened, not when someone typed it in:
a call logged late counts in the completion figures of its own day (the team page and the manager
dashboard), like its retries and call-backs already do."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone

from crm.core.period import Period
from crm.tenancy.context import tenant_context
from dashboards.selectors import DashboardFilters, followup_figures
from followups import services
from followups.models import Attempt, Disposition, Followup, FollowupSettings, Reason, Status
from followups.selectors import followup_team_figures
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dealer(dealer_b) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    with tenant_context(dealer_b.tenant.pk):
        Followup.objects.update(status=Status.CANCELLED)  # build_dealership's own, out of the way
        services.followup_settings()
        FollowupSettings.objects.update(max_attempts=2, retry_after_days=1)
        yield dealer_b


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.get_current_timezone())


def _call(dealer: Any, due_from: date) -> Followup:
    person = CustomerFactory(owner=dealer.consultant)
    return services.followup_create(actor=dealer.consultant, customer=person, reason=Reason.MANUAL, due_from=due_from)


def _finished_on(day: date) -> tuple[int, int]:
    """(done, unreachable) by the day of the attempt that finished each follow-up, from the attempts."""
    zone = timezone.get_current_timezone()
    done = unreachable = 0
    for followup in Followup.objects.filter(status__in=[Status.DONE, Status.UNREACHABLE]):
        last = Attempt.objects.filter(followup=followup).order_by("-occurred_at").first()
        if last is not None and timezone.localtime(last.occurred_at, zone).date() == day:
            done += followup.status == Status.DONE
            unreachable += followup.status == Status.UNREACHABLE
    return done, unreachable


def test_a_call_logged_late_is_finished_on_the_day_of_the_call(dealer):
    today = timezone.localdate()
    three_days_ago = today - timedelta(days=3)
    reached = _call(dealer, three_days_ago - timedelta(days=1))
    services.followup_log_outcome(
        actor=dealer.consultant,
        followup=reached,
        disposition=Disposition.SATISFIED,
        occurred_at=_at(three_days_ago, 11),
    )
    missed = _call(dealer, three_days_ago - timedelta(days=2))
    for day in (three_days_ago - timedelta(days=1), three_days_ago):
        services.followup_log_outcome(
            actor=dealer.consultant, followup=missed, disposition=Disposition.NO_ANSWER, occurred_at=_at(day, 15)
        )
    reached.refresh_from_db()
    missed.refresh_from_db()
    assert (reached.status, reached.completed_at) == (Status.DONE, _at(three_days_ago, 11))
    assert (missed.status, missed.completed_at) == (Status.UNREACHABLE, _at(three_days_ago, 15))

    expected = _finished_on(three_days_ago)
    assert expected == (1, 1) and _finished_on(today) == (0, 0)
    that_day, this_day = Period(three_days_ago, three_days_ago), Period(today, today)
    zone = timezone.get_current_timezone()
    for period, (done, unreachable) in ((that_day, expected), (this_day, (0, 0))):
        team = followup_team_figures(viewer=dealer.manager, period=period).totals
        assert (team.done, team.unreachable) == (done, unreachable)
        figures = followup_figures(period, zone, DashboardFilters())
        assert (figures["done"], figures["unreachable"]) == (done, unreachable)
