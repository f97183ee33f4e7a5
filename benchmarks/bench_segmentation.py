"""The nightly segmentation recompute at 1,000,000 customers and 10,000,000 orders, beside its floor and pandas.

Method
  1. Creates the database crm_bench_segmentation as the owning role and migrates it (`manage.py migrate`
     in a subprocess pointed at it).
  2. Loads, as the owner: 100 dealerships of Zipf-like sizes (size ∝ 1/(rank + 10)^2.5: the largest
     about 13 % of the customers, the smallest about 400), 1,000,000 customers and 10,000,000 orders
     with COPY (customers in text format, orders in binary format; rows generated with numpy in
     chunks, seeded, so every run loads the same data). About 8 % of the customers are prospects
     without orders and 0.3 % are tombstones merged into another customer of their dealership. A
     buyer has 1 + Poisson(rate × years active) orders (rates Gamma-distributed, scaled to the total),
     dated uniformly within the years they were active (35 % stopped coming at some point) over the
     3.5 years up to the day before yesterday; a customer who joined within those years made their
     first order on the joining day, a car purchase for 35 % of them. Kinds: maintenance 55 %,
     repair 17 %, parts 12 %, insurance 10 %, accessories 6 %, vehicle sales about 2 %; amounts
     log-normal per kind in CNY (a car about ¥160,000, a service about ¥800). 2 % are reversed. The
     rows go in chronological order (as a DMS feeds them), one COPY and transaction per 1,000,000
     orders, with every index and the segmentation trigger in place (its transition table marks
     every customer, as an import would). The foreign keys are dropped for the load and added back
     as they were, which checks every row in one query instead of 20 million lookups at commit.
     Then, set-based, as the application keeps it: customers.last_visit_on = the latest non-reversed
     order. VACUUM ANALYZE.
  3. Floor: `SELECT count(*), sum(amount) FROM customers_order` as the owner, best of 3, warm cache;
     measured again right before and right after the nightly recompute, and the fastest of the nine
     is the table's floor (the table grew by 0.1 % in between).
     Context: the straightforward single query (order aggregates per customer, then three NTILE(5)
     window functions per dealership), once.
  4. First run (cold build): the nightly pipeline's segmentation step for every dealership, for the
     run date D = yesterday, in one child process as the application role under row-level security
     (`nightly_run_tenant(..., only=["segmentation.rfm"])`, what `manage.py run_nightly --step
     segmentation.rfm` runs). Every dealership's first run aggregates all its orders.
     pandas computes the same scores for D (see Baselines) and they are compared with the engine's.
     Then VACUUM ANALYZE of the tables the first run wrote, standing in for autovacuum during the day.
  5. One business day (D), as the application writes it, set-based, one statement per dealership:
     10,000 new orders (a day of DMS traffic, mostly dated D, some a few days late), 50 of them by
     new customers; 200 recent orders reversed; last_visit_on refreshed for the touched customers.
     The statement-level trigger marks the changed customers.
  6. The nightly recompute: the same child process run for run date D + 1 = today (the 36-month window
     slides by one day), all 100 dealerships sequentially in one process. Its wall time is "the full
     nightly recompute" (the pipeline's bookkeeping included; the time inside segmentation_recompute
     is shown too); its peak RSS (VmHWM of /proc/self/status) is the process's peak memory. The
     PostgreSQL backend's memory is read from /proc when the server runs on this machine: VmHWM (peak RSS,
     which counts the shared buffers the backend touched) and RssAnon (private memory) sampled
     every 20 ms. Then, for context: the same child process for D + 1 again (nothing is left to do;
     the run fails if it changes a row), and the nightly pipeline for every dealership with a step
     that does nothing (its records, advisory lock and commits alone). pandas then computes the
     scores for D + 1, and they are compared with the engine's.
  7. The same night fanned out (`--workers`, default one per CPU, Celery's default concurrency; 1 skips
     it): on a copy of the database taken right before step 6 (CREATE DATABASE … TEMPLATE), the
     dealerships are shared among that many child processes started together (largest first, each to
     the least loaded), as the nightly beat's per-dealership tasks run on a worker. Its wall time is
     printed beside the same baselines, and a digest of every customer's results must equal the
     sequential run's.
  8. Drops the databases (`--keep-db` keeps the main one, to EXPLAIN the engine's queries afterwards).

Baselines, measured in the same run
  * the floor above: one aggregate scan of the orders table;
  * pandas: a child process that reads the orders (customer_id, tenant_id, ordered_on, amount, status,
    kind) and customers (id, tenant_id, last_visit_on, merged_into_id) from PostgreSQL as the owner
    (COPY … TO STDOUT through psql, parsed by pd.read_csv as it arrives) and computes R, F, M and the
    value tier exactly as the engine defines them (per dealership, among live customers with a
    non-reversed order:
    score = 1 + floor(5 × (customers with a strictly worse value) / n); recency = the latest of
    last_visit_on and the last order, frequency and monetary over orders since the window start;
    tiers by value key (R + F + M, then spend) with shares 15/35/35/15). Timed from connecting to
    having the scores (imports excluded, as Django's start-up is excluded from the engine's time),
    with its peak RSS.
  Targets (from the issue): the recompute within 5 × the floor, at least 10 × faster than pandas,
  under 500 MB peak memory. Nothing is asserted about time (shared, noisy machines), but the run
  fails if the engine's scores differ from pandas' or a dealership's run fails.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from subprocess import PIPE
from typing import Any
from urllib.parse import urlparse, urlunparse

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "crm_bench_segmentation"
FANOUT_DB = "crm_bench_segmentation_fanout"  # a copy for the fanned-out nightly run
STEP = "segmentation.rfm"
EMPTY_STEP = "bench.empty"  # registered by the engine child only: the pipeline's own cost
HISTORY_DAYS = 1278  # 3.5 years of orders
ORDERS_PER_COPY = 1_000_000
DAY_ORDERS, DAY_NEW_CUSTOMERS, DAY_REVERSALS = 10_000, 50, 200
WINDOW_MONTHS = 36  # the default of SegmentationSettings.window_months
TIER_SHARES = (15, 50, 85)  # cumulative Key, Consolidate, Maintain (defaults 15/35/35/15)
TARGET_FLOOR_RATIO, TARGET_PANDAS_SPEEDUP, TARGET_RSS_MB = 5.0, 10.0, 500.0

KINDS = ["maintenance", "repair", "parts", "insurance", "accessories", "vehicle_sale"]
KIND_P = [0.55, 0.17, 0.12, 0.098, 0.06, 0.002]  # of the orders that are not a first purchase
VEHICLE_SALE = KINDS.index("vehicle_sale")
# log-normal amounts per kind: (median CNY, sigma, min, max)
AMOUNTS = {
    "maintenance": (800, 0.5, 150, 8_000),
    "repair": (2_500, 0.9, 200, 80_000),
    "parts": (450, 0.8, 30, 20_000),
    "insurance": (5_500, 0.35, 1_500, 30_000),
    "accessories": (1_200, 0.8, 50, 30_000),
    "vehicle_sale": (160_000, 0.4, 60_000, 1_200_000),
}
STATUSES = ["completed", "reversed", "open"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文辉力玲鹏宇浩俊欣怡子涵梓轩博雨晨思佳嘉一诺志红海燕"
CITIES = [
    ("广东省", "深圳市", "南山区"),
    ("广东省", "广州市", "天河区"),
    ("湖南省", "长沙市", "岳麓区"),
    ("浙江省", "杭州市", "西湖区"),
    ("四川省", "成都市", "武侯区"),
    ("江苏省", "南京市", "鼓楼区"),
]
SOURCES = ["walk_in", "walk_in", "phone", "website", "autohome", "wechat", "referral", "dms"]
PG_EPOCH = date(2000, 1, 1)
NULL = "\\N"  # COPY's text format


def _url(env: str, db: str) -> str:
    return urlunparse(urlparse(os.environ[env])._replace(path=f"/{db}"))


def _env(db: str = BENCH_DB) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": _url("DATABASE_URL", db),
        "DATABASE_OWNER_URL": _url("DATABASE_OWNER_URL", db),
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DEBUG": "False",  # DEBUG keeps every query in memory
        "DB_CONN_MAX_AGE": "0",
    }
    for name in ("CELERY_BROKER_URL", "REDIS_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)  # the engine's progress goes to the in-process cache, as without Redis
    return env


def _rss_mb() -> float:
    """This process's peak RSS since it started. VmHWM, not getrusage(): on Linux a child's ru_maxrss
    starts from its parent's peak (the fork's copy is counted until exec), and this parent holds the
    generated orders (about 1 GB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------------------------


def tenant_sizes(tenants: int, customers: int) -> np.ndarray:
    """Zipf-like with an offset: size ∝ 1/(rank + 10)^2.5, summing to `customers` exactly."""
    weights = 1 / (np.arange(1, tenants + 1) + 10.0) ** 2.5
    sizes = np.floor(weights / weights.sum() * customers).astype(np.int64)
    sizes[: customers - sizes.sum()] += 1
    return sizes


@dataclass
class Data:
    first_day: date  # day index 0
    tenant: np.ndarray  # per customer: tenant index 0 … tenants-1
    join: np.ndarray  # per customer: day index they joined (negative: before the history starts)
    prospect: np.ndarray
    merged_into: np.ndarray  # per customer: customer index + 1 of the survivor, 0 = live
    churn_reason: np.ndarray
    active_to: np.ndarray  # per customer: last day index they might come
    # orders, in chronological order
    o_customer: np.ndarray
    o_day: np.ndarray
    o_kind: np.ndarray
    o_status: np.ndarray
    o_cents: np.ndarray


def _amount_cents(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    cents = np.empty(len(kind), dtype=np.int64)
    for code, name in enumerate(KINDS):
        mask = kind == code
        median, sigma, low, high = AMOUNTS[name]
        values = np.clip(rng.lognormal(np.log(median), sigma, mask.sum()), low, high)
        # services are billed to the yuan or ten fen, cars to the hundred yuan
        step = 10_000 if name == "vehicle_sale" else (100 if name in ("insurance", "maintenance") else 10)
        cents[mask] = np.round(values * 100 / step).astype(np.int64) * step
    return cents


def generate(rng: np.random.Generator, *, tenants: int, customers: int, orders: int, last_day: date) -> Data:
    first_day = last_day - timedelta(days=HISTORY_DAYS - 1)
    tenant = np.repeat(np.arange(tenants), tenant_sizes(tenants, customers))
    rng.shuffle(tenant)
    join = np.sort(rng.integers(-1000, HISTORY_DAYS, customers))  # ids grow with the joining day
    roll = rng.random(customers)
    prospect, tombstone = roll < 0.08, (roll >= 0.08) & (roll < 0.083)
    buyer = ~(prospect | tombstone)
    start = np.maximum(join, 0)
    churned = rng.random(customers) < 0.35
    stopped = start + (rng.random(customers) * (HISTORY_DAYS - start)).astype(np.int64)
    active_to = np.where(churned, stopped, HISTORY_DAYS - 1)
    rate = rng.gamma(1.3, 1.0, customers) * (active_to - start + 1) / 365.25 * buyer
    scale = (orders - buyer.sum()) / rate.sum()
    counts = np.where(buyer, 1 + rng.poisson(scale * rate), 0)
    while (diff := orders - int(counts.sum())) != 0:  # hit the total exactly
        if diff > 0:
            np.add.at(counts, rng.choice(np.flatnonzero(buyer), diff), 1)
        else:
            more = np.flatnonzero(counts > 1)
            counts[rng.choice(more, min(-diff, len(more)), replace=False)] -= 1

    # tombstones point at a buyer of their own dealership
    buyers = np.flatnonzero(buyer)
    by_tenant = buyers[np.argsort(tenant[buyers], kind="stable")]
    lo = np.searchsorted(tenant[by_tenant], np.arange(tenants))
    hi = np.searchsorted(tenant[by_tenant], np.arange(tenants), side="right")
    merged_into = np.zeros(customers, dtype=np.int64)
    t = tenant[tombstone]
    merged_into[tombstone] = by_tenant[lo[t] + (rng.random(len(t)) * (hi[t] - lo[t])).astype(np.int64)] + 1
    churn_reason = (rng.random(customers) < 0.01) & buyer

    o_customer = np.repeat(np.arange(customers), counts)
    o_start, o_end = start[o_customer], active_to[o_customer]
    o_day = o_start + (rng.random(orders) * (o_end - o_start + 1)).astype(np.int64)
    o_kind = rng.choice(len(KINDS), orders, p=KIND_P).astype(np.int8)
    first = (np.cumsum(counts) - counts)[buyer & (join >= 0)]  # a newcomer's first order: the joining day
    o_day[first] = join[o_customer[first]]
    o_kind[first[rng.random(len(first)) < 0.35]] = VEHICLE_SALE
    o_status = np.zeros(orders, dtype=np.int8)
    o_status[rng.random(orders) < 0.02] = STATUSES.index("reversed")
    o_status[(o_day >= HISTORY_DAYS - 3) & (o_status == 0) & (rng.random(orders) < 0.3)] = STATUSES.index("open")
    o_cents = _amount_cents(rng, o_kind)
    chronological = np.argsort(o_day, kind="stable")
    return Data(
        first_day=first_day,
        tenant=tenant,
        join=join,
        prospect=prospect,
        merged_into=merged_into,
        churn_reason=churn_reason,
        active_to=active_to,
        o_customer=o_customer[chronological],
        o_day=o_day[chronological],
        o_kind=o_kind[chronological],
        o_status=o_status[chronological],
        o_cents=o_cents[chronological],
    )


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def _insert_tenants(conn: psycopg.Connection[Any], count: int) -> list[int]:
    ids = []
    for n in range(1, count + 1):
        row = conn.execute(
            "INSERT INTO tenancy_tenant (name, code, time_zone, locale, currency, business_hours, holidays, "
            "makeup_workdays, settings, is_active, created_at) VALUES (%s, %s, 'Asia/Shanghai', 'zh-hans', "
            "'CNY', '{}', '[]', '[]', '{}', true, now()) RETURNING id",
            [f"基准汽车{n:03d}店", f"bench-seg-{n:03d}"],
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    return ids


CUSTOMER_COLUMNS = (
    "id, tenant_id, kind, name, mobile, mobile_secondary, id_number, gender, birthday, province, city, district, "
    "address, source, consent_call, consent_sms, consent_wechat, consent_email, relationship_class, lifecycle_stage, "
    "list_flag, list_reason, churn_reason, tags, external_id, created_at, updated_at, merged_into_id, quality_issues"
)


def _customer_lines(rng: np.random.Generator, data: Data, tenant_ids: list[int], lo: int, hi: int) -> str:
    n = hi - lo
    surname = rng.integers(0, len(SURNAMES), n)
    given1, given2 = rng.integers(0, len(GIVEN), n), rng.integers(-len(GIVEN) // 2, len(GIVEN), n)
    gender = rng.random(n) < 0.55
    birthday = rng.integers(-9000, 3000, n)  # days from 2000-01-01
    has_birthday = rng.random(n) < 0.8
    source = rng.integers(0, len(SOURCES), n)
    company = rng.random(n) < 0.04
    lines = []
    for k in range(n):
        i = lo + k
        t = int(data.tenant[i])
        province, city, district = CITIES[t % len(CITIES)]
        created = data.first_day + timedelta(days=int(data.join[i]))
        name = SURNAMES[surname[k]] + GIVEN[given1[k]] + (GIVEN[given2[k]] if given2[k] >= 0 else "")
        if company[k]:
            name = f"{city[:-1]}{name}汽车服务有限公司"
        merged = str(data.merged_into[i]) if data.merged_into[i] else NULL
        lines.append(
            f"{i + 1}\t{tenant_ids[t]}\t{'company' if company[k] else 'individual'}\t{name}\t"
            f"+861{3 + i % 6}{i % 10}{(i * 7919 + 12345) % 100_000_000:08d}\t\t\t"
            f"{'male' if gender[k] else 'female'}\t"
            f"{PG_EPOCH + timedelta(days=int(birthday[k])) if has_birthday[k] else NULL}\t"
            f"{province}\t{city}\t{district}\t\t{SOURCES[source[k]]}\tt\tt\t{'t' if source[k] % 3 else 'f'}\tf\t"
            f"potential\tprospect\t\t\t{'已购竞品' if data.churn_reason[i] else ''}\t{{}}\tC{i + 1:08d}\t"
            f"{created} 10:00:00+08\t{created} 10:00:00+08\t{merged}\t{{}}\n"
        )
    return "".join(lines)


def _copy_customers(conn: psycopg.Connection[Any], rng: np.random.Generator, data: Data, tenant_ids: list[int]) -> None:
    total = len(data.tenant)
    with conn.transaction(), conn.cursor() as cursor:
        with cursor.copy(f"COPY customers_customer ({CUSTOMER_COLUMNS}) FROM STDIN") as copy:
            for lo in range(0, total, 100_000):
                copy.write(_customer_lines(rng, data, tenant_ids, lo, min(lo + 100_000, total)))
        cursor.execute("SELECT setval(pg_get_serial_sequence('customers_customer', 'id'), %s)", [total])


ORDER_COLUMNS = "tenant_id, customer_id, kind, status, ordered_on, amount, external_id, created_at"
BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
BINARY_TRAILER = b"\xff\xff"


def _order_rows_binary(
    tenant: np.ndarray, customer: np.ndarray, kind: np.ndarray, status: np.ndarray, day: np.ndarray, cents: np.ndarray
) -> bytes:
    """Orders as COPY binary tuples. Rows of one (kind, status) have one layout, so numpy writes them
    as a structured array: int8 ids, varchar kind and status, date, numeric(12,2) as four base-10000
    digits (weight 2, dscale 2; PostgreSQL strips the leading zero digits), '' and a timestamptz."""
    seconds_of_day = (cents * 7919) % 32_400  # 09:00-18:00 Beijing time, i.e. 01:00-10:00 UTC
    pg_day = day.astype(np.int64)
    created = (pg_day * 86_400 + 3_600 + seconds_of_day) * 1_000_000
    parts = []
    for k, kind_name in enumerate(KINDS):
        for s, status_name in enumerate(STATUSES):
            mask = (kind == k) & (status == s)
            count = int(mask.sum())
            if not count:
                continue
            kb, sb = kind_name.encode(), status_name.encode()
            layout = np.dtype(
                [
                    *[("fields", ">i2"), ("l_tenant", ">i4"), ("tenant", ">i8"), ("l_customer", ">i4")],
                    *[("customer", ">i8"), ("l_kind", ">i4"), ("kind", f"S{len(kb)}"), ("l_status", ">i4")],
                    *[("status", f"S{len(sb)}"), ("l_day", ">i4"), ("day", ">i4"), ("l_amount", ">i4")],
                    *[("ndigits", ">i2"), ("weight", ">i2"), ("sign", ">i2"), ("dscale", ">i2")],
                    *[("d0", ">i2"), ("d1", ">i2"), ("d2", ">i2"), ("d3", ">i2")],
                    *[("l_external", ">i4"), ("l_created", ">i4"), ("created", ">i8")],
                ]
            )
            rows = np.zeros(count, dtype=layout)
            yuan, fen = np.divmod(cents[mask], 100)
            rows["fields"], rows["l_tenant"], rows["tenant"] = 8, 8, tenant[mask]
            rows["l_customer"], rows["customer"] = 8, customer[mask]
            rows["l_kind"], rows["kind"], rows["l_status"], rows["status"] = len(kb), kb, len(sb), sb
            rows["l_day"], rows["day"] = 4, pg_day[mask]
            rows["l_amount"], rows["ndigits"], rows["weight"], rows["sign"], rows["dscale"] = 16, 4, 2, 0, 2
            rows["d0"], rows["d1"], rows["d2"], rows["d3"] = (
                yuan // 10**8,
                yuan // 10**4 % 10**4,
                yuan % 10**4,
                fen * 100,
            )
            rows["l_external"], rows["l_created"], rows["created"] = 0, 8, created[mask]
            parts.append(rows.tobytes())
    return b"".join(parts)


def _copy_orders(conn: psycopg.Connection[Any], data: Data, tenant_ids: list[int]) -> None:
    tenant_of = np.asarray(tenant_ids, dtype=np.int64)[data.tenant]
    offset = (data.first_day - PG_EPOCH).days
    total = len(data.o_customer)
    for lo in range(0, total, ORDERS_PER_COPY):
        started = time.perf_counter()
        copy_sql = f"COPY customers_order ({ORDER_COLUMNS}) FROM STDIN (FORMAT binary)"
        with conn.transaction(), conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.write(BINARY_HEADER)
            for sub in range(lo, min(lo + ORDERS_PER_COPY, total), 50_000):
                part = slice(sub, min(sub + 50_000, lo + ORDERS_PER_COPY, total))
                customer = data.o_customer[part]
                copy.write(
                    _order_rows_binary(
                        tenant_of[customer],
                        customer + 1,
                        data.o_kind[part],
                        data.o_status[part],
                        data.o_day[part] + offset,
                        data.o_cents[part],
                    )
                )
            copy.write(BINARY_TRAILER)
        end = min(lo + ORDERS_PER_COPY, total)
        print(f"    orders {lo + 1:>10,} – {end:>10,} in {time.perf_counter() - started:5.1f} s", flush=True)


class _ForeignKeysCheckedOnce:
    """Drops the foreign keys of the tables being loaded and adds them back, exactly as they were
    (pg_get_constraintdef), afterwards: PostgreSQL then checks every row in one set-based query
    instead of one lookup per row and key at commit (20 million for the orders: minutes)."""

    def __init__(self, conn: psycopg.Connection[Any], tables: list[str]) -> None:
        self.conn = conn
        self.keys = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY 1, 2",
            [tables],
        ).fetchall()

    def __enter__(self) -> None:
        for table, name, _definition in self.keys:
            self.conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')

    def __exit__(self, *exc: object) -> None:
        for table, name, definition in self.keys:
            self.conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


LAST_VISIT_SQL = """
UPDATE customers_customer c SET last_visit_on = o.last_on
  FROM (SELECT customer_id, max(ordered_on) AS last_on FROM customers_order
         WHERE status <> 'reversed' {where} GROUP BY customer_id) o
 WHERE c.id = o.customer_id AND c.last_visit_on IS DISTINCT FROM o.last_on
"""


def load(owner_url: str, args: argparse.Namespace, last_day: date) -> dict[str, float]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    data = generate(rng, tenants=args.tenants, customers=args.customers, orders=args.orders, last_day=last_day)
    timings["generate"] = time.perf_counter() - started
    print(f"  generated in {timings['generate']:.1f} s", flush=True)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        tenant_ids = _insert_tenants(conn, args.tenants)
        foreign_keys = _ForeignKeysCheckedOnce(conn, ["customers_customer", "customers_order"])
        with foreign_keys:
            mark = time.perf_counter()
            _copy_customers(conn, rng, data, tenant_ids)
            timings["customers"] = time.perf_counter() - mark
            print(f"  {args.customers:,} customers (COPY) in {timings['customers']:.1f} s", flush=True)
            mark = time.perf_counter()
            _copy_orders(conn, data, tenant_ids)
            timings["orders"] = time.perf_counter() - mark
            print(f"  {args.orders:,} orders (COPY, every index and the trigger on) in {timings['orders']:.1f} s")
            mark = time.perf_counter()
        timings["foreign_keys"] = time.perf_counter() - mark
        print(
            f"  {len(foreign_keys.keys)} foreign keys added back (all rows checked) in {timings['foreign_keys']:.1f} s"
        )
        mark = time.perf_counter()
        conn.execute(LAST_VISIT_SQL.format(where=""))
        timings["last_visit"] = time.perf_counter() - mark
        print(f"  last_visit_on (one UPDATE) in {timings['last_visit']:.1f} s", flush=True)
        mark = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) customers_customer")
        conn.execute("VACUUM (ANALYZE) customers_order")
        conn.execute("VACUUM (ANALYZE) segmentation_dirtycustomer")
        conn.execute("ANALYZE")
        timings["vacuum"] = time.perf_counter() - mark
        print(f"  VACUUM ANALYZE in {timings['vacuum']:.1f} s", flush=True)
    timings["total"] = time.perf_counter() - started
    return timings


# ---------------------------------------------------------------------------------------------
# One business day, written as the application writes it
# ---------------------------------------------------------------------------------------------

DAY_CUSTOMERS_SQL = f"""
INSERT INTO customers_customer ({CUSTOMER_COLUMNS.replace("id, tenant_id", "tenant_id", 1)})
SELECT %(tenant)s, 'individual', '新客户' || g, '+8619' || lpad((%(base)s + g)::text, 9, '0'), '', '', '', NULL,
       '广东省', '深圳市', '南山区', '', 'dms', true, true, true, false, 'potential', 'prospect', '', '', '', '{{}}',
       'N' || %(day)s::text || '-' || g, %(day)s::date + time '11:00', %(day)s::date + time '11:00', NULL, '{{}}'
  FROM generate_series(1, %(n)s) AS g
RETURNING id
"""

DAY_ORDERS_SQL = f"""
INSERT INTO customers_order ({ORDER_COLUMNS})
SELECT %(tenant)s, o.customer_id, o.kind, o.status, o.ordered_on, o.amount, '', o.ordered_on + time '15:00'
  FROM unnest(%(customers)s::bigint[], %(kinds)s::text[], %(statuses)s::text[], %(days)s::date[],
              %(amounts)s::numeric[]) AS o(customer_id, kind, status, ordered_on, amount)
"""


def simulate_day(owner_url: str, seed: int, day: date) -> dict[str, int]:
    """Day `day`'s writes: new orders (some by new customers), reversals, last_visit_on of those touched."""
    rng = np.random.default_rng(seed + 1)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        active = conn.execute(
            "SELECT id, tenant_id FROM customers_customer WHERE merged_into_id IS NULL AND last_visit_on >= %s",
            [day - timedelta(days=120)],
        ).fetchall()
        customer_ids = np.array([r[0] for r in active], dtype=np.int64)
        customer_tenants = np.array([r[1] for r in active], dtype=np.int64)
        regulars = rng.choice(len(active), DAY_ORDERS - DAY_NEW_CUSTOMERS, replace=False)
        tenants = sorted({int(t) for t in customer_tenants[regulars]})
        new_per_tenant = np.bincount(rng.integers(0, len(tenants), DAY_NEW_CUSTOMERS), minlength=len(tenants))
        touched: list[int] = []
        orders_written = 0
        for k, tenant in enumerate(tenants):
            with conn.transaction():  # one DMS sync per dealership
                mine = customer_ids[regulars[customer_tenants[regulars] == tenant]]
                new_ids = [
                    r[0]
                    for r in conn.execute(
                        DAY_CUSTOMERS_SQL, {"tenant": tenant, "n": int(new_per_tenant[k]), "base": k * 1000, "day": day}
                    ).fetchall()
                ]
                buyers = np.concatenate([mine, np.asarray(new_ids, dtype=np.int64)])
                kinds = rng.choice(len(KINDS), len(buyers), p=KIND_P).astype(np.int8)
                kinds[len(mine) :] = VEHICLE_SALE  # a new customer's first order: their car
                late = rng.random(len(buyers)) < 0.05  # a DMS sync that brings a few days late
                days = [day - timedelta(days=int(d)) for d in np.where(late, rng.integers(1, 6, len(buyers)), 0)]
                cents = _amount_cents(rng, kinds)
                conn.execute(
                    DAY_ORDERS_SQL,
                    {
                        "tenant": tenant,
                        "customers": buyers.tolist(),
                        "kinds": [KINDS[k] for k in kinds],
                        "statuses": ["completed"] * len(buyers),
                        "days": days,
                        "amounts": [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()],
                    },
                )
                orders_written += len(buyers)
                touched += buyers.tolist()
        reversed_rows = conn.execute(
            "SELECT id, customer_id FROM customers_order WHERE status = 'completed' AND ordered_on >= %s "
            "AND ordered_on < %s ORDER BY random() LIMIT %s",
            [day - timedelta(days=60), day, DAY_REVERSALS],
        ).fetchall()
        conn.execute(
            "UPDATE customers_order SET status = 'reversed' WHERE id = ANY(%s)", [[r[0] for r in reversed_rows]]
        )
        touched += [r[1] for r in reversed_rows]
        updated = conn.execute(
            "UPDATE customers_customer c SET last_visit_on = (SELECT max(o.ordered_on) FROM customers_order o "
            "WHERE o.tenant_id = c.tenant_id AND o.customer_id = c.id AND o.status <> 'reversed') WHERE c.id = ANY(%s)",
            [sorted(set(touched))],
        ).rowcount
        (dirty,) = conn.execute("SELECT count(*) FROM segmentation_dirtycustomer").fetchone()  # type: ignore[misc]
        conn.execute("ANALYZE customers_order")
        conn.execute("ANALYZE customers_customer")
    return {
        "orders": orders_written,
        "new_customers": DAY_NEW_CUSTOMERS,
        "reversed": len(reversed_rows),
        "last_visit_updates": updated,
        "dirty": int(dirty),
        "tenants": len(tenants),
    }


# ---------------------------------------------------------------------------------------------
# Floor and context, as the owner
# ---------------------------------------------------------------------------------------------


def floor(owner_url: str) -> tuple[float, list[float]]:
    with psycopg.connect(owner_url) as conn:
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            conn.execute("SELECT count(*), sum(amount) FROM customers_order").fetchone()
            samples.append(round(time.perf_counter() - started, 2))
    return min(samples), samples


NTILE_SQL = """
SELECT count(*), sum(r), sum(f), sum(m) FROM (
    SELECT ntile(5) OVER (PARTITION BY tenant_id ORDER BY last_on) AS r,
           ntile(5) OVER (PARTITION BY tenant_id ORDER BY freq) AS f,
           ntile(5) OVER (PARTITION BY tenant_id ORDER BY spend) AS m
      FROM (SELECT tenant_id, customer_id, max(ordered_on) AS last_on,
                   count(*) FILTER (WHERE ordered_on >= %(ws)s) AS freq,
                   coalesce(sum(amount) FILTER (WHERE ordered_on >= %(ws)s), 0) AS spend
              FROM customers_order WHERE status <> 'reversed'
             GROUP BY tenant_id, customer_id) AS a
) AS s
"""


def ntile_query(owner_url: str, window_start: date) -> float:
    with psycopg.connect(owner_url) as conn:
        started = time.perf_counter()
        conn.execute(NTILE_SQL, {"ws": window_start}).fetchone()
        return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# Children: the engine (as the application role) and pandas
# ---------------------------------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS, RssAnon … of a local process in kB (empty when not readable)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        key, _sep, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            values[key] = int(rest.split()[0])
    return values


class _Sampler(threading.Thread):
    """Samples a process's private memory (RssAnon) every 20 ms and keeps the maximum."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_anon_kb, self._stop_event = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            self.peak_anon_kb = max(self.peak_anon_kb, _proc_status(self.pid).get("RssAnon", 0))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def child_engine(run_date: date, only_tenants: list[int] | None = None, step: str = STEP) -> dict[str, Any]:
    """Every active dealership's segmentation step (or those of `only_tenants`), sequentially, as
    `run_nightly --step` runs it. With `step=EMPTY_STEP`, a step that does nothing: what the nightly
    pipeline itself costs (its records, lock and tenant context, two commits a dealership)."""
    import django

    django.setup()
    from django.db import connection

    import segmentation.nightly
    from crm.core.models import NightlyRun
    from crm.core.nightly import NightlyStep, nightly_run_tenant, nightly_steps
    from crm.tenancy.models import Tenant

    def empty_step(*, tenant_id: int, run_date: date, trigger: str = "") -> int:
        return 0

    nightly_steps.register(NightlyStep(name=EMPTY_STEP, run=empty_step))

    phases: dict[str, float] = {}
    aggregates: list[tuple[float, int, int]] = []  # (seconds, tenant, customers re-aggregated)
    scores: list[tuple[float, int, int]] = []  # (seconds, tenant, customers scored)
    original = segmentation.nightly.segmentation_recompute

    def timed_recompute(**kwargs: Any) -> Any:  # the engine reports its phases; add them up
        started = time.perf_counter()
        result = original(**kwargs)
        phases["engine"] = phases.get("engine", 0.0) + time.perf_counter() - started
        for phase, seconds in result.timings.items():
            phases[phase] = phases.get(phase, 0.0) + seconds
        aggregates.append((result.timings.get("aggregates", 0.0), result.run.tenant_id, result.aggregates_refreshed))
        scores.append((result.timings.get("scores", 0.0), result.run.tenant_id, result.run.customers))
        return result

    segmentation.nightly.segmentation_recompute = timed_recompute  # type: ignore[assignment]
    tenant_ids = list(Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    if only_tenants is not None:
        wanted = set(only_tenants)
        tenant_ids = [t for t in tenant_ids if t in wanted]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_user, current_setting('shared_buffers')")
        backend_pid, role, shared_buffers = cursor.fetchone()
    local = urlparse(os.environ["DATABASE_URL"]).hostname in ("127.0.0.1", "localhost", "::1")
    sampler = _Sampler(backend_pid) if local and _proc_status(backend_pid) else None
    if sampler:
        sampler.start()
    start_rss = _rss_mb()
    failed, per_tenant = [], []
    rows = 0
    started = time.perf_counter()
    for tenant_id in tenant_ids:
        mark = time.perf_counter()
        for run in nightly_run_tenant(
            tenant_id=tenant_id, trigger=NightlyRun.Trigger.COMMAND, run_date=run_date, only=[step]
        ):
            if run.status != NightlyRun.Status.SUCCEEDED:
                failed.append(f"{tenant_id}: {run.status} {run.error[-2000:]}")
            rows += run.rows or 0
        per_tenant.append((tenant_id, time.perf_counter() - mark))
    seconds = time.perf_counter() - started
    peak_rss = _rss_mb()
    backend = _proc_status(backend_pid) if sampler else {}
    if sampler:
        sampler.stop()
    with connection.cursor() as cursor:  # the connection was the same one throughout
        cursor.execute("SELECT pg_backend_pid()")
        same_backend = cursor.fetchone()[0] == backend_pid
    return {
        "seconds": seconds,
        "tenants": len(tenant_ids),
        "rows": rows,
        "failed": failed,
        "start_rss": start_rss,
        "peak_rss": peak_rss,
        "role": role,
        "phases": phases,
        "slowest": sorted(per_tenant, key=lambda x: -x[1])[:3],
        "slowest_aggregates": sorted(aggregates, reverse=True)[:3],
        "slowest_scores": sorted(scores, reverse=True)[:3],
        "backend_hwm_mb": backend.get("VmHWM", 0) / 1024 if backend else None,
        "backend_anon_mb": sampler.peak_anon_kb / 1024 if sampler else None,
        "same_backend": same_backend,
        "shared_buffers": shared_buffers,
    }


def _blocks(copy: Any) -> Iterator[bytes]:
    """psycopg hands COPY … TO STDOUT over one row at a time; pandas gets 1 MB blocks."""
    pending: list[bytes] = []
    size = 0
    for row in copy:
        pending.append(bytes(row))
        size += len(row)
        if size >= 1 << 20:
            yield b"".join(pending)
            pending, size = [], 0
    yield b"".join(pending)


class _BlockStream(io.RawIOBase):
    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks, self._pending = blocks, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._pending = memoryview(block)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _read_sql(url: str, select: str, **read_csv: Any) -> Any:
    """A query's rows as a DataFrame, by COPY … TO STDOUT (FORMAT csv) parsed by pd.read_csv.

    Through psql when it is installed: it receives the rows in C, in its own process, while pandas
    parses (the fastest way found; psycopg's Python loop over 10 million COPY rows alone takes
    longer than psql and pandas together). Otherwise through psycopg, in 1 MB blocks."""
    import pandas as pd

    command = f"COPY ({select}) TO STDOUT (FORMAT csv)"
    psql = shutil.which("psql")
    if psql:
        with subprocess.Popen(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", command], stdout=PIPE
        ) as proc:
            assert proc.stdout is not None
            frame = pd.read_csv(proc.stdout, header=None, **read_csv)
        if proc.returncode:
            raise RuntimeError(f"psql exited with {proc.returncode} for {command}")
        return frame
    with psycopg.connect(url) as conn, conn.cursor() as cursor, cursor.copy(command) as copy:
        stream = io.BufferedReader(_BlockStream(_blocks(copy)), buffer_size=1 << 20)
        return pd.read_csv(stream, header=None, **read_csv)


def pandas_scores(url: str, window_start: date, laps: dict[str, float]) -> Any:
    """R, F, M and tier per live customer, by the engine's rules (docs in the module docstring)."""
    import pandas as pd

    started = time.perf_counter()

    orders = _read_sql(
        url,
        "SELECT customer_id, tenant_id, ordered_on, amount, status, kind FROM customers_order",
        names=["customer_id", "tenant_id", "ordered_on", "amount", "status", "kind"],
        dtype={"customer_id": "int64", "tenant_id": "int64", "amount": "float64", "status": "category"}
        | {"kind": "category"},
        parse_dates=["ordered_on"],
        date_format="%Y-%m-%d",
    )
    customers = _read_sql(
        url,
        "SELECT id, tenant_id, last_visit_on, merged_into_id FROM customers_customer",
        names=["id", "tenant_id", "last_visit_on", "merged_into_id"],
        dtype={"id": "int64", "tenant_id": "int64", "merged_into_id": "float64"},
        parse_dates=["last_visit_on"],
        date_format="%Y-%m-%d",
    )
    laps["load"] = time.perf_counter() - started
    orders = orders[orders["status"] != "reversed"]
    in_window = orders["ordered_on"] >= pd.Timestamp(window_start)
    cents = (orders["amount"] * 100).round().astype("int64")
    per_customer = (
        pd.DataFrame(
            {
                "customer_id": orders["customer_id"],
                "last_order": orders["ordered_on"],
                "frequency": in_window.astype("int64"),
                "monetary": cents.where(in_window, 0),
                "vehicles": (orders["kind"] == "vehicle_sale").astype("int64"),
            }
        )
        .groupby("customer_id")
        .agg(
            last_order=("last_order", "max"),
            total=("frequency", "size"),
            frequency=("frequency", "sum"),
            monetary=("monetary", "sum"),
            vehicles=("vehicles", "sum"),
        )
    )
    live = customers[customers["merged_into_id"].isna()].join(per_customer, on="id", how="left")
    scored = live[live["total"] > 0].copy()
    visit, last_order = scored["last_visit_on"], scored["last_order"]
    scored["recency"] = last_order.where(visit.isna() | (last_order >= visit), visit)
    by_tenant = scored.groupby("tenant_id")
    n = by_tenant["id"].transform("size").to_numpy()
    for measure, score in (("recency", "r"), ("frequency", "f"), ("monetary", "m")):
        worse = by_tenant[measure].rank(method="min").to_numpy().astype(np.int64) - 1
        scored[score] = 1 + 5 * worse // n
    scored["value_key"] = (scored["r"] + scored["f"] + scored["m"]) * 10**15 + scored["monetary"].astype("int64")
    better = (
        scored.groupby("tenant_id")["value_key"].rank(method="min", ascending=False).to_numpy().astype(np.int64) - 1
    )
    key, consolidate, maintain = TIER_SHARES
    scored["tier"] = np.select(
        [100 * better < key * n, 100 * better < consolidate * n, 100 * better < maintain * n],
        ["key", "consolidate", "maintain"],
        "exit",
    )
    result = live[["id", "tenant_id"]].join(scored[["r", "f", "m", "tier"]], how="left")
    result["tier"] = result["tier"].fillna("")
    laps["compute"] = time.perf_counter() - started - laps["load"]
    return result, len(orders)


def child_pandas(window_start: date) -> dict[str, Any]:
    import pandas as pd

    owner_url = os.environ["DATABASE_OWNER_URL"]
    start_rss = _rss_mb()
    laps: dict[str, float] = {}
    started = time.perf_counter()
    result, orders = pandas_scores(owner_url, window_start, laps)
    seconds = time.perf_counter() - started
    peak_rss = _rss_mb()
    # The check (not timed): the engine's scores and tiers for the same date, customer by customer.
    engine = _read_sql(
        owner_url,
        "SELECT customer_id, r_score, f_score, m_score, tier FROM segmentation_customervalue",
        names=["id", "er", "ef", "em", "etier"],
        dtype={"id": "int64", "er": "float64", "ef": "float64", "em": "float64", "etier": "str"},
        keep_default_na=False,
        na_values={"er": [""], "ef": [""], "em": [""]},
    )
    both = result.merge(engine, on="id", how="outer", indicator=True)
    rfm_equal = (
        both[["r", "f", "m"]].fillna(0).to_numpy(dtype=np.float64)
        == both[["er", "ef", "em"]].fillna(0).to_numpy(dtype=np.float64)
    ).all(axis=1)
    tier_equal = both["tier"].fillna("").astype(str).to_numpy() == both["etier"].fillna("").astype(str).to_numpy()
    in_both = (both["_merge"] == "both").to_numpy()
    wrong = both[~(rfm_equal & tier_equal & in_both)]
    return {
        "seconds": seconds,
        "load": laps["load"],
        "compute": laps["compute"],
        "orders_used": orders,
        "start_rss": start_rss,
        "peak_rss": peak_rss,
        "customers": len(result),
        "scored": int(result["r"].notna().sum()),
        "rfm_match": int((rfm_equal & in_both).sum()),
        "tier_match": int((tier_equal & in_both).sum()),
        "compared": len(both),
        "examples": json.loads(wrong.head(8).to_json(orient="records", date_format="iso")),
        "pandas": pd.__version__,
    }


def _child_command(kind: str, run_date: date, window_start: date) -> list[str]:
    return [sys.executable, __file__, "--child", kind, "--date", run_date.isoformat(), "--ws", window_start.isoformat()]


def _run_child(kind: str, run_date: date, window_start: date) -> dict[str, Any]:
    out = subprocess.run(
        _child_command(kind, run_date, window_start), cwd=ROOT, env=_env(), check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _fanned_out(run_date: date, window_start: date, workers: int) -> dict[str, Any]:
    """The same nightly step on FANOUT_DB (a copy of the database taken before the sequential run),
    the dealerships shared among `workers` processes started together, as the nightly beat's fan-out
    runs them on a Celery worker of that concurrency (largest first, each to the least loaded)."""
    with psycopg.connect(_url("DATABASE_OWNER_URL", FANOUT_DB)) as conn:
        sizes = conn.execute("SELECT tenant_id, count(*) FROM customers_customer GROUP BY 1 ORDER BY 2 DESC").fetchall()
    shares: list[list[int]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for tenant_id, size in sizes:
        least = loads.index(min(loads))
        shares[least].append(tenant_id)
        loads[least] += size
    started = time.perf_counter()
    children = [
        subprocess.Popen(
            [*_child_command("engine", run_date, window_start), "--tenants-only", ",".join(map(str, share))],
            cwd=ROOT,
            env=_env(FANOUT_DB),
            stdout=PIPE,
            stderr=PIPE,
            text=True,
        )
        for share in shares
    ]
    reports = []
    for child in children:
        out, err = child.communicate()
        if child.returncode:
            raise SystemExit(f"a fan-out worker failed:\n{err[-3000:]}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    seconds = time.perf_counter() - started
    failed = [f for report in reports for f in report["failed"]]
    if failed:
        raise SystemExit(f"fan-out: {len(failed)} dealership(s) failed; the first:\n{failed[0]}")
    return {
        "seconds": seconds,
        "workers": workers,
        "tenants": sum(r["tenants"] for r in reports),
        "per_worker": [round(r["seconds"], 1) for r in reports],
        "peak_rss": max(r["peak_rss"] for r in reports),
    }


def _results_digest(db: str) -> str:
    """A digest of every customer's scores, tier, segment and stage: equal digests, equal results."""
    with psycopg.connect(_url("DATABASE_OWNER_URL", db)) as conn:
        (digest,) = conn.execute(
            """SELECT md5(string_agg(concat_ws(',', v.customer_id, v.r_score, v.f_score, v.m_score, v.value_key,
                                              v.segment, v.tier, v.frequency, v.monetary, c.lifecycle_stage,
                                              c.relationship_class), ';' ORDER BY v.customer_id))
                 FROM segmentation_customervalue v JOIN customers_customer c ON c.id = v.customer_id"""
        ).fetchone() or (None,)
    if not digest:
        raise SystemExit(f"{db} holds no segmentation results to compare.")
    return str(digest)


def _window_start(run_date: date) -> date:
    from dateutil.relativedelta import relativedelta

    start: date = run_date - relativedelta(months=WINDOW_MONTHS)
    return start


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _drop_database(db: str = BENCH_DB) -> None:
    with psycopg.connect(_url("DATABASE_OWNER_URL", "postgres"), autocommit=True) as conn:
        for attempt in range(20):
            try:
                conn.execute(f"DROP DATABASE IF EXISTS {db}")
                return
            except psycopg.errors.ObjectInUse:
                if attempt == 19:
                    raise
                time.sleep(0.5)


def _setup_database() -> None:
    _drop_database()
    with psycopg.connect(_url("DATABASE_OWNER_URL", "postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=_env(), check=True)


def _check(label: str, report: dict[str, Any]) -> None:
    total = report["compared"]
    print(
        f"  check {label}: R, F and M equal for {report['rfm_match']:,} of {total:,} live customers, "
        f"tier equal for {report['tier_match']:,} ({report['scored']:,} scored)"
    )
    if report["rfm_match"] != total or report["tier_match"] != total:
        for example in report["examples"]:
            print(f"    differs: {example}")
        raise SystemExit(f"The engine's scores differ from pandas' ({label}): the figures would be meaningless.")


def _engine(label: str, run_date: date, window_start: date) -> dict[str, Any]:
    report = _run_child("engine", run_date, window_start)
    if report["failed"]:
        raise SystemExit(f"{label}: {len(report['failed'])} dealership(s) failed; the first:\n{report['failed'][0]}")
    phases = ", ".join(f"{k} {v:.1f}" for k, v in report["phases"].items() if k not in ("total", "engine"))
    slowest = ", ".join(f"#{t} {s:.2f} s" for t, s in report["slowest"])
    aggregates = ", ".join(f"#{t} {s:.2f} s for {n:,}" for s, t, n in report["slowest_aggregates"])
    scores = ", ".join(f"#{t} {s:.2f} s for {n:,}" for s, t, n in report["slowest_scores"])
    print(
        f"  {label}: {report['seconds']:.1f} s for {report['tenants']} dealerships as {report['role']}, "
        f"{report['phases']['engine']:.1f} s of it in segmentation_recompute\n"
        f"    phases summed over the dealerships, s: {phases}\n"
        f"    slowest dealerships: {slowest}\n"
        f"    slowest re-aggregations (customers): {aggregates}; slowest scoring passes (customers): {scores}"
    )
    return report


def _pandas_line(label: str, report: dict[str, Any]) -> None:
    print(
        f"  pandas for {label}: {report['seconds']:.1f} s ({report['load']:.1f} s reading "
        f"{report['orders_used']:,} non-reversed orders and the customers, {report['compute']:.1f} s computing), "
        f"peak RSS {report['peak_rss']:.0f} MB"
    )


def _load_average() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def _row(figure: str, value: str, baseline: str, ratio: str, target: str, ok: bool | None) -> None:
    verdict = "" if ok is None else ("PASS" if ok else "MISS")
    print(f"{figure:<44}{value:>12}  {baseline:<26}{ratio:>9}  {target:<18}{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--today", type=date.fromisoformat, default=None, help="default: today")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {BENCH_DB} afterwards (to EXPLAIN queries)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="also measure the nightly run fanned out over this many processes (default: one per CPU, "
        "Celery's default concurrency; 1 skips it)",
    )
    parser.add_argument("--tenants-only", dest="only", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--date", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--ws", type=date.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "engine":
        only = [int(t) for t in args.only.split(",")] if args.only else None
        print(json.dumps(child_engine(args.date, only)))
        return
    if args.child == "pipeline":
        print(json.dumps(child_engine(args.date, step=EMPTY_STEP)))
        return
    if args.child == "pandas":
        print(json.dumps(child_pandas(args.ws), default=str))
        return

    today = args.today or date.today()
    night, day = today, today - timedelta(days=1)  # the cold build's date D = yesterday; tonight = D + 1
    owner = _url("DATABASE_OWNER_URL", BENCH_DB)
    started = time.perf_counter()
    print(
        f"{args.customers:,} customers, {args.orders:,} orders, {args.tenants} dealerships; orders up to "
        f"{day - timedelta(days=1)}; first run for {day}, one business day ({day}), the nightly run for {night}"
    )
    _setup_database()
    try:
        print("Loading (as the owner):")
        load(owner, args, last_day=day - timedelta(days=1))
        with psycopg.connect(owner) as conn:
            per_tenant = "SELECT count(*) FROM customers_customer GROUP BY tenant_id ORDER BY 1"
            sizes = [r[0] for r in conn.execute(per_tenant)]
            (size_mb,) = conn.execute("SELECT pg_total_relation_size('customers_order') / 1048576").fetchone() or (0,)
        print(
            f"  dealership sizes: {sizes[-1]:,} (largest, {sizes[-1] / sum(sizes):.0%}) … {sizes[len(sizes) // 2]:,} "
            f"(median) … {sizes[0]:,} (smallest); orders table with indexes {size_mb:,} MB"
        )
        print(f"Floor and context (as the owner; {_load_average()}):")
        floor_d, samples = floor(owner)
        print(f"  floor: count(*), sum(amount) over all orders: best {floor_d:.2f} s of {samples}")
        ntile = ntile_query(owner, _window_start(day))
        print(f"  one query with three NTILE(5) window functions: {ntile:.1f} s")
        print("First run (cold build) and its check:")
        cold = _engine(f"first run (cold build) for {day}", day, _window_start(day))
        pandas_d = _run_child("pandas", day, _window_start(day))
        _pandas_line(str(day), pandas_d)
        _check(str(day), pandas_d)
        mark = time.perf_counter()
        with psycopg.connect(owner, autocommit=True) as conn:  # what autovacuum does during the day
            for table in ("segmentation_customervalue", "segmentation_valuehistory", "customers_customer"):
                conn.execute(f"VACUUM (ANALYZE) {table}")
        print(f"  VACUUM ANALYZE of the tables the first run wrote, in {time.perf_counter() - mark:.1f} s")
        print(f"One business day ({day}), written as the application writes it:")
        mark = time.perf_counter()
        written = simulate_day(owner, args.seed, day)
        print(
            f"  {written['orders']:,} orders for {written['tenants']} dealerships ({written['new_customers']} new "
            f"customers), {written['reversed']} reversed, {written['last_visit_updates']:,} last visits updated, "
            f"{written['dirty']:,} customers marked by the trigger, in {time.perf_counter() - mark:.1f} s"
        )
        if args.workers > 1:
            mark = time.perf_counter()
            _drop_database(FANOUT_DB)
            with psycopg.connect(_url("DATABASE_OWNER_URL", "postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {FANOUT_DB} TEMPLATE {BENCH_DB} STRATEGY file_copy")
            print(f"  a copy of the database for the fanned-out run, in {time.perf_counter() - mark:.1f} s")
        print(f"The nightly recompute for {night} and its baselines ({_load_average()}):")
        floor_n, samples = floor(owner)
        print(f"  floor: best {floor_n:.2f} s of {samples}")
        nightly = _engine(f"nightly recompute for {night}", night, _window_start(night))
        with psycopg.connect(owner) as conn:
            refreshed, changed = conn.execute(
                "SELECT sum(aggregates_refreshed), sum(rows_changed) FROM segmentation_segmentationrun "
                "WHERE run_date = %s",
                [night],
            ).fetchone()  # type: ignore[misc]
        print(f"  customers re-aggregated {refreshed:,}, rows whose scores, tier or stage changed {changed:,}")
        floor_after, samples = floor(owner)
        print(f"  floor again: best {floor_after:.2f} s of {samples}")
        print("What a night costs when there is nothing to do (context for the targets):")
        again = _engine(f"the same night again for {night}", night, _window_start(night))
        if again["rows"]:
            raise SystemExit(f"The same night again changed {again['rows']:,} rows: the run is not idempotent.")
        print("    changed no row (idempotent)")
        empty = _run_child("pipeline", night, _window_start(night))
        if empty["failed"]:
            raise SystemExit(f"the empty step failed; the first:\n{empty['failed'][0]}")
        print(
            f"  the nightly pipeline with a step that does nothing: {empty['seconds']:.1f} s for "
            f"{empty['tenants']} dealerships ({empty['seconds'] / empty['tenants'] * 1000:.0f} ms a dealership)"
        )
        pandas_n = _run_child("pandas", night, _window_start(night))
        _pandas_line(str(night), pandas_n)
        _check(str(night), pandas_n)
        fanout = None
        if args.workers > 1:
            print(f"The same nightly recompute fanned out over {args.workers} processes ({_load_average()}):")
            fanout = _fanned_out(night, _window_start(night), args.workers)
            same = _results_digest(FANOUT_DB) == _results_digest(BENCH_DB)
            print(
                f"  {fanout['seconds']:.1f} s for {fanout['tenants']} dealerships (workers {fanout['per_worker']} s); "
                f"results {'identical to' if same else 'DIFFERENT from'} the sequential run's"
            )
            if not same:
                raise SystemExit("The fanned-out run's results differ from the sequential run's.")
    finally:
        _drop_database(FANOUT_DB)
        if args.keep_db:
            print(f"Kept the database {BENCH_DB}.")
        else:
            _drop_database()

    seconds = nightly["seconds"]
    floor_n = min(floor_d, floor_n, floor_after)  # the floor: the fastest of its nine runs (noisy machines)
    print(f"\nFigures (seconds, MB; lower is better). pandas {pandas_n['pandas']}; RSS = peak resident set size.")
    print(f"{'figure':<44}{'value':>12}  {'baseline (same run)':<26}{'ratio':>9}  {'target':<18}result")
    _row(
        f"nightly recompute, {nightly['tenants']} dealerships",
        f"{seconds:.1f} s",
        f"floor {floor_n:.2f} s",
        f"{seconds / floor_n:.1f}×",
        f"≤ {TARGET_FLOOR_RATIO:.0f}× floor",
        seconds / floor_n <= TARGET_FLOOR_RATIO,
    )
    _row(
        "  … against pandas, same scores",
        f"{seconds:.1f} s",
        f"pandas {pandas_n['seconds']:.1f} s",
        f"{pandas_n['seconds'] / seconds:.1f}× faster",
        f"≥ {TARGET_PANDAS_SPEEDUP:.0f}× faster",
        pandas_n["seconds"] / seconds >= TARGET_PANDAS_SPEEDUP,
    )
    if fanout:
        _row(
            f"  fanned out over {fanout['workers']} processes",
            f"{fanout['seconds']:.1f} s",
            f"floor {floor_n:.2f} s",
            f"{fanout['seconds'] / floor_n:.1f}×",
            f"≤ {TARGET_FLOOR_RATIO:.0f}× floor",
            fanout["seconds"] / floor_n <= TARGET_FLOOR_RATIO,
        )
        _row(
            "  … against pandas",
            f"{fanout['seconds']:.1f} s",
            f"pandas {pandas_n['seconds']:.1f} s",
            f"{pandas_n['seconds'] / fanout['seconds']:.1f}× faster",
            f"≥ {TARGET_PANDAS_SPEEDUP:.0f}× faster",
            pandas_n["seconds"] / fanout["seconds"] >= TARGET_PANDAS_SPEEDUP,
        )
        _row("  … peak RSS of one process", f"{fanout['peak_rss']:.0f} MB", "", "", f"< {TARGET_RSS_MB:.0f} MB", None)
    _row(
        "  peak RSS of the process",
        f"{nightly['peak_rss']:.0f} MB",
        f"pandas {pandas_n['peak_rss']:.0f} MB",
        f"{nightly['peak_rss'] / pandas_n['peak_rss']:.2f}×",
        f"< {TARGET_RSS_MB:.0f} MB",
        nightly["peak_rss"] < TARGET_RSS_MB,
    )
    _row("  … of which Python + Django at start", f"{nightly['start_rss']:.0f} MB", "", "", "", None)
    _row("  … of which segmentation_recompute", f"{nightly['phases']['engine']:.1f} s", "", "", "", None)
    if nightly["backend_hwm_mb"] is not None:
        _row(
            "  PostgreSQL backend: peak RSS (VmHWM)",
            f"{nightly['backend_hwm_mb']:.0f} MB",
            f"shared_buffers {nightly['shared_buffers']}",
            "",
            "(counts shared buf.)",
            None,
        )
        _row("  PostgreSQL backend: peak private (RssAnon)", f"{nightly['backend_anon_mb']:.0f} MB", "", "", "", None)
    _row(
        "the same night again: nothing to do",
        f"{again['seconds']:.1f} s",
        f"floor {floor_n:.2f} s",
        f"{again['seconds'] / floor_n:.1f}×",
        "(context)",
        None,
    )
    _row(
        "  the pipeline alone, a step doing nothing",
        f"{empty['seconds']:.1f} s",
        f"floor {floor_n:.2f} s",
        f"{empty['seconds'] / floor_n:.1f}×",
        "(context)",
        None,
    )
    _row(
        f"first run (cold build), {cold['tenants']} dealerships",
        f"{cold['seconds']:.1f} s",
        f"floor {floor_n:.2f} s",
        f"{cold['seconds'] / floor_n:.1f}×",
        "(once per dealer.)",
        None,
    )
    _row("  peak RSS of the process", f"{cold['peak_rss']:.0f} MB", "", "", "", None)
    _row(
        "pandas, same scores (load + compute)",
        f"{pandas_n['seconds']:.1f} s",
        f"floor {floor_n:.2f} s",
        f"{pandas_n['seconds'] / floor_n:.1f}×",
        "",
        None,
    )
    _row(
        "one query, three NTILE windows (context)",
        f"{ntile:.1f} s",
        f"floor {floor_n:.2f} s",
        f"{ntile / floor_n:.1f}×",
        "",
        None,
    )
    print(f"Total run time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
