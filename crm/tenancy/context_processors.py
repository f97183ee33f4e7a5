from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from crm.core.notifications import unread_count
from crm.tenancy.selectors import user_tenants


def tenancy(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    if membership is None or user is None or not user.is_authenticated:
        return {"membership": None, "current_tenant": None}
    return {
        "membership": membership,
        "current_tenant": membership.tenant,
        # evaluated lazily by the template only when the switcher is drawn
        "user_tenants": lambda: user_tenants(user_id=user.pk),
        "unread_notifications": lambda: unread_count(member=membership),
    }
