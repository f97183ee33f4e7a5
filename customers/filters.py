"""django-filter FilterSets of the customer API."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from customers.models import Customer, LifecycleStage, ListFlag, Order, RelationshipClass, Touchpoint, Vehicle
from customers.selectors import CONSENT_FIELDS, customer_search


class CustomerFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method="filter_search",
        label="Part of a name or the start of its pinyin initials, mobile (or its last 4+ digits), plate (or its last "
        "3+ characters), VIN (or its last 6+), DMS id",
    )
    owner = django_filters.NumberFilter(field_name="owner_id")
    lifecycle_stage = django_filters.ChoiceFilter(choices=LifecycleStage.choices)
    relationship_class = django_filters.ChoiceFilter(choices=RelationshipClass.choices)
    list_flag = django_filters.ChoiceFilter(choices=ListFlag.choices)
    tag = django_filters.CharFilter(method="filter_tag")
    consent = django_filters.ChoiceFilter(choices=[(k, k) for k in CONSENT_FIELDS], method="filter_consent")
    external_id = django_filters.CharFilter()
    last_visit_from = django_filters.DateFilter(field_name="last_visit_on", lookup_expr="gte")
    last_visit_to = django_filters.DateFilter(field_name="last_visit_on", lookup_expr="lte")
    created_since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Customer
        fields = [
            "search",
            "owner",
            "lifecycle_stage",
            "relationship_class",
            "list_flag",
            "tag",
            "consent",
            "external_id",
            "last_visit_from",
            "last_visit_to",
            "created_since",
            "updated_since",
        ]

    def filter_search(self, queryset: QuerySet[Customer], name: str, value: str) -> QuerySet[Customer]:
        return customer_search(queryset, query=value)

    def filter_tag(self, queryset: QuerySet[Customer], name: str, value: str) -> QuerySet[Customer]:
        return queryset.filter(tags__contains=[value])

    def filter_consent(self, queryset: QuerySet[Customer], name: str, value: str) -> QuerySet[Customer]:
        return queryset.filter(**{CONSENT_FIELDS[value]: True})


class VehicleFilter(django_filters.FilterSet):
    customer = django_filters.NumberFilter(field_name="customer_id")
    vin = django_filters.CharFilter(method="filter_upper")
    plate = django_filters.CharFilter()
    brand = django_filters.CharFilter()
    external_id = django_filters.CharFilter()

    class Meta:
        model = Vehicle
        fields = ["customer", "vin", "plate", "brand", "external_id"]

    def filter_upper(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(vin=value.strip().upper())


class OrderFilter(django_filters.FilterSet):
    customer = django_filters.NumberFilter(field_name="customer_id")
    vehicle = django_filters.NumberFilter(field_name="vehicle_id")
    kind = django_filters.ChoiceFilter(choices=Order.Kind.choices)
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    ordered_from = django_filters.DateFilter(field_name="ordered_on", lookup_expr="gte")
    ordered_to = django_filters.DateFilter(field_name="ordered_on", lookup_expr="lte")
    external_id = django_filters.CharFilter()

    class Meta:
        model = Order
        fields = ["customer", "vehicle", "kind", "status", "ordered_from", "ordered_to", "external_id"]


class TouchpointFilter(django_filters.FilterSet):
    customer = django_filters.NumberFilter(field_name="customer_id")
    channel = django_filters.ChoiceFilter(choices=Touchpoint.Channel.choices)
    outcome = django_filters.ChoiceFilter(choices=Touchpoint.Outcome.choices)
    occurred_from = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_to = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Touchpoint
        fields = ["customer", "channel", "outcome", "occurred_from", "occurred_to"]
