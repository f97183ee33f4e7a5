"""API of the caller's own notifications: the inbox, mark read, and which kinds they get."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.views import TenantAPIMixin
from crm.core.filters import NotificationFilter
from crm.core.models import Notification
from crm.core.notifications import (
    inbox,
    kind_choices,
    notification_preferences,
    notification_preferences_set,
    notifications_mark_read,
)
from crm.core.serializers import (
    MarkedSerializer,
    NotificationKindSerializer,
    NotificationPreferencesSerializer,
    NotificationReadAllSerializer,
    NotificationSerializer,
)


class NotificationSchema(AutoSchema):
    """The `kind` filter's values are the kinds the apps declared, known once they are loaded."""

    def get_override_parameters(self) -> list[Any]:
        parameters: list[Any] = super().get_override_parameters()
        if self.method == "GET" and self._is_list_view():
            kinds = [name for name, _label in kind_choices()]
            parameters.append(OpenApiParameter("kind", str, enum=kinds, description="Only this kind."))
        return parameters


class NotificationViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Notification]
):
    """The caller's notifications: unread urgent ones first, then newest first. Filters: `kind`,
    `unread`. Only the caller's own; someone else's is a 404."""

    api_area = "admin"
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    filter_backends = [DjangoFilterBackend]  # no search, no ordering: the order is the rule above
    schema = NotificationSchema()

    def get_queryset(self) -> QuerySet[Notification]:
        if self.schema_generation:
            return Notification.unscoped_all_tenants.none()
        return inbox(member=self.membership).prefetch_related("items")

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Mark one of the caller's notifications read."""
        notification = self.get_object()
        notifications_mark_read(member=self.membership, ids=[notification.pk])
        notification.refresh_from_db()
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=NotificationReadAllSerializer, responses=MarkedSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Mark every unread notification of the caller read, or only those of `kind`."""
        data = NotificationReadAllSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        marked = notifications_mark_read(member=self.membership, kind=data.validated_data.get("kind", ""))
        return Response({"marked": marked})


class NotificationPreferencesApi(TenantAPIMixin, APIView):
    """Every kind of notification and whether the caller gets it; PUT replaces the kinds turned off."""

    api_area = "admin"

    @extend_schema(responses=NotificationKindSerializer(many=True))
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(NotificationKindSerializer(notification_preferences(member=self.membership), many=True).data)

    @extend_schema(request=NotificationPreferencesSerializer, responses=NotificationKindSerializer(many=True))
    def put(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = NotificationPreferencesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        preferences = notification_preferences_set(member=self.membership, turned_off=data.validated_data["turned_off"])
        return Response(NotificationKindSerializer(preferences, many=True).data)
