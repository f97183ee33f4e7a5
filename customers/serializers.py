"""API serializers: output shapes (numbers masked for non-owners) and input validation."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from crm.api.serializers import StrictInput
from crm.tenancy.models import Membership
from customers.models import ConsentChange, Customer, MileageReading, Order, Touchpoint, Vehicle
from customers.selectors import consent_set_by_name, customer_masked_value

CUSTOMER_OUTPUT_FIELDS = [
    "id",
    "kind",
    "name",
    "mobile",
    "mobile_secondary",
    "email",
    "id_number",
    "gender",
    "birthday",
    "province",
    "city",
    "district",
    "address",
    "source",
    "consent_call",
    "consent_sms",
    "consent_wechat",
    "consent_email",
    "owner",
    "owner_name",
    "relationship_class",
    "lifecycle_stage",
    "list_flag",
    "list_reason",
    "churn_reason",
    "tags",
    "external_id",
    "last_visit_on",
    "quality_score",
    "created_at",
    "updated_at",
]


class CustomerSerializer(serializers.ModelSerializer[Customer]):
    """Mobile and ID numbers are masked unless the caller owns the customer (see docs/permissions.md)."""

    mobile = serializers.SerializerMethodField()
    mobile_secondary = serializers.SerializerMethodField()
    email = serializers.SerializerMethodField()
    id_number = serializers.SerializerMethodField()
    owner_name = serializers.CharField(source="owner.display_name", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Customer
        fields = CUSTOMER_OUTPUT_FIELDS
        read_only_fields = fields

    def _viewer(self) -> Membership:
        viewer: Membership = self.context["membership"]
        return viewer

    def get_mobile(self, customer: Customer) -> str:
        return customer_masked_value(viewer=self._viewer(), customer=customer, field="mobile")

    def get_mobile_secondary(self, customer: Customer) -> str:
        return customer_masked_value(viewer=self._viewer(), customer=customer, field="mobile_secondary")

    def get_email(self, customer: Customer) -> str:
        return customer_masked_value(viewer=self._viewer(), customer=customer, field="email")

    def get_id_number(self, customer: Customer) -> str:
        return customer_masked_value(viewer=self._viewer(), customer=customer, field="id_number")


_CONSENT_HELP = (
    "Consent to this channel, as the customer gave it. Left out on create: no consent (PIPL: never "
    "assumed); left out on update: unchanged. Every change is recorded (see consent-history)."
)


class CustomerWriteSerializer(StrictInput, serializers.Serializer[Any]):
    """Input for create (POST) and update (PATCH). Numbers are normalised (138 1234 5678 → +86…)."""

    kind = serializers.ChoiceField(choices=Customer.Kind.choices, required=False)
    name = serializers.CharField(max_length=100)
    mobile = serializers.CharField(max_length=30, required=False, allow_blank=True)
    mobile_secondary = serializers.CharField(max_length=30, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    id_number = serializers.CharField(max_length=18, required=False, allow_blank=True)
    gender = serializers.ChoiceField(choices=Customer.Gender.choices, required=False, allow_blank=True)
    birthday = serializers.DateField(required=False, allow_null=True)
    province = serializers.CharField(max_length=20, required=False, allow_blank=True)
    city = serializers.CharField(max_length=30, required=False, allow_blank=True)
    district = serializers.CharField(max_length=30, required=False, allow_blank=True)
    address = serializers.CharField(max_length=200, required=False, allow_blank=True)
    source = serializers.ChoiceField(choices=Customer.Source.choices, required=False)  # type: ignore[assignment]
    consent_call = serializers.BooleanField(required=False, help_text=_CONSENT_HELP)
    consent_sms = serializers.BooleanField(required=False, help_text=_CONSENT_HELP)
    consent_wechat = serializers.BooleanField(required=False, help_text=_CONSENT_HELP)
    consent_email = serializers.BooleanField(required=False, help_text=_CONSENT_HELP)
    owner = serializers.IntegerField(required=False, allow_null=True, help_text="Membership id of the owner.")
    churn_reason = serializers.CharField(max_length=200, required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=30), required=False, max_length=50)
    external_id = serializers.CharField(max_length=64, required=False, allow_blank=True)

    def validate_owner(self, value: int | None) -> Membership | None:
        if value is None:
            return None
        owner = Membership.objects.filter(pk=value, is_service_account=False).first()
        if owner is None:
            raise serializers.ValidationError("No such staff member.")
        return owner


class ConsentChangeSerializer(serializers.ModelSerializer[ConsentChange]):
    """One change of a customer's consent: the state after it, the channels it changed, who, when, how."""

    set_by_name = serializers.SerializerMethodField()

    class Meta:
        model = ConsentChange
        fields = [
            "recorded_at",
            "consent_call",
            "consent_sms",
            "consent_wechat",
            "consent_email",
            "changed",
            "via",
            "set_by",
            "set_by_name",
            "import_job",
        ]
        read_only_fields = fields

    def get_set_by_name(self, change: ConsentChange) -> str | None:
        return consent_set_by_name(change)


class ListFlagSerializer(StrictInput, serializers.Serializer[Any]):
    flag = serializers.ChoiceField(choices=["", "red", "black"], allow_blank=True)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class MergeSerializer(StrictInput, serializers.Serializer[Any]):
    duplicate = serializers.IntegerField(help_text="Id of the record to fold into this one.")


class RevealSerializer(StrictInput, serializers.Serializer[Any]):
    field = serializers.ChoiceField(choices=["mobile", "mobile_secondary", "id_number"])


class RevealedSerializer(serializers.Serializer[Any]):
    field = serializers.CharField()
    value = serializers.CharField()


class ReassignSerializer(StrictInput, serializers.Serializer[Any]):
    from_membership = serializers.IntegerField()
    to_membership = serializers.IntegerField()


class ReassignedSerializer(serializers.Serializer[Any]):
    moved = serializers.IntegerField()


class VehicleSerializer(serializers.ModelSerializer[Vehicle]):
    class Meta:
        model = Vehicle
        fields = [
            "id",
            "customer",
            "vin",
            "plate",
            "brand",
            "series",
            "model_name",
            "model_year",
            "colour",
            "purchase_date",
            "warranty_end",
            "mileage_km",
            "external_id",
            "created_at",
        ]
        read_only_fields = fields


class VehicleUpdateSerializer(StrictInput, serializers.Serializer[Any]):
    """A vehicle's own facts; who owns it changes only through /transfer/ (a dated change of owner)."""

    written_elsewhere = {"customer": "Change the owner with POST /api/v1/vehicles/{id}/transfer/."}

    vin = serializers.CharField(max_length=20, required=False)
    plate = serializers.CharField(max_length=12, required=False, allow_blank=True)
    brand = serializers.CharField(max_length=40, required=False)
    series = serializers.CharField(max_length=60, required=False, allow_blank=True)
    model_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    model_year = serializers.IntegerField(required=False, allow_null=True, min_value=1990, max_value=2100)
    colour = serializers.CharField(max_length=30, required=False, allow_blank=True)
    purchase_date = serializers.DateField(required=False, allow_null=True)
    warranty_end = serializers.DateField(required=False, allow_null=True)
    external_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    mileage_km = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=3_000_000)


class VehicleWriteSerializer(VehicleUpdateSerializer):
    """A new vehicle: its facts and its owner."""

    written_elsewhere: dict[str, str] = {}

    customer = serializers.IntegerField(required=False)


class TransferSerializer(StrictInput, serializers.Serializer[Any]):
    customer = serializers.IntegerField(help_text="Id of the new owner.")
    on = serializers.DateField(required=False)


class MileageReadingSerializer(StrictInput, serializers.ModelSerializer[MileageReading]):
    class Meta:
        model = MileageReading
        fields = ["id", "read_on", "km", "source"]
        read_only_fields = ["id", "source"]


class OrderSerializer(serializers.ModelSerializer[Order]):
    class Meta:
        model = Order
        fields = [
            "id",
            "customer",
            "vehicle",
            "kind",
            "status",
            "ordered_on",
            "amount",
            "staff",
            "mileage_km",
            "external_id",
            "created_at",
        ]
        read_only_fields = fields


class OrderWriteSerializer(StrictInput, serializers.Serializer[Any]):
    customer = serializers.IntegerField()
    vehicle = serializers.IntegerField(required=False, allow_null=True)
    kind = serializers.ChoiceField(choices=Order.Kind.choices)
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False)
    ordered_on = serializers.DateField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    mileage_km = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    external_id = serializers.CharField(max_length=64, required=False, allow_blank=True)


class OrderBulkItemSerializer(serializers.Serializer[Any]):
    external_id = serializers.CharField(max_length=64)
    customer_external_id = serializers.CharField(max_length=64)
    vin = serializers.CharField(max_length=20, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Order.Kind.choices)
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False)
    ordered_on = serializers.DateField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    mileage_km = serializers.IntegerField(required=False, allow_null=True, min_value=0)


class OrderBulkSerializer(StrictInput, serializers.Serializer[Any]):
    items = serializers.ListField(child=serializers.DictField(), allow_empty=False, max_length=1000)


class OrderBulkResultSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged", "error"])
    id = serializers.IntegerField(required=False)
    errors = serializers.DictField(required=False)  # type: ignore[assignment]


class TouchpointSerializer(serializers.ModelSerializer[Touchpoint]):
    class Meta:
        model = Touchpoint
        fields = [
            "id",
            "customer",
            "vehicle",
            "channel",
            "direction",
            "outcome",
            "notes",
            "staff",
            "occurred_at",
            "external_id",
            "created_at",
        ]
        read_only_fields = fields


class TouchpointWriteSerializer(StrictInput, serializers.Serializer[Any]):
    customer = serializers.IntegerField()
    vehicle = serializers.IntegerField(required=False, allow_null=True)
    channel = serializers.ChoiceField(choices=Touchpoint.Channel.choices)
    direction = serializers.ChoiceField(choices=Touchpoint.Direction.choices, required=False)
    outcome = serializers.ChoiceField(choices=Touchpoint.Outcome.choices)
    notes = serializers.CharField(max_length=4000, required=False, allow_blank=True)
    occurred_at = serializers.DateTimeField(required=False)
    external_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
