"""Sales API (线索): lead portals and the brand's lead distribution push leads (one at a time,
idempotently, or up to 1,000 a request), staff tools list, edit and move them through their
stages, book and record test drives, log walk-ins and read the funnel.

Everything is read through `sales.selectors.lead_visible_to`: who holds `sales.view_all` sees the
dealership's leads, a consultant their own and the pool, never a colleague's lead (a 404, as for
an id of another dealership). Every endpoint needs `sales.view_all` or `sales.work`; writes name
their capability and the services check it again. Scopes: `sales:read`, `sales:write`.

Idempotent capture: a lead with `external_id` (and its `source_system`) is stored once however
often it is sent. Without an external id, an `Idempotency-Key` header does the same with nothing
new stored: the key becomes the lead's external id, namespaced by the caller
(`key:<membership id>:<key>`, hashed when longer than the column), under the caller's
`source_system` or `idempotency-key`. So the database's unique (source system, external id)
index keeps the promise under races too, and the key is visible on the lead for support. (A key
store of its own would need a model; a cache would forget keys and could not hold the race.)
A key replay after the first request joined the person's open lead is recognised by the enquiry
it recorded, so it records nothing again."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.pagination import DefaultPagination
from crm.api.views import TenantAPIMixin
from crm.core.errors import ApplicationError
from crm.core.period import Period, period_errors
from crm.tenancy.models import Membership
from customers.selectors import customer_visible_to
from customers.services import customers_read_unmasked
from sales import selectors, services
from sales.filters import LeadFilter
from sales.intake import leads_capture_bulk
from sales.models import DefeatReason, DemoVehicle, Lead, LeadEvent, Quote, ShowroomVisit, TestDrive
from sales.serializers import (
    DemoVehicleSerializer,
    FunnelQuerySerializer,
    FunnelSerializer,
    LeadAssignSerializer,
    LeadBulkResultSerializer,
    LeadBulkSerializer,
    LeadCaptureResultSerializer,
    LeadCaptureSerializer,
    LeadContactSerializer,
    LeadDefeatDecisionSerializer,
    LeadDefeatSerializer,
    LeadDeliverSerializer,
    LeadDetailSerializer,
    LeadInviteSerializer,
    LeadOrderSerializer,
    LeadReopenSerializer,
    LeadSerializer,
    LeadUpdateSerializer,
    QuoteCreateSerializer,
    QuoteSerializer,
    ShowroomVisitCreateSerializer,
    ShowroomVisitQuerySerializer,
    ShowroomVisitSerializer,
    SlotQuerySerializer,
    SlotSerializer,
    TestDriveBookSerializer,
    TestDriveRecordSerializer,
    TestDriveSerializer,
)

READ_CAPABILITIES = ("sales.view_all", "sales.work")
BULK_LIMIT = 1000
KEY_PATTERN = re.compile(r"^[-A-Za-z0-9_:.]{8,80}$")
KEY_SOURCE_SYSTEM = "idempotency-key"
EXTERNAL_ID_LENGTH = 64
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="8–80 of A-Z a-z 0-9 - _ : . For a lead without external_id: a retry with the same key "
    "returns the lead the first request captured (200) instead of capturing it again.",
)


def _key_external_id(member: Membership, key: str) -> str:
    """The caller's Idempotency-Key as an external id: `key:<member>:<key>`, hashed past 64 characters."""
    prefix = f"key:{member.pk}:"
    if len(prefix) + len(key) <= EXTERNAL_ID_LENGTH:
        return prefix + key
    return prefix + hashlib.sha256(key.encode()).hexdigest()[: EXTERNAL_ID_LENGTH - len(prefix)]


def _field_errors(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
    return {"non_field_errors": [str(m) for m in (detail if isinstance(detail, list) else [detail])]}


class _SalesAPIMixin(TenantAPIMixin):
    """Every sales endpoint: the `sales` scope, and a role that sees leads."""

    api_area = "sales"

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)  # type: ignore[misc]
        if not any(self.membership.can(capability) for capability in READ_CAPABILITIES):
            self.permission_denied(request, message="Your role may not do this.")  # type: ignore[attr-defined]

    def visible_leads(self) -> QuerySet[Lead]:
        return selectors.lead_visible_to(viewer=self.membership)

    def visible_lead(self, lead_id: Any, field: str = "lead") -> Lead:
        """A lead named in a body: unknown or not visible is a field error."""
        lead = self.visible_leads().filter(pk=lead_id).first()
        if lead is None:
            raise ApplicationError("Unknown lead.", fields={field: ["No such lead."]})
        return lead

    @staticmethod
    def staff_member(pk: int | None, field: str) -> Membership | None:
        if pk is None:
            return None
        member = Membership.objects.filter(pk=pk, is_service_account=False).select_related("user").first()
        if member is None:
            raise ApplicationError("Unknown staff member.", fields={field: ["No such staff member."]})
        return member

    def audit_unmasked(self, customer_ids: Sequence[int]) -> None:
        """An integration receives full mobiles, as from the customer API: each read is recorded."""
        if self.membership.can("customers.unmasked_bulk"):
            customers_read_unmasked(
                viewer=self.membership, customer_ids=list(dict.fromkeys(customer_ids)), meta=self.meta
            )


class LeadViewSet(_SalesAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Lead]):
    """Leads the caller may see (a consultant: their own and the pool). Filters: `stage` (a stage,
    `open` or `closed`), `level`, `source`, `owner`, `pool`, `series`, `created_from`/`created_to`,
    `reached` (that stage or later), `defeat` (`pending`, `approved`), `due`, `dormant`, `customer`,
    `updated_since` (with `ordering=updated_at` for incremental pulls), `q` (a name or mobile digits).
    POST captures one (idempotently), POST bulk/ up to 1,000; each stage change is one POST."""

    required_capability = {"GET": "", "POST": "sales.work", "PATCH": "sales.work"}
    serializer_class = LeadSerializer
    filterset_class = LeadFilter
    filter_backends = [DjangoFilterBackend]  # the FilterSet orders, too
    pagination_class = DefaultPagination

    def get_queryset(self) -> QuerySet[Lead]:
        if self.schema_generation:
            return Lead.unscoped_all_tenants.none()
        return self.visible_leads().order_by("-created_at", "-id")

    def get_serializer_class(self) -> Any:
        return LeadDetailSerializer if self.action == "retrieve" else LeadSerializer

    def get_object(self) -> Lead:
        """The lead of the URL among those the caller sees; anything else (a colleague's) is a 404."""
        pk = str(self.kwargs.get("pk", ""))
        lead = self.visible_leads().filter(pk=int(pk)).first() if pk.isdigit() and int(pk) < 2**63 else None
        if lead is None:
            raise Http404
        return lead

    def _fresh(self, lead: Lead) -> Lead:
        return self.visible_leads().filter(pk=lead.pk).first() or lead

    def _lead_response(self, lead: Lead, code: int = status.HTTP_200_OK) -> Response:
        return Response(LeadSerializer(self._fresh(lead), context=self.get_serializer_context()).data, status=code)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        self.audit_unmasked([row["customer"]["id"] for row in response.data["results"]])
        return response

    @extend_schema(responses=LeadDetailSerializer)
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The lead with its history, its quotes and its test drives."""
        lead = self.get_object()
        context = {
            **self.get_serializer_context(),
            "history": selectors.lead_history(lead=lead),
            "quotes": selectors.lead_quotes(lead=lead),
            "test_drives": selectors.lead_test_drives(lead=lead).select_related("consultant__user"),
        }
        data = LeadDetailSerializer(lead, context=context).data
        self.audit_unmasked([lead.customer_id])
        return Response(data)

    # --- capture ------------------------------------------------------------------------------

    def _capture_data(self, values: dict[str, Any]) -> dict[str, Any]:
        """Resolve the ids of a checked capture body (the referrer must be a customer you see)."""
        data = dict(values)
        referrer_id = data.pop("referrer", None)
        if referrer_id is not None:
            referrer = customer_visible_to(viewer=self.membership).filter(pk=referrer_id).first()
            if referrer is None:
                raise ApplicationError("Unknown customer.", fields={"referrer": ["No such customer."]})
            data["referrer"] = referrer
        owner = self.staff_member(data.pop("owner", None), "owner")
        if owner is not None:
            data["owner"] = owner
        if not data.get("level"):
            data.pop("level", None)
        if data.get("appointment_at") is None:
            data.pop("appointment_at", None)
        return data

    def _with_key(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        if key and not data.get("external_id"):
            data["external_id"] = _key_external_id(self.membership, key)
            data["source_system"] = data.get("source_system") or KEY_SOURCE_SYSTEM
        return data

    @staticmethod
    def _key_replay(data: dict[str, Any]) -> Lead | None:
        """The open lead a keyed request joined before (its enquiry carries the key), if any."""
        external_id = str(data.get("external_id") or "")
        if not external_id.startswith("key:"):
            return None
        event = (
            LeadEvent.objects.filter(kind=LeadEvent.Kind.ENQUIRY, data__external_id=external_id)
            .select_related("lead")
            .first()
        )
        return event.lead if event is not None else None

    def _capture(self, data: dict[str, Any]) -> services.Captured:
        replayed = self._key_replay(data)
        if replayed is not None:
            return services.Captured(lead=replayed, created=False)
        return services.lead_capture(actor=self.membership, data=data)

    def _idempotency_key(self, request: Request) -> str:
        key = request.headers.get("Idempotency-Key", "")
        if key and not KEY_PATTERN.match(key):
            raise ApplicationError(
                "The Idempotency-Key header is not valid.",
                fields={"Idempotency-Key": ["8–80 of A-Z a-z 0-9 - _ : ."]},
            )
        return key

    @extend_schema(
        request=LeadCaptureSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: LeadCaptureResultSerializer, 200: LeadCaptureResultSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Capture a lead (`sales.work`). 201: a new lead. 200 with `created: false`: the same
        external id (or Idempotency-Key) was captured before, or the person has an open lead and
        the enquiry joined it (`notice` says whose; a colleague's lead is not returned: `lead` null)."""
        key = self._idempotency_key(request)
        incoming = LeadCaptureSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        captured = self._capture(self._with_key(self._capture_data(incoming.validated_data), key))
        visible = self.visible_leads().filter(pk=captured.lead.pk).first()
        body = LeadCaptureResultSerializer(
            {"created": captured.created, "notice": captured.notice, "lead": visible},
            context=self.get_serializer_context(),
        ).data
        if visible is not None:
            self.audit_unmasked([visible.customer_id])
        return Response(body, status=status.HTTP_201_CREATED if captured.created else status.HTTP_200_OK)

    @extend_schema(request=LeadBulkSerializer, parameters=[IDEMPOTENCY_HEADER], responses=LeadBulkResultSerializer)
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def bulk(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Capture up to 1,000 leads, each on its own (a bad row fails alone and leaves no trace):
        per row `created`, `existing` (captured before or joined the person's open lead) or `error`
        with its field errors. With an Idempotency-Key, a row without external_id is keyed by the key
        and its index, so the same batch sent again creates nothing. More than 1,000: 413.
        The rows are captured together (sales.intake.leads_capture_bulk), as one by one."""
        key = self._idempotency_key(request)
        body = request.data
        rows = body.get("leads") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise ApplicationError("Send the leads as a list.", fields={"leads": ["A list of leads."]})
        if len(rows) > BULK_LIMIT:
            raise ApplicationError(
                f"At most {BULK_LIMIT} leads a request.",
                code="too_many_leads",
                fields={"leads": [f"At most {BULK_LIMIT} leads a request; send the rest in another."]},
                status_code=413,
            )
        unknown = sorted(str(k) for k in body if k != "leads")
        if unknown or not rows:
            fields = {k: ["This field cannot be written here."] for k in unknown}
            if not rows:
                fields["leads"] = ["At least one lead."]
            raise ApplicationError("Some fields are not valid.", code="validation_error", fields=fields)
        results: list[dict[str, Any]] = []
        checked: list[dict[str, Any]] = []  # the rows that passed the serializer, keyed
        positions: list[int] = []
        checker = LeadCaptureSerializer()  # one for every row: its fields are bound once, not per row
        for index, row in enumerate(rows):
            results.append({"index": index, "status": "error", "id": None, "notice": "", "errors": {}})
            data = self._bulk_row_data(checker, row, results[index])
            if data is not None:
                checked.append(self._with_key(data, f"{key}#{index}" if key else ""))
                positions.append(index)
        captured = leads_capture_bulk(actor=self.membership, rows=checked)
        for index, outcome in zip(positions, captured, strict=True):
            results[index].update(
                status=outcome.status,
                id=outcome.lead.pk if outcome.lead is not None else None,
                notice=outcome.notice,
                errors=outcome.errors,
            )
        see_all = self.membership.can("sales.view_all")
        ids = [r["id"] for r in results if r["id"] is not None]
        if not see_all and ids:
            seen = set(self.visible_leads().filter(pk__in=ids).values_list("pk", flat=True))
            for result in results:
                if result["id"] not in seen:
                    result["id"] = None
        counts = {state: sum(1 for r in results if r["status"] == state) for state in ("created", "existing", "error")}
        return Response(
            LeadBulkResultSerializer(
                {
                    "created": counts["created"],
                    "existing": counts["existing"],
                    "errors": counts["error"],
                    "results": results,
                }
            ).data
        )

    def _bulk_row_data(self, checker: LeadCaptureSerializer, row: Any, result: dict[str, Any]) -> dict[str, Any] | None:
        """A bulk row checked (as `is_valid` does) and its ids resolved, or None with its errors in `result`."""
        if not isinstance(row, dict):
            result["errors"] = {"non_field_errors": ["A lead is an object."]}
            return None
        try:
            values = checker.run_validation(row)
        except serializers.ValidationError as error:
            result["errors"] = _field_errors(error.detail)
            return None
        try:
            return self._capture_data(values)
        except ApplicationError as error:
            result["errors"] = error.fields or {"non_field_errors": [error.message]}
            return None

    # --- working a lead -----------------------------------------------------------------------

    @extend_schema(request=LeadUpdateSerializer, responses=LeadSerializer)
    def partial_update(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Change what is known of the lead (only the keys sent); a new level restarts its cadence."""
        lead = self.get_object()
        incoming = LeadUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        lead = services.lead_update(actor=self.membership, lead=lead, data=dict(incoming.validated_data))
        return self._lead_response(lead)

    @extend_schema(request=LeadContactSerializer, responses=LeadSerializer)
    @action(detail=True, methods=["post"], required_capability="sales.work")
    def contact(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """A call, WeChat or SMS with the person (the first one is the lead's response time)."""
        lead = self.get_object()
        incoming = LeadContactSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        lead = services.lead_contact_log(actor=self.membership, lead=lead, **incoming.validated_data)
        return self._lead_response(lead)

    @extend_schema(request=LeadInviteSerializer, responses=LeadSerializer)
    @action(detail=True, methods=["post"], required_capability="sales.work")
    def invite(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """邀约: the person agreed to come at `appointment_at`."""
        lead = self.get_object()
        incoming = LeadInviteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        lead = services.lead_invite(actor=self.membership, lead=lead, **incoming.validated_data)
        return self._lead_response(lead)

    @extend_schema(request=LeadAssignSerializer, responses=LeadSerializer)
    @action(detail=True, methods=["post"], required_capability="sales.work")
    def assign(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """A manager gives the lead to a consultant or back to the pool (null); a consultant takes a
        pool lead by naming themself."""
        lead = self.get_object()
        incoming = LeadAssignSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        to = self.staff_member(incoming.validated_data["to"], "to")
        lead = services.lead_assign(actor=self.membership, lead=lead, to=to, note=incoming.validated_data["note"])
        return self._lead_response(lead)

    @extend_schema(request=LeadDefeatSerializer, responses=LeadSerializer)
    @action(detail=True, methods=["post"], required_capability="sales.work")
    def defeat(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """战败: report the lead lost with a reason of the dealership's list; it closes once a manager
        approves (at once when a manager reports it)."""
        lead = self.get_object()
        incoming = LeadDefeatSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        code = data.pop("reason")
        reason = DefeatReason.objects.filter(code=code, is_active=True).first()
        if reason is None:
            raise ApplicationError("Unknown defeat reason.", fields={"reason": ["Not a reason of the dealership."]})
        lead = services.lead_defeat(actor=self.membership, lead=lead, reason=reason, **data)
        return self._lead_response(lead)

    @extend_schema(request=LeadDefeatDecisionSerializer, responses=LeadSerializer)
    @action(detail=True, methods=["post"], url_path="defeat-decision", required_capability="sales.manage")
    def defeat_decision(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """战败审核 (`sales.manage`): approve the reported defeat, or reject it with a note."""
        lead = self.get_object()
        incoming = LeadDefeatDecisionSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        lead = services.lead_defeat_decide(actor=self.membership, lead=lead, **incoming.validated_data)
        return self._lead_response(lead)

    @extend_schema(request=LeadReopenSerializer, responses=LeadSerializer)
    @action(detail=True, methods=["post"], required_capability="sales.manage")
    def reopen(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """A manager reopens a defeated lead (`sales.manage`)."""
        lead = self.get_object()
        incoming = LeadReopenSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        lead = services.lead_reopen(actor=self.membership, lead=lead, note=incoming.validated_data["note"])
        return self._lead_response(lead)

    @extend_schema(request=LeadOrderSerializer, responses=LeadSerializer)
    @action(detail=True, methods=["post"], required_capability="sales.work")
    def order(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """订单: the person signs for one of the lead's quotes and pays a deposit."""
        lead = self.get_object()
        incoming = LeadOrderSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        quote = selectors.lead_quotes(lead=lead).filter(pk=data.pop("quote")).first()
        if quote is None:
            raise ApplicationError("Unknown quote.", fields={"quote": ["Not a quote of this lead."]})
        lead = services.lead_order(actor=self.membership, lead=lead, quote=quote, **data)
        return self._lead_response(lead)

    @extend_schema(request=LeadDeliverSerializer, responses=LeadSerializer)
    @action(detail=True, methods=["post"], required_capability="sales.work")
    def deliver(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """交车: the person's vehicle and the vehicle-sale order, in one step; the lead closes."""
        lead = self.get_object()
        incoming = LeadDeliverSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        lead = services.lead_deliver(actor=self.membership, lead=lead, **incoming.validated_data)
        return self._lead_response(lead)

    @extend_schema(request=QuoteCreateSerializer, responses={201: QuoteSerializer})
    @action(detail=True, methods=["post"], required_capability="sales.work")
    def quotes(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """报价: a new version of the lead's offer (totals computed; earlier versions stay as they were)."""
        lead = self.get_object()
        incoming = QuoteCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        data["accessories"] = [dict(item) for item in data.get("accessories", [])]
        quote: Quote = services.quote_create(actor=self.membership, lead=lead, data=data)
        return Response(QuoteSerializer(quote).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TestDriveBookSerializer, responses={201: TestDriveSerializer})
    @action(detail=True, methods=["post"], url_path="test-drives", required_capability="sales.work")
    def test_drives(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """试乘试驾: book a demo vehicle for a slot; 409 `booked` when the car is taken then."""
        lead = self.get_object()
        incoming = TestDriveBookSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        vehicle = selectors.demo_vehicles(active=False).filter(pk=data.pop("vehicle")).first()
        if vehicle is None:
            raise ApplicationError("Unknown demo vehicle.", fields={"vehicle": ["No such demo vehicle."]})
        drive = services.test_drive_book(actor=self.membership, lead=lead, vehicle=vehicle, **data)
        drive = TestDrive.objects.select_related("vehicle", "consultant__user").get(pk=drive.pk)
        return Response(TestDriveSerializer(drive).data, status=status.HTTP_201_CREATED)


class TestDriveViewSet(_SalesAPIMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[TestDrive]):
    """Test drives of the leads the caller sees. POST {id}/record/ says what came of one."""

    required_capability = {"GET": "", "POST": "sales.work"}
    serializer_class = TestDriveSerializer
    filter_backends: list[type] = []
    pagination_class = None

    def get_queryset(self) -> QuerySet[TestDrive]:
        if self.schema_generation:
            return TestDrive.unscoped_all_tenants.none()
        return TestDrive.objects.filter(lead__in=self.visible_leads()).select_related("vehicle", "consultant__user")

    def get_object(self) -> TestDrive:
        pk = str(self.kwargs.get("pk", ""))
        drive = self.get_queryset().filter(pk=int(pk)).first() if pk.isdigit() and int(pk) < 2**63 else None
        if drive is None:
            raise Http404
        return drive

    @extend_schema(request=TestDriveRecordSerializer, responses=TestDriveSerializer)
    @action(detail=True, methods=["post"], required_capability="sales.work")
    def record(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        """Driven (licence number, expiry and consent required; a signed agreement may be attached as
        multipart), did not come, or cancelled. 409 `recorded` when it was recorded before."""
        drive = self.get_object()
        incoming = TestDriveRecordSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        drive = services.test_drive_record(actor=self.membership, drive=drive, **incoming.validated_data)
        return Response(TestDriveSerializer(self.get_queryset().get(pk=drive.pk)).data)


class DemoVehicleViewSet(_SalesAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet[DemoVehicle]):
    """The dealership's test-drive cars in service."""

    required_capability = {"GET": ""}
    serializer_class = DemoVehicleSerializer
    filter_backends: list[type] = []
    pagination_class = DefaultPagination

    def get_queryset(self) -> QuerySet[DemoVehicle]:
        if self.schema_generation:
            return DemoVehicle.unscoped_all_tenants.none()
        return selectors.demo_vehicles(active=True)


class ShowroomVisitViewSet(
    _SalesAPIMixin, mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet[ShowroomVisit]
):
    """客流登记: walk-ins, newest first (`?on=` a day). A consultant sees those they served or that
    belong to their leads. POST logs one: anonymous, for a `lead`, or with a `name` and `mobile`
    (their lead is captured or found)."""

    required_capability = {"GET": "", "POST": "sales.work"}
    serializer_class = ShowroomVisitSerializer
    filter_backends: list[type] = []
    pagination_class = DefaultPagination

    def get_queryset(self) -> QuerySet[ShowroomVisit]:
        if self.schema_generation:
            return ShowroomVisit.unscoped_all_tenants.none()
        query = ShowroomVisitQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.showroom_visits(viewer=self.membership, on=query.validated_data.get("on"))

    @extend_schema(parameters=[ShowroomVisitQuerySerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ShowroomVisitCreateSerializer, responses={201: ShowroomVisitSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = ShowroomVisitCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        lead_id, name, mobile = data.pop("lead"), data.pop("name"), data.pop("mobile")
        lead = self.visible_lead(lead_id) if lead_id is not None else None
        consultant = self.staff_member(data.pop("consultant"), "consultant")
        if consultant is not None:
            data["consultant"] = consultant
        visit = services.showroom_visit_log(
            actor=self.membership,
            data=data,
            lead=lead,
            lead_data={"name": name, "mobile": mobile} if name else None,
        )
        visit = ShowroomVisit.objects.select_related("consultant__user").get(pk=visit.pk)
        return Response(ShowroomVisitSerializer(visit).data, status=status.HTTP_201_CREATED)


class TestDriveSlotsApi(_SalesAPIMixin, APIView):
    """A demo vehicle's bookable slots on a day (within business hours) and whether each is free."""

    required_capability = {"GET": ""}

    @extend_schema(parameters=[SlotQuerySerializer], responses=SlotSerializer(many=True))
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = SlotQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        errors = period_errors(data["date"], data["date"])
        if errors:
            raise ApplicationError("Some fields are not valid.", fields={"date": list(errors.values())})
        vehicle = selectors.demo_vehicles(active=True).filter(pk=data["vehicle"]).first()
        if vehicle is None:
            raise ApplicationError("Unknown demo vehicle.", fields={"vehicle": ["No such demo vehicle."]})
        slots = selectors.test_drive_slots(vehicle=vehicle, on=data["date"], minutes=data["minutes"])
        return Response(SlotSerializer(slots, many=True).data)


class SalesFunnelApi(_SalesAPIMixin, APIView):
    """The funnel of the leads captured between start and end (`sales.view_all`): each step's
    leads (reached that stage or later), 到店率 / 试驾率 / 成交率, first response, ageing, defeat
    reasons, competitors, the pool. `?by=source|owner|series` adds one row per source, consultant
    or model. The same figures as the manager's funnel page."""

    required_capability = "sales.view_all"

    @extend_schema(parameters=[FunnelQuerySerializer], responses=FunnelSerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = FunnelQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        owner = None
        if data.get("owner") is not None:
            owner = Membership.objects.filter(pk=data["owner"]).first()
            if owner is None:
                raise ApplicationError("Unknown staff member.", fields={"owner": ["No such staff member."]})
        filters = selectors.FunnelFilters(
            period=Period(data["start"], data["end"]),
            source=data.get("source", ""),
            owner=owner,
            series=data.get("series", ""),
        )
        figures = selectors.funnel(viewer=self.membership, filters=filters)
        by = data.get("by", "")
        breakdown = None
        if by:
            breakdown = [
                {**row, "key": None if row["key"] is None else str(row["key"])}
                for row in selectors.funnel_breakdown(viewer=self.membership, filters=filters, by=by)
            ]
        return Response(FunnelSerializer({**figures, "by": by, "breakdown": breakdown}).data)
