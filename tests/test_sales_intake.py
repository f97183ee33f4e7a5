"""Bulk lead intake (sales.intake.leads_capture_bulk) against lead_capture row by row: the same 50 rows
captured both ways (the first run rolled back) give the same leads, customers, consent records,
search terms, events, follow-ups and round-robin turns, field by field (ids and times aside);
duplicates inside a batch, external ids captured before, bad rows, known customers, a consultant's
own leads; and 1,000 rows in a bounded number of statements (the speed is printed: run with -s)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.db.models import DateTimeField
from django.utils import timezone

from crm.core.models import Notification
from crm.tenancy.context import tenant_context
from customers.models import ConsentChange, Customer, CustomerSearchTerm
from customers.records import customer_create, customer_set_list_flag
from followups.models import Followup
from sales import services
from sales.intake import RowResult, _Row, _slow, leads_capture_bulk
from sales.models import ConsultantDuty, Lead, LeadEvent, Stage

pytestmark = pytest.mark.django_db


@pytest.fixture
def dealer(dealer_b) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    with tenant_context(dealer_b.tenant.pk):
        for member in (dealer_b.consultant, dealer_b.consultant2, dealer_b.manager):
            services.duty_set(actor=dealer_b.manager, member=member, on_duty=True)
        yield dealer_b


def _row(n: int, **extra: Any) -> dict[str, Any]:
    return {"name": f"客户{n}", "mobile": f"1371111{n:04d}", "source": "online", "series": "Model 3", **extra}


def _setup(dealer: Any) -> dict[str, Any]:
    """What the dealership holds before the batch: a consultant's customer, a captured lead with an
    external id, an open lead, a black-listed person and a customer to refer."""
    known = customer_create(
        actor=dealer.manager,
        data={"name": "老客户", "mobile": "13711119001", "owner": dealer.consultant2, "consent_call": True},
    )
    services.lead_capture(
        actor=dealer.manager, data=_row(9002, source="brand", source_system="brand-dcc", external_id="DCC-1")
    )
    services.lead_capture(actor=dealer.consultant, data=_row(9003, source="phone"))
    black = customer_create(actor=dealer.manager, data={"name": "黑名单", "mobile": "13711119004"})
    customer_set_list_flag(actor=dealer.manager, customer=black, flag="black", reason="fraud")
    return {"known": known, "referrer": known}


def _rows(referrer: Customer) -> list[dict[str, Any]]:
    sources = ["online", "brand", "walk_in", "phone", "event", "repurchase"]
    timeframes = ["7d", "15d", "30d", "90d", "later", ""]
    rows = [
        _row(
            n,
            source=sources[n % len(sources)],
            timeframe=timeframes[n % len(timeframes)],
            brand="Tesla" if n % 2 else "BYD",
            budget=str(200000 + n) if n % 3 else None,
            **({"source_system": "autohome", "external_id": f"AH-{n}"} if n % 4 == 0 else {}),
            **({"level": "H"} if n % 7 == 0 else {}),
        )
        for n in range(36)
    ]
    rows += [
        _row(9001, name="老客户"),  # a known customer: attaches, kept by their consultant
        _row(9002, source="brand", source_system="brand-dcc", external_id="DCC-1"),  # captured before
        _row(9003, source="online"),  # an open lead: the enquiry joins it
        _row(9004),  # black-listed
        _row(3, source="event"),  # the same mobile as row 3 in this batch: joins that lead
        _row(100, source_system="autohome", external_id="AH-0"),  # the external id of row 0: row 0's lead
        _row(101, mobile="12345"),  # not a mobile
        _row(102, budget="lots"),  # not an amount
        _row(103, source="referral", referrer=referrer),  # a referral: one by one
        _row(104, appointment_at=timezone.now() + timedelta(days=2)),  # an appointment: one by one
        _row(105, source="referral"),  # a referral without a referrer
        _row(106, campaign="x" * 101),  # longer than the field
        _row(107, source="walk_in", timeframe="7d"),
        _row(108, source="phone"),
    ]
    assert len(rows) == 50
    return rows


def _plain(obj: Any, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The object's columns but its id; a time only as set or not (the runs differ by milliseconds)."""
    return {
        f.attname: getattr(obj, f.attname) is not None if isinstance(f, DateTimeField) else getattr(obj, f.attname)
        for f in obj._meta.concrete_fields
        if f.attname not in {"id", *skip}
    }


def _snapshot() -> dict[str, Any]:
    customers = {c.pk: c.mobile for c in Customer.objects.all()}
    leads = {lead.pk: lead for lead in Lead.objects.all()}
    lead_rows = {}
    for lead in leads.values():
        row = _plain(lead, frozenset({"customer_id"}))
        row["customer"] = customers[lead.customer_id]
        lead_rows[lead.mobile, lead.external_id] = row
    return {
        "customers": sorted(
            (_plain(c) for c in Customer.objects.all()),
            key=lambda r: r["mobile"],
        ),
        "terms": sorted((customers[t.customer_id], t.term) for t in CustomerSearchTerm.objects.all()),
        "consent": sorted(
            (customers[c.customer_id], tuple(c.changed), c.consent_call, c.consent_sms, c.via, c.set_by_id)
            for c in ConsentChange.objects.all()
        ),
        "leads": lead_rows,
        "events": sorted(
            (
                leads[e.lead_id].mobile,
                e.kind,
                e.actor_id or 0,
                e.from_owner_id or 0,
                e.to_owner_id or 0,
                e.summary,
                sorted(e.data.items()),
            )
            for e in LeadEvent.objects.all()
        ),
        "followups": sorted(
            (
                customers[f.customer_id],
                f.reason,
                f.note,
                f.due_from,
                f.due_until,
                f.scheduled_on,
                f.assignee_id or 0,
                f.channel,
                f.priority,
                f.status,
                f.outcome_notes,
            )
            for f in Followup.objects.all()
        ),
        # the round-robin's turns: who gets the next lead
        "duty": [d.member_id for d in ConsultantDuty.objects.order_by("last_assigned_at", "id")],
    }


def _summary(results: list[RowResult]) -> list[tuple[Any, ...]]:
    return [(r.index, r.status, r.lead.mobile if r.lead else None, r.notice, sorted(r.errors)) for r in results]


def _rolled_back(run: Callable[[], list[RowResult]]) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    with transaction.atomic():
        results = run()
        outcome = (_summary(results), _snapshot())
        transaction.set_rollback(True)
    return outcome


def _one_by_one(actor: Any, rows: list[dict[str, Any]]) -> list[RowResult]:
    """lead_capture row by row, each in its savepoint (the bulk endpoint's rows before)."""
    results = []
    for index, data in enumerate(rows):
        try:
            clean = services._clean_capture(data)
        except Exception as error:  # noqa: BLE001 - the error row, as the bulk path reports it
            results.append(RowResult(index=index, status="error", errors=error.fields))  # type: ignore[attr-defined]
            continue
        results.append(_slow(actor, _Row(index=index, data=data, clean=clean)))
    return results


@pytest.mark.parametrize("who", ["manager", "consultant"])
def test_bulk_capture_is_lead_capture_row_by_row(dealer: Any, who: str) -> None:
    actor = getattr(dealer, who)
    before = _setup(dealer)
    rows = _rows(before["referrer"])
    slow_results, slow = _rolled_back(lambda: _one_by_one(actor, rows))
    fast_results, fast = _rolled_back(lambda: leads_capture_bulk(actor=actor, rows=rows))
    assert fast_results == slow_results
    for part in slow:
        assert fast[part] == slow[part], part
    statuses = [r[1] for r in fast_results]
    assert statuses.count("created") == 36 + 5 and statuses.count("error") == 5, fast_results
    # and the batch for real: one notification per consultant given leads, not one per lead
    results = leads_capture_bulk(actor=actor, rows=rows)
    owners = {r.lead.owner_id for r in results if r.status == "created" and r.lead and r.lead.owner_id != actor.pk}
    told = Notification.objects.filter(kind="lead_assigned", key__startswith="lead_assigned:bulk:")
    assert sorted(told.values_list("recipient_id", flat=True)) == sorted(o for o in owners if o)


def test_duplicates_existing_and_errors(dealer: Any) -> None:
    before = _setup(dealer)
    rows = [
        _row(1, source_system="autohome", external_id="AH-1"),
        _row(1, source="phone"),  # the same person again: the enquiry joins row 0's lead
        _row(2, source_system="autohome", external_id="AH-1"),  # row 0's external id: row 0's lead
        _row(3, mobile="nope"),  # a bad row does not stop the others
        _row(9002, source="brand", source_system="brand-dcc", external_id="DCC-1"),  # captured before
        _row(9001),  # a known customer attaches and stays with their consultant
        _row(4),
    ]
    results = leads_capture_bulk(actor=dealer.manager, rows=rows)
    assert [r.status for r in results] == ["created", "existing", "existing", "error", "existing", "created", "created"]
    first = results[0].lead
    assert first is not None and results[1].lead == first and results[2].lead == first
    assert "mobile" in results[3].errors and results[3].lead is None
    assert LeadEvent.objects.filter(lead=first, kind=LeadEvent.Kind.ENQUIRY).count() == 1
    assert Lead.objects.filter(mobile="+8613711110001").count() == 1
    known = results[5].lead
    assert known is not None and known.customer_id == before["known"].pk and known.owner == dealer.consultant2
    assert Customer.objects.filter(mobile="+8613711119001").count() == 1
    again = leads_capture_bulk(actor=dealer.manager, rows=rows[:1])
    assert again[0].status == "existing" and again[0].lead == first


def test_a_consultants_leads_are_theirs(dealer: Any) -> None:
    results = leads_capture_bulk(
        actor=dealer.consultant, rows=[_row(n, source=s) for n, s in enumerate(["walk_in", "online", "phone"])]
    )
    leads = [r.lead for r in results]
    assert all(lead is not None and lead.owner == dealer.consultant for lead in leads)
    assert [lead.stage for lead in leads if lead] == [Stage.VISITED, Stage.NEW, Stage.CONTACTED]
    assert all(lead and lead.customer.owner == dealer.consultant for lead in leads)
    customers = [lead.customer_id for lead in leads if lead]
    assert Followup.objects.filter(customer__in=customers, assignee=dealer.consultant, reason="lead").count() == 3
    assert not Notification.objects.filter(kind="lead_assigned").exists()  # nobody else was given a lead


def test_idempotency_prefix_keys_rows_without_external_id(dealer: Any) -> None:
    rows = [_row(1), _row(2, source_system="autohome", external_id="AH-2")]
    first = leads_capture_bulk(actor=dealer.manager, rows=rows, idempotency_prefix="batch-1#")
    again = leads_capture_bulk(actor=dealer.manager, rows=rows, idempotency_prefix="batch-1#")
    assert [r.status for r in first] == ["created", "created"] and [r.status for r in again] == ["existing"] * 2
    assert [r.lead for r in first] == [r.lead for r in again]
    assert first[0].lead is not None and first[0].lead.external_id == "batch-1#0"


def test_a_thousand_rows(dealer: Any, django_assert_max_num_queries: Any) -> None:
    rows = [
        _row(n, source=("online", "brand", "walk_in", "phone")[n % 4], source_system="brand-dcc", external_id=f"D{n}")
        for n in range(1000)
    ]
    with django_assert_max_num_queries(40) as captured:
        started = time.perf_counter()
        results = leads_capture_bulk(actor=dealer.manager, rows=rows)
        elapsed = time.perf_counter() - started
    assert [r.status for r in results] == ["created"] * 1000
    customers = [r.lead.customer_id for r in results if r.lead]
    assert Followup.objects.filter(customer__in=customers, reason="lead", status="open").count() == 1000
    rate = 1000 / elapsed
    print(f"\nleads_capture_bulk: 1,000 leads in {elapsed:.2f} s = {rate:.0f} leads/s, {len(captured)} queries")
    for query in captured.captured_queries:
        print("   ", query["sql"][:100])


def test_a_race_falls_back_to_one_by_one(dealer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unique clash while the batch is written (a concurrent capture of the same person or external
    id) rolls the batch's savepoint back; its rows are then captured one by one, which resolve it."""
    from django.db import IntegrityError

    import sales.intake

    insert = sales.intake.insert_new_rows
    calls: list[int] = []

    def clash(objs: list[Any]) -> None:
        calls.append(len(objs))
        if len(calls) == 1:
            insert(objs)
            raise IntegrityError("duplicate key value violates unique constraint")
        insert(objs)

    monkeypatch.setattr(sales.intake, "insert_new_rows", clash)
    results = leads_capture_bulk(actor=dealer.manager, rows=[_row(1), _row(2, source="walk_in"), _row(1)])
    assert [r.status for r in results] == ["created", "created", "existing"]
    assert calls == [2]  # the batch's leads were written once, then rolled back
    assert Lead.objects.filter(mobile__in=["+8613711110001", "+8613711110002"]).count() == 2
    assert Customer.objects.filter(mobile="+8613711110001").count() == 1
    assert LeadEvent.objects.filter(lead=results[0].lead, kind=LeadEvent.Kind.CREATED).count() == 1
