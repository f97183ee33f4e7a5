"""Customer API (read side and the tenancy-sensitive actions; full CRUD arrives with issue 4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import SearchFilter
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.pagination import CreatedCursorPagination
from crm.api.views import TenantAPIMixin
from crm.core.errors import ApplicationError
from crm.tenancy.selectors import membership_list
from customers import selectors, services
from customers.filters import CustomerFilter
from customers.models import Customer
from customers.serializers import (
    CustomerSerializer,
    ReassignedSerializer,
    ReassignSerializer,
    RevealedSerializer,
    RevealSerializer,
)


class CustomerViewSet(TenantAPIMixin, viewsets.ReadOnlyModelViewSet[Customer]):
    """Customers the caller may see. Consultants and advisors see only their own book."""

    api_area = "customers"
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    pagination_class = CreatedCursorPagination
    search_fields = ["name", "=mobile", "=external_id"]
    # cursor pages keep their own unique order (-created_at, -id); no ?ordering= here
    filter_backends = [DjangoFilterBackend, SearchFilter]

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

    def get_queryset(self) -> QuerySet[Customer]:
        if self.schema_generation:
            return Customer.unscoped_all_tenants.none()
        return selectors.customer_visible_to(viewer=self.membership)

    @extend_schema(request=RevealSerializer, responses=RevealedSerializer)
    @action(detail=True, methods=["post"])
    def reveal(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Show a masked number in full. Audited: who, when, which customer."""
        data = RevealSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        field = data.validated_data["field"]
        value = services.customer_reveal_pii(
            viewer=self.membership, customer=self.get_object(), field=field, meta=self.meta
        )
        return Response({"field": field, "value": value})

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
