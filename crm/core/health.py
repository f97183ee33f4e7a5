"""/healthz: is each dependency of the product reachable? Answered before any other middleware, so a
database that is down is reported as such (503, naming it) instead of failing the request's own
session and transaction first."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

HEALTH_PATH = "/healthz"


def dependency_status() -> dict[str, str]:
    """{"database": "ok" | "unavailable", "redis": …} (redis only when REDIS_URL is configured)."""
    status: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        status["database"] = "ok"
    except Exception:  # noqa: BLE001 - report, never raise, from a health check
        status["database"] = "unavailable"
        connection.close()  # a broken connection is not reused by the next request
    if settings.REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
            status["redis"] = "ok"
        except (redis.RedisError, OSError):
            status["redis"] = "unavailable"
    return status


def healthz(request: HttpRequest) -> JsonResponse:
    checks = dependency_status()
    healthy = all(value == "ok" for value in checks.values())
    response = JsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)
    if not healthy:
        response["Retry-After"] = "30"
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """First in MIDDLEWARE: /healthz needs no session, user or tenant."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == HEALTH_PATH:
            return healthz(request)
        return self.get_response(request)
