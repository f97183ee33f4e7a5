"""The one check a service makes before it acts for someone: does this member hold the capability?"""

from __future__ import annotations

from django.utils.translation import gettext as _

from crm.core.errors import NotAllowed
from crm.tenancy.models import Membership


def require(actor: Membership | None, capability: str, message: str | None = None) -> None:
    """Raise NotAllowed (403, code `permission_denied`) unless `actor` holds `capability`.

    `actor=None` is the system acting for itself (a nightly step, a task, a public form): allowed.
    `message` says what the role may not do; by default "Your role may not do this."
    """
    if actor is not None and not actor.can(capability):
        raise NotAllowed(message or _("Your role may not do this."))
