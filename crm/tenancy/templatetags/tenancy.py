from __future__ import annotations

from django import template

from crm.tenancy.models import Membership

register = template.Library()


@register.filter
def can(membership: Membership | None, capability: str) -> bool:
    """{% if membership|can:"users.view" %} — the same capability check the views use."""
    return membership is not None and membership.can(capability)
