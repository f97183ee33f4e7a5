"""Settings come from the environment; a bad value stops start-up with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import env

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "k" * 20 + "-production-secret-that-is-long-enough-0123456789",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ALLOWED_HOSTS": "crm.example.com",
}


def _manage(*args: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"} | extra_env
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("TIME_ZONE", "Mars/Olympus", "not a known IANA time zone"),
        ("DB_CONN_MAX_AGE", "-5", "must be at least 0"),
        ("LOGIN_FAILURE_LIMIT", "five", "is not a whole number"),
        ("REDIS_URL", "http://nope", "REDIS_URL must be a redis://"),
        ("DATABASE_URL", "sqlite:///x.db", "PostgreSQL is the only database"),
    ],
)
def test_a_bad_environment_value_stops_start_up_with_a_clear_message(name, value, message):
    result = _manage("check", extra_env={"DJANGO_SETTINGS_MODULE": "config.settings.dev", name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_production_refuses_a_missing_or_weak_secret_key():
    weak = _manage("check", extra_env={**PRODUCTION_ENV, "SECRET_KEY": "short"})
    assert weak.returncode != 0 and "SECRET_KEY must be a random string" in weak.stderr
    missing = _manage("check", extra_env={**PRODUCTION_ENV, "SECRET_KEY": ""})
    assert missing.returncode != 0 and "SECRET_KEY is required" in missing.stderr


def test_production_settings_pass_the_deploy_check():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", extra_env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_env_bool_accepts_only_clear_values(monkeypatch):
    monkeypatch.setenv("X_FLAG", "True")
    assert env.env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "nah")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env.env_bool("X_FLAG", False)


def test_a_bad_rate_limit_stops_start_up():
    result = _manage("check", extra_env={"DJANGO_SETTINGS_MODULE": "config.settings.dev", "API_RATE_PER_KEY": "lots"})
    assert result.returncode != 0 and "API_RATE_PER_KEY='lots' is not a rate" in result.stderr


DEMO_PROBE = """
import django
django.setup()
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1")
missing = client.get("/static/no-such-file.css")
print(settings.DEBUG, client.get("/static/css/app.css").status_code, missing.status_code,
      b"Using the URLconf" in missing.content, "门店 CRM" in missing.content.decode())
"""


@pytest.mark.parametrize(
    ("debug", "expected"),
    [(None, "False 200 404 False True"), ("1", "True 200 404 True False")],
    ids=["demo-and-serve", "debug-by-choice"],
)
def test_the_demo_shows_the_products_error_pages_and_still_serves_static_files(debug, expected):
    """`make demo` and `make serve` (dev settings) answer a missing page with the product's own 404,
    not Django's debug page listing the URL patterns, and still serve the static files; DEBUG=1 is
    the explicit way back to the debug pages."""
    environment = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    environment["DJANGO_SETTINGS_MODULE"] = "config.settings.dev"
    if debug:
        environment["DEBUG"] = debug
    result = subprocess.run(
        [sys.executable, "-c", DEMO_PROBE], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected
