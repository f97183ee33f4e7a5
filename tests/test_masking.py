"""Privacy between colleagues: own book only, masked numbers, audited reveals."""

from __future__ import annotations

from crm.tenancy.models import AuditEvent
from customers.validators import mask_id_number, mask_mobile


def test_mask_mobile_keeps_the_first_three_and_last_four_digits():
    assert mask_mobile("+8613812345678") == "138****5678"
    assert mask_mobile("") == ""
    assert mask_id_number("11010519491231002X") == "110***********002X"


def test_a_consultant_sees_only_their_own_customers(dealer_a, api, in_tenant):
    from customers.models import Customer

    with in_tenant(dealer_a):
        Customer.objects.create(name="博的客户", owner=dealer_a.consultant2, mobile="+8613700001234")
    alice = [r["name"] for r in api(dealer_a.consultant).get("/api/v1/customers/").json()["results"]]
    bob = [r["name"] for r in api(dealer_a.consultant2).get("/api/v1/customers/").json()["results"]]
    manager = {r["name"] for r in api(dealer_a.manager).get("/api/v1/customers/").json()["results"]}
    assert alice == [dealer_a.objects["customer"].name]
    assert bob == ["博的客户"]
    assert manager == {dealer_a.objects["customer"].name, "博的客户"}


def test_the_owner_sees_full_numbers_and_a_manager_sees_them_masked(dealer_a, api):
    pk = dealer_a.objects["customer"].pk
    owner_view = api(dealer_a.consultant).get(f"/api/v1/customers/{pk}/").json()
    manager_view = api(dealer_a.manager).get(f"/api/v1/customers/{pk}/").json()
    assert owner_view["mobile"] == "+8613812345678"
    assert manager_view["mobile"] == "138****5678"
    assert manager_view["id_number"] == "110***********002X"


def test_revealing_a_number_is_an_audited_action(dealer_a, api, in_tenant):
    pk = dealer_a.objects["customer"].pk
    response = api(dealer_a.manager).post(f"/api/v1/customers/{pk}/reveal/", {"field": "mobile"}, format="json")
    assert response.status_code == 200 and response.json() == {"field": "mobile", "value": "+8613812345678"}
    with in_tenant(dealer_a):
        event = AuditEvent.objects.get(action="pii_revealed")
        assert (event.actor_id, event.target_type, event.target_id, event.data) == (
            dealer_a.manager.user_id,
            "customers.customer",
            str(pk),
            {"field": "mobile"},
        )


def test_roles_without_the_capability_cannot_reveal(dealer_a, api, in_tenant):
    pk = dealer_a.objects["customer"].pk
    auditor = api(dealer_a.auditor).post(f"/api/v1/customers/{pk}/reveal/", {"field": "mobile"}, format="json")
    assert auditor.status_code == 403
    assert auditor.json()["error"]["code"] == "permission_denied"
    colleague = api(dealer_a.consultant2).post(f"/api/v1/customers/{pk}/reveal/", {"field": "mobile"}, format="json")
    assert colleague.status_code == 404
    with in_tenant(dealer_a):
        assert not AuditEvent.objects.filter(action="pii_revealed").exists()


def test_reveal_rejects_unknown_fields_with_a_field_error(dealer_a, api):
    pk = dealer_a.objects["customer"].pk
    response = api(dealer_a.manager).post(f"/api/v1/customers/{pk}/reveal/", {"field": "name"}, format="json")
    assert response.status_code == 400
    assert "field" in response.json()["error"]["fields"]


def test_the_customer_page_masks_and_reveals_through_htmx(dealer_a, web, in_tenant):
    pk = dealer_a.objects["customer"].pk
    client = web(dealer_a.agent)
    page = client.get(f"/customers/{pk}/").content.decode()
    assert "138****5678" in page and "+8613812345678" not in page and "reveal-mobile" in page
    revealed = client.post(f"/customers/{pk}/reveal/mobile/", HTTP_HX_REQUEST="true").content.decode()
    assert "+8613812345678" in revealed
    with in_tenant(dealer_a):
        assert AuditEvent.objects.filter(action="pii_revealed", actor=dealer_a.agent.user).count() == 1


def test_the_customer_list_finds_by_plate_vin_and_mobile_tail(dealer_a, web):
    client = web(dealer_a.manager)
    name = dealer_a.objects["customer"].name
    for query in ("粤B A1234", "粤b·a1234", "LFV2A21K3R3000001", "12345678", "机密"):
        assert name in client.get("/customers/", {"q": query}).content.decode(), query
    assert name not in client.get("/customers/", {"q": "不存在"}).content.decode()


def test_opening_someone_elses_customer_record_is_audited_but_the_owners_is_not(dealer_a, api, web, in_tenant):
    pk = dealer_a.objects["customer"].pk
    api(dealer_a.consultant).get(f"/api/v1/customers/{pk}/")
    web(dealer_a.consultant).get(f"/customers/{pk}/")
    with in_tenant(dealer_a):
        assert not AuditEvent.objects.filter(action="customer_viewed").exists()
    api(dealer_a.manager).get(f"/api/v1/customers/{pk}/")
    web(dealer_a.agent).get(f"/customers/{pk}/")
    with in_tenant(dealer_a):
        viewers = set(AuditEvent.objects.filter(action="customer_viewed").values_list("actor_id", flat=True))
        assert viewers == {dealer_a.manager.user_id, dealer_a.agent.user_id}


def test_integration_reads_with_full_numbers_are_audited_per_request(dealer_a, api, in_tenant):
    rows = api(key=dealer_a.raw_key).get("/api/v1/customers/").json()["results"]
    assert rows[0]["mobile"] == "+8613812345678"  # integrations receive full numbers…
    with in_tenant(dealer_a):
        event = AuditEvent.objects.get(action="customers_read_unmasked")  # …and every read is recorded
        assert event.data == {"customer_ids": [dealer_a.objects["customer"].pk], "count": 1}


def test_a_complaint_ticket_masks_the_contact_mobile_and_reveals_it_audited(dealer_a, api, web, in_tenant):
    """The ticket's contact is usually the customer: the number follows the customer page's rule
    (full for the assignee and for integrations, whose reads are audited; masked for everyone
    else, revealed only through the audited action)."""
    ticket = dealer_a.objects["ticket"]
    full = ticket.contact_mobile
    masked = f"{full[3:6]}****{full[-4:]}"
    manager = api(dealer_a.manager)
    listed = manager.get("/api/v1/complaints/tickets/").json()["results"]
    assert [row["contact_mobile"] for row in listed if row["id"] == ticket.pk] == [masked]
    assert manager.get(f"/api/v1/complaints/tickets/{ticket.pk}/").json()["contact_mobile"] == masked
    for page in (f"/complaints/{ticket.pk}/", "/complaints/?queue=all"):
        html = web(dealer_a.manager).get(page).content.decode()
        assert full not in html and masked in html
    with in_tenant(dealer_a):
        assert not AuditEvent.objects.filter(action="pii_revealed").exists()
    revealed = manager.post(f"/api/v1/complaints/tickets/{ticket.pk}/reveal-mobile/")
    assert revealed.status_code == 200 and revealed.json() == {"contact_mobile": full}
    with in_tenant(dealer_a):
        event = AuditEvent.objects.get(action="pii_revealed")
        assert event.actor == dealer_a.manager.user and event.data == {"field": "contact_mobile"}
    # a consultant who may not reveal numbers is refused, and nothing is recorded
    assert api(dealer_a.consultant).post(f"/api/v1/complaints/tickets/{ticket.pk}/reveal-mobile/").status_code in (
        403,
        404,
    )
    # the assignee (who calls back) sees it in full; an integration too, and its read is audited
    assert api(dealer_a.agent).get(f"/api/v1/complaints/tickets/{ticket.pk}/").json()["contact_mobile"] == full
    from crm.tenancy.models import ApiCredential
    from crm.tenancy.services import credential_create

    with in_tenant(dealer_a):
        _credential, key = credential_create(
            actor=dealer_a.admin, kind=ApiCredential.Kind.INTEGRATION, name="呼叫中心", scopes=["complaints:read"]
        )
    assert api(key=key).get(f"/api/v1/complaints/tickets/{ticket.pk}/").json()["contact_mobile"] == full
    with in_tenant(dealer_a):
        read = AuditEvent.objects.get(action="customers_read_unmasked", summary__contains="complaint tickets")
        assert read.data == {"ticket_ids": [ticket.pk], "count": 1}
