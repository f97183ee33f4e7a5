"""django-filter FilterSet of the follow-up API: the call-centre queue, the pool and incremental pulls.

Ordering is always total (it ends in the id), so page-number paging is stable:
- `due=today`: the queue order (overdue first, then priority, then the oldest scheduled);
- otherwise by scheduled day, priority, id; `ordering=updated_at` pulls oldest change first.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from django_filters import rest_framework as django_filters

from followups.models import ACTIVE_STATUSES, Channel, Followup, Reason, Status
from followups.selectors import queue_order

STATUS_CHOICES = [("active", "Open or to retry"), *Status.choices]
ORDERINGS = {
    "scheduled_on": ("scheduled_on", "priority", "id"),
    "updated_at": ("updated_at", "id"),
    "-updated_at": ("-updated_at", "-id"),
}


class FollowupFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=STATUS_CHOICES, method="filter_status")
    reason = django_filters.ChoiceFilter(choices=Reason.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    assignee = django_filters.NumberFilter(field_name="assignee_id", label="Membership id of the holder")
    pool = django_filters.BooleanFilter(method="filter_pool", label="true: nobody holds it; false: someone does")
    customer = django_filters.NumberFilter(field_name="customer_id")
    scheduled_from = django_filters.DateFilter(field_name="scheduled_on", lookup_expr="gte")
    scheduled_to = django_filters.DateFilter(field_name="scheduled_on", lookup_expr="lte")
    overdue = django_filters.BooleanFilter(method="filter_overdue", label="Active and past its latest day")
    due = django_filters.ChoiceFilter(
        choices=[("today", "today")],
        method="filter_due",
        label="today: the queue (active, scheduled for today or earlier), in queue order",
    )
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    ordering = django_filters.ChoiceFilter(
        choices=[(key, key) for key in ORDERINGS],
        method="filter_nothing",
        label="scheduled_on (default), updated_at (for incremental pulls) or -updated_at; ignored with due=today",
    )

    class Meta:
        model = Followup
        fields = [
            "status",
            "reason",
            "channel",
            "assignee",
            "pool",
            "customer",
            "scheduled_from",
            "scheduled_to",
            "overdue",
            "due",
            "updated_since",
            "ordering",
        ]

    def filter_status(self, queryset: QuerySet[Followup], name: str, value: str) -> QuerySet[Followup]:
        if value == "active":
            return queryset.filter(status__in=ACTIVE_STATUSES)
        return queryset.filter(status=value)

    def filter_pool(self, queryset: QuerySet[Followup], name: str, value: bool | None) -> QuerySet[Followup]:
        if value is None:
            return queryset
        return queryset.filter(assignee__isnull=value)

    def filter_overdue(self, queryset: QuerySet[Followup], name: str, value: bool | None) -> QuerySet[Followup]:
        if value is None:
            return queryset
        late = queryset.filter(status__in=ACTIVE_STATUSES, due_until__lt=timezone.localdate())
        return late if value else queryset.exclude(pk__in=late.values("pk"))

    def filter_due(self, queryset: QuerySet[Followup], name: str, value: str) -> QuerySet[Followup]:
        return queryset.filter(status__in=ACTIVE_STATUSES, scheduled_on__lte=timezone.localdate())

    def filter_nothing(self, queryset: QuerySet[Followup], name: str, value: str) -> QuerySet[Followup]:
        return queryset  # applied in filter_queryset, after every filter

    def filter_queryset(self, queryset: QuerySet[Followup]) -> QuerySet[Followup]:
        queryset = super().filter_queryset(queryset)
        if self.form.cleaned_data.get("due") == "today":
            return queue_order(queryset, timezone.localdate())
        return queryset.order_by(*ORDERINGS[self.form.cleaned_data.get("ordering") or "scheduled_on"])
