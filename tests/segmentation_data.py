"""Data and an independent model for the segmentation engine tests (tests/test_segmentation_engine.py).

`populate` writes a deterministic dealership full of ties: a handful of visit dates, order counts and
amounts shared by many customers, reversed orders, orders older than the window, prospects, red- and
black-listed customers, churned customers and a merged-away tombstone.

`expected_values` recomputes every engine output from the raw rows with pandas, following the rules
as the issue states them (quintile score = 1 + floor(5 × customers with a strictly worse value / n),
tiers by value rank, lifecycle and relationship class as in the engine's CASE expressions). It uses
no engine code except the SEGMENT_GRID constant.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from dateutil.relativedelta import relativedelta

from customers.models import Customer, Order, Touchpoint
from segmentation.engine import SEGMENT_GRID
from segmentation.models import CustomerValue
from surveys.models import Response

# Offsets in days before the anchor date. Few distinct values, so ties are everywhere; 30/90/365/730
# sit exactly on the threshold-mode limits and 31/91/366/731 just past them.
VISIT_DAYS = [0, 3, 30, 31, 90, 91, 200, 365, 366, 500, 730, 731, 900]
ORDER_DAYS = [0, 3, 10, 30, 31, 90, 91, 120, 200, 365, 366, 500, 730, 731, 1000, 1090]
OLD_ORDER_DAYS = [1200, 1500, 2000]  # older than a 36-month window
AMOUNTS = [Decimal(a) for a in ("500.00", "880.00", "1000.00", "1500.00", "3000.00", "10000.00")]
AMOUNT_WEIGHTS = [10, 30, 25, 15, 10, 10]
CAR = Decimal("219900.00")

# Threshold-mode limits that the data above hits exactly.
THRESHOLDS = {
    "recency_days": [30, 90, 365, 730],
    "frequency_limits": [1, 2, 4, 6],
    "monetary_limits": [Decimal("1000.00"), Decimal("3000.00"), Decimal("10000.00"), Decimal("200000.00")],
}


@dataclass
class Population:
    anchor: date
    buyers: list[int] = field(default_factory=list)
    prospects: list[int] = field(default_factory=list)
    roles: dict[str, int] = field(default_factory=dict)  # named customers the tests pick on
    with_external_id: list[int] = field(default_factory=list)


def populate(*, anchor: date, buyers: int = 280, seed: int = 2026, prefix: str = "SEG") -> Population:
    """Write the customers, orders and touchpoints of one dealership (inside its tenant_context)."""
    rng = random.Random(seed)
    window_start = anchor - relativedelta(months=36)
    people: list[Customer] = []
    plans: list[list[tuple[int, Decimal, str, str]]] = []  # per customer: (days ago, amount, kind, status)

    def add(plan: list[tuple[int, Decimal, str, str]], visit_days: int | None = None, **fields: Any) -> Customer:
        number = len(people)
        customer = Customer(
            name=f"分群{prefix}{number:04d}",
            last_visit_on=None if visit_days is None else anchor - timedelta(days=visit_days),
            **fields,
        )
        people.append(customer)
        plans.append(plan)
        return customer

    completed, reversed_ = Order.Status.COMPLETED, Order.Status.REVERSED
    maintenance, sale = Order.Kind.MAINTENANCE, Order.Kind.VEHICLE_SALE
    for i in range(buyers):
        in_window = rng.choices([0, 1, 2, 3, 4, 5, 6, 8], weights=[6, 30, 22, 14, 10, 6, 6, 6])[0]
        plan = [
            (rng.choice(ORDER_DAYS), rng.choices(AMOUNTS, weights=AMOUNT_WEIGHTS)[0], maintenance, completed)
            for _ in range(in_window)
        ]
        if rng.random() < 0.1:
            plan.append((rng.choice(ORDER_DAYS), CAR, sale, completed))
        if in_window == 0 or rng.random() < 0.25:
            plan.append((rng.choice(OLD_ORDER_DAYS), rng.choice(AMOUNTS), maintenance, completed))
        if rng.random() < 0.2:  # reversed: must count for nothing (not recency, not spend)
            plan.append((0, Decimal("50000.00"), Order.Kind.REPAIR, reversed_))
        visit = rng.choice([*VISIT_DAYS, None, None, None])
        external_id = f"{prefix}-C{i:04d}" if i % 10 == 0 else ""
        add(plan, visit, external_id=external_id)

    # Orders right on the window's edge: on its first day (counts) and the day before (does not).
    edge = (anchor - window_start).days
    add([(edge, Decimal("880.00"), maintenance, completed), (edge + 1, Decimal("880.00"), maintenance, completed)])
    add([(edge + 1, Decimal("1000.00"), maintenance, completed)], 900)
    # Two vehicles bought: loyal; a second order on another day: retained; churned despite a recent visit.
    add([(500, CAR, sale, completed), (30, CAR, sale, completed)])
    add([(200, Decimal("880.00"), maintenance, completed), (3, Decimal("880.00"), maintenance, completed)])
    add([(3, Decimal("1000.00"), maintenance, completed)], 0, churn_reason="搬家到外地")
    add([(731, Decimal("500.00"), maintenance, completed)], None, churn_reason="价格原因")
    # Lists: a black-listed big spender (would be key), a red-listed small spender (would be exit),
    # a red-listed big spender, a black-listed and a red-listed prospect.
    big = [(3, CAR, sale, completed), (10, Decimal("10000.00"), maintenance, completed)]
    add(big + [(30, Decimal("3000.00"), maintenance, completed)] * 4, 0, list_flag="black", list_reason="骗保")
    add([(1500, Decimal("500.00"), maintenance, completed)], None, list_flag="red", list_reason="老领导")
    add(big + [(30, Decimal("3000.00"), maintenance, completed)] * 4, 0, list_flag="red", list_reason="车友会长")
    add([], 30, list_flag="black", list_reason="恶意投诉")
    add([], None, list_flag="red", list_reason="大客户介绍人")
    first_special = buyers
    # Prospects: nothing at all; a visit only; only reversed orders.
    for _ in range(12):
        add([])
    for days in (0, 30, 365, 900):
        add([], days)
    add([(3, Decimal("880.00"), maintenance, reversed_)])
    add([(30, CAR, sale, reversed_), (30, Decimal("880.00"), maintenance, reversed_)], 90)
    for _ in range(4):  # contacted by phone (not in person): no visit date, but a touchpoint
        add([])

    Customer.objects.bulk_create(people)
    # A tombstone, merged into the first buyer, whose leftover order must be ignored.
    tombstone = Customer.objects.create(name=f"分群{prefix}合并", merged_into=people[0], last_visit_on=anchor)
    orders: list[Order] = []
    for customer, plan in zip(people, plans, strict=True):
        for n, (days, amount, kind, status) in enumerate(plan):
            external_id = f"{prefix}-O{customer.pk}-{n}" if customer.external_id else ""
            orders.append(
                Order(
                    customer=customer,
                    ordered_on=anchor - timedelta(days=days),
                    amount=amount,
                    kind=kind,
                    status=status,
                    external_id=external_id,
                )
            )
    orders.append(Order(customer=tombstone, ordered_on=anchor, amount=CAR, kind=sale))
    Order.objects.bulk_create(orders)
    Touchpoint.objects.bulk_create(
        [Touchpoint(customer=c, channel="call", outcome="reached") for c in people[-4:]]
        + [Touchpoint(customer=people[1], channel="wechat", outcome="reached")]
    )

    population = Population(anchor=anchor)
    for customer, plan in zip(people, plans, strict=True):
        is_buyer = any(status == completed for *_rest, status in plan)
        (population.buyers if is_buyer else population.prospects).append(customer.pk)
        if customer.external_id:
            population.with_external_id.append(customer.pk)
    names = [
        "edge",
        "edge_out",
        "two_cars",
        "retained",
        "churned_recent",
        "churned_old",
        "black",
        "red_small",
        "red_big",
        "black_prospect",
        "red_prospect",
    ]
    for offset, name in enumerate(names):
        population.roles[name] = people[first_special + offset].pk
    population.roles["plain_prospect"] = people[first_special + len(names)].pk
    population.roles["tombstone"] = tombstone.pk
    return population


# --- The independent model ------------------------------------------------------------------------


@dataclass
class Frames:
    customers: pd.DataFrame
    orders: pd.DataFrame
    touched: set[int]
    # the latest overall rating of each customer who answered a survey (the surveys app's signal)
    latest_rating: dict[int, int] = field(default_factory=dict)


def load_frames() -> Frames:
    """The raw rows of the active dealership, as they are before a run."""
    customers = pd.DataFrame.from_records(
        list(
            Customer.objects.values(
                "id", "last_visit_on", "list_flag", "churn_reason", "merged_into_id", "relationship_class"
            )
        ),
        columns=["id", "last_visit_on", "list_flag", "churn_reason", "merged_into_id", "relationship_class"],
    ).set_index("id")
    orders = pd.DataFrame.from_records(
        list(Order.objects.values("customer_id", "ordered_on", "amount", "status", "kind")),
        columns=["customer_id", "ordered_on", "amount", "status", "kind"],
    )
    touched = set(Touchpoint.objects.values_list("customer_id", flat=True))
    latest_rating: dict[int, int] = {}
    for customer_id, overall in (
        Response.objects.exclude(overall=None).order_by("submitted_at").values_list("customer_id", "overall")
    ):
        latest_rating[customer_id] = overall
    return Frames(customers=customers, orders=orders, touched=touched, latest_rating=latest_rating)


def _ordinal(value: Any) -> float:
    return float("nan") if value is None or pd.isna(value) else float(value.toordinal())


def _score_quintile(values: pd.Series) -> pd.Series:
    """1 + floor(5 × (customers with a strictly smaller value) / n); equal values share a score."""
    n = len(values)
    worse = values.rank(method="min").astype(int) - 1
    return 1 + (5 * worse) // n


TIER_KEY, TIER_CONSOLIDATE, TIER_MAINTAIN, TIER_EXIT = "key", "consolidate", "maintain", "exit"


def expected_values(frames: Frames, settings: Any, run_date: date) -> pd.DataFrame:
    """Every output of a run on `run_date`, per live customer, from the raw rows."""
    customers = frames.customers[frames.customers["merged_into_id"].isna()].copy()
    orders = frames.orders[frames.orders["status"] != Order.Status.REVERSED].copy()
    window_start = run_date - relativedelta(months=settings.window_months)
    orders["day"] = orders["ordered_on"].map(lambda d: d.toordinal())
    orders["cents"] = orders["amount"].map(lambda a: int(a * 100))
    orders["vehicle"] = (orders["kind"] == Order.Kind.VEHICLE_SALE).astype(int)
    in_window = orders[orders["ordered_on"] >= window_start]
    all_time = orders.groupby("customer_id")
    windowed = in_window.groupby("customer_id")
    df = customers.join(
        pd.DataFrame(
            {
                "orders_total": all_time.size(),
                "first_day": all_time["day"].min(),
                "last_day": all_time["day"].max(),
                "vehicle_purchases": all_time["vehicle"].sum(),
            }
        )
    ).join(pd.DataFrame({"frequency": windowed.size(), "cents": windowed["cents"].sum()}))
    for column in ("orders_total", "vehicle_purchases", "frequency", "cents"):
        df[column] = df[column].fillna(0).astype(int)
    df["visit_day"] = df["last_visit_on"].map(_ordinal)
    df["activity_day"] = df[["visit_day", "last_day"]].max(axis=1, skipna=True)
    scored = df[df["orders_total"] > 0].copy()
    n = len(scored)
    days = run_date.toordinal() - scored["activity_day"]
    if settings.scoring_mode == "thresholds":
        scored["r"] = 1 + sum((days <= limit).astype(int) for limit in settings.recency_days)
        scored["f"] = 1 + sum((scored["frequency"] >= limit).astype(int) for limit in settings.frequency_limits)
        scored["m"] = 1 + sum((scored["cents"] >= int(limit * 100)).astype(int) for limit in settings.monetary_limits)
    else:
        scored["r"] = _score_quintile(scored["activity_day"])  # older = smaller = worse
        scored["f"] = _score_quintile(scored["frequency"])
        scored["m"] = _score_quintile(scored["cents"])
    scored["segment"] = [
        str(SEGMENT_GRID[r][(f + m + 1) // 2 - 1].value)
        for r, f, m in zip(scored["r"], scored["f"], scored["m"], strict=True)
    ]
    # Value rank: R + F + M first, spend breaks ties; p = customers with a strictly greater key.
    value_key = (scored["r"] + scored["f"] + scored["m"]).astype("int64") * 10**15 + scored["cents"]
    better = value_key.rank(method="min", ascending=False).astype(int) - 1
    c1 = settings.share_key
    c2 = c1 + settings.share_consolidate
    c3 = c2 + settings.share_maintain

    def tier_of(p: int) -> str:
        if 100 * p < c1 * n:
            return TIER_KEY
        if 100 * p < c2 * n:
            return TIER_CONSOLIDATE
        if 100 * p < c3 * n:
            return TIER_MAINTAIN
        return TIER_EXIT

    scored["tier"] = better.map(tier_of)
    df = df.join(scored[["r", "f", "m", "segment", "tier"]])
    rows = {}
    for cid, row in df.iterrows():
        buyer = row["orders_total"] > 0
        activity = None if pd.isna(row["activity_day"]) else date.fromordinal(int(row["activity_day"]))
        r, f, m = (int(row[k]) if buyer else None for k in ("r", "f", "m"))
        tier = row["tier"] if buyer else ""
        if row["list_flag"] == "black":
            tier = TIER_EXIT
        elif row["list_flag"] == "red" and buyer:
            if settings.red_list_effect == "always_key":
                tier = TIER_KEY
            elif settings.red_list_effect == "at_least_consolidate" and tier in (TIER_MAINTAIN, TIER_EXIT):
                tier = TIER_CONSOLIDATE
        idle = run_date.toordinal() - row["activity_day"] if buyer else None
        # Lifecycle; the one signal registered so far is the surveys app's (latest rating 4-5 = satisfied).
        if not buyer:
            stage = "prospect"
        elif row["churn_reason"] or idle > settings.lost_after_days:
            stage = "lost"
        elif idle > settings.dormant_after_days:
            stage = "dormant"
        elif row["vehicle_purchases"] >= 2 or row["frequency"] >= settings.loyal_min_orders:
            stage = "loyal"
        elif row["last_day"] > row["first_day"]:
            stage = "retained"
        elif frames.latest_rating.get(cid, 0) >= 4:
            stage = "satisfied"
        else:
            stage = "new"
        if stage == "loyal":
            klass = "loyal"
        elif stage in ("new", "satisfied", "retained"):
            klass = "key"
        elif buyer or activity is not None or row["relationship_class"] != "potential" or cid in frames.touched:
            klass = "general"
        else:
            klass = "potential"
        rows[int(cid)] = {
            "first_order_on": date.fromordinal(int(row["first_day"])) if buyer else None,
            "last_order_on": date.fromordinal(int(row["last_day"])) if buyer else None,
            "orders_total": int(row["orders_total"]),
            "vehicle_purchases": int(row["vehicle_purchases"]),
            "frequency": int(row["frequency"]),
            "monetary": Decimal(int(row["cents"])) / 100,
            "last_activity_on": activity,
            "r_score": r,
            "f_score": f,
            "m_score": m,
            "rfm_code": f"{r}{f}{m}" if buyer else "",
            "segment": row["segment"] if buyer else "",
            "tier": tier,
            "lifecycle_stage": stage,
            "relationship_class": klass,
        }
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


VALUE_COLUMNS = [
    "first_order_on",
    "last_order_on",
    "orders_total",
    "vehicle_purchases",
    "frequency",
    "monetary",
    "last_activity_on",
    "r_score",
    "f_score",
    "m_score",
    "rfm_code",
    "segment",
    "tier",
]


def actual_values() -> pd.DataFrame:
    """What the engine wrote for the active dealership: CustomerValue plus the customer's stage and class."""
    rows = CustomerValue.objects.values("customer_id", *VALUE_COLUMNS, "scored_on")
    classes = {
        cid: (stage, klass)
        for cid, stage, klass in Customer.objects.values_list("id", "lifecycle_stage", "relationship_class")
    }
    records = {
        row["customer_id"]: {k: row[k] for k in (*VALUE_COLUMNS, "scored_on")}
        | {"lifecycle_stage": classes[row["customer_id"]][0], "relationship_class": classes[row["customer_id"]][1]}
        for row in rows
    }
    return pd.DataFrame.from_dict(records, orient="index").sort_index()


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, str | date | Decimal) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def differences(expected: pd.DataFrame, actual: pd.DataFrame, *, columns: list[str] | None = None) -> list[str]:
    """Human-readable mismatches (customer, column, expected, actual); empty when equal."""
    problems = []
    missing, extra = set(expected.index) - set(actual.index), set(actual.index) - set(expected.index)
    if missing:
        problems.append(f"no CustomerValue row for {sorted(missing)[:10]}")
    if extra:
        problems.append(f"unexpected CustomerValue rows for {sorted(extra)[:10]}")
    columns = columns or list(expected.columns)
    for cid in sorted(set(expected.index) & set(actual.index)):
        for column in columns:
            want, got = _plain(expected.at[cid, column]), _plain(actual.at[cid, column])
            if want != got:
                problems.append(f"customer {cid} {column}: expected {want!r}, engine {got!r}")
    return problems


def counts(frame: pd.DataFrame, column: str) -> dict[str, int]:
    return dict(Counter(str(v) for v in frame[column]))


def straddles_a_boundary(values: pd.Series) -> bool:
    """True when some group of equal values covers a quintile edge (a row-numbering scorer would split it)."""
    n = len(values)
    ordered = values.sort_values(kind="stable").reset_index(drop=True)
    edges = {-(-k * n // 5) for k in range(1, 5)}  # 0-based first position of each higher quintile
    for _value, positions in ordered.groupby(ordered).groups.items():
        first, last = min(positions), max(positions)
        if any(first < edge <= last for edge in edges):
            return True
    return False
