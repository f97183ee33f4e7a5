"""django-filter FilterSet of the customer-value API."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from customers.models import LifecycleStage
from segmentation.models import CustomerValue, Segment, Tier
from segmentation.selectors import NOT_TIERED


class CustomerValueFilter(django_filters.FilterSet):
    tier = django_filters.ChoiceFilter(
        choices=[*Tier.choices, (NOT_TIERED, "Not tiered (prospects)")], method="filter_tier"
    )
    segment = django_filters.ChoiceFilter(choices=Segment.choices)
    rfm_code = django_filters.CharFilter()
    r_score = django_filters.NumberFilter()
    f_score = django_filters.NumberFilter()
    m_score = django_filters.NumberFilter()
    lifecycle_stage = django_filters.ChoiceFilter(
        field_name="customer__lifecycle_stage", choices=LifecycleStage.choices
    )
    owner = django_filters.NumberFilter(field_name="customer__owner_id")
    changed_since = django_filters.DateFilter(
        field_name="scored_on",
        lookup_expr="gte",
        label="Last visit, scores, segment or tier changed on or after this date (incremental sync)",
    )

    class Meta:
        model = CustomerValue
        fields = ["tier", "segment", "rfm_code", "r_score", "f_score", "m_score", "lifecycle_stage", "owner"]

    def filter_tier(self, queryset: QuerySet[CustomerValue], name: str, value: str) -> QuerySet[CustomerValue]:
        return queryset.filter(tier="" if value == NOT_TIERED else value)
