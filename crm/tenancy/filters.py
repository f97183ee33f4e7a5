from __future__ import annotations

import django_filters

from crm.tenancy.models import ApiCredential, AuditAction, AuditEvent, Membership
from crm.tenancy.roles import Role


class MembershipFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Membership
        fields = ["role", "is_active"]


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    actor = django_filters.NumberFilter(field_name="actor_id")
    target_type = django_filters.CharFilter()
    target_id = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "target_type", "target_id", "since", "until"]


class CredentialFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=ApiCredential.Kind.choices)
    revoked = django_filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = ApiCredential
        fields = ["kind", "revoked"]
