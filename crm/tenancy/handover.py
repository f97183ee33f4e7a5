"""What a staff member leaves behind: the extension point through which apps hand it over.

An app whose records belong to one staff member (customers today; leads later) registers a
`MemberHandover` in its hooks.py. The staff page shows `count` for each, and deactivating a member
with a colleague named calls every `hand_over` in the same transaction (see `member_deactivate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise

from crm.core.extensions import Contribution, ExtensionPoint


@dataclass(frozen=True, kw_only=True)
class MemberHandover(Contribution):
    label: str | Promise  # "Customers assigned", shown on the staff member's page
    count: Callable[..., int]  # count(*, membership) -> records the member holds
    hand_over: Callable[..., int]  # hand_over(*, actor, from_member, to_member, meta) -> records moved


member_handovers: ExtensionPoint[MemberHandover] = ExtensionPoint("tenancy.member_handovers", MemberHandover)


def member_holdings(*, membership: object) -> list[tuple[MemberHandover, int]]:
    return [(handover, handover.count(membership=membership)) for handover in member_handovers.contributions()]
