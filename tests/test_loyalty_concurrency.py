"""Redemptions racing each other on real PostgreSQL: 50 threads, each with its own database
connection and transaction, redeem at one member's balance at the same moment. The balance never
goes below zero and always equals the sum of the ledger; the stock never oversells; one
idempotency key sent by many threads redeems once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections

from crm.core.errors import ApplicationError
from crm.tenancy.context import tenant_context
from crm.tenancy.models import Tenant
from crm.tenancy.roles import Role
from loyalty import services
from loyalty.models import LedgerEntry, Member, Redemption, Reward
from tests.factories import CustomerFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 50


def race(tenant_id: int, attempt: Callable[[int], Any]) -> list[Any]:
    """Run attempt(i) in THREADS threads released together; each uses its own connection."""
    barrier = threading.Barrier(THREADS)
    outcomes: list[Any] = [None] * THREADS

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            with tenant_context(tenant_id):
                outcomes[i] = attempt(i)
        except ApplicationError as error:
            outcomes[i] = error.code
        except Exception as error:  # noqa: BLE001 - any other failure is reported by the assertions
            outcomes[i] = repr(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def balance_and_ledger(tenant_id: int, member_id: int) -> tuple[int, int]:
    with tenant_context(tenant_id), connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.points_balance, (SELECT coalesce(sum(points), 0) FROM loyalty_ledgerentry e "
            "WHERE e.member_id = m.id) FROM loyalty_member m WHERE m.id = %s",
            [member_id],
        )
        balance, ledger = cursor.fetchone()
    return int(balance), int(ledger)


@pytest.fixture
def setup() -> dict[str, Any]:
    tenant = Tenant.objects.create(name="并发店", code="race-store")
    with tenant_context(tenant.pk):
        manager = MembershipFactory(role=Role.MANAGER)
        agent = MembershipFactory(role=Role.CR_AGENT)
        member = services.member_enrol(actor=agent, customer=CustomerFactory())
        services.points_adjust(actor=manager, member=member, points=1000, note="并发测试")
    return {"tenant_id": tenant.pk, "agent": agent, "member_id": member.pk}


def test_fifty_concurrent_redemptions_never_overdraw_and_the_balance_equals_the_ledger(setup):
    tenant_id, agent, member_id = setup["tenant_id"], setup["agent"], setup["member_id"]
    with tenant_context(tenant_id):
        reward = Reward.objects.create(name="保养券", points_cost=70)  # no stock limit: 14 fit in 1,000

    def redeem(i: int) -> str:
        member = Member.objects.get(pk=member_id)
        outcome = services.points_redeem(
            actor=agent, member=member, reward=reward, idempotency_key=f"race-balance-{i:04d}"
        )
        balance, ledger = balance_and_ledger(tenant_id, member_id)  # inside this thread's transaction
        assert balance == ledger and balance >= 0
        return "redeemed" if not outcome.replayed else "replayed"

    outcomes = Counter(race(tenant_id, redeem))
    assert outcomes == {"redeemed": 14, "insufficient_points": 36}, outcomes
    balance, ledger = balance_and_ledger(tenant_id, member_id)
    assert balance == ledger == 1000 - 14 * 70 == 20
    with tenant_context(tenant_id):
        assert LedgerEntry.objects.filter(member_id=member_id, kind="redeem").count() == 14


def test_fifty_concurrent_redemptions_never_oversell_the_stock(setup):
    tenant_id, agent, member_id = setup["tenant_id"], setup["agent"], setup["member_id"]
    with tenant_context(tenant_id):
        reward = Reward.objects.create(name="洗车", points_cost=10, stock=7)

    def redeem(i: int) -> str:
        member = Member.objects.get(pk=member_id)
        services.points_redeem(actor=agent, member=member, reward=reward, idempotency_key=f"race-stock-{i:04d}")
        return "redeemed"

    outcomes = Counter(race(tenant_id, redeem))
    assert outcomes == {"redeemed": 7, "out_of_stock": 43}, outcomes
    with tenant_context(tenant_id):
        reward.refresh_from_db()
        assert reward.stock == 0 and Redemption.objects.filter(reward=reward).count() == 7
    assert balance_and_ledger(tenant_id, member_id) == (930, 930)


def test_one_key_sent_fifty_times_at_once_redeems_once(setup):
    tenant_id, agent, member_id = setup["tenant_id"], setup["agent"], setup["member_id"]
    with tenant_context(tenant_id):
        reward = Reward.objects.create(name="香氛", points_cost=Decimal("100"), stock=50)

    def redeem(i: int) -> tuple[int, bool]:
        member = Member.objects.get(pk=member_id)
        outcome = services.points_redeem(actor=agent, member=member, reward=reward, idempotency_key="same-key-0001")
        return outcome.redemption.pk, outcome.replayed

    outcomes = race(tenant_id, redeem)
    assert len({pk for pk, _replayed in outcomes}) == 1, outcomes
    assert sorted(replayed for _pk, replayed in outcomes).count(False) == 1
    assert balance_and_ledger(tenant_id, member_id) == (900, 900)
    with tenant_context(tenant_id):
        reward.refresh_from_db()
        assert reward.stock == 49
