"""Roles inside a dealership and what each may do. docs/permissions.md renders this matrix.

Views and APIs ask for a capability (`membership.can("users.manage")`), never for a role name,
so changing the matrix here changes the whole product consistently.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    TENANT_ADMIN = "tenant_admin", _("Tenant admin")
    MANAGER = "manager", _("Manager")
    CR_AGENT = "cr_agent", _("Customer-relations agent")
    SALES_CONSULTANT = "sales_consultant", _("Sales consultant")
    SERVICE_ADVISOR = "service_advisor", _("Service advisor")
    AUDITOR = "auditor", _("Read-only auditor")
    INTEGRATION = "integration", _("Integration")


STAFF_ROLE_CHOICES = [choice for choice in Role.choices if choice[0] != Role.INTEGRATION]

# capability -> (description, roles that hold it)
CAPABILITIES: dict[str, tuple[Any, frozenset[str]]] = {
    "customers.view_all": (
        _("See every customer of the dealership (others' phone numbers masked)"),
        frozenset({Role.MANAGER, Role.CR_AGENT, Role.AUDITOR, Role.INTEGRATION}),
    ),
    "customers.view_own": (
        _("See the customers assigned to you, and what hangs off them"),
        frozenset({Role.SALES_CONSULTANT, Role.SERVICE_ADVISOR}),
    ),
    "customers.edit": (
        _("Create and edit customers you can see"),
        frozenset({Role.MANAGER, Role.CR_AGENT, Role.SALES_CONSULTANT, Role.SERVICE_ADVISOR, Role.INTEGRATION}),
    ),
    "customers.merge": (
        _("Merge duplicate customer records"),
        frozenset({Role.MANAGER, Role.CR_AGENT}),
    ),
    "customers.list_flag": (
        _("Put customers on the red or black list"),
        frozenset({Role.MANAGER, Role.CR_AGENT}),
    ),
    "customers.import": (
        _("Import customers, vehicles and orders from files"),
        frozenset({Role.MANAGER, Role.CR_AGENT, Role.TENANT_ADMIN}),
    ),
    "customers.reveal_pii": (
        _("Show a masked mobile or ID number in full (audited)"),
        frozenset({Role.MANAGER, Role.CR_AGENT}),
    ),
    "customers.unmasked_bulk": (
        _("Receive unmasked numbers in API reads and exports (system integrations only)"),
        frozenset({Role.INTEGRATION}),
    ),
    "customers.reassign": (
        _("Hand customers from one staff member to another"),
        frozenset({Role.TENANT_ADMIN, Role.MANAGER}),
    ),
    "customers.export": (
        _("Export customer lists"),
        frozenset({Role.MANAGER, Role.CR_AGENT}),
    ),
    "segmentation.view": (
        _("See tier and segment distributions, the R×F grid, tier migration and run history"),
        frozenset({Role.MANAGER, Role.CR_AGENT, Role.AUDITOR, Role.INTEGRATION}),
    ),
    "segmentation.manage": (
        _("Set scoring, tier shares and strategies; recompute segmentation now"),
        frozenset({Role.MANAGER}),
    ),
    "complaints.view_all": (
        _("See every complaint ticket of the dealership"),
        frozenset({Role.MANAGER, Role.CR_AGENT, Role.AUDITOR, Role.INTEGRATION}),
    ),
    "complaints.work": (
        _("Open complaint tickets and work those you can see (assigned, watched, your customers')"),
        frozenset({Role.MANAGER, Role.CR_AGENT, Role.SALES_CONSULTANT, Role.SERVICE_ADVISOR, Role.INTEGRATION}),
    ),
    "complaints.manage": (
        _("Hand over any ticket; set complaint categories, SLA targets and the public form"),
        frozenset({Role.MANAGER}),
    ),
    "surveys.view": (
        _("See survey results and answers"),
        frozenset({Role.MANAGER, Role.CR_AGENT, Role.AUDITOR, Role.INTEGRATION}),
    ),
    "surveys.send": (
        _("Send surveys to customers and cancel them"),
        frozenset({Role.MANAGER, Role.CR_AGENT, Role.INTEGRATION}),
    ),
    "surveys.manage": (
        _("Edit survey templates and survey settings"),
        frozenset({Role.MANAGER}),
    ),
    "loyalty.view": (
        _("See members, their points and the rewards catalogue (within the customers you see)"),
        frozenset(
            {
                Role.MANAGER,
                Role.CR_AGENT,
                Role.SALES_CONSULTANT,
                Role.SERVICE_ADVISOR,
                Role.AUDITOR,
                Role.INTEGRATION,
            }
        ),
    ),
    "loyalty.redeem": (
        _("Enrol members, redeem rewards for them and record referrals"),
        frozenset({Role.MANAGER, Role.CR_AGENT, Role.SALES_CONSULTANT, Role.SERVICE_ADVISOR, Role.INTEGRATION}),
    ),
    "loyalty.adjust": (
        _("Adjust points by hand (with a note), cancel redemptions, set a member's level"),
        frozenset({Role.MANAGER}),
    ),
    "loyalty.manage": (
        _("Set up the loyalty programme: levels, earning rules, rewards and stock, care greetings"),
        frozenset({Role.TENANT_ADMIN, Role.MANAGER}),
    ),
    "followups.view_all": (
        _("See every follow-up of the dealership, the team's queues and completion figures"),
        frozenset({Role.MANAGER, Role.CR_AGENT, Role.AUDITOR, Role.INTEGRATION}),
    ),
    "followups.work": (
        _("Work follow-ups: your own queue, and (with view all) the pool and colleagues' calls; plan calls by hand"),
        frozenset({Role.MANAGER, Role.CR_AGENT, Role.SALES_CONSULTANT, Role.SERVICE_ADVISOR, Role.INTEGRATION}),
    ),
    "followups.manage": (
        _("Set the follow-up rules, hand follow-ups over and cancel them"),
        frozenset({Role.MANAGER}),
    ),
    "sales.view_all": (
        _("See every lead, showroom visit, test drive and quote of the dealership, and the sales funnel"),
        frozenset({Role.MANAGER, Role.AUDITOR, Role.INTEGRATION}),
    ),
    "sales.work": (
        _("Capture leads, log walk-ins, book test drives, quote and take orders: your own leads and the pool"),
        frozenset({Role.MANAGER, Role.SALES_CONSULTANT, Role.INTEGRATION}),
    ),
    "sales.manage": (
        _("Give leads out and take them back, approve defeats, decide ownership conflicts, set the sales rules"),
        frozenset({Role.MANAGER}),
    ),
    "users.view": (_("See the dealership's staff and their roles"), frozenset({Role.TENANT_ADMIN, Role.MANAGER})),
    "users.manage": (
        _("Invite and deactivate staff, assign roles"),
        frozenset({Role.TENANT_ADMIN}),
    ),
    "api_keys.manage": (_("Create and revoke the dealership's integration API keys"), frozenset({Role.TENANT_ADMIN})),
    "tokens.personal": (
        _("Create personal API tokens for yourself"),
        frozenset(
            {Role.TENANT_ADMIN, Role.MANAGER, Role.CR_AGENT, Role.SALES_CONSULTANT, Role.SERVICE_ADVISOR, Role.AUDITOR}
        ),
    ),
    "audit.view": (_("Read the audit log"), frozenset({Role.TENANT_ADMIN, Role.MANAGER, Role.AUDITOR})),
    "settings.manage": (_("Change dealership settings"), frozenset({Role.TENANT_ADMIN, Role.MANAGER})),
    "dashboards.view": (
        _("See manager dashboards"),
        frozenset({Role.TENANT_ADMIN, Role.MANAGER, Role.AUDITOR, Role.INTEGRATION}),
    ),
    "nightly.run": (
        _("Start nightly recomputation by hand and see its runs"),
        frozenset({Role.MANAGER, Role.TENANT_ADMIN}),
    ),
}

ROLES_WITH_OWN_BOOK = frozenset({Role.SALES_CONSULTANT, Role.SERVICE_ADVISOR})


def role_has(role: str, capability: str) -> bool:
    try:
        return role in CAPABILITIES[capability][1]
    except KeyError:
        raise KeyError(f"Unknown capability {capability!r}; add it to crm/tenancy/roles.py") from None


def capabilities_of(role: str) -> list[str]:
    return [name for name, (_desc, roles) in CAPABILITIES.items() if role in roles]


# API areas: a credential carries scopes "<area>:read" / "<area>:write".
API_AREAS = (
    "customers",
    "segmentation",
    "loyalty",
    "complaints",
    "surveys",
    "followups",
    "sales",
    "dashboards",
    "admin",
)
API_SCOPES = tuple(f"{area}:{mode}" for area in API_AREAS for mode in ("read", "write"))
