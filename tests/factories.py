"""factory_boy factories. Tenant-owned rows take their dealership from the active tenant_context."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from crm.tenancy.models import Membership, Tenant
from crm.tenancy.roles import Role
from customers.models import Customer, Order, Vehicle
from customers.validators import vin_check_digit

PASSWORD = "Test-pass-2026!"


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"测试门店{n}")
    code = factory.Sequence(lambda n: f"store-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    username = factory.SelfAttribute("email")
    last_name = "王"
    first_name = factory.Sequence(lambda n: f"员工{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = Role.SALES_CONSULTANT


def _vin(n: int) -> str:
    body = f"LFV2A21K0R{n:07d}"
    return body[:8] + vin_check_digit(body) + body[9:]


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"客户{n:05d}")
    mobile = factory.Sequence(lambda n: f"+86139{n:08d}")
    city = "深圳市"
    # a customer who agreed to calls, texts and WeChat (the model assumes no consent: PIPL)
    consent_call = True
    consent_sms = True
    consent_wechat = True


class VehicleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vehicle

    customer = factory.SubFactory(CustomerFactory)
    vin = factory.Sequence(_vin)
    plate = factory.Sequence(lambda n: f"粤B·{n % 100000:05d}")
    brand = "一汽-大众"
    series = "迈腾"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    customer = factory.SubFactory(CustomerFactory)
    kind = Order.Kind.MAINTENANCE
    ordered_on = date(2026, 5, 1)
    amount = Decimal("880.00")
