"""Every write to customer data."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError, NotAllowed
from crm.tenancy.audit import RequestMeta, audit_record
from crm.tenancy.models import AuditAction, Membership
from crm.tenancy.roles import ROLES_WITH_OWN_BOOK
from customers.models import Customer
from customers.records import customer_set_list_flag
from customers.selectors import customer_shows_full_pii, customer_visible_to

REVEALABLE_FIELDS = ("mobile", "mobile_secondary", "id_number")


@transaction.atomic
def customer_reveal_pii(*, viewer: Membership, customer: Customer, field: str, meta: RequestMeta | None = None) -> str:
    """Show one masked number in full: an explicit, audited action."""
    if field not in REVEALABLE_FIELDS:
        raise ApplicationError(
            _("Only the mobile or ID number can be revealed."), fields={"field": [_("Unknown field.")]}
        )
    if not customer_shows_full_pii(viewer=viewer, customer=customer) and not viewer.can("customers.reveal_pii"):
        raise NotAllowed(_("Your role may not show full numbers of customers you do not own."))
    audit_record(
        action=AuditAction.PII_REVEALED,
        actor=viewer.user,
        target=customer,
        summary=f"{customer.name}: {field}",
        data={"field": field},
        meta=meta,
    )
    value: str = getattr(customer, field)
    return value


def customer_record_viewed(*, viewer: Membership, customer: Customer, meta: RequestMeta | None = None) -> None:
    """Audit the opening of a full customer record by anyone but its owner."""
    if customer.owner_id == viewer.pk:
        return
    audit_record(
        action=AuditAction.CUSTOMER_VIEWED, actor=viewer.user, target=customer, summary=customer.name, meta=meta
    )


def customers_read_unmasked(
    *, viewer: Membership, customer_ids: Sequence[int], meta: RequestMeta | None = None
) -> None:
    """Audit an API read that returned full numbers of customers the caller does not own."""
    if not customer_ids:
        return
    audit_record(
        action=AuditAction.CUSTOMERS_READ_UNMASKED,
        actor=viewer.user,
        summary=f"{len(customer_ids)}",
        data={"customer_ids": list(customer_ids[:1000]), "count": len(customer_ids)},
        meta=meta,
    )


@transaction.atomic
def customers_reassign(
    *, actor: Membership, from_member: Membership, to_member: Membership, meta: RequestMeta | None = None
) -> int:
    """Hand every customer of one staff member to another in one step. Returns how many moved."""
    if not actor.can("customers.reassign"):
        raise NotAllowed(_("Your role may not hand customers over."))
    if from_member.pk == to_member.pk:
        raise ApplicationError(_("Choose a different colleague."), fields={"to_member": [_("Same person.")]})
    _check_receiver(to_member)
    moved = Customer.objects.filter(owner=from_member).update(owner=to_member)
    audit_record(
        action=AuditAction.CUSTOMERS_REASSIGNED,
        actor=actor.user,
        target=from_member,
        summary=f"{moved} → {to_member.display_name}",
        data={"from_membership": from_member.pk, "to_membership": to_member.pk, "count": moved},
        meta=meta,
    )
    return moved


def _check_receiver(to_member: Membership) -> None:
    if not to_member.is_active or to_member.is_service_account:
        raise ApplicationError(
            _("Customers can only go to an active staff member."), fields={"to_member": [_("Not active.")]}
        )
    if to_member.role not in ROLES_WITH_OWN_BOOK and to_member.role != "manager":
        raise ApplicationError(
            _("Customers go to a sales consultant, a service advisor or a manager."),
            fields={"to_member": [_("This role does not own customers.")]},
        )


# --- Bulk actions on a selection of the customer list -----------------------------------------------

BULK_LIMIT = 500  # customers one bulk action takes (a page of the list holds 25)


def _selection(actor: Membership, customer_ids: Sequence[int]) -> list[Customer]:
    """The selected customers the actor may see, each once; nothing selected, or more than the
    limit, is refused."""
    ids = sorted(set(customer_ids))
    if not ids:
        raise ApplicationError(_("Select at least one customer."), fields={"id": [_("Nothing selected.")]})
    if len(ids) > BULK_LIMIT:
        raise ApplicationError(
            _("Select at most %(n)s customers at a time.") % {"n": BULK_LIMIT}, fields={"id": [_("Too many.")]}
        )
    return list(customer_visible_to(viewer=actor).filter(pk__in=ids, merged_into__isnull=True).order_by("pk"))


@transaction.atomic
def customers_bulk_assign(
    *, actor: Membership, customer_ids: Sequence[int], to_member: Membership, meta: RequestMeta | None = None
) -> int:
    """Give the selected customers to one staff member (one audit event naming them). Returns how
    many changed owner (those who had them already are not counted)."""
    if not actor.can("customers.reassign"):
        raise NotAllowed(_("Your role may not hand customers over."))
    _check_receiver(to_member)
    chosen = [c.pk for c in _selection(actor, customer_ids) if c.owner_id != to_member.pk]
    moved = Customer.objects.filter(pk__in=chosen).update(owner=to_member)
    if moved:
        audit_record(
            action=AuditAction.CUSTOMERS_REASSIGNED,
            actor=actor.user,
            target=to_member,
            summary=f"{moved} → {to_member.display_name}",
            data={"customers": chosen, "to_membership": to_member.pk, "count": moved},
            meta=meta,
        )
    return moved


@transaction.atomic
def customers_bulk_red_list(
    *, actor: Membership, customer_ids: Sequence[int], reason: str, meta: RequestMeta | None = None
) -> tuple[int, int]:
    """Put the selected customers on the red list with one reason (each audited as a single change
    would be). A black-listed customer stays on the black list: the black list is a decision about
    risk that a bulk action does not undo. Returns (put on the red list, left as they were)."""
    if not reason.strip():
        raise ApplicationError(_("Say why."), fields={"reason": [_("A reason is required.")]})
    listed = kept = 0
    for customer in _selection(actor, customer_ids):
        if customer.list_flag:  # red already, or black
            kept += 1
            continue
        customer_set_list_flag(actor=actor, customer=customer, flag="red", reason=reason, meta=meta)
        listed += 1
    return listed, kept
