"""How fast, and in how much memory, does a 100,000-row DMS file import?

Method
  1. Creates the database crm_bench_import as the owning role and migrates it (`manage.py migrate`).
  2. Writes three CSV files (UTF-8 with BOM, Chinese headers, as a DMS exports them) of --rows rows
     each (default 100,000): customers (11 columns: DMS id, name, mobile, gender, birthday, ID
     number with a valid check character, province, city, district, address, source), their
     vehicles (one each: VIN with a valid check digit, customer DMS id, brand, series, model,
     plate, purchase date, mileage) and one service order per vehicle (order number, customer, VIN,
     type, date, "¥1,280.00"-style amount, status, mileage).
  3. Runs every step in a fresh child process as the application role, under row-level security,
     exactly as the Celery tasks run it (`import_validate_task` / `import_commit_task`, in-process):
     customers validate → commit → commit the same file again (everything unchanged, nothing
     written) → vehicles validate → commit → orders validate → commit. Each child reports its wall
     time, rows per second and peak RSS (resource.getrusage), and the RSS it had before the step
     began (Python + Django loaded), so the step's own memory is the difference.
  4. Drops the database (`--keep-db` keeps it).

Baselines, measured in the same run on the same customers file
  * csv.reader: the file read and split into fields by Python's csv module, nothing else — the
    floor for any Python import that looks at every cell;
  * COPY: the file streamed into a TEMP table of text columns with PostgreSQL's COPY — the floor
    for getting the bytes into the database at all.
  And the memory check: the customers file is also validated at a tenth of its size; a streaming
  import has (nearly) the same peak RSS at both sizes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "crm_bench_import"

CUSTOMER_HEADERS = [
    "客户编号",
    "客户姓名",
    "手机号码",
    "性别",
    "出生日期",
    "身份证号",
    "省份",
    "城市",
    "区县",
    "详细地址",
    "客户来源",
]
VEHICLE_HEADERS = ["车架号", "客户编号", "品牌", "车系", "车型", "车牌号", "购车日期", "行驶里程"]
ORDER_HEADERS = ["工单号", "客户编号", "车架号", "工单类型", "结算日期", "结算金额", "状态", "进厂里程"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超"]
MOBILE_PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "158", "186", "188"]
SOURCES = ["展厅", "电话", "汽车之家", "微信", "转介绍", "活动", ""]
CITIES = [("广东省", "深圳市", "南山区"), ("广东省", "广州市", "天河区"), ("广东省", "东莞市", "南城街道")]
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _url(env: str, db: str) -> str:
    return urlunparse(urlparse(os.environ[env])._replace(path=f"/{db}"))


def _env(tmp: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": _url("DATABASE_URL", BENCH_DB),
        "DATABASE_OWNER_URL": _url("DATABASE_OWNER_URL", BENCH_DB),
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DEBUG": "False",
        "DB_CONN_MAX_AGE": "0",
        "MEDIA_ROOT": str(tmp / "media"),
    }
    for name in ("CELERY_BROKER_URL", "REDIS_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)  # the tasks run in-process, as on an install without a broker
    return env


# --- the files ------------------------------------------------------------------------------------


def _id_number(n: int) -> str:
    body = f"4403{n % 100:02d}19{70 + n % 30:02d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]


def _vin(n: int) -> str:
    from customers.validators import vin_check_digit

    body = f"LSVAM4187C{n:07d}"
    return body[:8] + vin_check_digit(body) + body[9:]


def _plate(n: int) -> str:
    letters = PLATE_LETTERS
    return f"粤B·{letters[n % 24]}{letters[(n // 24) % 24]}{n % 1000:03d}"


def write_files(tmp: Path, rows: int) -> dict[str, Path]:
    paths = {name: tmp / f"{name}.csv" for name in ("customers", "customers_small", "vehicles", "orders")}
    with (
        paths["customers"].open("w", encoding="utf-8-sig", newline="") as customers,
        paths["customers_small"].open("w", encoding="utf-8-sig", newline="") as small,
        paths["vehicles"].open("w", encoding="utf-8-sig", newline="") as vehicles,
        paths["orders"].open("w", encoding="utf-8-sig", newline="") as orders,
    ):
        writers = [csv.writer(f) for f in (customers, small, vehicles, orders)]
        for writer, header in zip(
            writers, (CUSTOMER_HEADERS, CUSTOMER_HEADERS, VEHICLE_HEADERS, ORDER_HEADERS), strict=True
        ):
            writer.writerow(header)
        for n in range(1, rows + 1):
            province, city, district = CITIES[n % len(CITIES)]
            customer = [
                f"DMS{n:08d}",
                SURNAMES[n % len(SURNAMES)] + GIVEN[(n // 20) % len(GIVEN)],
                f"{MOBILE_PREFIXES[n % len(MOBILE_PREFIXES)]}{n:08d}",
                "男" if n % 2 else "女",
                f"{1960 + n % 40}/{1 + n % 12}/{1 + n % 28}",
                _id_number(n),
                province,
                city,
                district,
                f"{district}科技园{n % 500}号{n % 30}栋",
                SOURCES[n % len(SOURCES)],
            ]
            writers[0].writerow(customer)
            if n <= rows // 10:
                writers[1].writerow(customer)
            writers[2].writerow(
                [
                    _vin(n),
                    f"DMS{n:08d}",
                    "上汽大众",
                    "帕萨特",
                    "2023款 330TSI",
                    _plate(n),
                    "2023-06-18",
                    f"{n % 90000:,}",
                ]
            )
            writers[3].writerow(
                [
                    f"RO{n:09d}",
                    f"DMS{n:08d}",
                    _vin(n),
                    "保养" if n % 3 else "维修",
                    f"2025{1 + n % 12:02d}{1 + n % 28:02d}",
                    f"¥{1000 + n % 5000:,}.50",
                    "冲销" if n % 50 == 0 else "已结算",
                    str(90000 + n % 1000),
                ]
            )
    return paths


# --- one step in a child process --------------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(step: str, tmp: Path) -> dict[str, Any]:
    """Runs in its own process so that its peak RSS is its own."""
    state_file = tmp / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if step == "baseline_csv_reader":
        start_rss = _rss_mb()
        started = time.perf_counter()
        with (tmp / "customers.csv").open(encoding="utf-8-sig", newline="") as f:
            rows = sum(1 for _ in csv.reader(f)) - 1
        return {"rows": rows, "seconds": time.perf_counter() - started, "start_rss": start_rss, "peak_rss": _rss_mb()}
    if step == "baseline_copy":
        start_rss = _rss_mb()
        started = time.perf_counter()
        with psycopg.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cursor:
            columns = ", ".join(f"c{i} text" for i in range(len(CUSTOMER_HEADERS)))
            cursor.execute(f"CREATE TEMP TABLE copy_baseline ({columns})")
            with (
                cursor.copy("COPY copy_baseline FROM STDIN (FORMAT csv, HEADER true)") as copy,
                (tmp / "customers.csv").open("rb") as f,
            ):
                f.read(3)  # the BOM
                while data := f.read(1024 * 1024):
                    copy.write(data)
            rows = cursor.execute("SELECT count(*) FROM copy_baseline").fetchone()[0]  # type: ignore[index]
            conn.commit()
        return {"rows": rows, "seconds": time.perf_counter() - started, "start_rss": start_rss, "peak_rss": _rss_mb()}

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files import File

    from crm.tenancy.context import tenant_context
    from crm.tenancy.models import Membership, Tenant
    from customers.models import ImportJob
    from customers.tasks import import_commit_task, import_validate_task

    if "tenant_id" not in state:
        tenant = Tenant.objects.create(name="导入基准门店", code="bench-import")
        user = get_user_model().objects.create_user(username="bench@import.test", email="bench@import.test")
        with tenant_context(tenant.pk):
            Membership.objects.create(user=user, role="manager")
        state |= {"tenant_id": tenant.pk, "user_id": user.pk}
    tenant_id = state["tenant_id"]
    kind, _sep, phase = step.rpartition("_")
    start_rss = _rss_mb()
    if phase == "validate":
        source = "customers_small" if kind == "customers_small" else kind
        kind = "customers" if kind == "customers_small" else kind
        with tenant_context(tenant_id), (tmp / f"{source}.csv").open("rb") as f:
            job = ImportJob(kind=kind, original_name=f"{source}.csv", created_by_id=state["user_id"])
            job.file.save(f"{source}.csv", File(f), save=False)
            job.save()
        job_id = state[f"{source}_job"] = job.pk
        started = time.perf_counter()
        status = import_validate_task.apply(kwargs={"tenant_id": tenant_id, "job_id": job_id}).get()
    else:  # commit; "customers_re" commits the customers file a second time
        job_id = state[f"{kind.removesuffix('_re')}_job"]
        with tenant_context(tenant_id):
            ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.IMPORTING)
        started = time.perf_counter()
        status = import_commit_task.apply(kwargs={"tenant_id": tenant_id, "job_id": job_id}).get()
    seconds = time.perf_counter() - started
    with tenant_context(tenant_id):
        job = ImportJob.objects.get(pk=job_id)
    state_file.write_text(json.dumps(state))
    return {
        "rows": job.total_rows,
        "seconds": seconds,
        "status": status,
        "errors": job.error_count,
        "result": job.result,
        "start_rss": start_rss,
        "peak_rss": _rss_mb(),
    }


# --- the run --------------------------------------------------------------------------------------

STEPS = [
    ("baseline_csv_reader", "baseline: csv.reader over the customers file"),
    ("baseline_copy", "baseline: COPY into a TEMP table"),
    ("customers_small_validate", "customers, a tenth of the file: validate"),
    ("customers_validate", "customers: validate"),
    ("customers_commit", "customers: commit"),
    ("customers_re_commit", "customers, same file again: commit"),
    ("vehicles_validate", "vehicles: validate"),
    ("vehicles_commit", "vehicles: commit"),
    ("orders_validate", "orders: validate"),
    ("orders_commit", "orders: commit"),
]


def _setup_database(env: dict[str, str]) -> None:
    with psycopg.connect(_url("DATABASE_OWNER_URL", "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.tmp)), default=str))
        return

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp_name:
        tmp = Path(tmp_name)
        env = _env(tmp)
        _setup_database(env)
        started = time.perf_counter()
        paths = write_files(tmp, args.rows)
        size_mb = paths["customers"].stat().st_size / 1024 / 1024
        print(
            f"{args.rows:,} rows per file (customers CSV {size_mb:.1f} MB), written in "
            f"{time.perf_counter() - started:.1f} s. Every step in its own process; RSS in MB."
        )
        print(f"{'step':<44}{'rows':>9}{'seconds':>9}{'rows/s':>10}{'RSS start':>11}{'RSS peak':>10}  result")
        try:
            for step, label in STEPS:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", step, "--tmp", str(tmp)],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                report = json.loads(out.stdout.strip().splitlines()[-1])
                rate = report["rows"] / report["seconds"] if report["seconds"] else 0
                outcome = report.get("status", "")
                if report.get("errors"):
                    outcome += f" ({report['errors']} errors)"
                result = report.get("result") or {}
                if "created" in result:
                    outcome += (
                        f" created {result['created']}, updated {result['updated']}, unchanged {result['unchanged']}"
                    )
                print(
                    f"{label:<44}{report['rows']:>9,}{report['seconds']:>9.2f}{rate:>10,.0f}"
                    f"{report['start_rss']:>11.0f}{report['peak_rss']:>10.0f}  {outcome}"
                )
                if report.get("status") not in (None, "ready", "done"):
                    raise SystemExit(f"{step} ended {report.get('status')}: {result}")
        finally:
            if not args.keep_db:
                with psycopg.connect(_url("DATABASE_OWNER_URL", "postgres"), autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
