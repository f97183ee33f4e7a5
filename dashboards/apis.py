"""The manager dashboard's figures over the REST API: the same numbers as the page.

GET /api/v1/dashboards/figures/?start=&end=[&compare_start=&compare_end=][&consultant=][&advisor=]
GET /api/v1/dashboards/customers/?figure=&value=&start=&end=[…]   (the drill-down, paged)
Scope `dashboards:read`; capability `dashboards.view`.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.pagination import DefaultPagination
from crm.api.views import TenantAPIMixin
from crm.core.period import Period
from customers.selectors import customer_masked_value
from dashboards import presenters, selectors
from dashboards.forms import DashboardForm, DrillForm
from dashboards.views import figures_for

PERIOD_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.DATE, required=True, description="First day (dealership's zone)."),
    OpenApiParameter("end", OpenApiTypes.DATE, required=True, description="Last day, included."),
    OpenApiParameter(
        "compare_start",
        OpenApiTypes.DATE,
        description="Comparison period's first day (default: the same number of days just before).",
    ),
    OpenApiParameter("compare_end", OpenApiTypes.DATE, description="Comparison period's last day."),
    OpenApiParameter(
        "consultant", OpenApiTypes.INT, description="Membership id of a sales consultant: their customers only."
    ),
    OpenApiParameter(
        "advisor",
        OpenApiTypes.INT,
        description="Membership id of a service advisor: their orders, surveys and follow-ups.",
    ),
]


def _valid(form: DashboardForm) -> None:
    if not form.is_valid():
        raise ValidationError({field: [str(e) for e in errors] for field, errors in form.errors.items()})


class DashboardFiguresApi(TenantAPIMixin, APIView):
    """Every figure of the manager dashboard for a period beside its comparison period: the four
    degrees and information accuracy (value, previous, change, definition), tiers, the ladder by
    month, spend by order type, CSAT/NPS, complaint SLA compliance, follow-up completion, points."""

    api_area = "dashboards"
    required_capability = "dashboards.view"

    @extend_schema(parameters=PERIOD_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = DashboardForm(request.query_params)
        _valid(form)
        figures = figures_for(form, self.membership)
        for h in figures["headline"]:
            h["label"] = presenters.headline_label(h["key"])
        return Response(figures)


class DrillCustomerSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    mobile = serializers.CharField()
    owner = serializers.IntegerField(allow_null=True)
    lifecycle_stage = serializers.CharField()
    last_visit_on = serializers.DateField(allow_null=True)


class DashboardCustomersApi(TenantAPIMixin, APIView):
    """The customers behind a figure (as they stand now), masked as in the customers API.
    figure: tier (value: a tier, empty = not tiered), stage (value: a lifecycle stage), spenders
    (value: an order type or empty), not_returned, inaccurate, detractors, complaints,
    followups_missed, points."""

    api_area = "dashboards"
    required_capability = "dashboards.view"
    pagination_class = DefaultPagination  # the schema documents the paged answer

    @extend_schema(
        parameters=[
            *PERIOD_PARAMETERS,
            OpenApiParameter("figure", OpenApiTypes.STR, required=True, enum=list(selectors.DRILLS)),
            OpenApiParameter("value", OpenApiTypes.STR),
        ],
        responses=DrillCustomerSerializer(many=True),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = DrillForm(request.query_params)
        _valid(form)
        cleaned = form.cleaned_data
        if not selectors.drill_value_valid(cleaned["figure"], cleaned["value"]):
            field = "value" if cleaned["figure"] in selectors.DRILLS else "figure"
            raise ValidationError({field: [_("Unknown figure or value.")]})
        customers = selectors.drill_customers(
            viewer=self.membership,
            figure=cleaned["figure"],
            value=cleaned["value"],
            filters=selectors.DashboardFilters(consultant=cleaned.get("consultant"), advisor=cleaned.get("advisor")),
            period=Period(cleaned["start"], cleaned["end"]),
            zone=self.membership.tenant.zone,
        )
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(customers, request, view=self) or []
        rows = [
            {
                "id": c.pk,
                "name": c.name,
                "mobile": customer_masked_value(viewer=self.membership, customer=c, field="mobile"),
                "owner": c.owner_id,
                "lifecycle_stage": c.lifecycle_stage,
                "last_visit_on": c.last_visit_on,
            }
            for c in page
        ]
        return paginator.get_paginated_response(DrillCustomerSerializer(rows, many=True).data)
