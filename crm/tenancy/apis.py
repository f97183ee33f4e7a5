"""API for the caller's identity, staff memberships, API credentials and the audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.views import TenantAPIMixin
from crm.tenancy import selectors, services
from crm.tenancy.filters import AuditEventFilter, CredentialFilter, MembershipFilter
from crm.tenancy.models import ApiCredential, AuditEvent, Membership
from crm.tenancy.serializers import (
    AuditEventSerializer,
    CredentialCreatedSerializer,
    CredentialCreateSerializer,
    CredentialSerializer,
    MemberDeactivateSerializer,
    MemberInviteSerializer,
    MemberRoleSerializer,
    MembershipSerializer,
    MeSerializer,
)


class MeApi(TenantAPIMixin, APIView):
    """Who the caller is: user, dealership, role and capabilities."""

    api_area = "admin"

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(MeSerializer(self.membership).data)


class MembershipViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Membership]
):
    """Staff of the dealership. Listing needs `users.view`; changes need `users.manage`."""

    api_area = "admin"
    required_capability = {"GET": "users.view", "*": "users.manage"}
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilter
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    ordering_fields = ["created_at", "role"]

    def get_queryset(self) -> QuerySet[Membership]:
        if self.schema_generation:
            return Membership.unscoped_all_tenants.none()
        return selectors.membership_list()

    def _site_url(self) -> str:
        return self.request.build_absolute_uri("/")

    @extend_schema(request=MemberInviteSerializer, responses={201: MembershipSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = MemberInviteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_invite(
            actor=self.membership, site_url=self._site_url(), meta=self.meta, **data.validated_data
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MemberRoleSerializer, responses=MembershipSerializer)
    def partial_update(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        data = MemberRoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_change_role(
            actor=self.membership, membership=self.get_object(), role=data.validated_data["role"], meta=self.meta
        )
        return Response(MembershipSerializer(membership).data)

    @extend_schema(request=MemberDeactivateSerializer, responses=MembershipSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        data = MemberDeactivateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        target = self.get_object()
        hand_over_to = None
        if data.validated_data.get("hand_over_to"):
            hand_over_to = self.get_queryset().filter(pk=data.validated_data["hand_over_to"]).first()
            if hand_over_to is None:
                from crm.core.errors import ApplicationError

                raise ApplicationError("Unknown colleague.", fields={"hand_over_to": ["No such staff member."]})
        services.member_deactivate(actor=self.membership, membership=target, hand_over_to=hand_over_to, meta=self.meta)
        target.refresh_from_db()
        return Response(MembershipSerializer(target).data)

    @extend_schema(request=None, responses=MembershipSerializer)
    @action(detail=True, methods=["post"], url_path="resend-invitation")
    def resend_invitation(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        membership = self.get_object()
        services.member_resend_invitation(
            actor=self.membership, membership=membership, site_url=self._site_url(), meta=self.meta
        )
        return Response(MembershipSerializer(membership).data)

    @extend_schema(request=None, responses=MembershipSerializer)
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        membership = services.member_reactivate(actor=self.membership, membership=self.get_object(), meta=self.meta)
        return Response(MembershipSerializer(membership).data)


class CredentialViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ApiCredential]
):
    """Integration API keys (tenant admins) and the caller's personal tokens. Keys are shown once."""

    api_area = "admin"
    serializer_class = CredentialSerializer
    filterset_class = CredentialFilter
    search_fields = ["name", "key_prefix"]

    def get_queryset(self) -> QuerySet[ApiCredential]:
        if self.schema_generation:
            return ApiCredential.unscoped_all_tenants.none()
        return selectors.credential_list(viewer=self.membership)

    @extend_schema(request=CredentialCreateSerializer, responses={201: CredentialCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = CredentialCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        credential, raw_key = services.credential_create(actor=self.membership, meta=self.meta, **data.validated_data)
        credential.key = raw_key  # type: ignore[attr-defined]
        return Response(CredentialCreatedSerializer(credential).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=CredentialSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        credential = services.credential_revoke(actor=self.membership, credential=self.get_object(), meta=self.meta)
        return Response(CredentialSerializer(credential).data)


class AuditEventViewSet(TenantAPIMixin, viewsets.ReadOnlyModelViewSet[AuditEvent]):
    """The dealership's audit log: sign-ins, role and key changes, full-number reveals."""

    api_area = "admin"
    required_capability = "audit.view"
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    search_fields = ["summary"]
    ordering_fields = ["created_at"]

    def get_queryset(self) -> QuerySet[AuditEvent]:
        if self.schema_generation:
            return AuditEvent.unscoped_all_tenants.none()
        return selectors.audit_event_list()
