"""Bad input from a dealership's own staff never breaks a page or endpoint: every route, with every
object id of the dealership, gets junk in its query and its body, and must not answer 5xx.

(The isolation suite sends such requests as another dealership's staff; this one as the manager of
the dealership that owns the rows, which reaches the code behind the permission checks.)"""

from __future__ import annotations

from tests.routes import all_routes

JUNK = {
    "to_status": "zzz",
    "note": "x" * 5000,
    "assignee": "abc",
    "file": "not-a-file",
    "customer": "x",
    "template": "nope",
    "share_key": "-5",
    "recency_days": "a,b",
    "start": "2026-13-01",
    "end": "x",
    "from_date": "bad",
    "to_date": "bad",
    "severity": "?",
    "category": "??",
    "form": "policy",
    "first_response_minutes": "-1",
    "resolution_minutes": "x",
    "contact_mobile": "1",
    "channel": "fax",
    "flag": "purple",
    "q": "'%_\\",
    "page": "-3",
    "queue": "nope",
    "tier": "gold",
    "r": "9",
    "watch": "7",
}


def test_junk_from_the_dealerships_own_manager_never_answers_5xx(dealer_a, web, api):
    client, api_client = web(dealer_a.manager), api(dealer_a.manager)
    failures = []
    for route in all_routes():
        if route.name == "accounts:logout" or route.is_admin:
            continue
        for object_id in sorted(dealer_a.ids()) if route.takes_id else [None]:
            path = route.path(object_id)
            assert path is not None
            if route.is_api:
                responses = [
                    api_client.get(path, JUNK),
                    api_client.post(path, JUNK, format="json"),
                    api_client.patch(path, JUNK, format="json"),
                ]
            else:
                responses = [client.get(path, JUNK), client.post(path, JUNK)]
            failures += [f"{path} -> {r.status_code}" for r in responses if r.status_code >= 500]
    assert failures == []
