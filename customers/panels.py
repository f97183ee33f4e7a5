"""Panels on the customer page: other apps show their part of a customer here.

An app registers a panel once, in its AppConfig.ready():

    customer_panel("segmentation", template="segmentation/_customer_panel.html", order=10)(fn)

`fn(*, customer, viewer)` returns the template's context (or None to show nothing). It receives
a customer already checked as visible to `viewer`; panels render in `order`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PanelFunction = Callable[..., dict[str, Any] | None]


@dataclass(frozen=True)
class Panel:
    name: str
    template: str
    order: int
    context: PanelFunction


_panels: dict[str, Panel] = {}


def customer_panel(name: str, *, template: str, order: int = 100) -> Callable[[PanelFunction], PanelFunction]:
    def register(fn: PanelFunction) -> PanelFunction:
        _panels[name] = Panel(name=name, template=template, order=order, context=fn)
        return fn

    return register


def customer_panels(*, customer: Any, viewer: Any) -> list[dict[str, Any]]:
    """[{"name", "template", "context"}] for the panels that have something to show."""
    shown = []
    for panel in sorted(_panels.values(), key=lambda p: (p.order, p.name)):
        context = panel.context(customer=customer, viewer=viewer)
        if context is not None:
            shown.append({"name": panel.name, "template": panel.template, "context": context})
    return shown
