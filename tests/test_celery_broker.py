"""A task travels through a real Redis broker to a real Celery worker process and back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from django.db import connection

from config.celery import app
from crm.core.tasks import ping_task, tenant_probe_task
from tests.conftest import build_dealership

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent


def _redis_url() -> str:
    url = os.environ.get("REDIS_URL_FOR_TESTS") or "redis://127.0.0.1:6379"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.ConnectionError:
        pytest.fail(f"No Redis at {url}: start Redis or run the suite with `make test`, which starts one.")
    return urlunparse(urlparse(url)._replace(path="/14"))  # a database of its own


@pytest.fixture
def worker():  # type: ignore[no-untyped-def]
    broker = _redis_url()
    queue = f"crm-test-{uuid.uuid4().hex[:8]}"
    database = urlparse(os.environ["DATABASE_URL"])._replace(path="/" + connection.settings_dict["NAME"])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CRM_TEST_BROKER_URL": broker,
        "DATABASE_URL": urlunparse(database),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    saved = {k: app.conf[k] for k in ("broker_url", "result_backend", "task_always_eager")}

    def reset_clients() -> None:
        # the app caches its result backend and producer pool; drop them when the URLs change
        app._backend_cache = None
        app._local.__dict__.pop("backend", None)
        app._pool = None  # kombu keeps one pool per broker URL; the next publish picks the right one
        app.amqp._producer_pool = None

    app.conf.update(broker_url=broker, result_backend=broker, task_always_eager=False)
    reset_clients()
    try:
        yield process, queue
    finally:
        app.conf.update(saved)
        reset_clients()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_a_task_travels_through_redis_to_a_worker_process_and_back(worker):
    process, queue = worker
    started = time.monotonic()
    result = ping_task.apply_async(args=["你好"], queue=queue)
    try:
        reply = result.get(timeout=30)
    except Exception:  # noqa: BLE001 - any failure: show what the worker said
        process.terminate()
        output = process.stdout.read().decode(errors="replace") if process.stdout else ""
        pytest.fail(f"the worker did not answer: {output[-3000:]}")
    assert reply["echo"] == "你好"
    assert reply["pid"] == process.pid != os.getpid()
    assert time.monotonic() - started < 60


def test_a_tenant_task_runs_in_the_worker_with_both_locks_for_its_tenant_only(worker):
    _process, queue = worker
    a = build_dealership("broker-a", "A", variant=1)
    b = build_dealership("broker-b", "B", variant=0)
    seen_a = tenant_probe_task.apply_async(kwargs={"tenant_id": a.tenant.pk}, queue=queue).get(timeout=60)
    seen_b = tenant_probe_task.apply_async(kwargs={"tenant_id": b.tenant.pk}, queue=queue).get(timeout=60)
    assert seen_a["guc"] == str(a.tenant.pk) and seen_b["guc"] == str(b.tenant.pk)
    assert seen_a["db_user"] == connection.settings_dict["USER"]  # the worker runs as the app role
    assert seen_a["raw_sql_memberships"] == seen_a["orm_memberships"] == 8
    assert seen_b["raw_sql_memberships"] == 8
