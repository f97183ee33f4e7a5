"""django-filter FilterSet of the lead API. The FilterSet only parses and checks the query (a bad
value is a 400 on its name); the filtering itself is `sales.selectors.lead_list`, the same the
staff list uses, so the page and the API never disagree on what a filter means.

Ordering is always total (it ends in the id), so page-number paging is stable; `updated_at`
pulls the oldest change first (for incremental syncs with `updated_since`)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters import rest_framework as django_filters

from crm.tenancy.models import Membership
from sales.models import STAGE_ORDER, Lead, Level, Source, Stage
from sales.selectors import LEAD_SORTS, LeadFilters, lead_list

STAGE_CHOICES = [("open", "Open (not delivered or defeated)"), ("closed", "Delivered or defeated"), *Stage.choices]
ORDERINGS = [*LEAD_SORTS, "updated_at"]


class LeadFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="filter_nothing", max_length=100, label="A name (any part), or a mobile's digits (4 or more)"
    )
    stage = django_filters.ChoiceFilter(choices=STAGE_CHOICES, method="filter_nothing")
    level = django_filters.ChoiceFilter(choices=Level.choices, method="filter_nothing")
    source = django_filters.ChoiceFilter(choices=Source.choices, method="filter_nothing")
    owner = django_filters.NumberFilter(method="filter_nothing", label="Membership id of the consultant")
    pool = django_filters.BooleanFilter(method="filter_nothing", label="true: nobody holds it (the pool)")
    series = django_filters.CharFilter(method="filter_nothing", max_length=60, label="The model of interest")
    created_from = django_filters.DateFilter(method="filter_nothing", label="Captured on or after this day")
    created_to = django_filters.DateFilter(method="filter_nothing", label="Captured on or before this day")
    reached = django_filters.ChoiceFilter(
        choices=[(s.value, s.label) for s in STAGE_ORDER],
        method="filter_nothing",
        label="Reached this stage or a later one (the funnel's rule)",
    )
    defeat = django_filters.ChoiceFilter(
        choices=[("pending", "Waiting for approval"), ("approved", "Defeated")], method="filter_nothing"
    )
    due = django_filters.BooleanFilter(method="filter_nothing", label="true: open, next follow-up today or earlier")
    dormant = django_filters.BooleanFilter(method="filter_nothing")
    customer = django_filters.NumberFilter(method="filter_nothing", label="The person's customer id")
    updated_since = django_filters.IsoDateTimeFilter(method="filter_nothing")
    ordering = django_filters.ChoiceFilter(
        choices=[(key, key) for key in ORDERINGS],
        method="filter_nothing",
        label="-created (default), created, next, -next, level or updated_at",
    )

    class Meta:
        model = Lead
        fields = [
            "q",
            "stage",
            "level",
            "source",
            "owner",
            "pool",
            "series",
            "created_from",
            "created_to",
            "reached",
            "defeat",
            "due",
            "dormant",
            "customer",
            "updated_since",
            "ordering",
        ]

    def filter_nothing(self, queryset: QuerySet[Lead], name: str, value: Any) -> QuerySet[Lead]:
        return queryset  # every filter is applied at once by lead_list in filter_queryset

    @staticmethod
    def _whole(value: Any) -> int | None:
        """A NumberFilter's Decimal as an id; anything that is not one (1.5, -3, 10**30) matches nothing."""
        if value is None:
            return None
        if value != value.to_integral_value() or not 1 <= value < 2**63:
            return -1
        return int(value)

    def filter_queryset(self, queryset: QuerySet[Lead]) -> QuerySet[Lead]:
        data = self.form.cleaned_data
        viewer: Membership = self.request._request.membership
        owner_id, customer_id = self._whole(data.get("owner")), self._whole(data.get("customer"))
        owner = None
        if owner_id is not None:
            owner = Membership.objects.filter(pk=owner_id).first() if owner_id > 0 else None
            if owner is None:
                return queryset.none()
        if customer_id == -1:
            return queryset.none()
        ordering = data.get("ordering") or "-created"
        leads = lead_list(
            viewer=viewer,
            filters=LeadFilters(
                q=(data.get("q") or "").strip(),
                stage=data.get("stage") or "",
                level=data.get("level") or "",
                source=data.get("source") or "",
                owner=owner,
                pool=bool(data.get("pool")),
                series=data.get("series") or "",
                created_from=data.get("created_from"),
                created_to=data.get("created_to"),
                reached=data.get("reached") or "",
                defeat=data.get("defeat") or "",
                due=bool(data.get("due")),
                dormant=data.get("dormant"),
                customer_id=customer_id,
                updated_since=data.get("updated_since"),
                sort=ordering if ordering in LEAD_SORTS else "-created",
            ),
        )
        if data.get("pool") is False:
            leads = leads.filter(owner__isnull=False)
        if data.get("due") is False:
            leads = leads.exclude(pk__in=lead_list(viewer=viewer, filters=LeadFilters(due=True)).values("pk"))
        if ordering == "updated_at":
            leads = leads.order_by("updated_at", "id")
        return leads
