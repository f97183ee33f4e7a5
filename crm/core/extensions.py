"""Extension points: the one way a lower layer lets higher apps contribute without importing them.

The app that owns a concept defines a typed contribution (a frozen dataclass deriving from
`Contribution`) and one `ExtensionPoint` for it, next to the code that uses it:

    @dataclass(frozen=True, kw_only=True)
    class CustomerPanel(Contribution):
        template: str
        context: Callable[..., dict[str, Any] | None]

    customer_panels = ExtensionPoint("customers.panels", CustomerPanel)

An app that contributes declares everything in one module, `<app>/hooks.py`, which is imported
once when Django starts (`discover()`, called by crm.core's AppConfig.ready()):

    customer_panels.register(CustomerPanel(name="loyalty", after=("segmentation",), template=..., context=...))

`contributions()` returns a point's contributions in dependency order: each after every name in its
`after`, otherwise as early as possible, ties broken by name. A name in `after` that nobody
registered, or a cycle, is an error reported by the system check `core.E001` (so `manage.py check`,
every management command and the test run refuse to start) and raised by `contributions()`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules


@dataclass(frozen=True, kw_only=True)
class Contribution:
    """What every contribution has: a unique name within its point, and what it must follow."""

    name: str
    after: tuple[str, ...] = field(default=())


C = TypeVar("C", bound=Contribution)


@dataclass(frozen=True, kw_only=True)
class PageFragment(Contribution):
    """A part of a page another app renders: a template and its context, None to show nothing."""

    template: str
    context: Callable[..., dict[str, Any] | None]


F = TypeVar("F", bound=PageFragment)

_points: dict[str, ExtensionPoint[Contribution]] = {}
_discovered = False


class ExtensionPoint(Generic[C]):
    def __init__(self, key: str, kind: type[C]) -> None:
        if key in _points:
            raise ImproperlyConfigured(f"extension point {key!r} is defined twice")
        self.key, self.kind = key, kind
        self._items: dict[str, C] = {}
        _points[key] = self  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<ExtensionPoint {self.key}>"

    def register(self, contribution: C) -> C:
        if not isinstance(contribution, self.kind):
            raise ImproperlyConfigured(f"{self.key} takes {self.kind.__name__}, not {type(contribution).__name__}")
        known = self._items.get(contribution.name)
        if known is not None and known != contribution:
            raise ImproperlyConfigured(f"{self.key}: {contribution.name!r} is registered twice")
        self._items[contribution.name] = contribution
        return contribution

    def contributions(self) -> list[C]:
        """Every contribution, in dependency order (raises ImproperlyConfigured on a broken graph)."""
        discover()
        ordered, problems = _order(self._items)
        if problems:
            raise ImproperlyConfigured(f"{self.key}: " + "; ".join(problems))
        return ordered

    def get(self, name: str) -> C | None:
        discover()
        return self._items.get(name)

    def problems(self) -> list[str]:
        discover()
        return _order(self._items)[1]

    @contextmanager
    def replaced(self, *contributions: C) -> Iterator[None]:
        """Only these contributions while the block runs (tests); the registered ones come back after."""
        discover()
        saved = dict(self._items)
        self._items.clear()
        try:
            for contribution in contributions:
                self.register(contribution)
            yield
        finally:
            self._items.clear()
            self._items.update(saved)


def _order(items: dict[str, C]) -> tuple[list[C], list[str]]:
    """Kahn's algorithm; the ready contribution with the smallest name goes first."""
    problems = [
        f"{item.name!r} runs after {missing!r}, which is not registered"
        for item in items.values()
        for missing in item.after
        if missing not in items
    ]
    waiting = {name: {a for a in item.after if a in items} for name, item in items.items()}
    ready = [name for name, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    ordered: list[C] = []
    while ready:
        name = heapq.heappop(ready)
        ordered.append(items[name])
        for other, deps in waiting.items():
            if name in deps:
                deps.discard(name)
                if not deps:
                    heapq.heappush(ready, other)
    stuck = sorted(name for name, deps in waiting.items() if deps)
    if stuck:
        problems.append(f"a cycle among {', '.join(stuck)}")
    return ordered, problems


def fragments_shown(point: ExtensionPoint[F], **kwargs: Any) -> list[dict[str, Any]]:
    """[{"name", "template", "context"}] of the point's fragments that have something to show."""
    shown = []
    for fragment in point.contributions():
        context = fragment.context(**kwargs)
        if context is not None:
            shown.append({"name": fragment.name, "template": fragment.template, "context": context})
    return shown


def discover() -> None:
    """Import every installed app's hooks.py once (its registrations)."""
    global _discovered
    if not _discovered:
        _discovered = True
        autodiscover_modules("hooks")


def extension_points() -> Iterable[ExtensionPoint[Contribution]]:
    discover()
    return list(_points.values())
