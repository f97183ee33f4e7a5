"""Panels on the customer page: other apps show their part of a customer here.

The extension point `customer_panels` (see crm/core/extensions.py); an app registers in its hooks.py:

    customer_panels.register(
        CustomerPanel(name="loyalty", after=("segmentation",), template="loyalty/_member_card.html", context=fn)
    )

`context(*, customer, viewer)` returns the template's context (or None to show nothing). It receives
a customer already checked as visible to `viewer`; panels render in dependency order.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm.core.extensions import ExtensionPoint, PageFragment


@dataclass(frozen=True, kw_only=True)
class CustomerPanel(PageFragment):
    pass


customer_panels: ExtensionPoint[CustomerPanel] = ExtensionPoint("customers.panels", CustomerPanel)
