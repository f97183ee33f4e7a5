"""Customer API: customers, vehicles, orders (with a bulk upsert for DMS syncs) and touchpoints.

Every queryset starts from the caller's visibility (consultants: their own book), writes go
through customers.records / customers.services, and numbers are masked for non-owners.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.pagination import CreatedCursorPagination
from crm.api.views import TenantAPIMixin
from crm.core.errors import ApplicationError
from crm.tenancy.selectors import membership_list
from customers import records, selectors, services
from customers.filters import CustomerFilter, OrderFilter, TouchpointFilter, VehicleFilter
from customers.models import ConsentChange, Customer, MileageReading, Order, Touchpoint, Vehicle
from customers.serializers import (
    ConsentChangeSerializer,
    CustomerSerializer,
    CustomerWriteSerializer,
    ListFlagSerializer,
    MergeSerializer,
    MileageReadingSerializer,
    OrderBulkResultSerializer,
    OrderBulkSerializer,
    OrderSerializer,
    OrderWriteSerializer,
    ReassignedSerializer,
    ReassignSerializer,
    RevealedSerializer,
    RevealSerializer,
    TouchpointSerializer,
    TouchpointWriteSerializer,
    TransferSerializer,
    VehicleSerializer,
    VehicleUpdateSerializer,
    VehicleWriteSerializer,
)
from customers.timeline import customer_timeline

WRITE = {"GET": "", "POST": "customers.edit", "PATCH": "customers.edit", "PUT": "customers.edit"}


class _VisibleCustomersMixin(TenantAPIMixin):
    api_area = "customers"

    def visible_customers(self) -> QuerySet[Customer]:
        return selectors.customer_visible_to(viewer=self.membership)

    def visible_customer(self, customer_id: Any, field: str = "customer") -> Customer:
        customer = self.visible_customers().filter(pk=customer_id).first() if str(customer_id).isdigit() else None
        if customer is None:
            raise ApplicationError("Unknown customer.", fields={field: ["No such customer."]})
        return customer

    def customer_and_vehicle(self, values: dict[str, Any]) -> tuple[Customer, dict[str, Any]]:
        """Resolve input ids: the customer must be visible, the vehicle (optional) must be theirs."""
        customer = self.visible_customer(values.pop("customer"))
        vehicle_id = values.pop("vehicle", None)
        if vehicle_id:
            values["vehicle"] = get_object_or_404(Vehicle.objects.filter(customer=customer), pk=vehicle_id)
        return customer, values


class CustomerViewSet(
    _VisibleCustomersMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Customer],
):
    """Customers the caller may see. Consultants and advisors see only their own book.

    `search` matches any part of a name or the start of its pinyin initials, a mobile (or its last
    4+ digits), a plate (or its last 3+ characters), a VIN (or its last 6+) or a DMS id. No DELETE:
    customers are merged, never deleted.
    """

    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    filter_backends = [DjangoFilterBackend]  # the FilterSet includes `search` where it applies
    pagination_class = CreatedCursorPagination
    required_capability = WRITE

    def get_queryset(self) -> QuerySet[Customer]:
        if self.schema_generation:
            return Customer.unscoped_all_tenants.none()
        return self.visible_customers()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        self._audit_unmasked([row["id"] for row in response.data["results"]])
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        customer = self.get_object()
        services.customer_record_viewed(viewer=self.membership, customer=customer, meta=self.meta)
        return Response(self.get_serializer(customer).data)

    def _audit_unmasked(self, customer_ids: Sequence[int]) -> None:
        if self.membership.can("customers.unmasked_bulk"):
            services.customers_read_unmasked(viewer=self.membership, customer_ids=customer_ids, meta=self.meta)

    @extend_schema(request=CustomerWriteSerializer, responses={201: CustomerSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = CustomerWriteSerializer(data=request.data, context={"membership": self.membership})
        data.is_valid(raise_exception=True)
        customer = records.customer_create(
            actor=self.membership, data=dict(data.validated_data), meta=self.meta, via=ConsentChange.Via.API
        )
        return Response(self.get_serializer(customer).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CustomerWriteSerializer, responses=CustomerSerializer)
    def partial_update(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        customer = self.get_object()
        data = CustomerWriteSerializer(data=request.data, partial=True, context={"membership": self.membership})
        data.is_valid(raise_exception=True)
        records.customer_update(
            actor=self.membership, customer=customer, data=dict(data.validated_data), via=ConsentChange.Via.API
        )
        return Response(self.get_serializer(customer).data)

    @extend_schema(responses={200: None})
    @action(detail=True, methods=["get"])
    def timeline(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Everything that happened with the customer, newest first (entries from every module)."""
        customer = self.get_object()
        entries = customer_timeline(customer=customer, viewer=self.membership, limit=200)
        return Response(
            [{"at": e.at, "kind": e.kind, "title": e.title, "detail": e.detail, "staff": e.staff} for e in entries]
        )

    @extend_schema(responses=ConsentChangeSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="consent-history", pagination_class=None)
    def consent_history(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Every change of the customer's consent, newest first: the state after it, the channels it
        changed (`call`, `sms`, `wechat`, `email`), who recorded it, when, and through what
        (`form`, `api`, `import` with its job)."""
        customer = self.get_object()
        changes = selectors.customer_consent_history(customer=customer)
        return Response(ConsentChangeSerializer(changes, many=True).data)

    @extend_schema(request=RevealSerializer, responses=RevealedSerializer)
    @action(detail=True, methods=["post"], required_capability=None)
    def reveal(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Show a masked number in full. Audited: who, when, which customer."""
        data = RevealSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        field = data.validated_data["field"]
        value = services.customer_reveal_pii(
            viewer=self.membership, customer=self.get_object(), field=field, meta=self.meta
        )
        return Response({"field": field, "value": value})

    @extend_schema(request=ListFlagSerializer, responses=CustomerSerializer)
    @action(detail=True, methods=["post"], url_path="list-flag", required_capability="customers.list_flag")
    def list_flag(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Put the customer on the red list (favour) or black list (avoid), with a reason."""
        data = ListFlagSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = records.customer_set_list_flag(
            actor=self.membership, customer=self.get_object(), meta=self.meta, **data.validated_data
        )
        return Response(self.get_serializer(customer).data)

    @extend_schema(request=MergeSerializer, responses=CustomerSerializer)
    @action(detail=True, methods=["post"], required_capability="customers.merge")
    def merge(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Fold another record into this one; its history moves here and its DMS id resolves here."""
        data = MergeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        duplicate = self.visible_customer(data.validated_data["duplicate"], field="duplicate")
        survivor = records.customer_merge(
            actor=self.membership, survivor=self.get_object(), duplicate=duplicate, meta=self.meta
        )
        return Response(self.get_serializer(survivor).data)

    @extend_schema(request=ReassignSerializer, responses=ReassignedSerializer)
    @action(detail=False, methods=["post"], required_capability="customers.reassign")
    def reassign(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Hand every customer of one staff member to another in one step."""
        data = ReassignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        staff = {m.pk: m for m in membership_list().filter(pk__in=data.validated_data.values())}
        missing = {k: ["No such staff member."] for k, v in data.validated_data.items() if v not in staff}
        if missing:
            raise ApplicationError("Unknown staff member.", fields=missing)
        moved = services.customers_reassign(
            actor=self.membership,
            from_member=staff[data.validated_data["from_membership"]],
            to_member=staff[data.validated_data["to_membership"]],
            meta=self.meta,
        )
        return Response({"moved": moved}, status=status.HTTP_200_OK)


class VehicleViewSet(
    _VisibleCustomersMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Vehicle],
):
    """Vehicles of the customers the caller may see; create, update, transfer, mileage."""

    serializer_class = VehicleSerializer
    filterset_class = VehicleFilter
    filter_backends = [DjangoFilterBackend]  # the FilterSet includes `search` where it applies
    pagination_class = CreatedCursorPagination
    required_capability = WRITE

    def get_queryset(self) -> QuerySet[Vehicle]:
        if self.schema_generation:
            return Vehicle.unscoped_all_tenants.none()
        return Vehicle.objects.filter(customer__in=self.visible_customers())

    @extend_schema(request=VehicleWriteSerializer, responses={201: VehicleSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = VehicleWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        customer = self.visible_customer(values.pop("customer", None))
        if "vin" not in values or "brand" not in values:
            raise ApplicationError(
                "VIN and brand are required.", fields={k: ["Required."] for k in ("vin", "brand") if k not in values}
            )
        vehicle = records.vehicle_create(
            actor=self.membership, customer=customer, data=values, mileage_km=values.pop("mileage_km", None)
        )
        return Response(VehicleSerializer(vehicle).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=VehicleUpdateSerializer, responses=VehicleSerializer)
    def partial_update(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        vehicle = self.get_object()
        data = VehicleUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values.pop("mileage_km", None)  # mileage goes through /mileage/
        return Response(
            VehicleSerializer(records.vehicle_update(actor=self.membership, vehicle=vehicle, data=values)).data
        )

    @extend_schema(request=TransferSerializer, responses=VehicleSerializer)
    @action(detail=True, methods=["post"])
    def transfer(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """The vehicle changes hands; the ownership history keeps the previous owner."""
        data = TransferSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        new_owner = self.visible_customer(data.validated_data["customer"])
        vehicle = records.vehicle_transfer(
            actor=self.membership, vehicle=self.get_object(), new_owner=new_owner, on=data.validated_data.get("on")
        )
        return Response(VehicleSerializer(vehicle).data)

    @extend_schema(responses=MileageReadingSerializer(many=True), methods=["GET"])
    @extend_schema(
        request=MileageReadingSerializer, responses={201: MileageReadingSerializer(many=True)}, methods=["POST"]
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)  # every reading: a short list
    def mileage(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Odometer readings over time (GET), or add one (POST: read_on, km)."""
        vehicle = self.get_object()
        if request.method == "POST":
            data = MileageReadingSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            records.mileage_record(vehicle=vehicle, source=MileageReading.Source.MANUAL, **data.validated_data)
        readings = MileageReading.objects.filter(vehicle=vehicle).order_by("-read_on", "-km")
        return Response(
            MileageReadingSerializer(readings, many=True).data, status=201 if request.method == "POST" else 200
        )


class OrderViewSet(
    _VisibleCustomersMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Order],
):
    """Sales and service orders of visible customers. DMS integrations sync with /bulk-upsert/."""

    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    filter_backends = [DjangoFilterBackend]  # the FilterSet includes `search` where it applies
    pagination_class = CreatedCursorPagination
    required_capability = WRITE

    def get_queryset(self) -> QuerySet[Order]:
        if self.schema_generation:
            return Order.unscoped_all_tenants.none()
        return Order.objects.filter(customer__in=self.visible_customers())

    @extend_schema(request=OrderWriteSerializer, responses={201: OrderSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = OrderWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer, values = self.customer_and_vehicle(dict(data.validated_data))
        order = records.order_create(actor=self.membership, customer=customer, data=values)
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=OrderSerializer)
    @action(detail=True, methods=["post"])
    def reverse(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Mark an order reversed (冲销): it stays in history but counts for nothing."""
        return Response(OrderSerializer(records.order_reverse(actor=self.membership, order=self.get_object())).data)

    @extend_schema(request=OrderBulkSerializer, responses=OrderBulkResultSerializer(many=True))
    @action(detail=False, methods=["post"], url_path="bulk-upsert", pagination_class=None)
    def bulk_upsert(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create or update up to 1,000 orders keyed by external_id; each item succeeds or fails
        on its own (errors per item); sending the same batch again changes nothing."""
        data = OrderBulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(records.orders_bulk_upsert(actor=self.membership, items=data.validated_data["items"]))


class TouchpointViewSet(
    _VisibleCustomersMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Touchpoint],
):
    """Contacts with visible customers; call-centre and messaging systems push them here."""

    serializer_class = TouchpointSerializer
    filterset_class = TouchpointFilter
    filter_backends = [DjangoFilterBackend]  # the FilterSet includes `search` where it applies
    pagination_class = CreatedCursorPagination
    required_capability = WRITE

    def get_queryset(self) -> QuerySet[Touchpoint]:
        if self.schema_generation:
            return Touchpoint.unscoped_all_tenants.none()
        return Touchpoint.objects.filter(customer__in=self.visible_customers())

    @extend_schema(request=TouchpointWriteSerializer, responses={201: TouchpointSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = TouchpointWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer, values = self.customer_and_vehicle(dict(data.validated_data))
        touchpoint = records.touchpoint_log(actor=self.membership, customer=customer, **values)
        return Response(TouchpointSerializer(touchpoint).data, status=status.HTTP_201_CREATED)
