"""Customer search at a million customers, through the real HTTP stack.

Method
  1. Creates the database crm_bench_search as the owning role and migrates it (`manage.py migrate`).
  2. Loads, as the owner and with set-based SQL only (INSERT … SELECT generate_series), one dealership
     of 1,000,000 customers beside one of 100,000: Chinese names drawn from weighted surname and
     given-name lists (so many customers share a prefix such as 王伟), unique mainland mobiles
     (+86 13x/15x/18x), one vehicle each with a unique plate (粤B·A1234) and a unique VIN with a
     correct check digit. The big dealership gets a manager (sees all 1,000,000 customers: the worst
     case) and 100 sales consultants who own 2,000 customers each (one of them is measured too).
     A sample of the rows is checked with the application's own validators, then VACUUM ANALYZE.
  3. Starts gunicorn (2 sync workers) as the application role under row-level security, with
     persistent database connections (DB_CONN_MAX_AGE=60) and DEBUG=False, on config.settings.dev plus
     one override written to a temporary directory: STATIC_ROOT, so that `collectstatic` fills a
     throwaway directory and pages resolve static files from the manifest as in production.
     The per-user API rate limit is raised so the floor's requests are not throttled.
  4. Signs in like a browser (CSRF cookie and token, POST of the sign-in form) and sends requests
     one at a time from one client, each to a different random target. The cases are interleaved
     round by round (one request of each case per round), so drift on this shared machine affects
     every case alike. Each time is the wall time on the client, from sending the request to having
     read the whole body. Searches are sent as full pages (GET /customers/?q=…, the page's filter
     form included) and, for plate and name prefix, also as the search box sends them while one
     types (htmx: only the rows). Every response must be 200 and show the expected customer (a search
     must link the customer searched for and show their name; a name-prefix search and the plain
     list must show the newest matching customer in the first row), else the benchmark fails.
  5. Stops gunicorn and drops the database (`--keep-db` keeps it, to EXPLAIN queries afterwards).

Baseline
  The floor is GET /api/v1/me/, a trivial session-authenticated endpoint measured in the same run:
  it pays for everything a search pays for except the search (gunicorn, the middleware, the session,
  the request's transaction and tenant, the membership lookup). The table prints each case's p50 and
  p95, its p95 above the floor's p95, and for the searches whether p95 is under the 50 ms target.
  Nothing is asserted about time: the machines are shared and noisy (see README.md).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "crm_bench_search"
BIG, SMALL = 1_000_000, 100_000
CONSULTANTS = 100  # each owns the customers whose number % 500 is their index: 2,000 of the big dealership
ROUNDS, WARMUP = 300, 30
TARGET_MS = 50.0
PASSWORD = "Bench-2026-search!"  # noqa: S105 - a throwaway database's staff password
SECRET_KEY = "bench-only-insecure-secret-key-for-a-throwaway-database-0123456789"  # noqa: S105

# Surnames with rough weights (how many times each appears in the draw), most frequent first.
SURNAMES = (
    [("王", 7), ("李", 7), ("张", 7), ("刘", 5), ("陈", 5), ("杨", 3), ("黄", 2), ("赵", 2), ("吴", 2), ("周", 2)]
    + [(s, 1) for s in "徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢姜崔钟"]
    + [(s, 1) for s in "谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"]
)
# Given-name characters, most frequent first (drawn with a skew towards the start of the list).
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文辉力玲鹏宇浩俊欣怡子涵梓轩博"
    "雨晨思佳嘉一诺志红海燕飞凯斌波琳颖倩婷雪慧鑫宁健龙云峰晶亮琴兰凤梅春彬瑞萍"
)
MOBILE_PREFIXES = [*(f"13{d}" for d in range(10)), "150", "151", "152", "153", "155", "156", "157", "158", "159"] + [
    f"18{d}" for d in range(10)
]
PLATE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"  # no I or O
PLATE_PREFIXES = ["粤B"] * 16 + ["粤A", "粤S", "湘A", "赣A"]  # mostly Shenzhen plates
# (brand, series, VIN positions 1-8, VIN position 11 = plant)
BRANDS = [
    ("大众", "朗逸", "LSVNV2BR", "3"),
    ("一汽-大众", "速腾", "LFV2A21K", "7"),
    ("丰田", "凯美瑞", "LVGBE40K", "G"),
    ("本田", "雅阁", "LHGCV165", "8"),
    ("日产", "轩逸", "LGBH52E0", "5"),
    ("别克", "英朗", "LSGKE54L", "2"),
    ("比亚迪", "秦PLUS", "LGXCE4CB", "0"),
    ("吉利", "帝豪", "L6T7824S", "1"),
    ("长安", "CS75", "LS5A3DKE", "9"),
    ("宝马", "3系", "LBV8W390", "M"),
]
MODEL_YEAR_CODES = "GHJKLMNPRS"  # 2016 … 2025
VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


class BenchmarkFailed(Exception):
    """A response was not what the application must answer: the figures would be meaningless."""


def _url(env: str, db: str) -> str:
    return urlunparse(urlparse(os.environ[env])._replace(path=f"/{db}"))


def _drop_database() -> None:
    with psycopg.connect(_url("DATABASE_OWNER_URL", "postgres"), autocommit=True) as conn:
        for attempt in range(20):
            try:
                conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
                return
            except psycopg.errors.ObjectInUse:  # a stopped worker's connection is still closing
                if attempt == 19:
                    raise
                time.sleep(0.5)


def _create_and_migrate() -> None:
    _drop_database()
    with psycopg.connect(_url("DATABASE_OWNER_URL", "postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    env = {
        **os.environ,
        "DATABASE_URL": _url("DATABASE_URL", BENCH_DB),
        "DATABASE_OWNER_URL": _url("DATABASE_OWNER_URL", BENCH_DB),
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)


def _django_setup() -> None:
    """Django in this process, only to hash the password and to run the model validators."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.dev"
    os.environ["DATABASE_URL"] = _url("DATABASE_URL", BENCH_DB)
    os.environ["DATABASE_OWNER_URL"] = _url("DATABASE_OWNER_URL", BENCH_DB)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    big_tenant: int
    small_tenant: int
    manager: int  # membership ids
    consultant: int


def _insert_tenant(conn: psycopg.Connection[Any], code: str, name: str) -> int:
    row = conn.execute(
        "INSERT INTO tenancy_tenant (name, code, time_zone, locale, currency, business_hours, holidays, "
        "makeup_workdays, settings, is_active, created_at) VALUES (%s, %s, 'Asia/Shanghai', 'zh-hans', "
        "'CNY', '{}', '[]', '[]', '{}', true, now()) RETURNING id",
        [name, code],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _insert_staff(conn: psycopg.Connection[Any], tenant_id: int, password_hash: str) -> tuple[int, list[int]]:
    """The manager and the consultants (the first one signs in; the others only own customers)."""
    users = [("bench-manager", "经理", "周", password_hash, "manager")]
    users.append(("bench-consultant", "顾问", "林", password_hash, "sales_consultant"))
    users += [
        (f"bench-consultant-{i:03d}", f"顾问{i}", "陈", "!", "sales_consultant") for i in range(2, CONSULTANTS + 1)
    ]
    membership_ids = []
    for username, first_name, last_name, password, role in users:
        row = conn.execute(
            "INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
            "is_active, date_joined, preferred_language) VALUES (%s, false, %s, %s, %s, '', false, true, now(), '') "
            "RETURNING id",
            [password, username, first_name, last_name],
        ).fetchone()
        assert row is not None
        membership = conn.execute(
            "INSERT INTO tenancy_membership (role, is_active, is_service_account, created_at, user_id, tenant_id) "
            "VALUES (%s, true, false, now(), %s, %s) RETURNING id",
            [role, row[0], tenant_id],
        ).fetchone()
        assert membership is not None
        membership_ids.append(int(membership[0]))
    return membership_ids[0], membership_ids[1:]


CUSTOMERS_SQL = """
INSERT INTO customers_customer (tenant_id, kind, name, mobile, mobile_secondary, id_number, gender, birthday,
    province, city, district, address, source, consent_call, consent_sms, consent_wechat, consent_email, owner_id,
    relationship_class, lifecycle_stage, list_flag, list_reason, churn_reason, tags, external_id, last_visit_on,
    quality_issues, created_at, updated_at)
SELECT %(tenant)s, 'individual',
       (%(surnames)s::text[])[1 + floor(r1 * cardinality(%(surnames)s::text[]))::int]
         || substr(%(given)s, 1 + floor(r2 * r2 * length(%(given)s))::int, 1)
         || CASE WHEN r3 < 0.65 THEN substr(%(given)s, 1 + floor(r3 / 0.65 * length(%(given)s))::int, 1) ELSE '' END,
       '+86' || (%(mobile_prefixes)s::text[])[1 + u * 7919 %% cardinality(%(mobile_prefixes)s::text[])]
         || lpad(((u * 48271 + 20250101) %% 100000000)::text, 8, '0'),
       '', '', CASE WHEN r4 < 0.5 THEN 'male' ELSE 'female' END,
       CASE WHEN r5 < 0.8 THEN date '1960-01-01' + floor(r5 * 20000)::int END,
       '广东省', '深圳市', (ARRAY['福田区','罗湖区','南山区','宝安区','龙岗区','龙华区'])[1 + floor(r4 * 6)::int], '',
       (ARRAY['walk_in','walk_in','phone','website','autohome','wechat','referral','dms'])[1 + floor(r6 * 8)::int],
       true, true, r6 < 0.9, false,
       CASE WHEN %(with_owners)s AND u %% 500 < cardinality(%(owners)s::bigint[])
            THEN (%(owners)s::bigint[])[1 + u %% 500] END,
       (ARRAY['potential','general','general','key','loyal'])[1 + floor(r2 * 5)::int],
       (ARRAY['prospect','new','satisfied','retained','retained','loyal','dormant','lost'])[1 + floor(r3 * 8)::int],
       '', '', '', '{}', 'C' || lpad(u::text, 8, '0'),
       CASE WHEN r6 < 0.7 THEN least(current_date, (created + make_interval(days => floor(r6 * 900)::int))::date) END,
       '{}', created, created
  FROM (SELECT u, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5, random() AS r6,
               timestamptz '2019-01-01 09:00+08'
                 + make_interval(days => ((u - %(first)s) * 2500 / %(size)s)::int, secs => floor(random() * 36000))
                 AS created
          FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS u) AS s
"""

# One vehicle per customer. u (from the customer's DMS id) makes plate and VIN unique: the VIN's
# model year is u % 10 and its serial u / 10; its check digit is the brand's fixed part (computed
# in Python) plus the weighted year and serial digits, modulo 11.
VEHICLES_SQL = """
INSERT INTO customers_vehicle (tenant_id, customer_id, vin, plate, brand, series, model_name, model_year, colour,
    purchase_date, warranty_end, mileage_km, external_id, created_at)
SELECT tenant_id, customer_id,
       head || CASE WHEN chk = 10 THEN 'X' ELSE chk::text END || substr(%(years)s, 1 + (u %% 10)::int, 1)
         || plant || lpad((u / 10)::text, 6, '0'),
       (%(plate_prefixes)s::text[])[1 + floor(r * cardinality(%(plate_prefixes)s::text[]))::int] || '·'
         || substr(%(alphabet)s, 1 + (x %% 34)::int, 1) || substr(%(alphabet)s, 1 + (x / 34 %% 34)::int, 1)
         || substr(%(alphabet)s, 1 + (x / 1156 %% 34)::int, 1) || substr(%(alphabet)s, 1 + (x / 39304 %% 34)::int, 1)
         || substr(%(alphabet)s, 1 + (x / 1336336 %% 34)::int, 1),
       brand, series, '', 2016 + (u %% 10)::int,
       (ARRAY['白色','黑色','灰色','银色','蓝色','红色'])[1 + floor(r * 6)::int],
       make_date(2016 + (u %% 10)::int, 1 + (u %% 12)::int, 1 + (u %% 28)::int),
       make_date(2019 + (u %% 10)::int, 1 + (u %% 12)::int, 1 + (u %% 28)::int),
       floor(r * 150000)::int, 'V' || lpad(u::text, 8, '0'), created_at
  FROM (SELECT c.tenant_id, c.customer_id, c.created_at, c.u, c.r, b.brand, b.series, b.head, b.plant,
               (c.u * 1000003 + 777) %% 45435424 AS x,
               (b.head_sum + (%(year_values)s::int[])[1 + (c.u %% 10)::int] * 9
                 + (c.u / 10 / 100000 %% 10) * 7 + (c.u / 10 / 10000 %% 10) * 6 + (c.u / 10 / 1000 %% 10) * 5
                 + (c.u / 10 / 100 %% 10) * 4 + (c.u / 10 / 10 %% 10) * 3 + (c.u / 10 %% 10) * 2) %% 11 AS chk
          FROM (SELECT tenant_id, id AS customer_id, created_at, substr(external_id, 2)::bigint AS u,
                       1 + floor(random() * %(brands)s)::int AS brand_no, random() AS r
                  FROM customers_customer WHERE tenant_id = %(tenant)s) AS c
          JOIN unnest(%(brand_names)s::text[], %(brand_series)s::text[], %(heads)s::text[], %(plants)s::text[],
                      %(head_sums)s::int[]) WITH ORDINALITY AS b (brand, series, head, plant, head_sum, no)
            ON b.no = c.brand_no) AS v
"""


def _vin_head_sum(head: str, plant: str) -> int:
    """The check-digit sum of VIN positions 1-8 and 11, which are fixed per brand."""
    return sum(VIN_VALUES[ch] * VIN_WEIGHTS[i] for i, ch in enumerate(head)) + VIN_VALUES[plant] * VIN_WEIGHTS[10]


def _load(owner_url: str, password_hash: str) -> Loaded:
    surnames = [surname for surname, weight in SURNAMES for _ in range(weight)]
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SELECT setseed(0.2026)")
        big = _insert_tenant(conn, "bench-big", "大湾区汽车集团")
        small = _insert_tenant(conn, "bench-small", "湘江汽车")
        manager, consultants = _insert_staff(conn, big, password_hash)
        # u numbers customers across both dealerships, so mobiles, plates and VINs are unique overall.
        for tenant, first, size, with_owners in ((big, 0, BIG, True), (small, BIG, SMALL, False)):
            started = time.perf_counter()
            conn.execute(
                CUSTOMERS_SQL,
                {
                    "tenant": tenant,
                    "first": first,
                    "last": first + size - 1,
                    "size": size,
                    "surnames": surnames,
                    "given": GIVEN,
                    "mobile_prefixes": MOBILE_PREFIXES,
                    "owners": consultants,
                    "with_owners": with_owners,
                },
            )
            conn.execute(
                VEHICLES_SQL,
                {
                    "tenant": tenant,
                    "years": MODEL_YEAR_CODES,
                    "year_values": [VIN_VALUES[c] for c in MODEL_YEAR_CODES],
                    "plate_prefixes": PLATE_PREFIXES,
                    "alphabet": PLATE_ALPHABET,
                    "brands": len(BRANDS),
                    "brand_names": [b[0] for b in BRANDS],
                    "brand_series": [b[1] for b in BRANDS],
                    "heads": [b[2] for b in BRANDS],
                    "plants": [b[3] for b in BRANDS],
                    "head_sums": [_vin_head_sum(b[2], b[3]) for b in BRANDS],
                },
            )
            print(f"  loaded {size:>9,} customers and vehicles in {time.perf_counter() - started:5.1f} s")
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) customers_customer")
        conn.execute("VACUUM (ANALYZE) customers_vehicle")
        conn.execute("ANALYZE")
        print(f"  VACUUM ANALYZE in {time.perf_counter() - started:5.1f} s")
    return Loaded(big_tenant=big, small_tenant=small, manager=manager, consultant=consultants[0])


# ---------------------------------------------------------------------------------------------
# The server and the client
# ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(settings_dir: str) -> dict[str, str]:
    """The web process's environment: the application role (never the owner), production-like."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_OWNER_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="crm_bench_search_settings",
        PYTHONPATH=os.pathsep.join(p for p in (settings_dir, os.environ.get("PYTHONPATH", "")) if p),
        DEBUG="False",
        DATABASE_URL=_url("DATABASE_URL", BENCH_DB),
        ALLOWED_HOSTS="127.0.0.1",
        SECRET_KEY=SECRET_KEY,
        DB_CONN_MAX_AGE="60",
        API_RATE_PER_USER="1000000/min",  # the floor sends more than the default 300/min
    )
    return env


def _start_gunicorn(settings_dir: str, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    Path(settings_dir, "crm_bench_search_settings.py").write_text(
        f"from config.settings.dev import *  # noqa: F403\n\nSTATIC_ROOT = {str(Path(settings_dir, 'static'))!r}\n"
    )
    env = _server_env(settings_dir)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    port = _free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "config.wsgi:application", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    with log_path.open("wb") as log:
        process = subprocess.Popen([*command, "--log-level", "warning"], cwd=ROOT, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkFailed(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return process, port
            conn.close()
        except OSError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise BenchmarkFailed(f"gunicorn did not answer /healthz within 60 s:\n{log_path.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # gunicorn's graceful shutdown; the workers close their connections
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Browser:
    """One signed-in user: cookies kept like a browser's; http.client reconnects when the server
    closes the connection (gunicorn's sync workers answer each request with Connection: close)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookies: dict[str, str] = {}

    def _send(self, method: str, path: str, body: str | None, htmx: bool) -> tuple[int, bytes, list[str]]:
        headers = {"Accept": "text/html,application/json", "User-Agent": "bench_customer_search"}
        if htmx:
            headers["HX-Request"] = "true"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body.encode() if body is not None else None, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read(), response.headers.get_all("Set-Cookie") or []

    def request(self, method: str, path: str, body: str | None = None, htmx: bool = False) -> tuple[int, bytes, float]:
        """Status, body and the wall time in ms from sending the request to having read the body."""
        started = time.perf_counter()
        try:
            status, data, set_cookies = self._send(method, path, body, htmx)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()  # a kept-alive connection the server had closed: send again, time again
            started = time.perf_counter()
            status, data, set_cookies = self._send(method, path, body, htmx)
        elapsed = (time.perf_counter() - started) * 1000
        for header in set_cookies:
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(header)
            self.cookies.update({key: morsel.value for key, morsel in cookie.items()})
        return status, data, elapsed

    def sign_in(self, username: str) -> None:
        status, body, _ = self.request("GET", "/accounts/sign-in/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        if status != 200 or token is None or "csrftoken" not in self.cookies:
            raise BenchmarkFailed(f"GET /accounts/sign-in/ answered {status} without a CSRF token")
        form = {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1).decode()}
        status, body, _ = self.request("POST", "/accounts/sign-in/", urlencode(form))
        if status != 302 or "sessionid" not in self.cookies:
            raise BenchmarkFailed(f"signing in as {username} answered {status}: {body[:500]!r}")


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    path: str
    expect: tuple[str, ...]  # text the page must contain
    htmx: bool = False  # sent by the search box as one types: only the rows are rendered
    first: int | None = None  # the customer the first row must show


@dataclass
class Case:
    name: str
    browser: Browser
    targets: list[Target]
    is_search: bool
    samples: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Sampled:
    id: int
    name: str
    mobile: str
    plate: str
    vin: str


def _link(customer_id: int) -> str:
    return f'href="/customers/{customer_id}/"'


def _search(q: str, *expect: str) -> Target:
    return Target(f"/customers/?{urlencode({'q': q})}", expect)


def _sample(conn: psycopg.Connection[Any], tenant: int, rng: random.Random, n: int, owner: int | None) -> list[Sampled]:
    """n random customers of the dealership (of one owner's book when owner is given), with their vehicle."""
    select = (
        "SELECT c.id, c.name, c.mobile, v.plate, v.vin FROM customers_customer c "
        "JOIN customers_vehicle v ON v.customer_id = c.id AND v.tenant_id = c.tenant_id WHERE c.tenant_id = %s AND "
    )
    if owner is None:
        row = conn.execute("SELECT min(id), max(id) FROM customers_customer WHERE tenant_id = %s", [tenant]).fetchone()
        assert row is not None
        ids = rng.sample(range(row[0], row[1] + 1), n)
        rows = conn.execute(select + "c.id = ANY(%s)", [tenant, ids]).fetchall()
    else:
        rows = conn.execute(select + "c.owner_id = %s ORDER BY c.id", [tenant, owner]).fetchall()
        rows = rng.sample(rows, n)
    if len(rows) < n:
        raise BenchmarkFailed(f"wanted {n} customers of tenant {tenant}, found {len(rows)}")
    return [Sampled(*r) for r in rows]


def _newest(conn: psycopg.Connection[Any], tenant: int, owner: int | None, prefix: str | None) -> int:
    """The customer a list shows first (newest), among those a name prefix finds when given."""
    sql = "SELECT id FROM customers_customer WHERE tenant_id = %s AND merged_into_id IS NULL"
    params: list[object] = [tenant]
    if owner is not None:
        sql += " AND owner_id = %s"
        params.append(owner)
    if prefix is not None:  # a name search matches any part of the name (docs/customers.md#search)
        sql += " AND (replace(name, ' ', '') LIKE %s OR external_id = %s)"
        params += ["%" + prefix + "%", prefix]
    row = conn.execute(sql + " ORDER BY created_at DESC, id DESC LIMIT 1", params).fetchone()
    assert row is not None
    return int(row[0])


def _validate(rows: Sequence[Sampled]) -> None:
    """The generated data passes the application's own validators (realistic, not just unique)."""
    from django.core.exceptions import ValidationError

    from customers.validators import validate_e164_mobile, validate_plate, validate_vin

    for row in rows:
        try:
            validate_e164_mobile(row.mobile)
            validate_plate(row.plate)
            validate_vin(row.vin)
        except ValidationError as error:
            raise BenchmarkFailed(f"generated data is invalid: {row}: {error.messages}") from None


def _search_targets(
    conn: psycopg.Connection[Any], tenant: int, owner: int | None, rows: list[Sampled], as_typed: bool
) -> dict[str, list[Target]]:
    prefixes = {row.name[:2] for row in rows}
    newest = {prefix: _newest(conn, tenant, owner, prefix) for prefix in prefixes}
    targets = {
        "mobile, last 8 digits": [_search(r.mobile[-8:], _link(r.id), r.name) for r in rows],
        "mobile, 11 digits": [_search(r.mobile[3:], _link(r.id), r.name) for r in rows],
        "plate": [_search(r.plate, _link(r.id), r.name) for r in rows],
        "plate tail (5 chars)": [_search(r.plate[-5:].lower(), _link(r.id), r.name) for r in rows],
        "name prefix (2 chars)": [replace(_search(r.name[:2], r.name[:2]), first=newest[r.name[:2]]) for r in rows],
    }
    if as_typed:  # the same searches as htmx sends them, each round another target than the page's
        half = len(rows) // 2
        for name in ("plate", "name prefix (2 chars)"):
            rotated = targets[name][half:] + targets[name][:half]
            targets[f"{name}, as typed (htmx rows)"] = [replace(t, htmx=True) for t in rotated]
    return targets


def _cases(conn: psycopg.Connection[Any], loaded: Loaded, manager: Browser, consultant: Browser) -> list[Case]:
    rng = random.Random(2026)
    n = WARMUP + ROUNDS
    big = loaded.big_tenant
    manager_rows = _sample(conn, big, rng, n, owner=None)
    detail_rows = _sample(conn, big, rng, n, owner=None)
    consultant_rows = _sample(conn, big, rng, n, owner=loaded.consultant)
    _validate([*manager_rows, *detail_rows, *consultant_rows])
    floor = [Target("/api/v1/me/", ('"username":"bench-manager"', '"role":"manager"'))] * n
    newest_all = [Target("/customers/", (), first=_newest(conn, big, None, None))] * n
    newest_own = [Target("/customers/", (), first=_newest(conn, big, loaded.consultant, None))] * n
    cases = [Case("floor: GET /api/v1/me/", manager, floor, is_search=False)]
    cases += [Case(name, manager, t, True) for name, t in _search_targets(conn, big, None, manager_rows, True).items()]
    cases.append(
        Case("customer page", manager, [Target(f"/customers/{r.id}/", (r.name, r.plate)) for r in detail_rows], False)
    )
    cases.append(Case("list, first page (1M visible)", manager, newest_all, is_search=False))
    consultant_targets = _search_targets(conn, big, loaded.consultant, consultant_rows, False)
    cases += [Case(f"consultant: {name}", consultant, t, True) for name, t in consultant_targets.items()]
    cases.append(Case("consultant: list, first page", consultant, newest_own, is_search=False))
    conn.commit()
    return cases


def _check_visibility(conn: psycopg.Connection[Any], loaded: Loaded, consultant: Browser) -> None:
    """A consultant's search must not find a customer of someone else's book."""
    row = conn.execute(
        "SELECT id, mobile FROM customers_customer WHERE tenant_id = %s AND owner_id IS DISTINCT FROM %s LIMIT 1",
        [loaded.big_tenant, loaded.consultant],
    ).fetchone()
    conn.commit()
    assert row is not None
    status, body, _ = consultant.request("GET", _search(row[1][-8:]).path)
    if status != 200 or _link(row[0]).encode() in body:
        raise BenchmarkFailed(f"a consultant's search found customer {row[0]} of another book (status {status})")


_FIRST_ROW = re.compile(r'href="/customers/(\d+)/"')


def _run(cases: list[Case]) -> None:
    """Round by round, one request of each case per round; the first WARMUP rounds are not timed."""
    for i in range(WARMUP + ROUNDS):
        for case in cases:
            target = case.targets[i]
            status, body, elapsed = case.browser.request("GET", target.path, htmx=target.htmx)
            text = body.decode("utf-8", errors="replace")
            missing = [e for e in target.expect if e not in text]
            first_row = _FIRST_ROW.search(text)
            if target.first is not None and (first_row is None or int(first_row.group(1)) != target.first):
                missing.append(f"customer {target.first} in the first row")
            if status != 200 or missing:
                raise BenchmarkFailed(
                    f"{case.name}: GET {target.path} answered {status}, missing {missing}:\n{text[:2000]}"
                )
            if i >= WARMUP:
                case.samples.append(elapsed)


def _p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1]


def _report(cases: list[Case]) -> None:
    floor_p95 = _p(cases[0].samples, 95)
    print(f"\n{ROUNDS} timed requests per case (after {WARMUP} untimed), sequential, wall time on the client, ms")
    print(f"{'case':<44}{'p50':>9}{'p95':>9}{'p95-floor':>11}  p95 < {TARGET_MS:.0f} ms")
    for case in cases:
        p50, p95 = _p(case.samples, 50), _p(case.samples, 95)
        verdict = ("yes" if p95 < TARGET_MS else "NO") if case.is_search else "-"
        print(f"{case.name:<44}{p50:>9.1f}{p95:>9.1f}{p95 - floor_p95:>11.1f}  {verdict}")
    print("The manager sees all 1,000,000 customers of the big dealership; the consultant only their 2,000.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep-db", action="store_true", help=f"keep {BENCH_DB} afterwards (to EXPLAIN queries)")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{BIG:,} + {SMALL:,} customers, one vehicle each; database {BENCH_DB}")
    _create_and_migrate()
    _django_setup()
    from django.contrib.auth.hashers import make_password

    owner = _url("DATABASE_OWNER_URL", BENCH_DB)
    process: subprocess.Popen[bytes] | None = None
    try:
        loaded = _load(owner, make_password(PASSWORD))
        with tempfile.TemporaryDirectory(prefix="bench_search_") as settings_dir:
            log_path = Path(settings_dir, "gunicorn.log")
            process, port = _start_gunicorn(settings_dir, log_path)
            manager, consultant = Browser(port), Browser(port)
            manager.sign_in("bench-manager")
            consultant.sign_in("bench-consultant")
            try:
                with psycopg.connect(owner) as conn:
                    cases = _cases(conn, loaded, manager, consultant)
                    _check_visibility(conn, loaded, consultant)
                _run(cases)
            except BenchmarkFailed:
                print(f"gunicorn's log:\n{log_path.read_text()[-5000:]}", file=sys.stderr)
                raise
            finally:
                _stop(process)
                process = None
        _report(cases)
    finally:
        if process is not None:
            _stop(process)
        if args.keep_db:
            print(f"Kept the database {BENCH_DB}.")
        else:
            _drop_database()
    print(f"Total run time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
