"""The nightly pipeline: steps, run records, failures, one run at a time, local-night scheduling."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from crm.core import nightly
from crm.core.models import NightlyRun
from crm.core.nightly import NightlyStep, nightly_run_tenant, tenants_due_tonight
from customers.models import Customer


@pytest.fixture
def steps():  # type: ignore[no-untyped-def]
    with nightly.nightly_steps.replaced():  # only the steps a test registers
        yield nightly.nightly_steps


def nightly_step(name: str, *, after: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    def register(fn):  # type: ignore[no-untyped-def]
        nightly.nightly_steps.register(NightlyStep(name=name, after=after, run=fn))
        return fn

    return register


def test_each_step_runs_for_its_tenant_and_is_recorded(dealer_a, dealer_b, steps, in_tenant):
    seen = []

    @nightly_step("test.count")
    def count(*, tenant_id: int, run_date: date, trigger: str) -> int:
        seen.append((tenant_id, run_date))
        return Customer.objects.count()

    runs = nightly_run_tenant(tenant_id=dealer_a.tenant.pk, trigger="command", run_date=date(2026, 11, 23))
    assert [(r.step, r.status, r.rows) for r in runs] == [("test.count", "succeeded", 1)]
    assert seen == [(dealer_a.tenant.pk, date(2026, 11, 23))]
    with in_tenant(dealer_a):
        run = NightlyRun.objects.get(step="test.count")
        assert run.finished_at and run.duration_ms is not None and run.run_date == date(2026, 11, 23)
    with in_tenant(dealer_b):
        assert not NightlyRun.objects.exists()


def test_a_failing_step_is_recorded_and_the_next_step_still_runs(dealer_a, steps):
    @nightly_step("test.boom")
    def boom(*, tenant_id: int, run_date: date, trigger: str) -> int:
        Customer.objects.update(name="half-written")
        raise RuntimeError("disk full")

    @nightly_step("test.after", after=("test.boom",))
    def after(*, tenant_id: int, run_date: date, trigger: str) -> int:
        return Customer.objects.filter(name="half-written").count()

    runs = nightly_run_tenant(tenant_id=dealer_a.tenant.pk, trigger="command")
    assert [(r.step, r.status) for r in runs] == [("test.boom", "failed"), ("test.after", "succeeded")]
    assert "disk full" in runs[0].error
    assert runs[1].rows == 0  # the failed step's writes were rolled back


def test_a_step_already_running_for_the_tenant_is_skipped(dealer_a, steps, owner_cursor):
    @nightly_step("test.slow")
    def slow(*, tenant_id: int, run_date: date, trigger: str) -> int:
        return 1

    owner_cursor.execute("SELECT pg_advisory_lock(hashtext('nightly:test.slow'), %s)", [dealer_a.tenant.pk])
    try:
        runs = nightly_run_tenant(tenant_id=dealer_a.tenant.pk, trigger="schedule")
    finally:
        owner_cursor.execute("SELECT pg_advisory_unlock(hashtext('nightly:test.slow'), %s)", [dealer_a.tenant.pk])
    assert runs[0].status == "skipped"


def test_runs_left_running_by_a_killed_worker_are_marked_abandoned(dealer_a, steps, in_tenant):
    with in_tenant(dealer_a):
        stale = NightlyRun.objects.create(step="test.x", run_date=date(2026, 11, 22), trigger="schedule")
        NightlyRun.objects.filter(pk=stale.pk).update(started_at=timezone.now() - timedelta(hours=7))
    nightly_run_tenant(tenant_id=dealer_a.tenant.pk, trigger="command")
    with in_tenant(dealer_a):
        stale.refresh_from_db()
        assert stale.status == "abandoned" and "Abandoned" in stale.error


def _worker_connection(tenant_id: int):  # type: ignore[no-untyped-def]
    """A second real connection as the application role: the 'worker' a test can kill."""
    import psycopg

    settings = connection.settings_dict
    conn = psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    )
    conn.execute("SELECT set_config('app.tenant_id', %s, false)", [str(tenant_id)])
    return conn


@pytest.mark.django_db(transaction=True)  # the worker's records and locks live in other connections
def test_a_killed_worker_s_run_is_abandoned_and_a_live_one_is_left_alone(dealer_a, in_tenant):
    """A worker holding the step's lock is alive however long it runs; once its connection dies
    (SIGKILL), its records are marked abandoned at the next start, which then runs normally."""
    tenant = dealer_a.tenant.pk
    long_ago = timezone.now() - timedelta(minutes=30)
    with in_tenant(dealer_a):
        pipeline = NightlyRun.objects.create(step="pipeline", run_date=date(2026, 11, 22), trigger="schedule")
        step = NightlyRun.objects.create(step="test.long", run_date=date(2026, 11, 22), trigger="schedule")
        NightlyRun.objects.filter(pk__in=[pipeline.pk, step.pk]).update(started_at=long_ago)
    worker = _worker_connection(tenant)
    worker.execute("SELECT pg_advisory_xact_lock(hashtext('nightly:test.long'), %s)", [tenant])  # inside its step

    with nightly.nightly_steps.replaced(), in_tenant(dealer_a):
        assert nightly.nightly_runs_abandon() == 0  # the lock is held: still working
        assert set(NightlyRun.objects.values_list("status", flat=True)) == {"running"}

    worker.close()  # the worker process dies: PostgreSQL ends its transaction and frees the lock

    with nightly.nightly_steps.replaced(nightly.NightlyStep(name="test.next", run=lambda **kwargs: 3)):
        runs = nightly_run_tenant(tenant_id=tenant, trigger="command", run_date=date(2026, 11, 23))
    assert [(r.step, r.status, r.rows) for r in runs] == [("test.next", "succeeded", 3)]
    with in_tenant(dealer_a):
        statuses = dict(NightlyRun.objects.filter(run_date=date(2026, 11, 22)).values_list("step", "status"))
        assert statuses == {"pipeline": "abandoned", "test.long": "abandoned"}
        assert NightlyRun.objects.get(step="pipeline", run_date=date(2026, 11, 23)).status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_recompute_now_is_not_refused_because_of_a_killed_run(dealer_a, in_tenant, web):
    with in_tenant(dealer_a):
        dead = NightlyRun.objects.create(step="pipeline", run_date=date(2026, 11, 22), trigger="manual")
        NightlyRun.objects.filter(pk=dead.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    client = web(dealer_a.manager)
    with nightly.nightly_steps.replaced():
        response = client.post("/settings/nightly/", follow=True)
    assert "A run is in progress already" not in response.content.decode()
    page = client.get("/settings/nightly/").content.decode()
    assert "已中断（执行进程在完成前停止）" in page  # "Abandoned (the worker stopped before it finished)"
    with in_tenant(dealer_a):
        assert NightlyRun.objects.get(pk=dead.pk).status == "abandoned"


def test_the_fan_out_picks_dealerships_at_their_local_night(dealer_a, dealer_b, monkeypatch, steps, in_tenant):
    dealer_b.tenant.time_zone = "Asia/Urumqi"  # two hours behind Shanghai
    dealer_b.tenant.save()
    at = datetime(2026, 11, 22, 18, 30, tzinfo=UTC)  # 02:30 in Shanghai, 00:30 in Urumqi
    monkeypatch.setattr(nightly.timezone, "now", lambda: at)
    assert tenants_due_tonight() == [(dealer_a.tenant.pk, date(2026, 11, 23))]
    nightly_run_tenant(tenant_id=dealer_a.tenant.pk, trigger="schedule")  # no steps: still recorded
    assert tenants_due_tonight() == []  # already ran tonight: the next beat tick queues nothing
    # a night missed while beat was down is caught up later the same day
    monkeypatch.setattr(nightly.timezone, "now", lambda: at + timedelta(hours=3))  # 05:30 / 03:30
    assert tenants_due_tonight() == [(dealer_b.tenant.pk, date(2026, 11, 23))]


def test_the_fan_out_task_queues_one_run_per_due_dealership(dealer_a, monkeypatch, steps, in_tenant):
    from crm.core.tasks import nightly_fan_out_task

    @nightly_step("test.one")
    def one(*, tenant_id: int, run_date: date, trigger: str) -> int:
        return 7

    due = [(dealer_a.tenant.pk, date(2026, 11, 23))]
    monkeypatch.setattr("crm.core.tasks.tenants_due_tonight", lambda: due)
    assert nightly_fan_out_task.delay().get() == [dealer_a.tenant.pk]
    # a second beat tick before the run record exists queues nothing more
    assert nightly_fan_out_task.delay().get() == []
    with in_tenant(dealer_a):
        assert NightlyRun.objects.get(step="test.one").rows == 7
        pipeline = NightlyRun.objects.get(step="pipeline")
        assert (pipeline.status, pipeline.rows, pipeline.trigger) == ("succeeded", 7, "schedule")


def test_run_nightly_command(dealer_a, steps, capsys):
    @nightly_step("test.cmd")
    def cmd(*, tenant_id: int, run_date: date, trigger: str) -> int:
        return 3

    call_command("run_nightly", tenant="dealer-a", date="2026-11-01")
    assert "test.cmd" in capsys.readouterr().out
    with pytest.raises(CommandError, match="Unknown step"):
        call_command("run_nightly", step=["nope"])
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("run_nightly", date="yesterday")
    with pytest.raises(CommandError, match="No active dealership"):
        call_command("run_nightly", tenant="missing")
    assert connection.in_atomic_block  # still inside the test's transaction: nothing leaked


@pytest.fixture
def queued_like_a_worker(settings):  # type: ignore[no-untyped-def]
    """Eager tasks that do not propagate errors (apply(throw=False)): Celery then runs the retries
    as a worker would, only without waiting."""
    settings.CELERY_TASK_EAGER_PROPAGATES = False


def test_a_failed_step_is_retried_alone_with_the_same_date(dealer_a, steps, in_tenant, queued_like_a_worker):
    from crm.core.tasks import nightly_tenant_task

    calls: list[tuple[str, date]] = []

    @nightly_step("test.flaky")
    def flaky(*, tenant_id: int, run_date: date, trigger: str) -> int:
        calls.append(("flaky", run_date))
        if len([c for c in calls if c[0] == "flaky"]) < 3:
            raise RuntimeError("deadlock detected")
        return 7

    @nightly_step("test.steady", after=("test.flaky",))
    def steady(*, tenant_id: int, run_date: date, trigger: str) -> int:
        calls.append(("steady", run_date))
        return 1

    result = nightly_tenant_task.apply(
        kwargs={"tenant_id": dealer_a.tenant.pk, "trigger": "schedule", "run_date": "2026-11-20"}, throw=False
    ).get()
    assert result == [{"step": "test.flaky", "status": "succeeded", "rows": 7}]
    assert (
        calls == [("flaky", date(2026, 11, 20)), ("steady", date(2026, 11, 20))] + [("flaky", date(2026, 11, 20))] * 2
    )
    with in_tenant(dealer_a):
        statuses = list(NightlyRun.objects.filter(step="test.flaky").order_by("id").values_list("status", flat=True))
        assert statuses == ["failed", "failed", "succeeded"]
        assert NightlyRun.objects.filter(step="test.steady").count() == 1


def test_a_step_that_keeps_failing_stops_after_three_retries(dealer_a, steps, in_tenant, queued_like_a_worker):
    from crm.core.tasks import STEP_RETRIES, nightly_tenant_task

    @nightly_step("test.broken")
    def broken(*, tenant_id: int, run_date: date, trigger: str) -> int:
        raise RuntimeError("bad data")

    result = nightly_tenant_task.apply(kwargs={"tenant_id": dealer_a.tenant.pk}, throw=False).get()
    assert result == [{"step": "test.broken", "status": "failed", "rows": None}]
    with in_tenant(dealer_a):
        assert NightlyRun.objects.filter(step="test.broken", status="failed").count() == 1 + STEP_RETRIES


def test_in_process_runs_record_the_failure_without_retrying(dealer_a, steps, in_tenant):
    from crm.core.tasks import nightly_tenant_task

    @nightly_step("test.broken")
    def broken(*, tenant_id: int, run_date: date, trigger: str) -> int:
        raise RuntimeError("bad data")

    assert nightly_tenant_task.delay(tenant_id=dealer_a.tenant.pk).get()[0]["status"] == "failed"
    with in_tenant(dealer_a):
        assert NightlyRun.objects.filter(step="test.broken").count() == 1


@pytest.mark.django_db(transaction=True)  # the step's transaction must really commit
def test_a_step_failing_at_commit_is_recorded_as_failed_and_the_pipeline_goes_on(dealer_a, steps, in_tenant):
    """A deferred constraint fails at the step transaction's commit, after the step returned and its
    record was closed as succeeded inside that transaction: the records say what really happened."""

    @nightly_step("test.bad_reference")
    def bad_reference(*, tenant_id: int, run_date: date, trigger: str) -> int:
        with connection.cursor() as cursor:  # raw SQL: past the ORM's own tenant check
            cursor.execute("UPDATE customers_customer SET merged_into_id = 2000000000")  # checked at commit
            return int(cursor.rowcount)

    @nightly_step("test.after", after=("test.bad_reference",))
    def after(*, tenant_id: int, run_date: date, trigger: str) -> int:
        return Customer.objects.filter(merged_into__isnull=True).count()

    runs = nightly_run_tenant(tenant_id=dealer_a.tenant.pk, trigger="command", run_date=date(2026, 11, 23))
    assert [(r.step, r.status) for r in runs] == [("test.bad_reference", "failed"), ("test.after", "succeeded")]
    with in_tenant(dealer_a):
        stored = {r.step: (r.status, r.rows) for r in NightlyRun.objects.all()}
        assert not Customer.objects.filter(merged_into__isnull=False).exists()
    assert stored == {
        "test.bad_reference": ("failed", None),
        "test.after": ("succeeded", 1),
        "pipeline": ("failed", 1),
    }
    assert "ForeignKeyViolation" in runs[0].error or "foreign key" in runs[0].error
