"""django-filter FilterSet of the ticket API."""

from __future__ import annotations

import django_filters

from complaints.models import Severity, Status, Ticket


class TicketFilter(django_filters.FilterSet):
    number = django_filters.CharFilter()
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    severity = django_filters.ChoiceFilter(choices=Severity.choices)
    category = django_filters.CharFilter(field_name="category__code")
    assignee = django_filters.NumberFilter(field_name="assignee_id")
    customer = django_filters.NumberFilter(field_name="customer_id")
    opened_since = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    breached = django_filters.BooleanFilter(method="filter_breached", label="Response or resolution target missed")

    class Meta:
        model = Ticket
        fields = ["number", "status", "severity", "category", "assignee", "customer", "opened_since", "updated_since"]

    def filter_breached(self, queryset, name, value):  # type: ignore[no-untyped-def]
        breached = queryset.filter(response_breached_at__isnull=False) | queryset.filter(
            resolution_breached_at__isnull=False
        )
        return breached if value else queryset.exclude(pk__in=breached.values("pk"))
