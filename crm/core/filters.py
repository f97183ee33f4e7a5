"""Filters of the kernel's API lists (django-filter)."""

from __future__ import annotations

import django_filters

from crm.core.models import Notification
from crm.core.notifications import kind_choices


class NotificationFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(
        choices=kind_choices, help_text="Only this kind (the kinds: GET notifications/preferences/)."
    )
    unread = django_filters.BooleanFilter(
        field_name="read_at", lookup_expr="isnull", help_text="true: unread only; false: read only."
    )

    class Meta:
        model = Notification
        fields = ["kind", "unread"]
