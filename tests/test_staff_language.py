"""Staff language (DEVELOPERS.md, docs/configuration.md "Languages"): the person's saved choice wins,
else the dealership's default, else the browser's Accept-Language (only where nobody is signed in)."""

from __future__ import annotations

import pytest

from crm.accounts.models import User
from crm.tenancy.models import Tenant

pytestmark = pytest.mark.django_db

CHINESE, ENGLISH = "今日回访", "My follow-ups today"


def _home(client, accept: str) -> str:  # type: ignore[no-untyped-def]
    return client.get("/followups/", HTTP_ACCEPT_LANGUAGE=accept).content.decode()


def test_the_dealership_default_beats_the_browser_and_a_saved_choice_beats_both(dealer_a, web):
    User.objects.filter(pk=dealer_a.consultant.user_id).update(preferred_language="")
    Tenant.objects.filter(pk=dealer_a.tenant.pk).update(locale="en")
    client = web(dealer_a.consultant)
    assert ENGLISH in _home(client, "zh-CN,zh;q=0.9")  # the dealership's default, not the browser's
    Tenant.objects.filter(pk=dealer_a.tenant.pk).update(locale="zh-hans")
    assert CHINESE in _home(client, "en-US,en;q=0.9")
    # the switch saves the person's choice, which then wins over the dealership's default
    response = client.post("/accounts/language/", {"language": "en", "next": "/followups/"})
    assert response.status_code == 302
    assert User.objects.get(pk=dealer_a.consultant.user_id).preferred_language == "en"
    client.cookies.clear()  # another browser: the saved choice still holds
    client = web(dealer_a.consultant)
    assert ENGLISH in _home(client, "zh-CN")


def test_a_visitor_not_signed_in_gets_the_browser_s_language(client):
    assert "Sign in" in client.get("/accounts/sign-in/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "登录" in client.get("/accounts/sign-in/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()


def test_an_unknown_language_is_not_saved(dealer_a, web):
    User.objects.filter(pk=dealer_a.consultant.user_id).update(preferred_language="zh-hans")
    client = web(dealer_a.consultant)
    client.post("/accounts/language/", {"language": "xx", "next": "/"})
    assert User.objects.get(pk=dealer_a.consultant.user_id).preferred_language == "zh-hans"
