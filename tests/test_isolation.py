"""The tenant-isolation suite. It walks every URL pattern and API route from the resolver, so a
route added later is covered without editing this file.

With data in dealership A, it acts as dealership B's most privileged staff (manager, tenant
admin, integration key) and as a consultant of A who does not own the record, and tries GET,
POST, PUT, PATCH and DELETE on every route with A's object ids, plus list, filter and search
with A's values. Every attempt on an id must answer 403, 404 or 405; no response may contain
A's data; and A's rows in the database must be exactly as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from crm.tenancy.context import tenant_context
from crm.tenancy.middleware import SESSION_TENANT_KEY
from crm.tenancy.rls import tenant_owned_tables
from tests.routes import Route, all_routes, format_suffix_twins, verb_refused_before_lookup

# 400: input refused before any lookup — harmless as long as nothing leaks and nothing changes.
DENIED = {400, 403, 404, 405}
# Pages anyone may open without signing in. Nothing else may answer an anonymous visitor.
PUBLIC_ROUTES = {
    "healthz",
    "accounts:set_language",
    "accounts:login",
    "accounts:set_password",
    "accounts:password_reset",
    "accounts:password_reset_done",
    "v1:schema",
    "v1:docs",
    "v1:redoc",
    "admin:login",  # Django admin's own sign-in for platform operators
    # a dealership's public complaint form and status check (tests/test_complaints_pages.py)
    "complaint_public_form",
    "complaint_public_thanks",
    "complaint_public_status",
    # a survey invitation's answer page, reached by its signed link (tests/test_surveys.py)
    "survey_answer",
    "survey_thanks",
}
METHODS = ("get", "post", "put", "patch", "delete")


def fingerprint(tenant_id: int, *, upto: dict[str, int] | None = None) -> dict[str, tuple[int, str, int]]:
    """Per tenant table: (row count, hash of the rows, highest id), as the tenant itself sees them.

    With `upto`, only rows with an id up to the given one are hashed: the rows that existed before.
    """
    prints: dict[str, tuple[int, str, int]] = {}
    with tenant_context(tenant_id), connection.cursor() as cursor:
        for table, _append_only in tenant_owned_tables():
            limit = (upto or {}).get(table, 2**62)
            cursor.execute(
                f"SELECT count(*), coalesce(string_agg(t::text, '|' ORDER BY t.id) FILTER (WHERE t.id <= %s), ''), "
                f'coalesce(max(t.id), 0) FROM "{table}" t',
                [limit],
            )
            count, rows, top = cursor.fetchone()
            prints[table] = (count, hashlib.sha256(rows.encode()).hexdigest(), top)
    return prints


def _session_client(membership: Any, api: bool) -> Client:
    client: Client = APIClient() if api else Client()
    client.force_login(membership.user)
    session = client.session
    session[SESSION_TENANT_KEY] = membership.tenant_id
    session.save()
    return client


def _body_with_ids(target_ids: list[int], tenant_id: int) -> dict[str, Any]:
    some_id = target_ids[0]
    return {
        "tenant": tenant_id,
        "tenant_id": tenant_id,
        "id": some_id,
        "pk": some_id,
        "owner": some_id,
        "customer": some_id,
        "vehicle": some_id,
        "membership": some_id,
        "from_membership": some_id,
        "to_membership": target_ids[-1],
        "hand_over_to": some_id,
        "role": "tenant_admin",
        "name": "x",
        "field": "mobile",
        "kind": "personal",
        "scopes": ["customers:read"],
        "email": "intruder@example.com",
        "action": "deactivate",
    }


def _refused_by_admin_site(client: Client) -> bool:
    """Whether the admin site turns away the user signed in on `client` (anyone without a session)."""
    from django.contrib import admin
    from django.contrib.auth import SESSION_KEY, get_user_model
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    user_id = client.session.get(SESSION_KEY) if hasattr(client, "session") else None
    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(pk=user_id) if user_id is not None else AnonymousUser()
    return not admin.site.has_permission(request)


def _request(client: Client, method: str, path: str, data: dict[str, Any] | None, api: bool) -> Any:
    call: Callable[..., Any] = getattr(client, method)
    if method == "get":
        return call(path, data or {})
    if api:
        return call(path, data or {}, format="json")
    if method == "post":
        return call(path, data or {})
    return call(path, data=data or {}, content_type="application/json")


def _leaks(response: Any, secrets: list[str], sent: dict[str, Any] | None = None) -> list[str]:
    # What the request itself carried (a search term echoed in the search box) is not a leak.
    echoed = {str(v) for v in (sent or {}).values()}
    if getattr(response, "streaming", False):
        body = b"".join(response.streaming_content).decode(errors="replace")
    else:
        body = response.content.decode(errors="replace")
    return [secret for secret in secrets if secret and secret not in echoed and secret in body]


def _attack(
    *,
    routes: list[Route],
    client: Client,
    api_only: bool,
    api: bool,
    target_ids: list[int],
    secrets: list[str],
    target_tenant_id: int,
) -> list[str]:
    """Every route (but the ones below), every verb, with each of the target ids or, for a route
    without an id, with a search for the targets' values, a plain list and a create.

    Not sent, because another request of the attack answers exactly as they would (so no
    outcome, and no leak, goes unseen):
    * a DRF format-suffix twin ("customers/<pk>.json", `format_suffix_twins`) of a route in the
      list with any id but the first (it still gets every verb once): DRF's router serves both
      patterns with the very same view function, which gets the same arguments plus
      format="json"; that only picks the renderer, and the plain route's default renderer (our
      clients send no Accept header) is JSON as well. The twin's permission checks, queryset and
      lookup are the plain route's, which is attacked in full;
    * for a persona the admin site refuses (not staff: AdminSite.has_permission is false), the
      admin routes wrapped by the site's admin_view with any id but the first: admin_view
      redirects such a user to the admin sign-in before the view runs, so the id in the path is
      never read. Every admin route is still sent with every verb, and with every id to a
      persona the site lets in;
    * on an API route, a verb its DRF view does not serve with any id but the first
      (`verb_refused_before_lookup`): DRF authenticates, checks permissions that look at no
      object nor at the URL's arguments, then answers 405 — the id is never read either.
    """
    failures: list[str] = []
    twins = format_suffix_twins(routes)
    refused_by_admin = _refused_by_admin_site(client)
    for route in routes:
        if api_only and not route.is_api:
            continue
        use_api = api or route.is_api
        if route.takes_id:
            ids = target_ids[:1] if refused_by_admin and route.gated_by_admin_site else target_ids
            if route in twins:
                ids = target_ids[:1]  # every verb once; the plain route takes every id (see above)
            for object_id in ids:
                path = route.path(object_id)
                assert path is not None
                for method in METHODS:
                    if route.is_admin and method not in ("get", "post"):
                        continue
                    if object_id != ids[0] and verb_refused_before_lookup(route, method):
                        continue
                    body = None if method == "get" else _body_with_ids(target_ids, target_tenant_id)
                    response = _request(client, method, path, body, use_api)
                    allowed = DENIED | ({302} if route.is_admin else set())
                    if response.status_code not in allowed:
                        failures.append(f"{method.upper()} {path} -> {response.status_code}")
                    leaked = _leaks(response, secrets)
                    if leaked:
                        failures.append(f"{method.upper()} {path} leaked {leaked}")
        else:
            path = route.path()
            assert path is not None
            search = {
                "q": secrets[0],
                "search": secrets[0],
                "owner": target_ids[0],
                "customer": target_ids[0],
                "external_id": secrets[4] if len(secrets) > 4 else secrets[0],
                "page_size": 500,
            }
            for method, data in (("get", search), ("get", {}), ("post", _body_with_ids(target_ids, target_tenant_id))):
                response = _request(client, method, path, data, use_api)
                if response.status_code >= 500:
                    failures.append(f"{method.upper()} {path} -> {response.status_code}")
                leaked = _leaks(response, secrets, data)
                if leaked:
                    failures.append(f"{method.upper()} {path}?{data} leaked {leaked}")
    return failures


@pytest.fixture
def routes() -> list[Route]:
    # sign-out would end the session half-way through the attack; it is tested on its own.
    return [r for r in all_routes() if r.name != "accounts:logout"]


def test_every_route_is_exercised(routes):
    unbuildable = [r.template for r in routes if r.path(1) is None]
    assert unbuildable == [], f"routes the isolation suite cannot build a path for: {unbuildable}"
    names = {r.name for r in routes}
    assert {"customers:detail", "v1:customer-detail", "tenancy:member", "v1:membership-detail"} <= names


@pytest.mark.parametrize("persona", ["manager", "admin"])
def test_another_dealerships_staff_cannot_reach_a_single_thing_of_ours(persona, dealer_a, dealer_b, routes):
    before = fingerprint(dealer_a.tenant.pk)
    client = _session_client(getattr(dealer_b, persona), api=False)
    api_client = _session_client(getattr(dealer_b, persona), api=True)
    target_ids = sorted(dealer_a.ids())
    failures = _attack(
        routes=[r for r in routes if not r.is_api],
        client=client,
        api_only=False,
        api=False,
        target_ids=target_ids,
        secrets=dealer_a.secrets,
        target_tenant_id=dealer_a.tenant.pk,
    )
    failures += _attack(
        routes=[r for r in routes if r.is_api],
        client=api_client,
        api_only=True,
        api=True,
        target_ids=target_ids,
        secrets=dealer_a.secrets,
        target_tenant_id=dealer_a.tenant.pk,
    )
    assert failures == [], "\n".join(failures[:50])
    assert fingerprint(dealer_a.tenant.pk) == before
    # and the session still belongs to B: no request switched it to A
    me = api_client.get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["tenant"]["id"] == dealer_b.tenant.pk


def test_another_dealerships_api_key_cannot_reach_a_single_thing_of_ours(dealer_a, dealer_b, routes):
    before = fingerprint(dealer_a.tenant.pk)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {dealer_b.raw_key}")
    failures = _attack(
        routes=routes,
        client=client,
        api_only=True,
        api=True,
        target_ids=sorted(dealer_a.ids()),
        secrets=dealer_a.secrets,
        target_tenant_id=dealer_a.tenant.pk,
    )
    assert failures == [], "\n".join(failures[:50])
    assert fingerprint(dealer_a.tenant.pk) == before


def test_a_consultant_cannot_reach_a_colleagues_customers(dealer_a, dealer_b, routes):
    """Bob, a consultant of A, attacks Alice's customer and everything that hangs off it."""
    before = fingerprint(dealer_a.tenant.pk)
    bob = dealer_a.consultant2
    targets = [obj.pk for key, obj in dealer_a.objects.items() if key not in ("consultant",)]
    alice_secrets = [s for s in dealer_a.secrets if not s.endswith("@dealer-a.test")]
    failures = _attack(
        routes=[r for r in routes if not r.is_api],
        client=_session_client(bob, api=False),
        api_only=False,
        api=False,
        target_ids=sorted(set(targets) - {bob.pk}),
        secrets=alice_secrets,
        target_tenant_id=dealer_b.tenant.pk,
    )
    failures += _attack(
        routes=[r for r in routes if r.is_api],
        client=_session_client(bob, api=True),
        api_only=True,
        api=True,
        target_ids=sorted(set(targets) - {bob.pk}),
        secrets=alice_secrets,
        target_tenant_id=dealer_b.tenant.pk,
    )
    assert failures == [], "\n".join(failures[:50])
    # Bob may create his own tokens (and their audit entries) and choose which notifications he
    # gets (his own opt-outs, and only his); every row that existed is untouched.
    after = fingerprint(dealer_a.tenant.pk, upto={table: top for table, (_c, _h, top) in before.items()})
    for table, (count, digest, _top) in before.items():
        assert after[table][1] == digest, f"{table}: existing rows changed"
        if table not in ("tenancy_apicredential", "tenancy_auditevent", "core_notificationoptout"):
            assert after[table][0] == count, f"{table}: rows added or removed"
    from crm.core.models import NotificationOptOut

    with tenant_context(dealer_a.tenant.pk):
        added = NotificationOptOut.objects.filter(pk__gt=before["core_notificationoptout"][2])
        assert set(added.values_list("member_id", flat=True)) <= {bob.pk}, "opt-outs set for someone else"


def test_anonymous_visitors_reach_only_the_public_pages(dealer_a, routes):
    client = Client()
    api_client = APIClient()
    failures = []
    for route in routes:
        path = route.path(sorted(dealer_a.ids())[0])
        assert path is not None
        response = (api_client if route.is_api else client).get(path)
        if route.name in PUBLIC_ROUTES:
            if response.status_code >= 500:
                failures.append(f"public {path} -> {response.status_code}")
        elif route.is_api:
            if response.status_code not in (401, 403):
                failures.append(f"API {path} -> {response.status_code} without credentials")
        elif route.is_admin:
            if response.status_code != 302 or not response["Location"].startswith("/admin/"):
                failures.append(f"admin {path} -> {response.status_code} without sign-in")
        elif response.status_code != 302 or not response["Location"].startswith("/accounts/sign-in/"):
            failures.append(f"page {path} -> {response.status_code} without sign-in")
        if _leaks(response, dealer_a.secrets):
            failures.append(f"{path} leaked to an anonymous visitor")
    assert failures == [], "\n".join(failures)
