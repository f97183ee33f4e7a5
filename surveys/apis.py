"""Survey API: templates (read), invitations (list, send, cancel), responses (read), results."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response as ApiResponse
from rest_framework.views import APIView

from crm.api.pagination import CreatedCursorPagination
from crm.api.views import TenantAPIMixin
from crm.core.errors import ApplicationError
from customers.selectors import customer_visible_to
from surveys import selectors, services
from surveys.models import Invitation, Response, SurveyTemplate
from surveys.serializers import (
    InvitationCreateSerializer,
    InvitationSerializer,
    ResponseSerializer,
    ResultsQuerySerializer,
    TemplateSerializer,
)


class TemplateViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[SurveyTemplate]
):
    """Survey templates with their current version's questions."""

    api_area = "surveys"
    required_capability = "surveys.view"
    serializer_class = TemplateSerializer

    def get_queryset(self) -> QuerySet[SurveyTemplate]:
        if self.schema_generation:
            return SurveyTemplate.unscoped_all_tenants.none()
        return (
            SurveyTemplate.objects.select_related("current_version")
            .prefetch_related("current_version__questions")
            .order_by("moment", "name")
        )


class InvitationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Invitation.Status.choices)
    trigger = django_filters.ChoiceFilter(choices=Invitation.Trigger.choices)
    customer = django_filters.NumberFilter(field_name="customer_id")
    created_since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Invitation
        fields = ["status", "trigger", "customer", "created_since"]


class InvitationViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Invitation]
):
    """Invitations. POST sends a survey to a customer now (frequency cap and consent apply: a refused
    invitation answers 400 with the reason)."""

    api_area = "surveys"
    required_capability = {"GET": "surveys.view", "POST": "surveys.send"}
    serializer_class = InvitationSerializer
    filterset_class = InvitationFilter
    pagination_class = CreatedCursorPagination

    def get_queryset(self) -> QuerySet[Invitation]:
        if self.schema_generation:
            return Invitation.unscoped_all_tenants.none()
        return Invitation.objects.select_related("version").order_by("-created_at", "-id")

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> ApiResponse:
        incoming = InvitationCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        customer = customer_visible_to(viewer=self.membership).filter(pk=incoming.validated_data["customer"]).first()
        if customer is None:
            raise ApplicationError("Unknown customer.", fields={"customer": ["No such customer."]})
        template = {t.code: t for t in services.templates_ensure()}.get(incoming.validated_data["template"])
        if template is None:
            raise ApplicationError("Unknown survey template.", fields={"template": ["No such template."]})
        try:
            invitation = services.invitation_create(actor=self.membership, customer=customer, template=template)
        except services.NotInvited as reason:
            raise ApplicationError(str(reason), code="not_invited") from None
        return ApiResponse(self.get_serializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=InvitationSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> ApiResponse:
        invitation = services.invitation_cancel(actor=self.membership, invitation=self.get_object())
        return ApiResponse(self.get_serializer(invitation).data)


class ResponseFilter(django_filters.FilterSet):
    customer = django_filters.NumberFilter(field_name="customer_id")
    low_score = django_filters.BooleanFilter()
    submitted_since = django_filters.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="gte")

    class Meta:
        model = Response
        fields = ["customer", "low_score", "submitted_since"]


class SubmittedCursorPagination(CreatedCursorPagination):
    ordering = ("-submitted_at", "-id")


class ResponseViewSet(
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Response]
):
    """Submitted answers, with every answer by question key."""

    api_area = "surveys"
    required_capability = "surveys.view"
    serializer_class = ResponseSerializer
    filterset_class = ResponseFilter
    pagination_class = SubmittedCursorPagination

    def get_queryset(self) -> QuerySet[Response]:
        if self.schema_generation:
            return Response.unscoped_all_tenants.none()
        return (
            Response.objects.select_related("version")
            .prefetch_related("answers__question")
            .order_by("-submitted_at", "-id")
        )


class SurveyResultsApi(TenantAPIMixin, APIView):
    """CSAT, NPS, bands, per question and section, by month and by person, response rate, and the
    satisfaction × loyalty matrix, over responses submitted between start and end."""

    api_area = "surveys"
    required_capability = "surveys.view"

    @extend_schema(parameters=[ResultsQuerySerializer], responses=dict)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> ApiResponse:
        query = ResultsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        template = None
        if query.validated_data.get("template"):
            template = SurveyTemplate.objects.filter(code=query.validated_data["template"]).first()
            if template is None:
                raise ApplicationError("Unknown survey template.", fields={"template": ["No such template."]})
        figures = selectors.survey_results(
            period=selectors.Period(query.validated_data["start"], query.validated_data["end"]),
            zone=self.membership.tenant.zone,
            template=template,
        )
        return ApiResponse(figures)
