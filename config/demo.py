"""Deterministic demo data: two dealerships, staff for every role, customers with vehicles and
three years of sales and service history. Used by `manage.py seed_demo` (and `make demo`).

Everything derives from one seed, so two runs produce the same names, numbers and orders.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from crm.core.period import month_ends_before
from crm.tenancy.context import tenant_context
from crm.tenancy.models import ApiCredential, Membership, Tenant
from crm.tenancy.roles import Role
from crm.tenancy.services import credential_create
from customers.models import Customer, Order, Vehicle, VehicleOwnership
from customers.records import customers_fill_name_initials
from customers.validators import _ID_CHECK, _ID_WEIGHTS, vin_check_digit
from dashboards.aggregates import BACKFILL_MONTHS
from segmentation.engine import segmentation_recompute

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建林晨宇浩然子轩梓涵欣怡嘉豪思远俊杰雨桐"
    "婷雪琳佳琪志文海波丹凤振国立新晓东亮斌峰颖慧"
)
MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "198",
    "199",
)
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
PLATE_CHARS = "0123456789" * 3 + "ABCDEFGHJKLMNPQRSTUVWXYZ"
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
VIN_YEAR = {2019: "K", 2020: "L", 2021: "M", 2022: "N", 2023: "P", 2024: "R", 2025: "S", 2026: "T"}
ESTATES = ["科技园", "中心区", "新城", "花园"]
COLOURS = ["极地白", "曜石黑", "星空灰", "琉璃红", "天际蓝", "月光银", "珍珠白"]


@dataclass(frozen=True)
class DemoDealership:
    code: str
    name: str
    city: str
    plate_prefix: str
    id_region: str
    districts: tuple[str, ...]
    brand: str
    wmi: str
    series: tuple[tuple[str, int, int], ...]  # (series, min price, max price) in CNY


DEALERSHIPS = (
    DemoDealership(
        code="sz-yuetong",
        name="深圳粤通一汽-大众4S店",
        city="深圳市",
        plate_prefix="粤B",
        id_region="440305",
        districts=("南山区", "福田区", "罗湖区", "宝安区", "龙岗区", "龙华区"),
        brand="一汽-大众",
        wmi="LFV",
        series=(
            ("宝来", 98000, 139000),
            ("速腾", 129000, 179000),
            ("迈腾", 189000, 259000),
            ("探岳", 199000, 279000),
            ("ID.4 CROZZ", 179000, 249000),
        ),
    ),
    DemoDealership(
        code="gz-huanan",
        name="广州华南之星广汽丰田4S店",
        city="广州市",
        plate_prefix="粤A",
        id_region="440106",
        districts=("天河区", "越秀区", "海珠区", "白云区", "番禺区", "黄埔区"),
        brand="广汽丰田",
        wmi="LVG",
        series=(
            ("雷凌", 99000, 139000),
            ("凯美瑞", 179000, 259000),
            ("威兰达", 169000, 239000),
            ("汉兰达", 259000, 349000),
            ("赛那", 309000, 409000),
        ),
    ),
)

# (email local part, role, surname+given name)
STAFF = (
    ("admin", Role.TENANT_ADMIN, "周建国"),
    ("manager", Role.MANAGER, "林志远"),
    ("cr1", Role.CR_AGENT, "陈婷"),
    ("cr2", Role.CR_AGENT, "黄丽"),
    ("sales1", Role.SALES_CONSULTANT, "王伟"),
    ("sales2", Role.SALES_CONSULTANT, "李娜"),
    ("sales3", Role.SALES_CONSULTANT, "张磊"),
    ("sales4", Role.SALES_CONSULTANT, "刘洋"),
    ("service1", Role.SERVICE_ADVISOR, "赵强"),
    ("service2", Role.SERVICE_ADVISOR, "吴敏"),
    ("service3", Role.SERVICE_ADVISOR, "孙杰"),
    ("auditor", Role.AUDITOR, "郑华"),
)
GROUP_MANAGER = ("group.manager@demo.crm", "何振国")  # a manager in both dealerships, to show switching


@dataclass
class DemoResult:
    sign_ins: list[tuple[str, str, str]] = field(default_factory=list)  # (dealership, role, email)
    api_keys: list[tuple[str, str]] = field(default_factory=list)
    customers: int = 0
    vehicles: int = 0
    orders: int = 0


def demo_exists() -> bool:
    return Tenant.objects.filter(code__in=[d.code for d in DEALERSHIPS]).exists()


def demo_now(today: date) -> datetime:
    """The demo's present moment: now, or the evening of the day `seed_demo --today` pretends it is.
    Nothing the demo dates itself (orders, survey answers, calls) is later than this."""
    now = timezone.now()
    return now if timezone.localdate(now) <= today else _moment(today, 20)


def _moment(day: date, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def _split(name: str) -> tuple[str, str]:
    return name[1:], name[:1]


def _mobile(rng: random.Random) -> str:
    return f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"


def _vin(rng: random.Random, wmi: str, year: int) -> str:
    body = (
        wmi
        + "".join(rng.choice(VIN_CHARS) for _ in range(5))
        + "0"
        + VIN_YEAR.get(year, "T")
        + rng.choice("ABCDEF")
        + f"{rng.randrange(10**6):06d}"
    )
    return body[:8] + vin_check_digit(body) + body[9:]


def _plate(rng: random.Random, prefix: str) -> str:
    if rng.random() < 0.15:  # new-energy plates: D/F + 5 digits
        return f"{prefix}·{rng.choice('DF')}{rng.randrange(10**5):05d}"
    return f"{prefix}·" + "".join(rng.choice(PLATE_CHARS) for _ in range(5))


def _id_number(rng: random.Random, region: str, birthday: date, gender: str) -> str:
    sequence = rng.randrange(0, 500) * 2 + (1 if gender == "male" else 0)
    body = f"{region}{birthday:%Y%m%d}{sequence:03d}"
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + _ID_CHECK[total % 11]


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randrange(low * 100, high * 100)) / 100


def _seed_staff(dealer: DemoDealership, password_hash: str, result: DemoResult) -> dict[str, list[Membership]]:
    user_model = get_user_model()
    by_role: dict[str, list[Membership]] = {}
    for local, role, name in STAFF:
        email = f"{local}@{dealer.code}.demo.crm"
        first, last = _split(name)
        user = user_model.objects.create(
            username=email, email=email, first_name=first, last_name=last, password=password_hash
        )
        membership = Membership.objects.create(user=user, role=role)
        by_role.setdefault(role, []).append(membership)
        result.sign_ins.append((dealer.name, str(Role(role).label), email))
    group_user = user_model.objects.filter(email=GROUP_MANAGER[0]).first()
    if group_user is None:
        first, last = _split(GROUP_MANAGER[1])
        group_user = user_model.objects.create(
            username=GROUP_MANAGER[0], email=GROUP_MANAGER[0], first_name=first, last_name=last, password=password_hash
        )
        result.sign_ins.append(("两家店 (both)", str(Role.MANAGER.label), GROUP_MANAGER[0]))
    by_role[Role.MANAGER].append(Membership.objects.create(user=group_user, role=Role.MANAGER))
    return by_role


def _seed_customers(
    dealer: DemoDealership,
    rng: random.Random,
    count: int,
    by_role: dict[str, list[Membership]],
    today: date,
    progress: Callable[[str], None],
    result: DemoResult,
) -> None:
    owners = by_role[Role.SALES_CONSULTANT] * 4 + by_role[Role.SERVICE_ADVISOR]
    service_staff = by_role[Role.SERVICE_ADVISOR]
    mobiles: set[str] = set()
    plates: set[str] = set()
    vins: set[str] = set()
    customers: list[Customer] = []
    plans: list[tuple[int, int, float]] = []  # (vehicles, months since purchase, churn after months)
    for index in range(count):
        gender = rng.choice(["male", "male", "female"])
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2, 2])))
        mobile = _mobile(rng)
        while mobile in mobiles:
            mobile = _mobile(rng)
        mobiles.add(mobile)
        birthday = date(rng.randrange(1960, 2003), rng.randrange(1, 13), rng.randrange(1, 29))
        is_buyer = rng.random() < 0.72
        n_vehicles = (2 if rng.random() < 0.08 else 1) if is_buyer else 0
        months_ago = rng.randrange(0, 37)
        plans.append((n_vehicles, months_ago, rng.choice([99.0, 99.0, 99.0, rng.uniform(6, 30)])))
        # The record was made when the person first came in: a few weeks before the first purchase
        # (the vehicle plan below buys the first car at most 30 days + 400 per later car earlier),
        # or for a prospect on some day of the three years. Never today or later.
        if n_vehicles:
            first_seen = months_ago * 30 + (n_vehicles - 1) * 400 + 31 + rng.randrange(0, 45)
        else:
            first_seen = rng.randrange(2, 3 * 365)
        customers.append(
            Customer(
                name=name,
                mobile=mobile,
                gender=gender,
                birthday=birthday if rng.random() < 0.85 else None,
                id_number=_id_number(rng, dealer.id_region, birthday, gender) if rng.random() < 0.4 else "",
                province="广东省",
                city=dealer.city,
                district=rng.choice(dealer.districts),
                address=f"{rng.choice(dealer.districts)}{rng.choice(ESTATES)}{rng.randrange(1, 99)}栋",
                source=rng.choice([s for s in Customer.Source.values if s != "dms"]),
                # consent as the customer gave it on the sign-up sheet: most agree to calls and texts
                consent_call=rng.random() < 0.93,
                consent_sms=rng.random() < 0.9,
                consent_email=rng.random() < 0.3,
                consent_wechat=rng.random() < 0.9,
                owner=rng.choice(owners),
                external_id=f"DMS-{dealer.code.upper()}-{index + 1:07d}",
                created_at=_moment(today - timedelta(days=first_seen), 9 + rng.randrange(10), rng.randrange(60)),
            )
        )
    # Nothing is saved yet: records, vehicles and orders arrive below in the order they happened.
    result.customers += len(customers)
    progress(f"  {len(customers)} customers")

    vehicles: list[Vehicle] = []
    vehicle_plans: list[tuple[Customer, Vehicle, date, float]] = []
    for customer, (n_vehicles, months_ago, churn_after) in zip(customers, plans, strict=True):
        for nth in range(n_vehicles):
            # up to yesterday: today's orders arrive from the DMS tonight
            purchase = today - timedelta(days=months_ago * 30 + rng.randrange(1, 31) + nth * 400)
            series, _low, _high = rng.choice(dealer.series)
            vin = _vin(rng, dealer.wmi, purchase.year)
            while vin in vins:
                vin = _vin(rng, dealer.wmi, purchase.year)
            vins.add(vin)
            plate = _plate(rng, dealer.plate_prefix)
            while plate in plates:
                plate = _plate(rng, dealer.plate_prefix)
            plates.add(plate)
            vehicle = Vehicle(
                customer=customer,
                vin=vin,
                plate=plate,
                brand=dealer.brand,
                series=series,
                model_name=f"{series} {rng.choice(['舒适版', '豪华版', '尊贵版', '旗舰版'])}",
                model_year=purchase.year,
                colour=rng.choice(COLOURS),
                purchase_date=purchase,
                warranty_end=purchase + timedelta(days=3 * 365),
                external_id=f"VEH-{vin}",
            )
            vehicles.append(vehicle)
            vehicle_plans.append((customer, vehicle, purchase, churn_after))
    result.vehicles += len(vehicles)
    progress(f"  {len(vehicles)} vehicles")

    orders: list[Order] = []
    last_seen: dict[str, date] = {}  # by external id: the customers are not saved yet
    order_no = 0

    def add(
        customer: Customer,
        vehicle: Vehicle | None,
        kind: str,
        on: date,
        amount: Decimal,
        staff: Membership,
        km: int | None,
    ) -> None:
        nonlocal order_no
        order_no += 1
        status = Order.Status.REVERSED if rng.random() < 0.01 else Order.Status.COMPLETED
        orders.append(
            Order(
                customer=customer,
                vehicle=vehicle,
                kind=kind,
                status=status,
                ordered_on=on,
                amount=amount,
                staff=staff,
                mileage_km=km,
                external_id=f"RO-{dealer.code.upper()}-{order_no:08d}",
            )
        )
        last_seen[customer.external_id] = max(on, last_seen.get(customer.external_id, on))

    for customer, vehicle, purchase, churn_after in vehicle_plans:
        series_prices = {s: (lo, hi) for s, lo, hi in dealer.series}
        low, high = series_prices[vehicle.series]
        seller = (
            customer.owner
            if customer.owner and customer.owner.role == Role.SALES_CONSULTANT
            else rng.choice(by_role[Role.SALES_CONSULTANT])
        )
        add(customer, vehicle, Order.Kind.VEHICLE_SALE, purchase, _money(rng, low, high), seller, 10)
        if rng.random() < 0.5:
            add(customer, vehicle, Order.Kind.ACCESSORIES, purchase, _money(rng, 800, 9000), seller, 10)
        add(customer, vehicle, Order.Kind.INSURANCE, purchase, _money(rng, 4000, 9500), seller, 10)
        km_per_month = rng.randrange(800, 2500)
        month = 6
        churn_day = purchase + timedelta(days=int(churn_after * 30))
        while True:
            visit = purchase + timedelta(days=month * 30 + rng.randrange(-10, 25))
            if visit >= today or visit > churn_day:
                break
            advisor = rng.choice(service_staff)
            km = km_per_month * month
            add(customer, vehicle, Order.Kind.MAINTENANCE, visit, _money(rng, 380, 2600), advisor, km)
            if rng.random() < 0.18:
                add(customer, vehicle, Order.Kind.REPAIR, visit, _money(rng, 600, 16000), advisor, km)
            if rng.random() < 0.12:
                add(customer, vehicle, Order.Kind.PARTS, visit, _money(rng, 150, 3000), advisor, km)
            if month % 12 == 0 and rng.random() < 0.6:
                add(customer, vehicle, Order.Kind.INSURANCE, visit, _money(rng, 3500, 8500), advisor, km)
            month += rng.choice([5, 6, 6, 7])
        vehicle.mileage_km = km_per_month * max(1, (today - purchase).days // 30)
    # Orders arrive month by month with a segmentation run at each of the last 12 month ends, as if
    # the CRM had been running for a year: the ladder's month-on-month chart (every month end from
    # the value history), the tier migration page and customer tier histories have content. The
    # satisfaction surveys about the orders arrive with them, so every run sees the answers given
    # by then and the lifecycle's "satisfied" stage is there at every month end, not only today.
    # Customers are saved once their record was made, so a month end counts only who was known then.
    surveys = _SurveySeeder(rng, today)

    def arrive(by: date) -> None:
        """What the showroom and the DMS had recorded by the end of `by`."""
        day_end = _moment(by + timedelta(days=1), 0)
        known = [c for c in customers if c.pk is None and c.created_at < day_end]
        Customer.objects.bulk_create(known, batch_size=2000)
        sold = [v for v in vehicles if v.pk is None and v.purchase_date is not None and v.purchase_date <= by]
        Vehicle.objects.bulk_create(sold, batch_size=2000)
        due = [order for order in orders if order.pk is None and order.ordered_on <= by]
        Order.objects.bulk_create(due, batch_size=5000)
        surveys.answer(due)

    for cutoff in segmentation_checkpoints(today):
        arrive(cutoff)
        segmentation_recompute(run_date=cutoff, trigger="demo")
    arrive(today)
    surveys.finish()
    # bulk_create bypasses the services that write a name's pinyin initials: fill them, so the demo's
    # customers are found by initials (zw for 曾伟) like any other
    customers_fill_name_initials()
    Vehicle.objects.bulk_update(vehicles, ["mileage_km"], batch_size=2000)
    result.orders += len(orders)
    progress(f"  {len(orders)} orders")

    for customer in customers:
        customer.last_visit_on = last_seen.get(customer.external_id)
    Customer.objects.bulk_update(customers, ["last_visit_on"], batch_size=2000)
    # Tonight's run, done now: scores, tiers, lifecycle stage and relationship class.
    segmentation_recompute(run_date=today, trigger="demo")
    progress(f"  {surveys.answered} survey answers")
    VehicleOwnership.objects.bulk_create(
        [VehicleOwnership(vehicle=v, customer_id=v.customer_id, started_on=v.purchase_date or today) for v in vehicles],
        batch_size=2000,
    )


DEMO_COMPLAINTS = (
    # (category index, severity, subject, steps to go: 0 greet … 4 closed, 5 followed up)
    (1, "high", "保养后发动机异响", 2),
    (0, "normal", "前台接待态度冷淡", 5),
    (2, "normal", "交车时承诺的贴膜没有做", 4),
    (3, "critical", "维修结算比报价多 800 元", 1),
    (5, "low", "保养等了四个小时", 0),
    (4, "normal", "原厂配件缺货，等了两周", 3),
    (1, "high", "更换刹车片后仍有异响", 4),
    (6, "low", "停车场没有充电车位", 0),
)


def _seed_complaints(rng: random.Random, by_role: dict[str, list[Membership]]) -> None:
    """A handful of complaint tickets at every step, worked by the customer-relations agents."""
    from complaints import services as complaints

    agents = by_role[Role.CR_AGENT]
    categories = complaints.categories_ensure()
    customers = list(Customer.objects.exclude(mobile="").order_by("pk")[:200])
    for index, (category, severity, subject, steps) in enumerate(DEMO_COMPLAINTS):
        customer = customers[rng.randrange(len(customers))]
        agent = agents[index % len(agents)]
        ticket = complaints.ticket_open(
            actor=agent,
            data=complaints.TicketInput(
                contact_name=customer.name,
                contact_mobile=customer.mobile,
                channel=rng.choice(["phone", "walk_in", "wechat", "manufacturer"]),
                category=categories[category],
                severity=severity,
                subject=subject,
                description=f"{subject}。客户希望尽快给出处理方案。",
                customer=customer,
            ),
        )
        for step in ("listen", "calm", "handle")[: min(steps, 3)]:
            ticket = complaints.ticket_advance(actor=agent, ticket=ticket, to_status=step, note="已与客户沟通")
        if steps >= 4:
            ticket = complaints.ticket_advance(
                actor=agent,
                ticket=ticket,
                to_status="closed",
                closing=complaints.Closing(
                    root_cause="服务流程执行不到位",
                    resolution="向客户致歉并免费处理",
                    compensation_points=500,
                    compensation_note="赠送 500 积分",
                ),
            )
        if steps >= 5:
            complaints.ticket_advance(actor=agent, ticket=ticket, to_status="followed_up", note="客户表示满意")


# Orders of the last 18 months get a satisfaction survey (some of them): the ladder's oldest month end
# (a year ago) already has the satisfied customers of the half year before it.
SURVEY_DAYS = 540
SURVEY_ACTED_DAYS = 14  # low scores of the last two weeks ask staff to call back; older ones were dealt with


class _SurveySeeder:
    """Answered surveys about the orders of the last 18 months (sales and service), so the results page,
    the satisfaction figure of every period and the lifecycle's "satisfied" stage have data. Each
    invitation goes out the settings' delay after its order and is answered within a day; one that
    would only be answered after the demo's present moment is not sent. Low scores older than two
    weeks were dealt with back then: they ask nobody to call back now."""

    def __init__(self, rng: random.Random, today: date) -> None:
        from surveys import services as surveys
        from surveys.models import SurveySettings

        settings, _made = SurveySettings.objects.get_or_create(
            defaults={"channels": ["sms", "wechat"], "low_score_action": "notify"}
        )
        self.settings = settings
        self.rng = rng
        self.since = today - timedelta(days=SURVEY_DAYS)
        self.acted_since = today - timedelta(days=SURVEY_ACTED_DAYS)
        self.now = demo_now(today)
        self.templates = {t.code: t for t in surveys.templates_ensure()}
        self.seen: set[int] = set()
        self.answered = 0
        self.quiet: bool | None = None

    def _low_scores_act(self, act: bool) -> None:
        from surveys.models import SurveySettings

        quiet = not act
        if self.quiet != quiet:
            self.quiet = quiet
            action = self.settings.low_score_action if act else SurveySettings.LowScoreAction.NONE
            SurveySettings.objects.update(low_score_action=action)

    def finish(self) -> None:
        self._low_scores_act(True)  # the dealership's own setting from now on

    def answer(self, orders: list[Order]) -> None:
        from surveys import services as surveys
        from surveys.models import Invitation, QuestionKind, Response

        rng = self.rng
        for order in orders:
            if order.status != Order.Status.COMPLETED or order.ordered_on < self.since or not order.customer.mobile:
                continue
            if order.customer_id in self.seen or rng.random() < 0.6:
                continue
            code = "sales" if order.kind == Order.Kind.VEHICLE_SALE else "service"
            delay = self.settings.sales_delay_days if code == "sales" else self.settings.service_delay_days
            sent = _moment(order.ordered_on + timedelta(days=delay), 10, rng.randrange(60))
            answered = sent + timedelta(hours=rng.randrange(1, 24), minutes=rng.randrange(60))
            if answered > self.now:
                continue  # would be answered after the demo's present moment
            self.seen.add(order.customer_id)
            try:
                invitation = surveys.invitation_create(
                    actor=None,
                    customer=order.customer,
                    template=self.templates[code],
                    trigger=Invitation.Trigger.DELIVERY if code == "sales" else Invitation.Trigger.SERVICE,
                    order=order,
                    staff=order.staff,
                )
            except surveys.NotInvited:
                continue
            expires_at = sent + (invitation.expires_at - invitation.send_after)
            Invitation.objects.filter(pk=invitation.pk).update(
                created_at=sent, send_after=sent, sent_at=sent, status=Invitation.Status.SENT
            )
            if rng.random() < 0.3:
                # not everybody answers (the link expired unanswered, or is still open)
                Invitation.objects.filter(pk=invitation.pk).update(expires_at=expires_at)
                continue
            mood = rng.choice([5, 5, 5, 4, 4, 4, 4, 3, 3, 2])
            raw: dict[str, object] = {}
            for question in invitation.version.questions.all():
                if question.kind == QuestionKind.RATING:
                    raw[question.key] = max(1, min(5, mood + rng.choice([-1, 0, 0, 0, 1])))
                elif question.kind == QuestionKind.NPS:
                    raw[question.key] = max(0, min(10, mood * 2 + rng.choice([-2, -1, 0, 0])))
                elif question.kind == QuestionKind.SINGLE:
                    raw[question.key] = rng.choice(question.choices)
                elif question.kind == QuestionKind.MULTI:
                    raw[question.key] = [rng.choice(question.choices)]
            self._low_scores_act(timezone.localdate(answered) >= self.acted_since)
            surveys.answers_submit(invitation=invitation, raw=raw)
            Response.objects.filter(invitation=invitation).update(submitted_at=answered)
            Invitation.objects.filter(pk=invitation.pk).update(answered_at=answered, expires_at=expires_at)
            self.answered += 1


DEMO_REWARDS = (
    # name, kind, points, stock (None: no limit), from level
    ("精洗一次 Car wash", "car_wash", 300, None, None),
    ("车载香氛 Car fragrance", "accessory", 800, 40, None),
    ("四轮定位 Wheel alignment", "service_voucher", 1500, None, None),
    ("小保养券 Oil service voucher", "maintenance", 3000, 60, None),
    ("行车记录仪 Dash camera", "accessory", 12000, 8, "silver"),
    ("新车品鉴会 New-model preview evening", "experience", 5000, 12, "gold"),
)


LOYALTY_HISTORY_DAYS = 3 * 365 + 30  # the programme starts with the order history
LOYALTY_DAILY_DAYS = 45  # every night in the last 45 days; once a week before that
LEVEL_NIGHTS = (365, 180, 0)  # days before today


def loyalty_nights(today: date) -> list[date]:
    """The nights the demo runs loyalty's earning and expiry on, oldest first: every seventh day
    from the programme's start, every day in the last LOYALTY_DAILY_DAYS, and the level nights."""
    backs = set(range(0, LOYALTY_HISTORY_DAYS + 1, 7)) | set(range(LOYALTY_DAILY_DAYS + 1)) | set(LEVEL_NIGHTS)
    return sorted(today - timedelta(days=back) for back in backs)


def _seed_loyalty(rng: random.Random, today: date, by_role: dict[str, list[Membership]]) -> None:
    """The programme over three years of orders: members earn, points expire, levels move; then
    redemptions, adjustments, a personal butler and referrals, so every loyalty page has data."""
    from django.db.models import Q

    from loyalty import batch as loyalty_batch
    from loyalty import services as loyalty
    from loyalty.models import Level, Member, Programme, Referral, Reward

    loyalty.programme()
    # counted from the start of the history; level notices are not sent for the past
    Programme.objects.update(starts_on=today - timedelta(days=LOYALTY_HISTORY_DAYS), notify_level_changes=False)
    levels = {level.code: level for level in Level.objects.all()}
    for name, kind, points, stock, level in DEMO_REWARDS:
        Reward.objects.create(
            name=name, kind=kind, points_cost=points, stock=stock, min_level=levels.get(level) if level else None
        )
    # The programme's nights over the history: points are earned and expire night by night (weekly
    # further back, every night in the last weeks), so the outstanding points move as they would,
    # never by half a year's expiries in one night. Levels move on three of those nights only (each
    # move notifies the customer's owner; the history needs a few, not one per week).
    for night in loyalty_nights(today):
        loyalty_batch.orders_earn(run_date=night)
        loyalty_batch.points_expire(run_date=night)
        if (today - night).days in LEVEL_NIGHTS:
            loyalty_batch.levels_recompute(run_date=night)
    agents, managers = by_role[Role.CR_AGENT], by_role[Role.MANAGER]
    members = list(Member.objects.select_related("customer__owner", "level").order_by("pk"))
    for index, member in enumerate(members):
        if member.points_balance < 300 or rng.random() < 0.75:
            continue
        in_stock = Reward.objects.filter(Q(stock__isnull=True) | Q(stock__gt=0), min_level__isnull=True)
        affordable = list(in_stock.filter(points_cost__lte=member.points_balance).order_by("pk"))
        if not affordable:
            continue
        owner = member.customer.owner
        actor = owner if owner is not None and owner.can("loyalty.redeem") else agents[index % len(agents)]
        loyalty.points_redeem(
            actor=actor, member=member, reward=rng.choice(affordable), idempotency_key=f"demo-redeem-{member.pk}"
        )
    for member in members[:: max(1, len(members) // 6)][:6]:
        loyalty.points_adjust(
            actor=managers[0], member=member, points=rng.choice([200, 500, 1000]), note="车主活动补发积分 (event bonus)"
        )
    if members:
        top = max(members, key=lambda m: m.points_balance)
        loyalty.member_set_level(
            actor=managers[0], member=top, level=levels["butler"], keep=True, note="总经理指定私人管家 (GM's choice)"
        )
    # referrals: one rewarded (the friend bought a car after being referred), one waiting
    buyers = list(
        Order.objects.filter(kind=Order.Kind.VEHICLE_SALE, status=Order.Status.COMPLETED)
        .exclude(customer__loyalty_members__isnull=True)
        .order_by("-ordered_on", "pk")
        .values_list("customer_id", "ordered_on")[:20]
    )
    member_customers = [m.customer_id for m in members]
    if buyers and len(member_customers) > 2:
        referee_id, bought_on = buyers[0]
        referrer = next(m for m in members if m.customer_id != referee_id)
        Referral.objects.create(
            referrer=referrer,
            referee_id=referee_id,
            note="老客户介绍 (recommended by a customer)",
            created_by=agents[0],
            created_at=timezone.make_aware(datetime.combine(bought_on - timedelta(days=20), time(15))),
        )
        loyalty_batch.referrals_reward(run_date=today)
        prospect = Customer.objects.exclude(pk__in=Order.objects.values("customer_id")).order_by("pk").first()
        if prospect is not None:
            loyalty.referral_create(
                actor=agents[0],
                referrer=members[-1].customer,
                referee=prospect,
                note="朋友想看新车 (wants a test drive)",
            )
    Programme.objects.update(notify_level_changes=True)


def segmentation_checkpoints(today: date) -> list[date]:
    """The nights before today the demo runs segmentation on: each month end the dashboard's
    ladder counts from the value history (dashboards.aggregates.BACKFILL_MONTHS), oldest first."""
    return month_ends_before(today, BACKFILL_MONTHS)


# The dashboard compares this month with the days just before: on the 31st that reaches 62 days back.
DEMO_FOLLOWUP_DAYS = 62
DEMO_FOLLOWUPS_NEGLECTED = 0.1  # of the follow-ups, left until they expire (nobody got to them)
DEMO_OUTCOMES = [  # (disposition, weight, notes)
    ("satisfied", 50, ""),
    ("no_answer", 22, ""),
    ("appointment", 10, "预约下周六上午保养"),
    ("feedback", 8, "客户反映等待时间较长，希望增加预约时段"),
    ("callback", 6, ""),
    ("not_interested", 4, ""),
]


def _seed_followups(rng: random.Random, today: date, by_role: dict[str, list[Membership]]) -> None:
    """Two months of nights: the rules make follow-ups, staff work most of each day's queue (some
    calls go unanswered and are retried, some ask to be called back), the rest expire; tonight's
    queue is left open for the demo."""
    from followups import services as followups
    from followups.models import ACTIVE_STATUSES, Followup
    from followups.scheduling import followups_schedule

    followups.followup_settings()
    fallback = by_role[Role.CR_AGENT][0]
    weights = [w for _d, w, _n in DEMO_OUTCOMES]
    neglected: dict[int, bool] = {}
    for back in range(DEMO_FOLLOWUP_DAYS, -1, -1):
        night = today - timedelta(days=back)
        followups_schedule(run_date=night)
        if back == 0:
            break
        due = Followup.objects.filter(status__in=ACTIVE_STATUSES, scheduled_on__lte=night).select_related(
            "customer__owner", "assignee"
        )
        for followup in due.order_by("pk"):
            if followup.pk not in neglected:
                neglected[followup.pk] = rng.random() < DEMO_FOLLOWUPS_NEGLECTED
            if neglected[followup.pk] or rng.random() < 0.15:
                continue  # never got to (it expires) or not reached today: overdue work for the manager
            disposition, _weight, notes = rng.choices(DEMO_OUTCOMES, weights=weights)[0]
            at = timezone.make_aware(datetime.combine(night, time(9 + rng.randrange(9), rng.randrange(60))))
            followups.followup_log_outcome(
                actor=followup.assignee or fallback,
                followup=followup,
                disposition=disposition,
                notes=notes,
                callback_on=night + timedelta(days=rng.randint(2, 6)) if disposition == "callback" else None,
                occurred_at=at,
            )


# Sales: leads captured over the last weeks, each worked as far as its dice say (docs/sales.md).
# one new lead a month for every 20 customers of the dealership (150 at the demo's 3,000), at least 20
LEADS_PER_CUSTOMERS = 20
MIN_DEMO_LEADS = 20
DEMO_LEAD_DAYS = 45
ANONYMOUS_WALK_INS_PER_LEADS = 4  # a walk-in who leaves no details for every 4 leads
LEAD_SOURCES = (("walk_in", 30), ("phone", 15), ("online", 30), ("brand", 10), ("event", 8), ("referral", 7))
DEFEAT_NOTES = ("price", "competitor", "plan_changed", "unreachable", "no_stock", "loan_refused")
COMPETITORS = (("比亚迪", "宋PLUS"), ("特斯拉", "Model Y"), ("本田", "CR-V"), ("吉利", "星越L"))


def _seed_sales(
    dealer: DemoDealership, rng: random.Random, today: date, by_role: dict[str, list[Membership]], *, leads: int
) -> None:
    """Consultants on duty, three demo cars, and leads at every stage: a walk-in or call taken by a
    consultant, online and brand leads given out round-robin (some left unanswered for the reclaim),
    invitations, visits, test drives, quotes, orders and deliveries, defeats waiting for approval
    and approved, and anonymous walk-ins. Steps after capture happen at seeding time."""
    from sales import services as sales
    from sales.models import Lead

    manager = by_role[Role.MANAGER][0]
    consultants = by_role[Role.SALES_CONSULTANT]
    for consultant in consultants:
        sales.duty_set(actor=manager, member=consultant, on_duty=True)
    reasons = {reason.code: reason for reason in sales.defeat_reasons_ensure()}
    cars = [
        sales.demo_vehicle_save(
            actor=manager,
            data={"brand": dealer.brand, "series": series, "trim": "试驾车", "plate": _plate(rng, dealer.plate_prefix)},
        )
        for series, _low, _high in dealer.series[:3]
    ]
    now = demo_now(today)
    ahead = timezone.now()  # appointments and bookings are in the real future, whatever --today says
    referrers = list(Customer.objects.filter(orders__isnull=False).distinct().order_by("pk")[:30])
    sources, weights = zip(*LEAD_SOURCES, strict=True)
    slot = 0
    for index in range(leads):
        source = rng.choices(sources, weights=weights)[0]
        series, low, high = rng.choice(dealer.series)
        at = now - timedelta(days=rng.randrange(DEMO_LEAD_DAYS), hours=rng.randrange(9), minutes=rng.randrange(60))
        at = min(at, now - timedelta(minutes=30))
        actor = rng.choice(consultants) if source in ("walk_in", "phone", "referral") else manager
        surname, given = rng.choice(SURNAMES), rng.choice(GIVEN) + rng.choice(GIVEN)
        data: dict[str, Any] = {
            "name": f"{surname}{given}",
            "mobile": _mobile(rng),
            "source": source,
            "brand": dealer.brand,
            "series": series,
            "budget": str(_money(rng, low, high)),
            "timeframe": rng.choice(["7d", "15d", "30d", "30d", "90d", "later"]),
            "payment": rng.choice(["cash", "loan", "undecided"]),
        }
        if source in ("online", "brand"):
            data |= {"source_system": "autohome" if source == "online" else "brand-dcc", "external_id": f"D{index:05d}"}
        if source == "referral" and referrers:
            data["referrer"] = rng.choice(referrers)
        elif source == "referral":
            data["source"] = "walk_in"
        if rng.random() < 0.2:
            data["trade_in"] = rng.choice(["大众朗逸 2016", "丰田卡罗拉 2015", "本田思域 2018"])
        lead = sales.lead_capture(actor=actor, data=data, at=at).lead
        owner = lead.owner
        if owner is None:
            continue  # waits in the pool
        fate = rng.random()
        if source in ("online", "brand") and fate < 0.12:
            continue  # given out and never called: tonight's reclaim takes it back
        lead = sales.lead_contact_log(actor=owner, lead=lead, disposition="feedback", notes="有购车意向，关注优惠")
        if fate < 0.25:
            continue
        if rng.random() < 0.15:
            reason = reasons[rng.choice(DEFEAT_NOTES)]
            brand, model = rng.choice(COMPETITORS) if reason.needs_competitor else ("", "")
            lead = sales.lead_defeat(
                actor=owner, lead=lead, reason=reason, competitor_brand=brand, competitor_model=model
            )
            if rng.random() < 0.6:
                sales.lead_defeat_decide(actor=manager, lead=lead, approve=True)
            continue
        if lead.stage in ("new", "contacted"):
            lead = sales.lead_invite(
                actor=owner, lead=lead, appointment_at=ahead + timedelta(days=1, hours=rng.randrange(6))
            )
        if fate < 0.4:
            continue
        sales.showroom_visit_log(
            actor=owner,
            data={"arrived_at": now - timedelta(minutes=rng.randrange(30, 600)), "party_size": rng.randint(1, 4)},
            lead=lead,
        )
        if fate < 0.5:
            continue
        slot += 1
        start = ahead + timedelta(days=1 + slot // 8, hours=slot % 8)
        car = next((c for c in cars if c.series == series), cars[0])
        drive = sales.test_drive_book(
            actor=owner, lead=lead, vehicle=car, starts_at=start, ends_at=start + timedelta(minutes=45)
        )
        if fate < 0.55:
            continue  # booked for the coming days
        sales.test_drive_record(
            actor=owner,
            drive=drive,
            status="done",
            licence_number=f"4403{rng.randrange(10**13, 10**14)}",
            licence_expiry=today + timedelta(days=rng.randint(200, 2000)),
            licence_consent=True,
            feedback=rng.choice(["动力不错，后排空间满意", "噪音偏大，再比较", "很满意，想谈价格"]),
            rating=rng.randint(3, 5),
        )
        list_price = _money(rng, low, high)
        quote = sales.quote_create(
            actor=owner,
            lead=Lead.objects.get(pk=lead.pk),
            data={
                "brand": dealer.brand,
                "series": series,
                "list_price": str(list_price),
                "discount": str((list_price * Decimal("0.05")).quantize(Decimal("1"))),
                "insurance": str(_money(rng, 4000, 9000)),
                "fees": "1500",
                "accessories": [{"name": "脚垫", "price": "800"}, {"name": "行车记录仪", "price": "1200"}],
            },
        )
        if fate < 0.7:
            continue
        lead = sales.lead_order(actor=owner, lead=Lead.objects.get(pk=lead.pk), quote=quote, deposit="5000")
        if fate < 0.82:
            continue
        sales.lead_deliver(
            actor=owner, lead=lead, vin=_vin(rng, dealer.wmi, today.year), plate=_plate(rng, dealer.plate_prefix)
        )
    for _ in range(leads // ANONYMOUS_WALK_INS_PER_LEADS):
        arrived = now - timedelta(days=rng.randrange(14), minutes=rng.randrange(30, 480))
        sales.showroom_visit_log(
            actor=rng.choice(consultants),
            data={
                "arrived_at": arrived,
                "left_at": arrived + timedelta(minutes=rng.randint(10, 90)),
                "party_size": rng.randint(1, 3),
                "series": rng.choice(dealer.series)[0],
                "note": "只看车，未留信息",
            },
        )


def _seed_dashboards(today: date) -> None:
    """Tonight's data quality and manager-dashboard counts (the nightly steps customers.data_quality
    and dashboards.figures): the dashboard's first count also covers the last 12 month ends, so its
    trends and the ladder's month-on-month movement have content."""
    from customers.quality import customer_quality_refresh, dealership_quality_snapshot
    from dashboards.aggregates import dashboard_figures_refresh

    customer_quality_refresh()
    dealership_quality_snapshot(on=today)
    dashboard_figures_refresh(run_date=today)


def seed_demo(*, customers_per_dealership: int, seed: int, today: date, progress: Callable[[str], None]) -> DemoResult:
    result = DemoResult()
    user_model = get_user_model()
    hasher_user = user_model()
    hasher_user.set_password(settings.CRM_DEMO_PASSWORD)  # hash once: every demo user shares it
    for offset, dealer in enumerate(DEALERSHIPS):
        rng = random.Random(seed * 1000 + offset)
        tenant = Tenant.objects.create(name=dealer.name, code=dealer.code)
        progress(f"{dealer.name} ({dealer.code})")
        with tenant_context(tenant.pk):
            by_role = _seed_staff(dealer, hasher_user.password, result)
            _seed_customers(dealer, rng, customers_per_dealership, by_role, today, progress, result)
            _seed_complaints(rng, by_role)
            _seed_loyalty(rng, today, by_role)
            _seed_followups(rng, today, by_role)
            # a generator of its own: what the steps before draw need not be the same from run to run
            leads = max(MIN_DEMO_LEADS, customers_per_dealership // LEADS_PER_CUSTOMERS)
            _seed_sales(dealer, random.Random(f"sales:{seed}:{offset}"), today, by_role, leads=leads)
            _seed_dashboards(today)
            admin = by_role[Role.TENANT_ADMIN][0]
            _credential, raw_key = credential_create(
                actor=admin,
                kind=ApiCredential.Kind.INTEGRATION,
                name="DMS 演示对接 (demo DMS sync)",
                scopes=["customers:read", "customers:write", "admin:read", "sales:read", "sales:write"],
            )
            result.api_keys.append((dealer.code, raw_key))
    return result
