"""Follow-up API (回访): the queue a call-centre system pulls, the outcomes it pushes back, planning,
handing over and cancelling, the manager figures and the rules.

Everything is read through `followups.selectors.followup_visible_to`: those who see every follow-up
(`followups.view_all`) see the dealership's, everyone else what they hold and what concerns their own
customers. Every endpoint needs `followups.view_all` or `followups.work`; writes name their own
capability, and the services check it again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.pagination import DefaultPagination
from crm.api.views import TenantAPIMixin
from crm.core.errors import ApplicationError
from crm.core.period import Period
from crm.tenancy.models import Membership
from customers.models import Vehicle
from customers.selectors import customer_visible_to
from customers.services import customers_read_unmasked
from followups import selectors, services
from followups.filters import FollowupFilter
from followups.models import Followup
from followups.serializers import (
    SETTINGS_FIELDS,
    FollowupAssignSerializer,
    FollowupCancelSerializer,
    FollowupCreateSerializer,
    FollowupDetailSerializer,
    FollowupOutcomeResultSerializer,
    FollowupOutcomeSerializer,
    FollowupSerializer,
    FollowupSettingsSerializer,
    FollowupSummaryQuerySerializer,
    FollowupTeamFiguresSerializer,
)

READ_CAPABILITIES = ("followups.view_all", "followups.work")


class FollowupViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Followup]
):
    """Follow-ups the caller may see. Filters: `status` (a status or `active`), `reason`, `channel`,
    `assignee`, `pool`, `customer`, `scheduled_from`/`scheduled_to`, `overdue`, `due=today` (the queue,
    in queue order), `updated_since` (with `ordering=updated_at` for incremental pulls). POST plans one
    by hand; POST {id}/outcomes/ pushes what came of a call, with an idempotency key."""

    api_area = "followups"
    required_capability = {"GET": "", "POST": "followups.work"}
    serializer_class = FollowupSerializer
    filterset_class = FollowupFilter
    filter_backends = [DjangoFilterBackend]  # the FilterSet orders, too
    pagination_class = DefaultPagination

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)
        if not any(self.membership.can(capability) for capability in READ_CAPABILITIES):
            self.permission_denied(request, message="Your role may not do this.")

    def get_queryset(self) -> QuerySet[Followup]:
        if self.schema_generation:
            return Followup.unscoped_all_tenants.none()
        return selectors.followup_visible_to(viewer=self.membership).order_by("scheduled_on", "priority", "id")

    def get_serializer_class(self) -> Any:
        return FollowupDetailSerializer if self.action == "retrieve" else FollowupSerializer

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        self._audit_unmasked([row["customer"]["id"] for row in response.data["results"]])
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().retrieve(request, *args, **kwargs)
        self._audit_unmasked([response.data["customer"]["id"]])
        return response

    def _audit_unmasked(self, customer_ids: Sequence[int]) -> None:
        """An integration receives full mobiles, as from the customer API: each read is recorded."""
        if self.membership.can("customers.unmasked_bulk"):
            customers_read_unmasked(
                viewer=self.membership, customer_ids=list(dict.fromkeys(customer_ids)), meta=self.meta
            )

    @staticmethod
    def _member(pk: int | None) -> Membership | None:
        if pk is None:
            return None
        member = Membership.objects.filter(pk=pk, is_service_account=False).select_related("user").first()
        if member is None:
            raise ApplicationError("Unknown staff member.", fields={"assignee": ["No such staff member."]})
        return member

    def _fresh(self, followup: Followup) -> Followup:
        return selectors.followup_visible_to(viewer=self.membership).filter(pk=followup.pk).first() or followup

    @extend_schema(request=FollowupCreateSerializer, responses={201: FollowupSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Plan a follow-up by hand (`followups.work`). The customer must be one you see; without an
        assignee a `manual` one is yours, any other reason (and an integration's) goes to the pool."""
        incoming = FollowupCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        customer = customer_visible_to(viewer=self.membership).filter(pk=data["customer"]).first()
        if customer is None:
            raise ApplicationError("Unknown customer.", fields={"customer": ["No such customer."]})
        vehicle = None
        if data["vehicle"] is not None:
            vehicle = Vehicle.objects.filter(customer=customer, pk=data["vehicle"]).first()
            if vehicle is None:
                raise ApplicationError("Unknown vehicle.", fields={"vehicle": ["Not a vehicle of this customer."]})
        followup = services.followup_create(
            actor=self.membership,
            customer=customer,
            reason=data["reason"],
            due_from=data["due_from"],
            due_until=data["due_until"],
            vehicle=vehicle,
            channel=data["channel"],
            note=data["note"],
            assignee=self._member(data["assignee"]),
        )
        return Response(self.get_serializer(self._fresh(followup)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=FollowupOutcomeSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={201: FollowupOutcomeResultSerializer, 200: FollowupOutcomeResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="outcomes", required_capability="followups.work")
    def outcomes(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Push what came of a call or visit: 201 recorded; 200 a replay of the same key (nothing
        recorded again); 409 `key_reused` (the key was used for another outcome) or `not_open`."""
        followup = self.get_object()
        incoming = FollowupOutcomeSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        key = data.get("idempotency_key") or request.headers.get("Idempotency-Key", "")
        if not key:
            raise ApplicationError(
                "An idempotency key is required.",
                fields={"idempotency_key": ["Send idempotency_key or the Idempotency-Key header."]},
            )
        attempt, created = services.followup_log_outcome(
            actor=self.membership,
            followup=followup,
            disposition=data["disposition"],
            notes=data["notes"],
            callback_on=data["callback_on"],
            occurred_at=data["occurred_at"],
            idempotency_key=key,
        )
        result = FollowupOutcomeResultSerializer(
            {"attempt": attempt, "followup": self._fresh(followup)}, context=self.get_serializer_context()
        )
        return Response(result.data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=FollowupAssignSerializer, responses=FollowupSerializer)
    @action(detail=True, methods=["post"], required_capability="followups.work")
    def assign(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Hand it to a colleague, or back to the pool with null (`followups.manage`, or
        `followups.view_all` with `followups.work`)."""
        followup = self.get_object()
        incoming = FollowupAssignSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        followup = services.followup_assign(
            actor=self.membership, followup=followup, assignee=self._member(incoming.validated_data["assignee"])
        )
        return Response(FollowupSerializer(self._fresh(followup), context=self.get_serializer_context()).data)

    @extend_schema(request=FollowupCancelSerializer, responses=FollowupSerializer)
    @action(detail=True, methods=["post"], required_capability="followups.manage")
    def cancel(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        followup = self.get_object()
        incoming = FollowupCancelSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        followup = services.followup_cancel(
            actor=self.membership, followup=followup, note=incoming.validated_data["note"]
        )
        return Response(FollowupSerializer(self._fresh(followup), context=self.get_serializer_context()).data)

    @extend_schema(parameters=[FollowupSummaryQuerySerializer], responses=FollowupTeamFiguresSerializer)
    @action(detail=False, methods=["get"], required_capability="followups.view_all")
    def summary(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Completion rate (done ÷ done, unreachable or expired) between start and end, each person's
        load today, overdue work and figures by reason."""
        query = FollowupSummaryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        figures = selectors.followup_team_figures(
            viewer=self.membership, period=Period(query.validated_data["start"], query.validated_data["end"])
        )
        return Response(FollowupTeamFiguresSerializer(figures).data)

    @extend_schema(methods=["GET"], responses=FollowupSettingsSerializer)
    @extend_schema(methods=["PATCH"], request=FollowupSettingsSerializer, responses=FollowupSettingsSerializer)
    @action(
        detail=False,
        methods=["get", "patch"],
        url_path="settings",
        required_capability={"GET": "", "PATCH": "followups.manage"},
    )
    def rules(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The dealership's follow-up rules. PATCH changes some of them (`followups.manage`); unknown
        names are refused."""
        settings = selectors.followup_settings_current()  # reading writes nothing
        if request.method == "PATCH":
            if hasattr(request.data, "keys"):
                unknown = sorted(set(request.data.keys()) - set(SETTINGS_FIELDS))
                if unknown:
                    raise ApplicationError(
                        "Unknown settings.", fields={name: ["Not a follow-up setting."] for name in unknown}
                    )
            incoming = FollowupSettingsSerializer(settings, data=request.data, partial=True)
            incoming.is_valid(raise_exception=True)
            settings = services.followup_settings_update(actor=self.membership, data=dict(incoming.validated_data))
        return Response(FollowupSettingsSerializer(settings).data)
