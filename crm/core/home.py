"""Cards on the staff home page: the extension point through which apps show a figure there.

An app registers a `HomeCard` in its hooks.py; `context(*, viewer)` returns the card's figures, or
None when the viewer's role has nothing to see there. The figures join the home page's context, so
their names start with the card's name (`complaints_mine`).
"""

from __future__ import annotations

from dataclasses import dataclass

from crm.core.extensions import ExtensionPoint, PageFragment


@dataclass(frozen=True, kw_only=True)
class HomeCard(PageFragment):
    pass


home_cards: ExtensionPoint[HomeCard] = ExtensionPoint("core.home_cards", HomeCard)
