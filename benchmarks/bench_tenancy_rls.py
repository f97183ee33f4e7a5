"""What does row-level security cost on the hot read paths?

Creates a throwaway database, migrates it as the owning role, loads one dealership of 100,000
customers and one of 10,000 with set-based SQL, then times the same indexed queries
  (a) as the application role, tenant set with set_config(..., true) inside a transaction
      (exactly what a request does), and
  (b) as the owning role (BYPASSRLS) with an explicit tenant_id filter — the floor.
Prints p50/p95 in milliseconds for each, and the ratio.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "crm_bench_rls"
BIG, SMALL, ROUNDS = 100_000, 10_000, 1500


def _url(env: str, db: str) -> str:
    return urlunparse(urlparse(os.environ[env])._replace(path=f"/{db}"))


def _setup() -> tuple[str, str]:
    owner_admin = _url("DATABASE_OWNER_URL", "postgres")
    with psycopg.connect(owner_admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    env = {
        **os.environ,
        "DATABASE_URL": _url("DATABASE_URL", BENCH_DB),
        "DATABASE_OWNER_URL": _url("DATABASE_OWNER_URL", BENCH_DB),
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    owner, app = _url("DATABASE_OWNER_URL", BENCH_DB), _url("DATABASE_URL", BENCH_DB)
    with psycopg.connect(owner, autocommit=True) as conn:
        for code, size in (("bench-big", BIG), ("bench-small", SMALL)):
            (tenant_id,) = conn.execute(
                "INSERT INTO tenancy_tenant (name, code, time_zone, locale, currency, business_hours, holidays, "
                "makeup_workdays, settings, is_active, created_at) VALUES (%s, %s, 'Asia/Shanghai', 'zh-hans', "
                "'CNY', '{}', '[]', '[]', '{}', true, now()) RETURNING id",
                [code, code],
            ).fetchone()
            conn.execute(
                """
                INSERT INTO customers_customer (tenant_id, kind, name, mobile, id_number, gender, province, city,
                    district, address, source, consent_call, consent_sms, consent_wechat, consent_email,
                    relationship_class, lifecycle_stage, list_flag, list_reason, churn_reason, tags, external_id,
                    created_at, updated_at)
                SELECT %s, 'individual', (ARRAY['王','李','张','刘','陈','杨','黄','赵'])[1 + g %% 8] || '客户' || g,
                       '+86138' || lpad((g + %s)::text, 8, '0'), '', '', '广东省', '深圳市', '', '', 'walk_in',
                       true, true, true, false, 'general', 'retained', '', '', '', '{}', 'B-' || g, now(), now()
                  FROM generate_series(1, %s) AS g
                """,
                [tenant_id, 0 if size == BIG else 50_000_000, size],
            )
        conn.execute("ANALYZE")
    return owner, app


def _time(conn: psycopg.Connection, sql: str, params_list: list[list[object]], tenant_id: int | None) -> list[float]:
    samples = []
    for params in params_list:
        started = time.perf_counter()
        with conn.transaction():
            if tenant_id is not None:
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant_id)])
            conn.execute(sql, params).fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _p(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


def main() -> None:
    owner, app = _setup()
    with psycopg.connect(owner) as owner_conn, psycopg.connect(app) as app_conn:
        (tenant_id,) = owner_conn.execute("SELECT id FROM tenancy_tenant WHERE code = 'bench-big'").fetchone()
        owner_conn.commit()
        rng = random.Random(1)
        mobiles = [[f"+86138{rng.randrange(1, BIG):08d}"] for _ in range(ROUNDS)]
        prefixes = [[f"{rng.choice('王李张刘陈杨黄赵')}客户{rng.randrange(1, 999)}%"] for _ in range(ROUNDS)]
        pages = [[rng.randrange(0, BIG - 25)] for _ in range(ROUNDS)]
        cases = [
            ("by mobile", "SELECT id, name FROM customers_customer WHERE {t} mobile = %s", mobiles),
            (
                "name prefix",
                "SELECT id, name FROM customers_customer WHERE {t} name LIKE %s ORDER BY name LIMIT 25",
                prefixes,
            ),
            (
                "page of 25",
                "SELECT id, name FROM customers_customer WHERE {t} true ORDER BY id LIMIT 25 OFFSET %s",
                pages,
            ),
        ]
        print(f"{BIG:,} + {SMALL:,} customers, {ROUNDS} queries per case, times in ms (lower is better)")
        print(f"{'query':<14}{'RLS p50':>10}{'RLS p95':>10}{'floor p50':>11}{'floor p95':>11}{'p50 ratio':>11}")
        for name, template, params in cases:
            _time(app_conn, template.format(t=""), params[:100], tenant_id)  # warm up
            rls = _time(app_conn, template.format(t=""), params, tenant_id)
            floor = _time(owner_conn, template.format(t=f"tenant_id = {tenant_id} AND"), params, None)
            print(
                f"{name:<14}{_p(rls, 50):>10.3f}{_p(rls, 95):>10.3f}{_p(floor, 50):>11.3f}{_p(floor, 95):>11.3f}"
                f"{_p(rls, 50) / _p(floor, 50):>11.2f}"
            )
    print("RLS times include the set_config() that opens each transaction (once per request in the app).")
    with psycopg.connect(_url("DATABASE_OWNER_URL", "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
