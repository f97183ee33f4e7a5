"""Segmentation API: customer values (scores, tiers, history), distribution, tier migration, runs
(and starting one: managers only), settings. Customer values follow the caller's visibility."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.views import TenantAPIMixin
from crm.core.models import NightlyRun
from segmentation import selectors, services
from segmentation.engine import run_progress
from segmentation.filters import CustomerValueFilter
from segmentation.models import CustomerValue, SegmentationRun
from segmentation.nightly import STEP
from segmentation.serializers import (
    CustomerValueDetailSerializer,
    CustomerValueSerializer,
    DistributionSerializer,
    MigrationQuerySerializer,
    MigrationSerializer,
    RunStateSerializer,
    SegmentationRunSerializer,
    SettingsSerializer,
)


class ByCustomerPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = ("customer_id",)


class CustomerValueViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[CustomerValue]
):
    """RFM scores, segment, value tier and lifecycle of each customer the caller may see
    (consultants: their own book). Retrieve by customer id; the detail adds the tier's strategy and
    the tier history. `changed_since` lists only customers whose scores changed since a date."""

    api_area = "segmentation"
    serializer_class = CustomerValueSerializer
    filterset_class = CustomerValueFilter
    pagination_class = ByCustomerPagination
    lookup_field = "customer_id"
    lookup_url_kwarg = "customer_id"
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[CustomerValue]:
        if self.schema_generation:
            return CustomerValue.unscoped_all_tenants.none()
        return selectors.customer_values(viewer=self.membership).order_by("customer_id")

    def get_serializer_class(self) -> Any:
        return CustomerValueDetailSerializer if self.action == "retrieve" else CustomerValueSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if self.action == "retrieve" and not self.schema_generation:
            context["settings"] = selectors.segmentation_settings()
        return context


class DistributionApi(TenantAPIMixin, APIView):
    """The latest run's distribution: tiers (with strategies), segments, lifecycle stages, the R×F grid."""

    api_area = "segmentation"
    required_capability = "segmentation.view"

    @extend_schema(responses=DistributionSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        run = selectors.latest_run()
        settings = selectors.segmentation_settings()
        data = {
            "run": run,
            "tiers": selectors.tier_distribution(run=run, settings=settings),
            "segments": selectors.segment_distribution(run=run),
            "lifecycle_stages": selectors.lifecycle_distribution(run=run),
        }
        return Response(DistributionSerializer(data).data)


class MigrationApi(TenantAPIMixin, APIView):
    """Tier migration: customers per (tier on from_date, tier on to_date); "" = not tiered."""

    api_area = "segmentation"
    required_capability = "segmentation.view"

    @extend_schema(parameters=[MigrationQuerySerializer], responses=MigrationSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = MigrationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        matrix = selectors.tier_migration(**query.validated_data)
        cells = [
            {"from_tier": a, "to_tier": b, "customers": matrix.cell(a, b)} for a in matrix.tiers for b in matrix.tiers
        ]
        return Response(
            {
                "from_date": matrix.from_date,
                "to_date": matrix.to_date,
                "total": matrix.total,
                "moved_up": matrix.moved_up,
                "moved_down": matrix.moved_down,
                "cells": cells,
            }
        )


class SegmentationRunViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[SegmentationRun]
):
    """Completed runs with their figures. POST starts a recomputation now (managers only; 202, then
    poll `state`). A run that failed leaves no record here: `state` shows its error."""

    api_area = "segmentation"
    required_capability = {"GET": "segmentation.view", "POST": "segmentation.manage"}
    serializer_class = SegmentationRunSerializer

    def get_queryset(self) -> QuerySet[SegmentationRun]:
        if self.schema_generation:
            return SegmentationRun.unscoped_all_tenants.none()
        return selectors.run_list()

    @extend_schema(request=None, responses={202: RunStateSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.segmentation_request_run(actor=self.membership, meta=self.meta)
        return Response(self._state(queued=True), status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=RunStateSerializer)
    @action(detail=False, methods=["get"])
    def state(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The latest recomputation: running (with its phase), succeeded, failed (with the error)."""
        return Response(self._state())

    def _state(self, *, queued: bool = False) -> dict[str, Any]:
        latest = NightlyRun.objects.filter(step=STEP).order_by("-started_at", "-id").first()
        progress = run_progress(self.membership.tenant_id) or {}
        running = latest is not None and latest.status == NightlyRun.Status.RUNNING
        return {
            "status": "queued" if queued else (latest.status if latest else "never"),
            "started_at": latest.started_at if latest and not queued else None,
            "finished_at": latest.finished_at if latest and not queued else None,
            "error": latest.error if latest and not queued else "",
            "phase": progress.get("phase", "") if running else "",
            "step": progress.get("step") if running else None,
            "of": progress.get("of") if running else None,
        }


class SettingsApi(TenantAPIMixin, APIView):
    """How the dealership is scored and tiered. Reading needs segmentation.view; changing (PATCH/PUT)
    is for managers and applies from the next run."""

    api_area = "segmentation"
    required_capability = {"GET": "segmentation.view", "PATCH": "segmentation.manage", "PUT": "segmentation.manage"}

    @extend_schema(responses=SettingsSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(SettingsSerializer(selectors.segmentation_settings()).data)

    @extend_schema(request=SettingsSerializer, responses=SettingsSerializer)
    def patch(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._update(request, partial=True)

    @extend_schema(request=SettingsSerializer, responses=SettingsSerializer)
    def put(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._update(request, partial=False)

    def _update(self, request: Request, *, partial: bool) -> Response:
        incoming = SettingsSerializer(selectors.segmentation_settings(), data=request.data, partial=partial)
        incoming.is_valid(raise_exception=True)
        settings = services.settings_update(actor=self.membership, data=dict(incoming.validated_data), meta=self.meta)
        return Response(SettingsSerializer(settings).data)
