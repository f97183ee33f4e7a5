"""The segmentation engine (segmentation/engine.py): scores against an independent pandas model, ties,
thresholds, idempotence, incremental == full, a run killed half-way, history and migration, isolation,
and the nightly step."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from crm.core.errors import ApplicationError, NotAllowed
from crm.core.models import NightlyRun
from crm.core.nightly import PIPELINE, nightly_run_tenant, nightly_steps
from crm.tenancy.context import tenant_context
from customers.models import Customer, Order
from customers.records import customer_merge, order_create, order_reverse, orders_bulk_upsert, touchpoint_log
from segmentation import selectors
from segmentation.engine import RunResult, segmentation_recompute, settings_for_tenant
from segmentation.models import (
    CustomerValue,
    DirtyCustomer,
    SegmentationRun,
    SegmentationSettings,
    ValueHistory,
)
from segmentation.nightly import STEP
from segmentation.services import segmentation_request_run, settings_update
from tests import segmentation_data as data
from tests.conftest import _owner_settings
from tests.factories import CustomerFactory, OrderFactory, TenantFactory

ROOT = Path(__file__).resolve().parent.parent
RUN_DATE = date(2026, 6, 30)
TIERS_BEST_FIRST = ["key", "consolidate", "maintain", "exit", ""]


def recompute(dealer: Any, run_date: date, **kwargs: Any) -> RunResult:
    with tenant_context(dealer.tenant.pk):
        return segmentation_recompute(run_date=run_date, **kwargs)


def expect(dealer: Any, run_date: date) -> Any:
    """The pandas model's answer for a run on `run_date`, from the rows as they are now."""
    with tenant_context(dealer.tenant.pk):
        return data.expected_values(data.load_frames(), settings_for_tenant(), run_date)


def values_of(dealer: Any) -> Any:
    with tenant_context(dealer.tenant.pk):
        return data.actual_values()


def add_order(customer_id: int, on: date, amount: Decimal, *, kind: str = "maintenance") -> Order:
    return Order.objects.create(customer_id=customer_id, ordered_on=on, amount=amount, kind=kind)


def assert_same(expected: Any, actual: Any, columns: list[str] | None = None) -> None:
    problems = data.differences(expected, actual, columns=columns)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])


# --- 1. Quintiles ---------------------------------------------------------------------------------


def test_scores_match_an_independent_pandas_computation_ties_included(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        population = data.populate(anchor=RUN_DATE)
    expected = expect(dealer_a, RUN_DATE)
    result = recompute(dealer_a, RUN_DATE)
    actual = values_of(dealer_a)
    assert_same(expected, actual)

    # The data set is made of ties, and they sit across quintile edges: a scorer that numbered rows
    # (row_number / ntile) instead of counting strictly worse customers would split them.
    scored = actual[actual["r_score"].notna()]
    assert len(scored) > 250
    for value, score in (("last_activity_on", "r_score"), ("frequency", "f_score"), ("monetary", "m_score")):
        groups = scored.groupby(value)[score]
        assert groups.nunique().max() == 1, f"customers with equal {value} got different {score}"
        assert (groups.size() >= 5).sum() >= 5, f"too few ties in {value} to test anything"
        ranked = scored[value].map(lambda v: v.toordinal() if isinstance(v, date) else v)
        assert data.straddles_a_boundary(ranked), f"no tie group of {value} covers a quintile edge"
    # (R reaches 4 at most: a fifth of the customers or more share the latest activity date.)
    assert all(scored[score].nunique() >= 4 for score in ("r_score", "f_score", "m_score"))

    roles = population.roles
    edge, edge_out = actual.loc[roles["edge"]], actual.loc[roles["edge_out"]]
    assert (edge["orders_total"], edge["frequency"], edge["monetary"]) == (2, 1, Decimal("880.00"))
    assert (edge_out["frequency"], edge_out["monetary"], edge_out["f_score"]) == (0, 0, 1)  # scored all the same
    black, red_small, red_big = (actual.loc[roles[k]] for k in ("black", "red_small", "red_big"))
    assert black["tier"] == "exit" and black["r_score"] + black["f_score"] + black["m_score"] >= 13
    assert red_small["tier"] == "consolidate" and red_small["m_score"] == 1  # lifted by the red list
    assert red_big["tier"] == "key"
    assert actual.loc[roles["black_prospect"], "tier"] == "exit"
    assert actual.loc[roles["black_prospect"], "rfm_code"] == ""
    assert actual.loc[roles["red_prospect"], "tier"] == ""
    assert actual.loc[roles["churned_recent"], "lifecycle_stage"] == "lost"
    assert actual.loc[roles["two_cars"], "lifecycle_stage"] == "loyal"
    plain = actual.loc[roles["plain_prospect"]]
    assert (plain["lifecycle_stage"], plain["relationship_class"], plain["segment"]) == ("prospect", "potential", "")
    assert roles["tombstone"] not in actual.index
    for prospect in population.prospects:  # including those with only reversed orders
        assert actual.loc[prospect, "rfm_code"] == "" and actual.loc[prospect, "lifecycle_stage"] == "prospect"

    # The run's summary is the same distribution.
    run = result.run
    assert (run.customers, run.scored) == (len(expected), len(scored))
    assert run.tier_counts == data.counts(expected, "tier")
    assert run.segment_counts == data.counts(expected, "segment")
    assert run.lifecycle_counts == data.counts(expected, "lifecycle_stage")
    cells = Counter(zip(scored["r_score"], scored["f_score"], strict=True))
    assert {(c["r"], c["f"]): c["customers"] for c in run.grid} == cells
    assert run.window_start == date(2023, 6, 30) and run.scoring_mode == "quintile"


# --- 2. Thresholds --------------------------------------------------------------------------------


@pytest.mark.parametrize("red_effect", ["always_key", "none", "at_least_consolidate"])
def test_threshold_scores_match_pandas(dealer_a, in_tenant, red_effect):
    with in_tenant(dealer_a):
        population = data.populate(anchor=RUN_DATE, buyers=200, seed=22)
        settings_update(
            actor=dealer_a.manager,
            data={
                "scoring_mode": "thresholds",
                **data.THRESHOLDS,
                "share_key": 10,
                "share_consolidate": 30,
                "share_maintain": 40,
                "share_exit": 20,
                "red_list_effect": red_effect,
            },
        )
    expected = expect(dealer_a, RUN_DATE)
    scored = expected[expected["r_score"].notna()]
    # every limit is hit exactly by someone (a limit counts as reached)
    days = scored["last_activity_on"].map(lambda d: (RUN_DATE - d).days)
    assert set(data.THRESHOLDS["recency_days"]) <= set(days)
    assert set(data.THRESHOLDS["frequency_limits"]) <= set(scored["frequency"])
    assert set(data.THRESHOLDS["monetary_limits"][:3]) <= set(scored["monetary"])
    result = recompute(dealer_a, RUN_DATE)
    actual = values_of(dealer_a)
    assert_same(expected, actual)
    assert result.run.scoring_mode == "thresholds"
    assert result.run.boundaries["scores"]["recency_days"] == data.THRESHOLDS["recency_days"]
    red_small = actual.loc[population.roles["red_small"], "tier"]
    assert red_small == {"always_key": "key", "none": "exit", "at_least_consolidate": "consolidate"}[red_effect]
    assert actual.loc[population.roles["black"], "tier"] == "exit"


# --- 3. Idempotence -------------------------------------------------------------------------------


def _history(dealer: Any) -> list[tuple[Any, ...]]:
    with tenant_context(dealer.tenant.pk):
        return list(
            ValueHistory.objects.order_by("id").values_list(
                "id", "customer_id", "tier", "segment", "rfm_code", "lifecycle_stage", "valid_from", "valid_to"
            )
        )


def test_a_second_run_on_the_same_day_changes_nothing(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        data.populate(anchor=RUN_DATE, buyers=120, seed=3)
    first = recompute(dealer_a, RUN_DATE)
    assert first.rows_changed > 0 and first.run.rows_changed > 0
    values, history = values_of(dealer_a), _history(dealer_a)
    second = recompute(dealer_a, RUN_DATE)
    assert (second.rows_changed, second.run.rows_changed, second.aggregates_refreshed) == (0, 0, 0)
    assert_same(
        values, values_of(dealer_a), columns=[*data.VALUE_COLUMNS, "scored_on", "lifecycle_stage", "relationship_class"]
    )
    assert _history(dealer_a) == history
    with in_tenant(dealer_a):
        runs = list(SegmentationRun.objects.filter(run_date=RUN_DATE).order_by("id"))
    assert len(runs) == 2 and runs[1].rows_changed == 0
    assert (runs[1].tier_counts, runs[1].grid) == (runs[0].tier_counts, runs[0].grid)


# --- 4. Incremental == full -----------------------------------------------------------------------

D1, D2 = date(2026, 1, 31), date(2026, 7, 31)  # six months apart: orders slide out of the window


def _rebuilt_from_scratch(dealer: Any, run_date: date) -> Any:
    """A first-ever run on the same rows (aggregates and values thrown away), rolled back afterwards."""
    with tenant_context(dealer.tenant.pk), transaction.atomic():
        SegmentationSettings.objects.update(aggregates_window_start=None, engine_state=None)
        CustomerValue.objects.all().delete()
        segmentation_recompute(run_date=run_date)
        rebuilt = data.actual_values()
        transaction.set_rollback(True)
    return rebuilt


def _rebuilt_run(dealer: Any, run_date: date) -> Any:
    """The run record a first-ever run on the same rows would write (rolled back afterwards)."""
    with tenant_context(dealer.tenant.pk), transaction.atomic():
        SegmentationSettings.objects.update(aggregates_window_start=None, engine_state=None)
        CustomerValue.objects.all().delete()
        result = segmentation_recompute(run_date=run_date)
        transaction.set_rollback(True)
    assert not result.incremental
    return result.run


# scored_on says when a value last changed, so a rebuild's differs.
REBUILT_COLUMNS = [*data.VALUE_COLUMNS, "lifecycle_stage", "relationship_class"]
REBUILT_FIGURES = ("customers", "scored", "tier_counts", "segment_counts", "lifecycle_counts", "grid", "boundaries")


def assert_same_as_a_rebuild(dealer: Any, run_date: date, result: RunResult) -> None:
    """The distribution kept from run to run equals one counted from scratch, and the rows equal what
    a first-ever run on the same rows would write."""
    rebuilt_run = _rebuilt_run(dealer, run_date)
    for figure in REBUILT_FIGURES:
        assert getattr(result.run, figure) == getattr(rebuilt_run, figure), figure
    assert_same(_rebuilt_from_scratch(dealer, run_date), values_of(dealer), columns=REBUILT_COLUMNS)


def test_incremental_runs_equal_a_full_rebuild(dealer_a, in_tenant):
    manager = dealer_a.manager
    with in_tenant(dealer_a):
        population = data.populate(anchor=D1, buyers=200, seed=4)
    recompute(dealer_a, D1)
    with in_tenant(dealer_a):
        assert not DirtyCustomer.objects.exists()
        special = set(population.roles.values())
        plain = [c for c in population.buyers if c not in special and c not in population.with_external_id]
        external = [c for c in population.with_external_id if c not in special]
        customers = {c.pk: c for c in Customer.objects.filter(pk__in=plain + external + population.prospects)}
        created, raw_insert, raw_update, reversed_, survivor, duplicate, deleted = plain[:7]
        e_new, e_changed, e_same, e_from, e_to = external[:5]
        first_order = {o.customer_id: o for o in Order.objects.filter(external_id__endswith="-0")}

        order_create(
            actor=manager,
            customer=customers[created],
            data={"kind": "maintenance", "ordered_on": D2 - timedelta(days=10), "amount": Decimal("2000.00")},
        )
        buyer = customers[population.roles["plain_prospect"]]
        order_create(actor=manager, customer=buyer, data={"kind": "vehicle_sale", "ordered_on": D2, "amount": data.CAR})
        results = orders_bulk_upsert(
            actor=manager,
            items=[
                {
                    "external_id": "BULK-NEW-1",
                    "customer_external_id": customers[e_new].external_id,
                    "kind": "repair",
                    "ordered_on": D2 - timedelta(days=3),
                    "amount": Decimal("3000.00"),
                },
                *(
                    {
                        "external_id": first_order[cid].external_id,
                        "customer_external_id": customers[owner].external_id,
                        "kind": first_order[cid].kind,
                        "status": first_order[cid].status,
                        "ordered_on": first_order[cid].ordered_on,
                        "amount": first_order[cid].amount + extra,
                    }
                    for cid, owner, extra in (
                        (e_changed, e_changed, Decimal("1234.00")),  # a new amount
                        (e_same, e_same, Decimal("0")),  # sent again, unchanged
                        (e_from, e_to, Decimal("0")),  # moved to another customer
                    )
                ),
            ],
        )
        assert [r["status"] for r in results] == ["created", "updated", "unchanged", "updated"]
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO customers_order (tenant_id, customer_id, kind, status, ordered_on, amount,
                                                external_id, created_at)
                   VALUES (%s, %s, 'parts', 'completed', %s, 777.77, '', now())""",
                [dealer_a.tenant.pk, raw_insert, D2 - timedelta(days=1)],
            )
            # a column segmentation does not read: no mark
            cursor.execute("UPDATE customers_order SET mileage_km = 4242 WHERE customer_id = %s", [raw_update])
            cursor.execute("DELETE FROM customers_order WHERE customer_id = %s AND status = 'completed'", [deleted])
        order_reverse(actor=manager, order=Order.objects.filter(customer_id=reversed_, status="completed").first())
        customer_merge(actor=manager, survivor=customers[survivor], duplicate=customers[duplicate])

        # The trigger marked exactly the customers whose orders changed, whatever wrote them (not e_same,
        # whose order was sent again unchanged, nor raw_update, whose change segmentation does not read).
        marked = set(DirtyCustomer.objects.values_list("customer_id", flat=True))
        expected_marks = {buyer.pk, created, e_new, e_changed, e_from, e_to, raw_insert, deleted, reversed_}
        assert marked == expected_marks | {survivor, duplicate}
        # The merge hook closes the duplicate's open period; its values row waits for the run, which
        # takes it out of the distribution.
        assert CustomerValue.objects.filter(customer_id=duplicate).exists()
        assert not ValueHistory.objects.filter(customer_id=duplicate, valid_to=None).exists()
        assert ValueHistory.objects.filter(customer_id=duplicate, valid_to=timezone.localdate()).count() == 1

    expected = expect(dealer_a, D2)
    before = values_of(dealer_a)
    slid = [c for c in plain[20:] if before.at[c, "frequency"] > expected.at[c, "frequency"]]
    assert slid, "no order slid out of the window: the test would prove nothing"
    result = recompute(dealer_a, D2)
    assert result.incremental
    assert result.aggregates_refreshed >= len(slid)
    assert_same(expected, values_of(dealer_a))
    with in_tenant(dealer_a):
        assert not DirtyCustomer.objects.exists()
        assert not CustomerValue.objects.filter(customer_id=duplicate).exists()
    assert_same_as_a_rebuild(dealer_a, D2, result)

    # A shorter window (the start jumps forward two years), then a run dated back (it moves back).
    with in_tenant(dealer_a):
        settings_update(actor=manager, data={"window_months": 12})
    expected = expect(dealer_a, D2)
    recompute(dealer_a, D2)
    assert_same(expected, values_of(dealer_a))
    back = date(2026, 3, 15)
    expected = expect(dealer_a, back)
    recompute(dealer_a, back)
    assert_same(expected, values_of(dealer_a))
    assert_same(_rebuilt_from_scratch(dealer_a, back), values_of(dealer_a), columns=REBUILT_COLUMNS)


def test_recency_edges_that_move_to_older_dates_are_walked_down_to_the_same_result_as_a_rebuild(dealer_a, in_tenant):
    """Buyers whose only order is older than everyone's last visit (a DMS import of old records) push
    every recency edge towards older dates: the incremental run finds them by walking down the index
    of last activity, and must land where a first-ever run would."""
    with in_tenant(dealer_a):
        data.populate(anchor=D1, buyers=200, seed=5)
    first = recompute(dealer_a, D1)
    with in_tenant(dealer_a):
        for number in range(150):
            customer = Customer.objects.create(name=f"旧档案{number:03d}")
            add_order(customer.pk, D1 - timedelta(days=2500), Decimal("500.00"))
    result = recompute(dealer_a, D1 + timedelta(days=1))
    assert result.incremental
    old_edges = [date.fromisoformat(e) for e in first.run.boundaries["scores"]["recency"]]
    new_edges = [date.fromisoformat(e) for e in result.run.boundaries["scores"]["recency"]]
    assert all(new < old for new, old in zip(new_edges, old_edges, strict=True)), (old_edges, new_edges)
    assert_same(expect(dealer_a, D1 + timedelta(days=1)), values_of(dealer_a))
    assert_same_as_a_rebuild(dealer_a, D1 + timedelta(days=1), result)


# --- 5. A run killed half-way ---------------------------------------------------------------------

RUNNER = """
import sys
from datetime import date

import django

django.setup()
from django.db import connection

from crm.tenancy.context import tenant_context
from segmentation.engine import segmentation_recompute

with tenant_context(int(sys.argv[1])):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        print(cursor.fetchone()[0], flush=True)
    segmentation_recompute(run_date=date.fromisoformat(sys.argv[2]), trigger="killed")
print("finished", flush=True)
"""


def _owner_connection(*, autocommit: bool) -> psycopg.Connection:
    owner = _owner_settings()
    return psycopg.connect(
        host=owner["HOST"],
        port=owner["PORT"] or 5432,
        user=owner["USER"],
        password=owner.get("PASSWORD") or None,
        dbname=connection.settings_dict["NAME"],
        autocommit=autocommit,
    )


def _state(cursor: Any, tenant_id: int) -> dict[str, Any]:
    """Everything a run writes, read as the owner from outside any run."""
    queries = {
        "values": "SELECT * FROM segmentation_customervalue WHERE tenant_id = %s ORDER BY customer_id",
        "history": "SELECT * FROM segmentation_valuehistory WHERE tenant_id = %s ORDER BY id",
        "classes": """SELECT id, lifecycle_stage, relationship_class FROM customers_customer
                       WHERE tenant_id = %s ORDER BY id""",
        "runs": "SELECT id FROM segmentation_segmentationrun WHERE tenant_id = %s ORDER BY id",
        "dirty": "SELECT customer_id FROM segmentation_dirtycustomer WHERE tenant_id = %s ORDER BY 1",
        "window": "SELECT aggregates_window_start FROM segmentation_segmentationsettings WHERE tenant_id = %s",
    }
    state = {}
    for name, sql in queries.items():
        cursor.execute(sql, [tenant_id])
        state[name] = cursor.fetchall()
    return state


def _wait_for(predicate: Any, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.django_db(transaction=True)
def test_a_run_killed_half_way_leaves_the_previous_results_and_the_next_run_applies_the_changes(
    dealer_a, in_tenant, owner_cursor
):
    tenant_id = dealer_a.tenant.pk
    with in_tenant(dealer_a):
        population = data.populate(anchor=D1, buyers=60, seed=5)
    recompute(dealer_a, D1)
    with in_tenant(dealer_a):  # committed: new orders for a dozen customers
        for cid in population.buyers[:12]:
            add_order(cid, D2 - timedelta(days=5), Decimal("66000.00"))
    before = _state(owner_cursor, tenant_id)
    assert len(before["dirty"]) == 12

    database = urlparse(os.environ["DATABASE_URL"])._replace(path="/" + connection.settings_dict["NAME"])
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": urlunparse(database)}
    blocker = _owner_connection(autocommit=False)
    process = None
    backend = None
    try:
        # The run's last statement records it in segmentation_segmentationrun: hold that table so the
        # run stops there, after it has rewritten values, history and stages (readers may still read).
        blocker.execute("LOCK TABLE segmentation_segmentationrun IN SHARE MODE")
        process = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(tenant_id), D2.isoformat()],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = process.stdout.readline() if process.stdout else ""
        if not line.strip().isdigit():
            process.kill()
            pytest.fail(f"the runner did not start: {line}{process.communicate()[1][-3000:]}")
        backend = int(line)

        def blocked() -> bool:
            with connection.cursor() as cursor:  # the app role sees its own backends' queries
                cursor.execute("SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = %s", [backend])
                row = cursor.fetchone()
            return bool(row) and row[0] == "Lock" and "segmentation_segmentationrun" in row[1]

        def gone() -> bool:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [backend])
                return cursor.fetchone()[0] == 0

        if not _wait_for(blocked, seconds=60):
            process.kill()
            pytest.fail(f"the run did not stop at its last statement: {process.communicate()}")
        owner_cursor.execute(
            """SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                WHERE l.pid = %s AND l.granted AND l.mode = 'RowExclusiveLock'""",
            [backend],
        )
        written = {name for (name,) in owner_cursor.fetchall()}
        assert {"segmentation_customervalue", "segmentation_valuehistory", "segmentation_dirtycustomer"} <= written
        # … and it has rewritten the values of the customers with new orders: their rows are locked.
        owner_cursor.execute(
            """SELECT customer_id FROM segmentation_customervalue WHERE tenant_id = %s AND customer_id = ANY(%s)
                  FOR UPDATE SKIP LOCKED""",
            [tenant_id, population.buyers[:12]],
        )
        assert owner_cursor.fetchall() == []
        # Readers still see last night's results, the pending marks included.
        assert _state(owner_cursor, tenant_id) == before
        with in_tenant(dealer_a):
            assert selectors.latest_run().run_date == D1

        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        # still waiting for the lock: the engine's client_connection_check_interval ends it within seconds
        assert _wait_for(gone, seconds=30), "the killed run's backend is still there"
        blocker.rollback()
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        blocker.close()
        if backend is not None:  # whatever happened above, no backend of this test outlives it
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s AND pid <> pg_backend_pid()",
                    [backend],
                )

    assert _state(owner_cursor, tenant_id) == before  # nothing of the killed run remains
    expected = expect(dealer_a, D2)
    result = recompute(dealer_a, D2)
    assert result.rows_changed > 0
    assert_same(expected, values_of(dealer_a))
    after = _state(owner_cursor, tenant_id)
    assert after["dirty"] == [] and len(after["runs"]) == len(before["runs"]) + 1


# --- 6. History and tier migration ----------------------------------------------------------------

D3 = date(2026, 9, 30)


def _snapshot(dealer: Any) -> dict[int, tuple[str, str, str, str]]:
    values = values_of(dealer)
    return {
        int(cid): (row["tier"], row["segment"], row["rfm_code"], row["lifecycle_stage"])
        for cid, row in values.iterrows()
    }


def _periods(dealer: Any) -> dict[int, list[Any]]:
    periods: dict[int, list[Any]] = {}
    with tenant_context(dealer.tenant.pk):
        for row in ValueHistory.objects.order_by("customer_id", "valid_from", "id"):
            periods.setdefault(row.customer_id, []).append(row)
    return periods


UNTRACKED = ("", "", "", "prospect")


def _check_history(dealer: Any, snapshots: dict[date, dict[int, tuple[str, str, str, str]]]) -> dict[int, list[Any]]:
    """Periods are contiguous, one is open, and each run date's covering period is that run's result."""
    periods = _periods(dealer)
    live = set(snapshots[max(snapshots)])
    # Every live customer has history, prospects included.
    without = live - set(periods)
    assert not without, f"customers without history: {sorted(without)[:10]}"
    for cid, rows in periods.items():
        assert [r.valid_to is None for r in rows].count(True) == (1 if cid in live else 0), cid
        for earlier, later in itertools.pairwise(rows):
            assert earlier.valid_to == later.valid_from, f"customer {cid}: a gap or an overlap"
            states = [(r.tier, r.segment, r.rfm_code, r.lifecycle_stage) for r in (earlier, later)]
            assert states[0] != states[1], f"customer {cid}: a period that changed nothing"
        for day, snapshot in snapshots.items():
            covering = [r for r in rows if r.valid_from <= day and (r.valid_to is None or r.valid_to > day)]
            if cid in snapshot:
                assert len(covering) == 1, f"customer {cid} on {day}: {len(covering)} periods"
                row = covering[0]
                assert (row.tier, row.segment, row.rfm_code, row.lifecycle_stage) == snapshot[cid], (cid, day)
    return periods


def _expected_migration(before: dict[int, Any], after: dict[int, Any]) -> Counter[tuple[str, str]]:
    return Counter((before[c][0] if c in before else "", after[c][0] if c in after else "") for c in before | after)


def _check_migration(dealer: Any, day1: date, day2: date, before: dict[int, Any], after: dict[int, Any]) -> None:
    tracked = set(_periods(dealer))
    before = {c: state for c, state in before.items() if c in tracked}
    after = {c: state for c, state in after.items() if c in tracked}
    with tenant_context(dealer.tenant.pk):
        migration = selectors.tier_migration(from_date=day1, to_date=day2)
    expected = _expected_migration(before, after)
    assert {k: v for k, v in migration.counts.items() if v} == dict(expected)
    rank = {t: i for i, t in enumerate(TIERS_BEST_FIRST)}
    assert migration.moved_up == sum(n for (a, b), n in expected.items() if rank[b] < rank[a])
    assert migration.moved_down == sum(n for (a, b), n in expected.items() if rank[b] > rank[a])
    assert migration.total == len(set(before) | set(after))
    for tier in TIERS_BEST_FIRST:
        assert migration.row_totals[tier] == sum(1 for c in before | after if before.get(c, UNTRACKED)[0] == tier)
        assert migration.col_totals[tier] == sum(1 for c in before | after if after.get(c, UNTRACKED)[0] == tier)


def test_history_periods_and_tier_migration_over_three_runs(dealer_a, in_tenant):
    manager = dealer_a.manager
    with in_tenant(dealer_a):
        population = data.populate(anchor=D1, buyers=80, seed=6)
    snapshots = {}
    recompute(dealer_a, D1)
    snapshots[D1] = _snapshot(dealer_a)
    regular = [c for c in population.buyers if c not in population.roles.values()]
    exits = [c for c in regular if snapshots[D1][c][0] == "exit"][:5]
    keys = [c for c in regular if snapshots[D1][c][0] == "key"][:2]
    assert len(exits) == 5 and len(keys) == 2
    with in_tenant(dealer_a):
        for cid in exits:  # big spenders now: up
            add_order(cid, D2 - timedelta(days=7), data.CAR, kind="vehicle_sale")
        for order in Order.objects.filter(customer_id__in=keys):  # every order reversed: prospects again
            order_reverse(actor=manager, order=order)
        newcomer = CustomerFactory(name="新客户")
        OrderFactory(customer=newcomer, ordered_on=D2 - timedelta(days=1), amount=Decimal("5000.00"))
    recompute(dealer_a, D2)
    snapshots[D2] = _snapshot(dealer_a)
    assert all(snapshots[D2][c][0] in ("key", "consolidate") for c in exits)
    assert all(snapshots[D2][c][0] == "" for c in keys)
    with in_tenant(dealer_a):
        add_order(exits[0], D3, Decimal("880.00"))
    recompute(dealer_a, D3)  # time passes too: recency moves on for everyone
    snapshots[D3] = _snapshot(dealer_a)
    changed_on = {d: sum(1 for c in snapshots[d] if snapshots[d][c] != snapshots[D1].get(c)) for d in (D2, D3)}
    assert changed_on[D2] > 10 and changed_on[D3] > 10
    periods = _check_history(dealer_a, snapshots)
    assert newcomer.pk not in snapshots[D1] and periods[newcomer.pk][0].valid_from == D2
    for cid in set(population.buyers + population.prospects) & set(periods):  # a period per change of state
        states = [snapshots[d][cid] for d in (D1, D2, D3)]
        changes = sum(1 for a, b in itertools.pairwise(states) if a != b)
        assert len(periods[cid]) == 1 + changes and periods[cid][0].valid_from == D1, cid

    # A second run the same day rewrites that day's period in place, or closes an older one on it.
    not_recent = [c for c in regular if snapshots[D3][c][2][:1] not in ("", "5")]  # R < 5: a new order changes R
    opened_today = next(c for c in not_recent if periods[c][-1].valid_from == D3)
    opened_before = next(c for c in not_recent if periods[c][-1].valid_from < D3)
    with in_tenant(dealer_a):
        for cid in (opened_today, opened_before):
            add_order(cid, D3, Decimal("99000.00"))
    recompute(dealer_a, D3)
    snapshots[D3] = _snapshot(dealer_a)
    periods_after = _check_history(dealer_a, snapshots)
    assert len(periods_after[opened_today]) == len(periods[opened_today])
    assert periods_after[opened_today][-1].pk == periods[opened_today][-1].pk
    rewritten = periods_after[opened_today][-1]
    assert rewritten.valid_from == D3 and rewritten.rfm_code == snapshots[D3][opened_today][2]
    assert rewritten.rfm_code != periods[opened_today][-1].rfm_code
    assert len(periods_after[opened_before]) == len(periods[opened_before]) + 1
    assert periods_after[opened_before][-2].valid_to == D3 == periods_after[opened_before][-1].valid_from

    _check_migration(dealer_a, D1, D2, snapshots[D1], snapshots[D2])
    _check_migration(dealer_a, D1, D3, snapshots[D1], snapshots[D3])
    _check_migration(dealer_a, D2 + timedelta(days=1), D3 - timedelta(days=1), snapshots[D2], snapshots[D2])


def test_every_customer_gets_a_history_period_however_the_run_found_them(db, in_tenant):
    tenant = TenantFactory()
    with in_tenant(tenant):
        buyer, first_prospect = CustomerFactory(), CustomerFactory()
        OrderFactory(customer=buyer, ordered_on=D1 - timedelta(days=30))
        segmentation_recompute(run_date=D1)  # the dealership's first run: a full one
        later_prospect, reversed_only = CustomerFactory(), CustomerFactory()
        OrderFactory(customer=reversed_only, ordered_on=D2, status="reversed")
        segmentation_recompute(run_date=D2)  # incremental
        values = {v.customer_id: v for v in CustomerValue.objects.all()}
        open_periods = Counter(ValueHistory.objects.filter(valid_to=None).values_list("customer_id", flat=True))
        migration = selectors.tier_migration(from_date=D2, to_date=D2)
    prospects = (first_prospect.pk, later_prospect.pk, reversed_only.pk)
    assert {values[c].tier for c in prospects} == {""}
    assert {values[c].rfm_code for c in prospects} == {""}
    # The three prospects are in the same state; they should be tracked the same way.
    shown = {c: open_periods[c] for c in prospects}
    assert open_periods == {buyer.pk: 1, **dict.fromkeys(prospects, 1)}, f"open periods of the prospects: {shown}"
    assert migration.cell("", "") == 3  # "customers who had no state counted as not tiered" (docs)
    # scored_on is the day the values last changed: the first run for the first prospect, D2 for the others
    assert values[first_prospect.pk].scored_on == D1
    assert values[later_prospect.pk].scored_on == values[reversed_only.pk].scored_on == D2


def test_a_same_day_correction_leaves_no_phantom_period(dealer_a, in_tenant):
    day1, day2 = D1, D1 + timedelta(days=1)
    with in_tenant(dealer_a):
        settings_update(actor=dealer_a.manager, data={"scoring_mode": "thresholds", **data.THRESHOLDS})
        customer = CustomerFactory(name="更正客户")
        OrderFactory(customer=customer, ordered_on=day1 - timedelta(days=10), amount=Decimal("880.00"))
    recompute(dealer_a, day1)
    with in_tenant(dealer_a):
        first = ValueHistory.objects.get(customer=customer)
        wrong = order_create(
            actor=dealer_a.manager,
            customer=customer,
            data={"kind": "vehicle_sale", "ordered_on": day2, "amount": Decimal("300000.00")},
        )
    recompute(dealer_a, day2)
    with in_tenant(dealer_a):
        assert ValueHistory.objects.filter(customer=customer).count() == 2  # the mistaken order showed
        order_reverse(actor=dealer_a.manager, order=wrong)  # corrected the same day
    recompute(dealer_a, day2)
    with in_tenant(dealer_a):
        periods = list(ValueHistory.objects.filter(customer=customer).order_by("valid_from"))
        value = CustomerValue.objects.get(customer=customer)
    assert (value.rfm_code, value.tier) == (first.rfm_code, first.tier)  # back where it was
    states = [(p.tier, p.segment, p.rfm_code, p.lifecycle_stage) for p in periods]
    shown = [(p.valid_from, p.valid_to, p.tier, p.rfm_code, p.lifecycle_stage) for p in periods]
    assert all(a != b for a, b in itertools.pairwise(states)), f"adjacent periods with one state: {shown}"


# --- Tier shares ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shares", "buyers"),
    [
        pytest.param((15, 35, 35, 15), 100, id="default-shares-of-100"),
        pytest.param((15, 35, 35, 15), 47, id="default-shares-of-47"),
        pytest.param((20, 35, 30, 15), 100, id="55-percent-of-100"),
        pytest.param((14, 36, 35, 15), 50, id="14-percent-of-50"),
    ],
)
def test_tier_shares_are_exact_for_every_share_and_size(db, shares, buyers, in_tenant):
    tenant = TenantFactory()
    with in_tenant(tenant):
        for i in range(buyers):  # same day, distinct spend: the value rank is the spend rank
            OrderFactory(ordered_on=D1, amount=Decimal(1000 + i))
        settings = settings_for_tenant()
        keys = ("share_key", "share_consolidate", "share_maintain", "share_exit")
        SegmentationSettings.objects.filter(pk=settings.pk).update(**dict(zip(keys, shares, strict=True)))
        segmentation_recompute(run_date=D1)
        tiers = Counter(CustomerValue.objects.values_list("tier", flat=True))
    # p = 0 … n-1 customers ranked above: key while 100 p < 14 n (or 20 n), and so on; exact integers
    edges = [-(-sum(shares[: k + 1]) * buyers // 100) for k in range(3)]  # how many p satisfy each
    expected = {"key": edges[0], "consolidate": edges[1] - edges[0], "maintain": edges[2] - edges[1]}
    expected["exit"] = buyers - edges[2]
    assert dict(tiers) == expected


@pytest.mark.parametrize("buyers", [0, 1])
def test_a_dealership_with_no_or_one_buyer(db, in_tenant, buyers):
    tenant = TenantFactory()
    with in_tenant(tenant):
        prospect = CustomerFactory(list_flag="black", list_reason="测试")
        for _ in range(buyers):
            OrderFactory(ordered_on=D1)
        result = segmentation_recompute(run_date=D1)
        values = {v.customer_id: v for v in CustomerValue.objects.all()}
    assert (result.run.customers, result.run.scored) == (1 + buyers, buyers)
    assert values[prospect.pk].tier == "exit" and values[prospect.pk].rfm_code == ""
    if buyers:  # alone: nobody is worse (1-1-1, lost), nobody ranks above (key)
        (only,) = (v for v in values.values() if v.customer_id != prospect.pk)
        assert (only.rfm_code, only.segment, only.tier) == ("111", "lost", "key")
    assert result.run.tier_counts == ({"exit": 1, "key": 1} if buyers else {"exit": 1})


def test_lifecycle_signals_from_other_apps(dealer_a, in_tenant):
    """Surveys, complaints and loyalty plug in SQL: satisfied unless any source says dissatisfied;
    referrals make a customer loyal."""
    from segmentation import engine

    signals = (
        engine.LifecycleSignal(
            name="surveys",
            sql="""SELECT id, true, false, 0 FROM customers_customer
                WHERE tenant_id = %(tenant)s AND external_id IN ('SIG-SAT', 'SIG-MIXED')""",
        ),
        engine.LifecycleSignal(
            name="complaints",
            sql="""SELECT id, false, true, 0 FROM customers_customer
                WHERE tenant_id = %(tenant)s AND external_id = 'SIG-MIXED' AND %(run_date)s::date IS NOT NULL""",
        ),
        engine.LifecycleSignal(
            name="loyalty",
            sql="SELECT id, NULL, NULL, 2 FROM customers_customer "
            "WHERE tenant_id = %(tenant)s AND external_id = 'SIG-REF'",
        ),
    )
    with engine.lifecycle_signals.replaced(*signals):
        made = {}
        with in_tenant(dealer_a):
            for code in ("SAT", "MIXED", "REF", "NONE"):
                made[code] = CustomerFactory(external_id=f"SIG-{code}")
                OrderFactory(customer=made[code], ordered_on=RUN_DATE - timedelta(days=20))
        recompute(dealer_a, RUN_DATE)
        with in_tenant(dealer_a):
            stages = dict(
                Customer.objects.filter(external_id__startswith="SIG-").values_list("external_id", "lifecycle_stage")
            )
            classes = dict(
                Customer.objects.filter(external_id__startswith="SIG-").values_list("external_id", "relationship_class")
            )
        assert stages == {"SIG-SAT": "satisfied", "SIG-MIXED": "new", "SIG-REF": "loyal", "SIG-NONE": "new"}
        assert classes == {"SIG-SAT": "key", "SIG-MIXED": "key", "SIG-REF": "loyal", "SIG-NONE": "key"}


def test_the_registered_lifecycle_signals_are_those_docs_name_and_a_rewarded_referral_makes_loyal(dealer_a, in_tenant):
    """docs/segmentation.md: surveys (the latest answered survey) and loyalty (referrals that were
    rewarded, their sale not reversed) send signals; complaints sends none (its survey after closing
    speaks for it). A referral still pending, or whose sale was reversed, does not make a referrer loyal."""
    from loyalty.models import Member, Referral
    from segmentation import engine

    assert sorted(s.name for s in engine.lifecycle_signals.contributions()) == ["loyalty.referrals", "surveys"]
    with in_tenant(dealer_a):
        made: dict[str, Customer] = {}
        for code in ("REWARDED", "PENDING", "REVERSED"):
            referrer = made[code] = CustomerFactory(external_id=f"REF-{code}")
            OrderFactory(customer=referrer, ordered_on=RUN_DATE - timedelta(days=20))  # a new buyer
            member = Member.objects.create(customer=referrer)
            referee = CustomerFactory(external_id=f"REFEREE-{code}")
            sale = OrderFactory(
                customer=referee,
                kind=Order.Kind.VEHICLE_SALE,
                ordered_on=RUN_DATE - timedelta(days=5),
                status="reversed" if code == "REVERSED" else "completed",
            )
            Referral.objects.create(
                referrer=member,
                referee=referee,
                status="pending" if code == "PENDING" else "rewarded",
                order=None if code == "PENDING" else sale,
            )
    recompute(dealer_a, RUN_DATE)
    with in_tenant(dealer_a):
        stages = dict(
            Customer.objects.filter(external_id__startswith="REF-").values_list("external_id", "lifecycle_stage")
        )
    assert stages == {"REF-REWARDED": "loyal", "REF-PENDING": "new", "REF-REVERSED": "new"}


# --- 7. Tenant isolation --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the owner's connection sees every dealership's committed rows
def test_a_run_for_one_dealership_never_reads_or_writes_another(dealer_a, dealer_b, in_tenant, owner_cursor):
    with in_tenant(dealer_b):  # B spends far more: leaking it into A's quintiles would show
        population_b = data.populate(anchor=RUN_DATE, buyers=100, seed=8, prefix="B")
        Order.objects.update(amount=Decimal("500000.00"))
    with in_tenant(dealer_a):
        data.populate(anchor=RUN_DATE, buyers=100, seed=7, prefix="A")
    recompute(dealer_b, RUN_DATE)
    with in_tenant(dealer_b):
        for cid in population_b.buyers[:5]:
            add_order(cid, RUN_DATE, Decimal("1.00"))
    before_b = _state(owner_cursor, dealer_b.tenant.pk)
    assert len(before_b["dirty"]) == 5
    expected = expect(dealer_a, RUN_DATE)
    result = recompute(dealer_a, RUN_DATE)
    assert_same(expected, values_of(dealer_a))
    assert _state(owner_cursor, dealer_b.tenant.pk) == before_b  # B's values, history, marks untouched
    with in_tenant(dealer_a):
        live = Customer.objects.filter(merged_into=None).count()
    assert result.run.customers == live == len(expected)
    assert result.run.tenant_id == dealer_a.tenant.pk
    for table in ("segmentation_customervalue", "segmentation_valuehistory", "segmentation_dirtycustomer"):
        owner_cursor.execute(
            f"""SELECT count(*) FROM {table} t JOIN customers_customer c ON c.id = t.customer_id
                 WHERE c.tenant_id <> t.tenant_id"""
        )
        assert owner_cursor.fetchone()[0] == 0, f"{table} has a row for another dealership's customer"


# --- 8. The nightly step and "recompute now" -------------------------------------------------------


def test_the_nightly_pipeline_runs_the_step_and_records_it(dealer_a, in_tenant):
    assert STEP in [step.name for step in nightly_steps.contributions()]
    with in_tenant(dealer_a):
        data.populate(anchor=RUN_DATE, buyers=60, seed=9)
    expected = expect(dealer_a, RUN_DATE)
    runs = nightly_run_tenant(tenant_id=dealer_a.tenant.pk, trigger="command", run_date=RUN_DATE, only=[STEP])
    assert [(r.step, r.status, r.error) for r in runs] == [(STEP, "succeeded", "")]
    assert runs[0].rows > 0 and runs[0].duration_ms is not None
    assert_same(expected, values_of(dealer_a))
    with in_tenant(dealer_a):
        run = selectors.latest_run()
        assert (run.run_date, run.trigger) == (RUN_DATE, "command")
        pipeline = NightlyRun.objects.get(step=PIPELINE)
        assert (pipeline.status, pipeline.rows) == ("succeeded", runs[0].rows)


def test_recompute_now_is_for_managers_and_refused_while_a_run_is_going(
    dealer_a, in_tenant, django_capture_on_commit_callbacks
):
    with in_tenant(dealer_a):
        for role in ("consultant", "advisor", "agent", "auditor", "admin"):
            with pytest.raises(NotAllowed):
                segmentation_request_run(actor=getattr(dealer_a, role))
        running = NightlyRun.objects.create(step=STEP, run_date=RUN_DATE, trigger="schedule")
        NightlyRun.objects.create(step="customers.quality", run_date=RUN_DATE, trigger="schedule")
        with pytest.raises(ApplicationError) as refused:
            segmentation_request_run(actor=dealer_a.manager)
        assert refused.value.code == "run_in_progress" and not isinstance(refused.value, NotAllowed)
        # a "running" record left by a killed worker long ago does not block
        NightlyRun.objects.filter(pk=running.pk).update(started_at=timezone.now() - timedelta(hours=7))
        runs_before = SegmentationRun.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, in_tenant(dealer_a):
        segmentation_request_run(actor=dealer_a.manager)
    assert len(callbacks) == 1
    with in_tenant(dealer_a):
        manual = NightlyRun.objects.get(step=STEP, trigger="manual")
        assert manual.status == "succeeded"
        assert SegmentationRun.objects.count() == runs_before + 1
        running.refresh_from_db()
        assert running.status == "abandoned"  # no process held its lock: marked by the request that followed


# --- 9. What marks a customer, and kept state ------------------------------------------------------


def test_changes_besides_orders_mark_the_customer_and_the_next_run_applies_them(dealer_a, in_tenant):
    """Last visit, list flag, churn reason, a new customer and a first touchpoint all move results
    without an order changing; the triggers of migration 0003 mark them, nothing else does."""
    with in_tenant(dealer_a):
        population = data.populate(anchor=RUN_DATE, buyers=150, seed=31)
    recompute(dealer_a, RUN_DATE)
    later = RUN_DATE + timedelta(days=1)
    with in_tenant(dealer_a):
        plain = [c for c in population.buyers if c not in set(population.roles.values())]
        visited, blacked, churned, renamed = plain[:4]
        Customer.objects.filter(pk=visited).update(last_visit_on=later)
        Customer.objects.filter(pk=blacked).update(list_flag="black")
        Customer.objects.filter(pk=churned).update(churn_reason="moved away")
        Customer.objects.filter(pk=renamed).update(name="改名", list_reason="")  # read by no rule
        newcomer = CustomerFactory()
        contacted = Customer.objects.get(pk=population.roles["plain_prospect"])
        touchpoint_log(actor=dealer_a.manager, customer=contacted, channel="call", outcome="reached")
        marked = set(DirtyCustomer.objects.values_list("customer_id", flat=True))
    assert marked == {visited, blacked, churned, newcomer.pk, contacted.pk}
    expected = expect(dealer_a, later)
    result = recompute(dealer_a, later)
    assert result.incremental
    actual = values_of(dealer_a)
    assert_same(expected, actual)
    assert actual.loc[blacked, "tier"] == "exit" and actual.loc[churned, "lifecycle_stage"] == "lost"
    assert actual.loc[newcomer.pk, "lifecycle_stage"] == "prospect"
    assert actual.loc[contacted.pk, "relationship_class"] == "general"
    assert result.run.tier_counts == _rebuilt_run(dealer_a, later).tier_counts

    # A customer deleted outright cannot be taken out of the kept counts: the next run scores everyone.
    with in_tenant(dealer_a):
        Customer.objects.filter(pk=newcomer.pk).delete()
        assert SegmentationSettings.objects.get().engine_state is None
    expected = expect(dealer_a, later)
    result = recompute(dealer_a, later)
    assert not result.incremental
    assert_same(expected, values_of(dealer_a))


def test_day_limits_crossed_between_runs_with_threshold_scoring(dealer_a, in_tenant):
    """Nothing changes in the data, but 45 days pass: recency thresholds, dormant and lost flip for
    the customers whose last visit sits at those distances."""
    with in_tenant(dealer_a):
        data.populate(anchor=RUN_DATE, buyers=200, seed=22)
        settings_update(actor=dealer_a.manager, data={"scoring_mode": "thresholds", **data.THRESHOLDS})
    first = recompute(dealer_a, RUN_DATE)
    for later in (RUN_DATE + timedelta(days=45), RUN_DATE + timedelta(days=46)):
        expected = expect(dealer_a, later)
        result = recompute(dealer_a, later)
        assert result.incremental
        assert_same(expected, values_of(dealer_a))
        assert result.run.tier_counts == _rebuilt_run(dealer_a, later).tier_counts
        assert result.run.lifecycle_counts == _rebuilt_run(dealer_a, later).lifecycle_counts
    assert result.run.grid != first.run.grid, "no score moved in 46 days: the test would prove nothing"


def test_kept_state_that_no_longer_matches_the_rows_falls_back_to_scoring_everyone(dealer_a, in_tenant):
    with in_tenant(dealer_a):
        population = data.populate(anchor=RUN_DATE, buyers=150, seed=5)
    recompute(dealer_a, RUN_DATE)
    with in_tenant(dealer_a):
        settings = SegmentationSettings.objects.get()
        state = settings.engine_state
        for edge in state["bounds"]["m"]:  # ranks past the end: an edge walk finds no row there
            edge[1], edge[2] = edge[1] + 10_000, edge[2] + 10_000
        SegmentationSettings.objects.filter(pk=settings.pk).update(engine_state=state)
        add_order(population.buyers[0], RUN_DATE, Decimal("99999.00"))
    later = RUN_DATE + timedelta(days=1)
    expected = expect(dealer_a, later)
    result = recompute(dealer_a, later)
    assert not result.incremental
    assert_same(expected, values_of(dealer_a))


def test_temporary_tables_of_an_older_layout_on_the_connection_are_replaced(dealer_a, in_tenant):
    """A pooled server connection can outlive a deploy, with the previous code's temporary tables."""
    with in_tenant(dealer_a):
        data.populate(anchor=RUN_DATE, buyers=60, seed=9)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS pg_temp.seg_changed")
        cursor.execute("CREATE TEMP TABLE seg_changed (customer_id bigint PRIMARY KEY, r smallint)")
    expected = expect(dealer_a, RUN_DATE)
    recompute(dealer_a, RUN_DATE)
    assert_same(expected, values_of(dealer_a))
