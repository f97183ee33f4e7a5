"""Customer pages: list filters and paging, create with a duplicate warning, edit, contacts, vehicles, merge."""

from __future__ import annotations

import re

from customers.models import Customer, Touchpoint
from tests.factories import CustomerFactory


def test_the_list_pages_without_counting_and_filters(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        for i in range(30):
            CustomerFactory(name=f"翻页{i:02d}", owner=dealer_a.consultant)
    client = web(dealer_a.manager)
    first = client.get("/customers/", {"sort": "name", "q": "翻页"})
    assert first.status_code == 200 and first.context["has_next"] and len(first.context["rows"]) == 25
    second = client.get("/customers/", {"sort": "name", "q": "翻页", "page": 2})
    assert [c.name for c, _m in second.context["rows"]] == [f"翻页{i:02d}" for i in range(25, 30)]
    assert not second.context["has_next"]
    bad = client.get("/customers/", {"last_visit_from": "2026-02-01", "last_visit_to": "2026-01-01"})
    assert bad.status_code == 200 and bad.context["form"].errors


def test_creating_a_customer_warns_about_a_duplicate_mobile_then_allows_it(dealer_a, web, in_tenant):
    client = web(dealer_a.consultant2)
    data = {
        "kind": "individual",
        "name": "王爱丽家属",
        "mobile": "138 1234 5678",
        "source": "walk_in",
        "consent_call": "on",
    }
    warned = client.post("/customers/new/", data)
    assert warned.status_code == 200 and warned.context["duplicates"]
    page = warned.content.decode()
    # Bob may not see Alice's customer: the warning names the owner, not the customer
    assert dealer_a.objects["customer"].name not in page and "王爱丽" in page
    created = client.post("/customers/new/", {**data, "confirm_duplicate": "1"})
    assert created.status_code == 302
    with in_tenant(dealer_a):
        assert Customer.objects.get(name="王爱丽家属").owner_id == dealer_a.consultant2.pk


def test_form_errors_are_shown_on_their_fields(dealer_a, web):
    response = web(dealer_a.manager).post(
        "/customers/new/",
        {
            "kind": "individual",
            "name": "x",
            "mobile": "12",
            "source": "walk_in",
        },
    )
    assert response.status_code == 200 and "mobile" in response.context["form"].errors


def test_logging_a_call_from_the_customer_page(dealer_a, web, in_tenant):
    pk = dealer_a.objects["customer"].pk
    response = web(dealer_a.consultant).post(
        f"/customers/{pk}/contacts/",
        {"channel": "call", "direction": "outbound", "outcome": "appointment", "notes": "约周六保养"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "约周六保养" in response.content.decode()
    with in_tenant(dealer_a):
        assert Touchpoint.objects.get(notes="约周六保养").staff_id == dealer_a.consultant.pk


def test_adding_a_vehicle_with_a_bad_vin_shows_the_error(dealer_a, web):
    response = web(dealer_a.consultant).post(
        f"/customers/{dealer_a.objects['customer'].pk}/vehicles/", {"vin": "LFV2A21K1R3000001", "brand": "一汽-大众"}
    )
    assert response.status_code == 400 and "vin" in response.context["vehicle_form"].errors


def test_merging_through_the_pages(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        duplicate = CustomerFactory(name="机密客户DEALERA重复")
    client = web(dealer_a.agent)
    pk = dealer_a.objects["customer"].pk
    assert "机密客户DEALERA重复" in client.get(f"/customers/{pk}/merge/", {"q": "机密"}).content.decode()
    assert client.get(f"/customers/{pk}/merge/", {"duplicate": duplicate.pk}).status_code == 200
    unconfirmed = client.post(f"/customers/{pk}/merge/", {"duplicate": duplicate.pk})
    assert unconfirmed.status_code == 200  # the confirmation box is required
    done = client.post(f"/customers/{pk}/merge/", {"duplicate": duplicate.pk, "confirm": "on"})
    assert done.status_code == 302
    with in_tenant(dealer_a):
        assert Customer.objects.get(pk=duplicate.pk).merged_into_id == pk
    assert web(dealer_a.consultant).get(f"/customers/{pk}/merge/").status_code == 403


def test_the_new_customer_form_has_no_consent_ticked_and_the_page_shows_who_changed_it(dealer_a, web, in_tenant):
    client = web(dealer_a.manager)
    form = client.get("/customers/new/").context["form"]
    assert [form[f"consent_{c}"].value() for c in ("call", "sms", "wechat", "email")] == [False] * 4
    created = client.post("/customers/new/", {"kind": "individual", "name": "表单客户", "source": "walk_in"})
    assert created.status_code == 302
    with in_tenant(dealer_a):
        customer = Customer.objects.get(name="表单客户")
    assert not (customer.consent_call or customer.consent_sms or customer.consent_wechat or customer.consent_email)
    page = client.get(f"/customers/{customer.pk}/")
    assert page.context["consent_change"] is None
    client.post(
        f"/customers/{customer.pk}/edit/",
        {"kind": "individual", "name": "表单客户", "source": "walk_in", "consent_sms": "on"},
    )
    page = client.get(f"/customers/{customer.pk}/")
    change = page.context["consent_change"]
    assert change.changed == ["sms"] and change.via == "form" and change.set_by_id == dealer_a.manager.user_id
    assert 'data-testid="consent-change"' in page.content.decode()


def test_the_timeline_and_the_ledger_show_labels_not_codes_in_both_languages(dealer_a, web, in_tenant):
    """Issue 23 item 12: the timeline showed `vehicle_sale`, `insurance`, `accessories` and the ledger
    `order 12 · vehicle_sale ¥5000`; a submitted survey was missing from the timeline."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from loyalty import batch
    from loyalty import services as loyalty
    from loyalty.models import LedgerEntry, Programme
    from surveys import services as surveys
    from tests.factories import OrderFactory

    today = timezone.localdate()
    with in_tenant(dealer_a):
        customer = CustomerFactory(name="时间线", owner=dealer_a.consultant, mobile="13800138111", consent_sms=True)
        for n, kind in enumerate(("vehicle_sale", "insurance", "accessories")):
            OrderFactory(
                customer=customer,
                kind=kind,
                amount=Decimal("123456.50"),
                ordered_on=today - timedelta(days=10 - n),
                external_id=f"RO-TL-{n}",
            )
        Programme.objects.filter(pk=loyalty.programme().pk).update(starts_on=today - timedelta(days=365))
        batch.orders_earn(run_date=today)  # enrols the buyer and credits each order (the nightly note)
        assert LedgerEntry.objects.filter(member__customer=customer, kind="earn").count() >= 2
        template = {t.code: t for t in surveys.templates_ensure()}["service"]
        invitation = surveys.invitation_create(actor=dealer_a.agent, customer=customer, template=template)
        raw: dict[str, object] = {}
        for q in invitation.version.questions.all():
            if q.kind == "rating":
                raw[q.key] = 2
            elif q.kind == "nps":
                raw[q.key] = 3
        surveys.answers_submit(invitation=invitation, raw=raw)
    client = web(dealer_a.manager)
    for language, labels in {
        "zh-hans": ("整车销售", "保险", "调查"),
        "en": ("Vehicle sale", "Insurance", "Survey"),
    }.items():
        client.post("/accounts/language/", {"language": language, "next": "/"})  # the manager's choice
        page = client.get(f"/customers/{customer.pk}/").content.decode()
        timeline = page[page.index('data-testid="timeline"') :]
        for code in ("vehicle_sale", "insurance", "accessories"):
            assert code not in timeline, (language, code)
        assert not re.search(r"order \d+ ·", timeline), language  # the nightly run's stored note
        for label in labels:
            assert label in timeline, (language, label)
        assert "¥123,456.50" in timeline
        assert "/surveys/responses/" in timeline  # the survey answer, linked to its answers


def test_the_header_searches_customers_and_the_list_sorts_by_its_column_headers(dealer_a, web, in_tenant):
    from datetime import date

    with in_tenant(dealer_a):
        for name, visit in (("排序乙", date(2026, 3, 1)), ("排序甲", date(2026, 5, 1)), ("排序丙", date(2026, 1, 1))):
            CustomerFactory(name=name, owner=dealer_a.consultant, last_visit_on=visit)
    client = web(dealer_a.consultant)
    home = client.get("/").content.decode()
    assert 'data-testid="global-search"' in home and 'action="/customers/"' in home

    def names(**query: str) -> list[str]:
        rows = client.get("/customers/", {"q": "排序", **query}).context["rows"]
        return [c.name for c, _mobile in rows]

    page = client.get("/customers/", {"q": "排序"}).content.decode()
    assert 'href="?q=%E6%8E%92%E5%BA%8F&amp;sort=name"' in page  # the header keeps the search
    assert names(sort="name") == sorted(names(sort="name"))
    assert names(sort="last_visit") == ["排序甲", "排序乙", "排序丙"] and names(sort="stale") == [
        "排序丙",
        "排序乙",
        "排序甲",
    ]
    sorted_page = client.get("/customers/", {"q": "排序", "sort": "last_visit"}).content.decode()
    assert 'aria-sort="descending"' in sorted_page and "sort=stale" in sorted_page  # the next click reverses
    # the tenant admin (no customer pages) gets no search box
    assert 'data-testid="global-search"' not in web(dealer_a.admin).get("/").content.decode()


def test_bulk_actions_give_red_list_and_export_the_ticked_customers(dealer_a, web, in_tenant):
    from openpyxl import load_workbook

    from crm.tenancy.models import AuditEvent

    with in_tenant(dealer_a):
        picked = [CustomerFactory(name=f"批量{n}", owner=dealer_a.consultant) for n in range(3)]
        black = CustomerFactory(name="批量黑", owner=dealer_a.consultant, list_flag="black", list_reason="欺诈")
        other = CustomerFactory(name="批量外", owner=dealer_a.consultant)
    ids = [str(c.pk) for c in [*picked, black]]
    manager = web(dealer_a.manager)
    listing = manager.get("/customers/", {"q": "批量"}).content.decode()
    assert 'data-testid="bulk-form"' in listing and listing.count('data-testid="select-customer"') == 5

    # give three to another consultant: one audit event names them
    response = manager.post(
        "/customers/bulk/", {"action": "assign", "id": ids[:3], "to_member": dealer_a.consultant2.pk, "back": "q=批量"}
    )
    assert response.status_code == 302 and response["Location"].startswith("/customers/?q=")
    with in_tenant(dealer_a):
        assert {c.owner_id for c in Customer.objects.filter(pk__in=ids[:3])} == {dealer_a.consultant2.pk}
        assert Customer.objects.get(pk=other.pk).owner_id == dealer_a.consultant.pk
        event = AuditEvent.objects.get(action="customers_reassigned", target_id=str(dealer_a.consultant2.pk))
        assert sorted(event.data["customers"]) == sorted(int(i) for i in ids[:3])

    # the red list needs a reason; a black-listed customer stays black
    manager.post("/customers/bulk/", {"action": "red_list", "id": ids, "reason": ""})
    with in_tenant(dealer_a):
        assert not Customer.objects.filter(pk__in=ids, list_flag="red").exists()
    manager.post("/customers/bulk/", {"action": "red_list", "id": ids, "reason": "老客户推荐多"})
    with in_tenant(dealer_a):
        flags = dict(Customer.objects.filter(pk__in=ids).values_list("pk", "list_flag"))
    assert flags == {**{c.pk: "red" for c in picked}, black.pk: "black"}

    # export only the ticked ones
    export = manager.post("/customers/bulk/", {"action": "export_xlsx", "id": ids[:2]})
    assert export.status_code == 200
    sheet = load_workbook(__import__("io").BytesIO(b"".join(export.streaming_content))).active
    names = {row[1] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert len(list(sheet.iter_rows(min_row=2))) == 2 and "批量外" not in names

    # junk ids and unknown actions are refused with a message, nothing changes
    for junk in (
        {"action": "assign", "id": ["x"], "to_member": dealer_a.consultant.pk},
        {"action": "delete", "id": ids},
    ):
        assert manager.post("/customers/bulk/", junk).status_code == 302
    with in_tenant(dealer_a):
        assert {c.owner_id for c in Customer.objects.filter(pk__in=ids[:3])} == {dealer_a.consultant2.pk}


def test_a_consultant_gets_no_bulk_assignment_and_cannot_post_one(dealer_a, web, in_tenant):
    with in_tenant(dealer_a):
        mine = CustomerFactory(name="自己的", owner=dealer_a.consultant)
    client = web(dealer_a.consultant)
    page = client.get("/customers/").content.decode()
    assert 'value="assign"' not in page
    client.post("/customers/bulk/", {"action": "assign", "id": [mine.pk], "to_member": dealer_a.consultant2.pk})
    with in_tenant(dealer_a):
        assert Customer.objects.get(pk=mine.pk).owner_id == dealer_a.consultant.pk
