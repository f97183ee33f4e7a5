"""Complaint API: tickets the caller may see, the six steps, notes, assignment, waiting on the customer,
attachments, the timeline, and manager metrics. Every write goes through complaints.services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from complaints import selectors, services
from complaints.filters import TicketFilter
from complaints.models import Status, Ticket
from complaints.serializers import (
    AdvanceSerializer,
    AssignSerializer,
    AttachmentOutSerializer,
    AttachmentSerializer,
    MetricsQuerySerializer,
    NoteSerializer,
    RevealedMobileSerializer,
    TicketCreateSerializer,
    TicketEventSerializer,
    TicketSerializer,
)
from crm.api.pagination import CreatedCursorPagination
from crm.api.views import TenantAPIMixin
from crm.core.errors import ApplicationError
from crm.tenancy.models import Membership
from customers.models import Customer, Vehicle
from customers.selectors import customer_visible_to

WORK = {"GET": "", "POST": "complaints.work"}


class OpenedCursorPagination(CreatedCursorPagination):
    ordering = ("-opened_at", "-id")


class TicketViewSet(TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Ticket]):
    """Complaint tickets the caller may see (all, for managers, agents, auditors and integrations;
    otherwise those assigned to them, watched, or about their own customers). The contact's mobile is
    masked unless the caller is the assignee or an integration (whose reads of full numbers are
    audited); `POST …/reveal-mobile/` shows it in full, audited, to roles that may reveal numbers."""

    api_area = "complaints"
    serializer_class = TicketSerializer
    filterset_class = TicketFilter
    pagination_class = OpenedCursorPagination
    required_capability = WORK

    def get_queryset(self) -> QuerySet[Ticket]:
        if self.schema_generation:
            return Ticket.unscoped_all_tenants.none()
        membership = self.membership
        if not (membership.can("complaints.view_all") or membership.can("complaints.work")):
            return Ticket.objects.none()
        return selectors.ticket_visible_to(viewer=membership).order_by("-opened_at", "-id")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        self._audit_unmasked([row["id"] for row in response.data["results"]])
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ticket = self.get_object()
        self._audit_unmasked([ticket.pk])
        return Response(self.get_serializer(ticket).data)

    def _audit_unmasked(self, ticket_ids: Sequence[int]) -> None:
        if self.membership.can("customers.unmasked_bulk"):
            services.tickets_read_unmasked(viewer=self.membership, ticket_ids=ticket_ids, meta=self.meta)

    @extend_schema(request=None, responses=RevealedMobileSerializer)
    @action(detail=True, methods=["post"], url_path="reveal-mobile")
    def reveal_mobile(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """The contact's mobile in full. Audited: who, when, which ticket."""
        value = services.ticket_reveal_mobile(viewer=self.membership, ticket=self.get_object(), meta=self.meta)
        return Response({"contact_mobile": value})

    @extend_schema(request=TicketCreateSerializer, responses={201: TicketSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = TicketCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        categories = {c.code: c for c in services.categories_ensure()}
        category = categories.get(data["category"])
        if category is None or not category.is_active:
            raise ApplicationError("Unknown category.", fields={"category": [f"One of: {', '.join(categories)}."]})
        customer = self._visible(
            Customer, customer_visible_to(viewer=self.membership), data.get("customer"), "customer"
        )
        vehicle = self._visible(
            Vehicle,
            Vehicle.objects.filter(customer__in=customer_visible_to(viewer=self.membership)),
            data.get("vehicle"),
            "vehicle",
        )
        assignee = self._member(data.get("assignee"))
        ticket = services.ticket_open(
            actor=self.membership,
            data=services.TicketInput(
                contact_name=data["contact_name"],
                contact_mobile=data["contact_mobile"],
                channel=data["channel"],
                category=category,
                severity=data["severity"],
                subject=data["subject"],
                description=data["description"],
                customer=customer,
                vehicle=vehicle,
                assignee=assignee,
            ),
            source=Ticket.Source.API,
        )
        return Response(self.get_serializer(ticket).data, status=status.HTTP_201_CREATED)

    @staticmethod
    def _visible(model: Any, queryset: QuerySet[Any], pk: int | None, field: str) -> Any:
        if pk is None:
            return None
        found = queryset.filter(pk=pk).first()
        if found is None:
            raise ApplicationError(f"Unknown {field}.", fields={field: [f"No such {field}."]})
        return found

    @staticmethod
    def _member(pk: int | None) -> Membership | None:
        if pk is None:
            return None
        member = Membership.objects.filter(pk=pk, is_service_account=False).first()
        if member is None:
            raise ApplicationError("Unknown staff member.", fields={"assignee": ["No such staff member."]})
        return member

    def _respond(self, ticket: Ticket) -> Response:
        return Response(self.get_serializer(Ticket.objects.get(pk=ticket.pk)).data)

    @extend_schema(request=AdvanceSerializer, responses=TicketSerializer)
    @action(detail=True, methods=["post"])
    def advance(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Move to the next step. Closing needs root_cause, resolution and compensation fields."""
        ticket = self.get_object()
        incoming = AdvanceSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        closing = services.Closing.from_data(data) if data["to_status"] == Status.CLOSED else None
        ticket = services.ticket_advance(
            actor=self.membership, ticket=ticket, to_status=data["to_status"], note=data["note"], closing=closing
        )
        return self._respond(ticket)

    @extend_schema(request=NoteSerializer, responses=TicketSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        incoming = NoteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        return self._respond(
            services.ticket_reopen(
                actor=self.membership, ticket=self.get_object(), note=incoming.validated_data["note"]
            )
        )

    @extend_schema(request=None, responses=TicketSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Waiting on the customer: the SLA clocks stop."""
        return self._respond(services.ticket_pause(actor=self.membership, ticket=self.get_object()))

    @extend_schema(request=None, responses=TicketSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        return self._respond(services.ticket_resume(actor=self.membership, ticket=self.get_object()))

    @extend_schema(request=AssignSerializer, responses=TicketSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        incoming = AssignSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        assignee = self._member(incoming.validated_data["assignee"])
        assert assignee is not None
        return self._respond(services.ticket_assign(actor=self.membership, ticket=self.get_object(), assignee=assignee))

    @extend_schema(request=NoteSerializer, responses={201: TicketEventSerializer}, methods=["POST"])
    @extend_schema(responses=TicketEventSerializer(many=True), methods=["GET"])
    @action(detail=True, methods=["get", "post"], pagination_class=None)  # a ticket's events: one list
    def events(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """GET: the timeline, oldest first. POST {"note": …}: add a note."""
        ticket = self.get_object()
        if request.method == "POST":
            incoming = NoteSerializer(data=request.data)
            incoming.is_valid(raise_exception=True)
            event = services.ticket_note(actor=self.membership, ticket=ticket, note=incoming.validated_data["note"])
            return Response(TicketEventSerializer(event).data, status=status.HTTP_201_CREATED)
        return Response(TicketEventSerializer(selectors.ticket_events(ticket=ticket), many=True).data)

    @extend_schema(request={"multipart/form-data": AttachmentSerializer}, responses={201: AttachmentOutSerializer})
    @action(detail=True, methods=["post"])
    def attachments(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Attach a photo, PDF or recording (10 MB at most, checked by content)."""
        ticket = self.get_object()
        attachment = services.ticket_attach(actor=self.membership, ticket=ticket, upload=request.FILES.get("file"))
        return Response(AttachmentOutSerializer(attachment).data, status=status.HTTP_201_CREATED)


class ComplaintMetricsApi(TenantAPIMixin, APIView):
    """Manager figures over tickets opened between start and end (dealership dates)."""

    api_area = "complaints"
    required_capability = "dashboards.view"

    @extend_schema(parameters=[MetricsQuerySerializer], responses=dict)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = MetricsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        figures = selectors.complaint_metrics(
            period=selectors.Period(query.validated_data["start"], query.validated_data["end"]),
            zone=self.membership.tenant.zone,
        )
        return Response(figures | {"computed_at": timezone.now()})
