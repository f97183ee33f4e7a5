from __future__ import annotations

from typing import Any

from rest_framework import serializers

from crm.api.serializers import StrictInput
from crm.tenancy.models import ApiCredential, AuditEvent, Membership, Tenant
from crm.tenancy.roles import API_SCOPES, STAFF_ROLE_CHOICES, capabilities_of


class TenantSerializer(serializers.ModelSerializer[Tenant]):
    class Meta:
        model = Tenant
        fields = ["id", "name", "code", "time_zone", "locale", "currency"]


class MeSerializer(serializers.Serializer[Any]):
    user_id = serializers.IntegerField(source="user.pk")
    username = serializers.CharField(source="user.username")
    display_name = serializers.CharField()
    role = serializers.CharField()
    tenant = TenantSerializer()
    capabilities = serializers.SerializerMethodField()

    def get_capabilities(self, membership: Membership) -> list[str]:
        return capabilities_of(membership.role)


class MembershipSerializer(serializers.ModelSerializer[Membership]):
    email = serializers.EmailField(source="user.email", read_only=True)
    display_name = serializers.CharField(read_only=True)
    last_login = serializers.DateTimeField(source="user.last_login", read_only=True, allow_null=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "display_name", "role", "is_active", "created_at", "deactivated_at", "last_login"]
        read_only_fields = fields


class MemberInviteSerializer(StrictInput, serializers.Serializer[Any]):
    email = serializers.EmailField()
    full_name = serializers.CharField(max_length=150, allow_blank=True, required=False, default="")
    role = serializers.ChoiceField(choices=STAFF_ROLE_CHOICES)


class MemberRoleSerializer(StrictInput, serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=STAFF_ROLE_CHOICES)


class MemberDeactivateSerializer(StrictInput, serializers.Serializer[Any]):
    hand_over_to = serializers.IntegerField(
        required=False, allow_null=True, help_text="Membership id to receive their customers."
    )


class CredentialSerializer(serializers.ModelSerializer[ApiCredential]):
    acts_as = serializers.CharField(source="membership.display_name", read_only=True)

    class Meta:
        model = ApiCredential
        fields = [
            "id",
            "kind",
            "name",
            "key_prefix",
            "scopes",
            "acts_as",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class CredentialCreateSerializer(StrictInput, serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=ApiCredential.Kind.choices)
    name = serializers.CharField(max_length=120)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=API_SCOPES), allow_empty=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class CredentialCreatedSerializer(CredentialSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once. Store it now; it cannot be shown again.")

    class Meta(CredentialSerializer.Meta):
        fields = [*CredentialSerializer.Meta.fields, "key"]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "action", "target_type", "target_id", "summary", "data", "ip_address"]
        read_only_fields = fields

    def get_actor(self, event: AuditEvent) -> str | None:
        return event.actor.get_username() if event.actor else None
