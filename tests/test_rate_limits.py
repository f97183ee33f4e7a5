"""Public forms' rate limits: one count for the whole installation (not per process), keyed on the
client address a trusted proxy hands on."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import RequestFactory

from crm.core.ratelimit import attempt_over_limit, client_address

ROOT = Path(__file__).resolve().parent.parent
COUNT_IN_ANOTHER_PROCESS = """
from datetime import timedelta
from crm.core.ratelimit import attempt_over_limit
print(sum(not attempt_over_limit(key="test:shared", limit=5, window=timedelta(hours=1)) for _ in range({n})))
"""


def _attempts_in_another_process(n: int) -> int:
    """A second server process (its own Python, its own memory), counting against the same database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"],
        "REDIS_URL": "",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", COUNT_IN_ANOTHER_PROCESS.format(n=n)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)  # the other process sees only committed counts
def test_without_redis_two_processes_share_one_count(settings):
    settings.REDIS_URL = None
    passed_here = sum(not attempt_over_limit(key="test:shared", limit=5, window=timedelta(hours=1)) for _ in range(3))
    passed_there = _attempts_in_another_process(9)
    passed_after = sum(not attempt_over_limit(key="test:shared", limit=5, window=timedelta(hours=1)) for _ in range(3))
    assert (passed_here, passed_there, passed_after) == (3, 2, 0)  # 5 of 15 in all, whoever served them


def test_with_redis_configured_the_count_is_in_the_cache(settings, db):
    settings.REDIS_URL = (
        "redis://127.0.0.1:6379/15"  # the cache of these tests is local memory: the path, not the server
    )
    results = [attempt_over_limit(key="test:cache", limit=2, window=timedelta(hours=1)) for _ in range(4)]
    assert results == [False, False, True, True]
    from crm.core.models import RateLimitCounter

    assert not RateLimitCounter.objects.exists()


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "client"),
    [
        ("203.0.113.9", "", [], "203.0.113.9"),
        # a header from a client that is not a trusted proxy is ignored: it could be forged
        ("203.0.113.9", "198.51.100.1", [], "203.0.113.9"),
        ("10.0.0.5", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
        # read from the right: the proxies' own hops are skipped, a forged left part is not believed
        ("10.0.0.5", "6.6.6.6, 198.51.100.1, 10.0.0.7", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.5", "not-an-address", ["10.0.0.0/8"], "10.0.0.5"),
        ("::1", "2001:db8::1", ["::1"], "2001:db8::1"),
    ],
)
def test_the_client_is_the_address_the_trusted_proxy_hands_on(settings, remote, forwarded, trusted, client):
    import ipaddress

    settings.TRUSTED_PROXIES = [ipaddress.ip_network(n) for n in trusted]
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == client


def test_two_clients_behind_one_proxy_have_their_own_limits(dealer_a, client, settings):
    """The public complaint form behind a proxy: each visitor counts on their own (5 an hour)."""
    import ipaddress

    from complaints import services
    from crm.tenancy.context import tenant_context

    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    with tenant_context(dealer_a.tenant.pk):
        category = services.categories_ensure()[5]
    form = {"contact_name": "钱先生", "contact_mobile": "13622223333", "category": category.pk}
    form |= {"subject": "等待时间太长", "description": "保养等了四个小时", "website": ""}

    def post(visitor: str) -> int:
        meta = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": visitor}
        return int(client.post(f"/c/{dealer_a.tenant.code}/", form, **meta).status_code)

    assert [post("198.51.100.1") for _ in range(6)] == [302] * 5 + [429]
    assert post("198.51.100.2") == 302


def test_a_bad_trusted_proxies_value_stops_start_up():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.dev",
            "TRUSTED_PROXIES": "10.0.0.0/8,proxy.local",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "TRUSTED_PROXIES: 'proxy.local' is not an IP address or network." in result.stderr
