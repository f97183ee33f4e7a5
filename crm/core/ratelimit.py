"""Counting attempts of anonymous visitors (the public complaint form, the status lookup) in a store
that every process of the installation shares, keyed on the client's real address.

- With Redis configured (always in production, which refuses to start without it) the count is an
  atomic INCR in the cache; without it (a laptop, `make demo`, several gunicorn workers on one box)
  it is an atomic upsert in PostgreSQL (`core_ratelimitcounter`), never a per-process memory.
- The client's address is REMOTE_ADDR, unless REMOTE_ADDR is one of TRUSTED_PROXIES: then the
  X-Forwarded-For chain is read from the right, skipping trusted proxies, and the first address not
  among them is the client. A header from anyone else is ignored (it could be forged).
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in settings.TRUSTED_PROXIES)


def client_address(request: HttpRequest) -> str:
    remote = str(request.META.get("REMOTE_ADDR", ""))
    if not _trusted(remote):
        return remote
    chain = [hop.strip() for hop in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",") if hop.strip()]
    for hop in reversed(chain):
        if not _trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # a forged or broken header: count the proxy itself
    return remote


def attempt_over_limit(*, key: str, limit: int, window: timedelta) -> bool:
    """Count one attempt under `key` in the current window; True once the count passes `limit`."""
    seconds = int(window.total_seconds())
    slot = int(timezone.now().timestamp()) // seconds
    full_key = f"ratelimit:{key}:{slot}"
    if settings.REDIS_URL:
        cache.add(full_key, 0, timeout=seconds)
        try:
            count = cache.incr(full_key)
        except ValueError:  # expired between add and incr
            cache.add(full_key, 1, timeout=seconds)
            count = 1
        return count > limit
    expires = timezone.now() + window
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO core_ratelimitcounter (key, count, expires_at) VALUES (%s, 1, %s)
               ON CONFLICT (key) DO UPDATE SET count = core_ratelimitcounter.count + 1
               RETURNING count""",
            [full_key, expires],
        )
        (count,) = cursor.fetchone()
        if count == 1:  # a new window: forget the finished ones (the key index keeps this cheap)
            cursor.execute("DELETE FROM core_ratelimitcounter WHERE expires_at < %s", [timezone.now()])
    return int(count) > limit
