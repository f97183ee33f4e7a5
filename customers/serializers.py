from __future__ import annotations

from typing import Any

from rest_framework import serializers

from crm.tenancy.models import Membership
from customers.models import Customer
from customers.selectors import customer_masked_value


class CustomerSerializer(serializers.ModelSerializer[Customer]):
    """Mobile and ID numbers are masked unless the caller owns the customer (see docs/permissions.md)."""

    mobile = serializers.SerializerMethodField()
    id_number = serializers.SerializerMethodField()
    owner_name = serializers.CharField(source="owner.display_name", read_only=True, default=None)

    class Meta:
        model = Customer
        fields = [
            "id",
            "kind",
            "name",
            "mobile",
            "id_number",
            "gender",
            "birthday",
            "province",
            "city",
            "district",
            "source",
            "owner",
            "owner_name",
            "relationship_class",
            "lifecycle_stage",
            "list_flag",
            "tags",
            "external_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def _viewer(self) -> Membership:
        viewer: Membership = self.context["membership"]
        return viewer

    def get_mobile(self, customer: Customer) -> str:
        return customer_masked_value(viewer=self._viewer(), customer=customer, field="mobile")

    def get_id_number(self, customer: Customer) -> str:
        return customer_masked_value(viewer=self._viewer(), customer=customer, field="id_number")


class RevealSerializer(serializers.Serializer[Any]):
    field = serializers.ChoiceField(choices=["mobile", "id_number"])


class RevealedSerializer(serializers.Serializer[Any]):
    field = serializers.CharField()
    value = serializers.CharField()


class ReassignSerializer(serializers.Serializer[Any]):
    from_membership = serializers.IntegerField()
    to_membership = serializers.IntegerField()


class ReassignedSerializer(serializers.Serializer[Any]):
    moved = serializers.IntegerField()
