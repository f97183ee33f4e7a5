"""Customer information accuracy (客户信息准确率): a score per customer and per dealership.

The rule
--------
Every live customer (not a merged tombstone) starts at 100 points. Each issue found takes off its
weight; the score is ``max(0, 100 - sum of the weights of the issues present)``. The weights of all
issues add up to 100. A customer is *accurate* when the score is 100 (no issue at all), and the
dealership's accuracy is the share of accurate customers; the average score is shown next to it.

=====================  ======  ==========================================================================
code                   weight  the customer has this issue when…
=====================  ======  ==========================================================================
``missing_mobile``         25  the mobile number is empty (nobody can call or text them)
``invalid_mobile``         20  the mobile is not a mainland mobile in E.164 form (``+861[3-9]`` and nine
                               more digits) and not a foreign E.164 number (``+`` then 7–15 digits, country
                               code other than 86)
``duplicate_mobile``       10  another live customer of the same dealership has the same mobile (a likely
                               duplicate record; both are flagged until they are merged or corrected)
``missing_name``            5  the name is empty or only spaces
``missing_birthday``       10  an individual (not a company) has no birthday (birthday care, age groups)
``missing_address``        10  the street address is empty (service goes to the nearest workshop)
``invalid_vin``            15  any vehicle the customer owns has a VIN that is not 17 characters of
                               digits and capitals without I, O, Q, or whose check digit (9th character,
                               ISO 3779 weights 8,7,6,5,4,3,2,10,0,9,8,7,6,5,4,3,2, mod 11, 10 = X) is wrong
``invalid_id_number``       5  an ID number is recorded but is not 17 digits and a check character, or the
                               check character (GB 11643: weights 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2,
                               mod 11 → ``10X98765432``) is wrong; an empty ID number is not an issue
=====================  ======  ==========================================================================

``missing_mobile`` and ``invalid_mobile`` exclude each other, so the lowest score reachable with these
rules is 25; the floor at 0 only guards future weights. The checks agree with
``customers/validators.py`` (what the app accepts at entry), but run in PostgreSQL, set-based, so that
a dealership of a million customers is rescored in one statement.

When
----
``customer_quality_refresh()`` rescores the whole dealership in the nightly step
``customers.data_quality`` (``customers/nightly.py``), which then writes the day's
``DataQualitySnapshot`` (one per dealership and day; the trend on the data-quality page). Services
that edit a record call ``customer_quality_refresh(customer_ids=[…], mobiles=[old mobile])`` so the
record's score is current at once. Only rows whose score or issues change are written.

Cost (1,000,000 customers and 800,000 vehicles in one dealership, 2 CPUs, PostgreSQL 15):
about 7 s for a night on which nothing or 1% changed, about 38 s for a first run that writes every
row (each changed row updates all of the table's indexes), a few milliseconds for one edited record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.db.models import Avg, Count, Q
from django.utils.translation import gettext_lazy as _

from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import Membership
from customers.models import Customer, DataQualitySnapshot
from customers.selectors import customer_visible_to

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise


@dataclass(frozen=True)
class QualityIssue:
    code: str
    weight: int
    label: StrPromise
    # A boolean SQL expression over the customer row `c`, the duplicate-mobile row `dup` and the
    # invalid-VIN row `bad_vin` (both LEFT JOINed, so NULL when absent).
    condition: str


_MAINLAND_MOBILE = r"^\+861[3-9][0-9]{9}$"
_FOREIGN_E164 = r"^\+[1-9][0-9]{6,14}$"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# VIN transliteration (ISO 3779), as an array indexed by ASCII code + 1: digits are themselves,
# A-H 1-8, J-N 1-5, P 7, R 9, S-Z 2-9. A constant array lookup per character is cheaper than
# translate() and arithmetic on text slices.
_VIN_CHAR_VALUES = dict(
    zip("0123456789ABCDEFGHJKLMNPRSTUVWXYZ", map(int, "012345678912345678123457923456789"), strict=True)
)
_VIN_VALUE_ARRAY = "'{" + ",".join(str(_VIN_CHAR_VALUES.get(chr(code), 0)) for code in range(128)) + "}'::int[]"


def _weighted_sum(terms: list[str], weights: tuple[int, ...]) -> str:
    """SQL for sum(term_i * weight_i), unrolled: no per-row subquery or function call."""
    return " + ".join(f"{term} * {w}" for term, w in zip(terms, weights, strict=True) if w)


# Both are guarded by CASE: PostgreSQL does not promise to evaluate AND/OR left to right, and the
# digit arithmetic is only meaningful once the shape is right.
ID_NUMBER_VALID_SQL = (
    "CASE WHEN c.id_number ~ '^[0-9]{17}[0-9X]$' THEN substr('10X98765432', mod("
    + _weighted_sum([f"(ascii(substr(c.id_number, {i}, 1)) - 48)" for i in range(1, 18)], _ID_WEIGHTS)
    + ", 11) + 1, 1) = substr(c.id_number, 18, 1) ELSE false END"
)
# over v.vin_upper and v.vin_bytes (the same as bytea), see _BAD_VIN
VIN_VALID_SQL = (
    "CASE WHEN v.vin_upper ~ '^[A-HJ-NPR-Z0-9]{17}$' THEN substr('0123456789X', mod("
    + _weighted_sum([f"({_VIN_VALUE_ARRAY})[get_byte(v.vin_bytes, {i}) + 1]" for i in range(17)], _VIN_WEIGHTS)
    + ", 11) + 1, 1) = substr(v.vin_upper, 9, 1) ELSE false END"
)
MOBILE_VALID_SQL = f"(c.mobile ~ '{_MAINLAND_MOBILE}' OR (c.mobile ~ '{_FOREIGN_E164}' AND left(c.mobile, 3) <> '+86'))"

ISSUES: tuple[QualityIssue, ...] = (
    QualityIssue("missing_mobile", 25, _("No mobile number"), "btrim(c.mobile) = ''"),
    QualityIssue("invalid_mobile", 20, _("Invalid mobile number"), f"btrim(c.mobile) <> '' AND NOT {MOBILE_VALID_SQL}"),
    QualityIssue("duplicate_mobile", 10, _("Mobile shared with another customer"), "dup.mobile IS NOT NULL"),
    QualityIssue("missing_name", 5, _("No name"), "btrim(c.name) = ''"),
    QualityIssue("missing_birthday", 10, _("No birthday"), "c.kind = 'individual' AND c.birthday IS NULL"),
    QualityIssue("missing_address", 10, _("No address"), "btrim(c.address) = ''"),
    QualityIssue("invalid_vin", 15, _("Invalid VIN"), "bad_vin.customer_id IS NOT NULL"),
    QualityIssue("invalid_id_number", 5, _("Invalid ID number"), f"c.id_number <> '' AND NOT ({ID_NUMBER_VALID_SQL})"),
)
ISSUES_BY_CODE: dict[str, QualityIssue] = {issue.code: issue for issue in ISSUES}
assert sum(issue.weight for issue in ISSUES) == 100, "quality issue weights must add up to 100"


def quality_score_for(issues: list[str]) -> int:
    """The score a customer with these issue codes gets (the same rule the SQL applies)."""
    return max(0, 100 - sum(ISSUES_BY_CODE[code].weight for code in issues))


def quality_issue_label(code: str) -> str:
    issue = ISSUES_BY_CODE.get(code)
    return str(issue.label) if issue else code  # a code from an older rule shows as itself


_BAD_VIN = f"""
    SELECT DISTINCT v.customer_id
      FROM (SELECT v.customer_id, upper(v.vin) AS vin_upper, convert_to(upper(v.vin), 'UTF8') AS vin_bytes
              FROM customers_vehicle v
             WHERE v.tenant_id = %(tenant)s /*vehicle_filter*/
            OFFSET 0) v  -- a fence: upper() and convert_to() once per row, not once per character
     WHERE NOT ({VIN_VALID_SQL})
"""

_SCORE_SQL = " + ".join(f"CASE WHEN f.{issue.code} THEN {issue.weight} ELSE 0 END" for issue in ISSUES)
_ISSUES_SQL = ", ".join(f"CASE WHEN f.{issue.code} THEN '{issue.code}' END" for issue in ISSUES)
_FLAGS_SQL = ",\n".join(f"({issue.condition}) AS {issue.code}" for issue in ISSUES)

# One statement. Each check runs once per customer (the OFFSET 0 fence), and rows whose score and
# issues are unchanged are dropped *before* the join back to the table, so a quiet night joins and
# writes almost nothing.
_REFRESH = f"""
WITH targets AS (
    SELECT c.id, c.kind, c.name, c.mobile, c.id_number, c.birthday, c.address, c.quality_score, c.quality_issues
      FROM customers_customer c
     WHERE c.tenant_id = %(tenant)s AND c.merged_into_id IS NULL /*target_filter*/
),
dup AS (
    SELECT d.mobile FROM customers_customer d
     WHERE d.tenant_id = %(tenant)s AND d.merged_into_id IS NULL AND btrim(d.mobile) <> '' /*dup_filter*/
     GROUP BY d.mobile HAVING count(*) > 1
),
bad_vin AS ({_BAD_VIN}),
flags AS (
    SELECT c.id, c.quality_score AS old_score, c.quality_issues AS old_issues, {_FLAGS_SQL}
      FROM targets c
      LEFT JOIN dup ON dup.mobile = c.mobile
      LEFT JOIN bad_vin ON bad_vin.customer_id = c.id
    OFFSET 0
),
scored AS (
    SELECT f.id, f.old_score, f.old_issues,
           greatest(0, 100 - ({_SCORE_SQL}))::smallint AS score,
           array_remove(ARRAY[{_ISSUES_SQL}]::varchar(32)[], NULL) AS issues
      FROM flags f
)
UPDATE customers_customer c
   SET quality_score = s.score, quality_issues = s.issues
  FROM scored s
 WHERE (s.old_score, s.old_issues) IS DISTINCT FROM (s.score, s.issues)
   AND c.id = s.id AND c.tenant_id = %(tenant)s
"""

# Refreshing some customers also rescores every live customer sharing a mobile with them (their
# duplicate flag depends on each other), plus those with the `mobiles` given (an edit's old number).
# The mobiles are looked up first, so that both lists reach the planner as values (primary key and
# tenant + mobile index; a subquery here would make it guess and scan the table).
_SOME_TARGETS = "AND (c.id = ANY(%(ids)s) OR c.mobile = ANY(%(mobiles)s::varchar[]))"
_SOME_DUPLICATES = "AND d.mobile = ANY(%(mobiles)s::varchar[])"
_SOME_VEHICLES = "AND v.customer_id IN (SELECT id FROM targets)"
_MOBILES_OF = (
    "SELECT DISTINCT mobile FROM customers_customer WHERE tenant_id = %s AND id = ANY(%s) AND btrim(mobile) <> ''"
)

# Hashing a dealership's customers and vehicles needs more than the default 4 MB; set for the whole
# dealership's refresh only, transaction-locally, and put back afterwards.
_REFRESH_ALL_WORK_MEM = "64MB"


@transaction.atomic
def customer_quality_refresh(*, customer_ids: list[int] | None = None, mobiles: list[str] | None = None) -> int:
    """Recompute quality_score and quality_issues in the active dealership; returns rows changed.

    With `customer_ids` None, every live customer is rescored (the nightly run). Otherwise those
    customers are, together with every live customer who shares a mobile with one of them or has
    one of `mobiles` — pass a record's previous mobile after an edit, so its former twin loses the
    duplicate flag. Merged tombstones are skipped. One UPDATE (after a lookup of the customers'
    mobiles when ids are given); rows whose score and issues are unchanged are not written.
    """
    tenant_id = require_tenant_id()
    if customer_ids is not None and not customer_ids and not mobiles:
        return 0
    params: dict[str, int | list[int] | list[str]] = {"tenant": tenant_id}
    with connection.cursor() as cursor:
        if customer_ids is None:
            sql = _REFRESH
            cursor.execute(
                "SELECT current_setting('work_mem'), set_config('work_mem', %s, true)", [_REFRESH_ALL_WORK_MEM]
            )
            (previous_work_mem, _set) = cursor.fetchone()
        else:
            ids = sorted({int(pk) for pk in customer_ids})
            cursor.execute(_MOBILES_OF, [tenant_id, ids])
            shared = {mobile for (mobile,) in cursor.fetchall()} | {m for m in mobiles or [] if m.strip()}
            if not ids and not shared:
                return 0
            params |= {"ids": ids, "mobiles": sorted(shared)}
            sql = (
                _REFRESH.replace("/*target_filter*/", _SOME_TARGETS)
                .replace("/*dup_filter*/", _SOME_DUPLICATES)
                .replace("/*vehicle_filter*/", _SOME_VEHICLES)
            )
        cursor.execute(sql, params)
        changed = int(cursor.rowcount)
        if customer_ids is None:
            cursor.execute("SELECT set_config('work_mem', %s, true)", [previous_work_mem])
    return changed


def _issue_counts() -> dict[str, Count]:
    return {issue.code: Count("pk", filter=Q(quality_issues__contains=[issue.code])) for issue in ISSUES}


def _figures(customers: int, accurate: int, average: Decimal | float | None) -> tuple[Decimal | None, Decimal]:
    accuracy = (Decimal(accurate) * 100 / customers).quantize(Decimal("0.1"), ROUND_HALF_UP) if customers else None
    average_score = Decimal(str(average or 0)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return accuracy, average_score


@transaction.atomic
def dealership_quality_snapshot(*, on: date) -> DataQualitySnapshot:
    """Write (or overwrite) the active dealership's snapshot for `on` from the current scores.

    Counts live customers that have been scored; run after customer_quality_refresh().
    """
    scored = Customer.objects.filter(merged_into__isnull=True, quality_score__isnull=False)
    figures = scored.aggregate(
        customers=Count("pk"),
        accurate=Count("pk", filter=Q(quality_score=100)),
        average=Avg("quality_score"),
        **_issue_counts(),
    )
    _accuracy, average_score = _figures(figures["customers"], figures["accurate"], figures["average"])
    snapshot, _created = DataQualitySnapshot.objects.update_or_create(
        computed_on=on,
        defaults={
            "customers": figures["customers"],
            "accurate": figures["accurate"],
            "average_score": average_score,
            "issue_counts": {issue.code: figures[issue.code] for issue in ISSUES if figures[issue.code]},
        },
    )
    return snapshot


# ---------------------------------------------------------------------------------------------
# Reads for the data-quality page


@dataclass(frozen=True)
class IssueCount:
    code: str
    label: str
    weight: int
    count: int


@dataclass(frozen=True)
class TrendPoint:
    computed_on: date
    customers: int
    accuracy: Decimal | None
    average_score: Decimal


@dataclass(frozen=True)
class QualitySummary:
    """Figures over the customers the viewer can see, as scored now."""

    customers: int  # scored live customers
    accurate: int  # of them with score 100
    accuracy: Decimal | None  # accurate / customers in %, one decimal; None without customers
    average_score: Decimal
    unscored: int  # live customers not scored yet (created since the last refresh)
    issues: list[IssueCount]
    trend: list[TrendPoint] = field(default_factory=list)  # dealership snapshots, oldest first


TREND_POINTS = 14


def quality_summary(*, viewer: Membership) -> QualitySummary:
    """Accuracy, average score and issue counts over the viewer's customers (one scan).

    The trend (the dealership's latest snapshots) is only given to viewers who see the whole
    dealership: it describes every customer, not the viewer's own book.
    """
    visible = customer_visible_to(viewer=viewer).select_related(None)
    figures = visible.aggregate(
        customers=Count("pk", filter=Q(quality_score__isnull=False)),
        unscored=Count("pk", filter=Q(quality_score__isnull=True)),
        accurate=Count("pk", filter=Q(quality_score=100)),
        average=Avg("quality_score"),
        **_issue_counts(),
    )
    accuracy, average_score = _figures(figures["customers"], figures["accurate"], figures["average"])
    trend: list[TrendPoint] = []
    if viewer.can("customers.view_all"):
        latest = list(DataQualitySnapshot.objects.order_by("-computed_on")[:TREND_POINTS])
        trend = [
            TrendPoint(
                computed_on=s.computed_on,
                customers=s.customers,
                accuracy=_figures(s.customers, s.accurate, s.average_score)[0],
                average_score=s.average_score,
            )
            for s in reversed(latest)
        ]
    return QualitySummary(
        customers=figures["customers"],
        accurate=figures["accurate"],
        accuracy=accuracy,
        average_score=average_score,
        unscored=figures["unscored"],
        issues=[IssueCount(code=i.code, label=str(i.label), weight=i.weight, count=figures[i.code]) for i in ISSUES],
        trend=trend,
    )


@dataclass(frozen=True)
class QualityPage:
    rows: list[Customer]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


PAGE_SIZE = 50
MAX_PAGE = 100_000  # keeps OFFSET in range whatever a URL says


def quality_worst_first(
    *, viewer: Membership, issue: str | None = None, page: int = 1, page_size: int = PAGE_SIZE
) -> QualityPage:
    """Customers with at least one issue, lowest score first (then by id), that the viewer can see.

    No count: one row more than the page is fetched to know whether a next page exists, so a
    page costs the same in a dealership of a million customers (index tenant, quality_score, id).
    """
    page = min(max(1, page), MAX_PAGE)
    queryset = customer_visible_to(viewer=viewer).filter(quality_score__lt=100)
    if issue:
        queryset = queryset.filter(quality_issues__contains=[issue])
    offset = (page - 1) * page_size
    rows = list(queryset.order_by("quality_score", "id")[offset : offset + page_size + 1])
    return QualityPage(rows=rows[:page_size], number=page, has_next=len(rows) > page_size)
