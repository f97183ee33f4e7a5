"""Loyalty API: members (enrol, adjust), the ledger, rewards and levels (read), redemptions with
idempotency keys (redeem, cancel), referrals, and the manager figures. Everything hanging off a
customer is read through the caller's customer visibility."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.pagination import CreatedCursorPagination
from crm.api.views import TenantAPIMixin
from crm.core.errors import ApplicationError
from customers.selectors import customer_visible_to
from loyalty import selectors, services
from loyalty.models import LedgerEntry, Level, Member, Redemption, Referral, Reward
from loyalty.serializers import (
    AdjustSerializer,
    CancelSerializer,
    LedgerEntrySerializer,
    LevelSerializer,
    MemberCreateSerializer,
    MemberSerializer,
    RedemptionCreateSerializer,
    RedemptionSerializer,
    ReferralCreateSerializer,
    ReferralSerializer,
    RewardSerializer,
    SummaryQuerySerializer,
)

Source = LedgerEntry.Source


class MemberFilter(django_filters.FilterSet):
    level = django_filters.CharFilter(field_name="level__code")
    customer = django_filters.NumberFilter(field_name="customer_id")
    min_points = django_filters.NumberFilter(field_name="points_balance", lookup_expr="gte")

    class Meta:
        model = Member
        fields = ["level", "customer", "min_points"]


class MemberViewSet(TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Member]):
    """Members of the programme whose customer the caller may see. POST enrols a customer (or
    returns their membership); POST {id}/adjust/ adjusts points by hand (`loyalty.adjust`)."""

    api_area = "loyalty"
    required_capability = {"GET": "loyalty.view", "POST": "loyalty.redeem"}
    serializer_class = MemberSerializer
    filterset_class = MemberFilter
    pagination_class = CreatedCursorPagination

    def get_queryset(self) -> QuerySet[Member]:
        if self.schema_generation:
            return Member.unscoped_all_tenants.none()
        return selectors.member_visible_to(viewer=self.membership).order_by("-created_at", "-id")

    @extend_schema(request=MemberCreateSerializer, responses={201: MemberSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = MemberCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        customer = customer_visible_to(viewer=self.membership).filter(pk=incoming.validated_data["customer"]).first()
        if customer is None:
            raise ApplicationError("Unknown customer.", fields={"customer": ["No such customer."]})
        member = services.member_enrol(actor=self.membership, customer=customer)
        return Response(self.get_serializer(member).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AdjustSerializer, responses={201: LedgerEntrySerializer})
    @action(detail=True, methods=["post"], url_path="adjust")
    def adjust(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        member = self.get_object()
        incoming = AdjustSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        entry = services.points_adjust(
            actor=self.membership,
            member=member,
            points=incoming.validated_data["points"],
            note=incoming.validated_data["note"],
            source=Source.API,
        )
        return Response(LedgerEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class LedgerFilter(django_filters.FilterSet):
    member = django_filters.NumberFilter(field_name="member_id")
    customer = django_filters.NumberFilter(field_name="member__customer_id")
    kind = django_filters.ChoiceFilter(choices=LedgerEntry.Kind.choices)
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = LedgerEntry
        fields = ["member", "customer", "kind", "since", "until"]


class OccurredCursorPagination(CreatedCursorPagination):
    ordering = ("-occurred_at", "-id")


class LedgerViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[LedgerEntry]
):
    """The points ledger (append-only), newest first."""

    api_area = "loyalty"
    required_capability = "loyalty.view"
    serializer_class = LedgerEntrySerializer
    filterset_class = LedgerFilter
    pagination_class = OccurredCursorPagination

    def get_queryset(self) -> QuerySet[LedgerEntry]:
        if self.schema_generation:
            return LedgerEntry.unscoped_all_tenants.none()
        return selectors.ledger_list(viewer=self.membership)


class RewardFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Reward.Kind.choices)
    max_points = django_filters.NumberFilter(field_name="points_cost", lookup_expr="lte")
    in_stock = django_filters.BooleanFilter(method="filter_in_stock")

    class Meta:
        model = Reward
        fields = ["kind", "max_points", "in_stock"]

    def filter_in_stock(self, queryset: QuerySet[Reward], name: str, value: bool | None) -> QuerySet[Reward]:
        if value is None:
            return queryset
        from django.db.models import Q

        available = Q(stock__isnull=True) | Q(stock__gt=0)
        return queryset.filter(available) if value else queryset.exclude(available)


class RewardViewSet(TenantAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet[Reward]):
    """The rewards catalogue (offered rewards), cheapest first."""

    api_area = "loyalty"
    required_capability = "loyalty.view"
    serializer_class = RewardSerializer
    filterset_class = RewardFilter

    def get_queryset(self) -> QuerySet[Reward]:
        if self.schema_generation:
            return Reward.unscoped_all_tenants.none()
        return selectors.catalogue()


class LevelViewSet(TenantAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet[Level]):
    """Membership levels, lowest first."""

    api_area = "loyalty"
    required_capability = "loyalty.view"
    serializer_class = LevelSerializer

    def get_queryset(self) -> QuerySet[Level]:
        if self.schema_generation:
            return Level.unscoped_all_tenants.none()
        return Level.objects.filter(is_active=True).order_by("rank")


class RedemptionFilter(django_filters.FilterSet):
    member = django_filters.NumberFilter(field_name="member_id")
    reward = django_filters.NumberFilter(field_name="reward_id")
    status = django_filters.ChoiceFilter(choices=Redemption.Status.choices)
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Redemption
        fields = ["member", "reward", "status", "since"]


class RedemptionViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Redemption]
):
    """Redemptions. POST redeems a reward for a member with an idempotency key (body field
    `idempotency_key` or the `Idempotency-Key` header): the first request answers 201, a retry
    with the same key answers 200 with the original redemption and changes nothing; the same key
    for another member, reward or quantity answers 409 `idempotency_key_reused`. Not enough points
    (409 `insufficient_points`) and no stock (409 `out_of_stock`) change nothing either."""

    api_area = "loyalty"
    required_capability = {"GET": "loyalty.view", "POST": "loyalty.redeem"}
    serializer_class = RedemptionSerializer
    filterset_class = RedemptionFilter
    pagination_class = CreatedCursorPagination

    def get_queryset(self) -> QuerySet[Redemption]:
        if self.schema_generation:
            return Redemption.unscoped_all_tenants.none()
        return selectors.redemption_list(viewer=self.membership)

    @extend_schema(
        request=RedemptionCreateSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={201: RedemptionSerializer, 200: RedemptionSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = RedemptionCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        key = data.get("idempotency_key") or request.headers.get("Idempotency-Key", "")
        if not key:
            raise ApplicationError(
                "An idempotency key is required.",
                fields={"idempotency_key": ["Send idempotency_key or the Idempotency-Key header."]},
            )
        member = selectors.member_visible_to(viewer=self.membership).filter(pk=data["member"]).first()
        if member is None:
            raise ApplicationError("Unknown member.", fields={"member": ["No such member."]})
        reward = Reward.objects.filter(pk=data["reward"]).first()
        if reward is None:
            raise ApplicationError("Unknown reward.", fields={"reward": ["No such reward."]})
        outcome = services.points_redeem(
            actor=self.membership,
            member=member,
            reward=reward,
            quantity=data["quantity"],
            note=data.get("note") or "",
            idempotency_key=key,
            source=Source.API,
        )
        return Response(
            self.get_serializer(outcome.redemption).data,
            status=status.HTTP_200_OK if outcome.replayed else status.HTTP_201_CREATED,
        )

    @extend_schema(request=CancelSerializer, responses=RedemptionSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        redemption = self.get_object()
        incoming = CancelSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        redemption = services.redemption_cancel(
            actor=self.membership, redemption=redemption, note=incoming.validated_data["note"], source=Source.API
        )
        return Response(self.get_serializer(redemption).data)


class ReferralViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Referral]
):
    """Referrals whose referrer or referee the caller may see. POST records one; the referrer
    earns the referral reward once the referee buys a vehicle (nightly)."""

    api_area = "loyalty"
    required_capability = {"GET": "loyalty.view", "POST": "loyalty.redeem"}
    serializer_class = ReferralSerializer
    pagination_class = CreatedCursorPagination

    def get_queryset(self) -> QuerySet[Referral]:
        if self.schema_generation:
            return Referral.unscoped_all_tenants.none()
        return selectors.referral_list(viewer=self.membership)

    @extend_schema(request=ReferralCreateSerializer, responses={201: ReferralSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = ReferralCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        visible = customer_visible_to(viewer=self.membership)
        referrer = visible.filter(pk=incoming.validated_data["referrer"]).first()
        referee = visible.filter(pk=incoming.validated_data["referee"]).first()
        errors = {}
        if referrer is None:
            errors["referrer"] = ["No such customer."]
        if referee is None:
            errors["referee"] = ["No such customer."]
        if referrer is None or referee is None:
            raise ApplicationError("Unknown customer.", fields=errors)
        referral = services.referral_create(
            actor=self.membership, referrer=referrer, referee=referee, note=incoming.validated_data["note"]
        )
        return Response(self.get_serializer(referral).data, status=status.HTTP_201_CREATED)


class LoyaltySummaryApi(TenantAPIMixin, APIView):
    """Members by level, points liability, points issued/redeemed/expired and the redemption rate
    between start and end (the manager figures of /loyalty/report/)."""

    api_area = "loyalty"
    required_capability = "dashboards.view"

    @extend_schema(parameters=[SummaryQuerySerializer], responses=dict)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = SummaryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        figures = selectors.loyalty_summary(
            period=selectors.Period(query.validated_data["start"], query.validated_data["end"]),
            zone=self.membership.tenant.zone,
        )
        figures["point_value"] = str(figures["point_value"])
        figures["liability"] = str(figures["liability"])
        return Response(figures)
