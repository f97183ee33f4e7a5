from __future__ import annotations

import django_filters

from customers.models import Customer, LifecycleStage, ListFlag, RelationshipClass


class CustomerFilter(django_filters.FilterSet):
    owner = django_filters.NumberFilter(field_name="owner_id")
    lifecycle_stage = django_filters.ChoiceFilter(choices=LifecycleStage.choices)
    relationship_class = django_filters.ChoiceFilter(choices=RelationshipClass.choices)
    list_flag = django_filters.ChoiceFilter(choices=ListFlag.choices)
    tag = django_filters.CharFilter(field_name="tags", lookup_expr="contains", method="filter_tag")
    external_id = django_filters.CharFilter()
    created_since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Customer
        fields = ["owner", "lifecycle_stage", "relationship_class", "list_flag", "external_id"]

    def filter_tag(self, queryset, name, value):  # type: ignore[no-untyped-def]
        return queryset.filter(tags__contains=[value])
