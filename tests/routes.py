"""Every URL pattern of the project, from the resolver, turned into concrete paths for tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

ID_PARAMS = re.compile(r"^(pk|id|object_id|.*_id|.*_pk)$")
_ROUTE_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_REGEX_PARAM = re.compile(r"\(\?P<(\w+)>[^)]*\)")
FIXED_VALUES = {"format": "json", "field": "mobile", "uidb64": "MQ", "token": "set-password", "app_label": "customers"}


@dataclass(frozen=True)
class Route:
    template: str  # e.g. "customers/<int:pk>/" or "api/v1/^customers/(?P<pk>[^/.]+)/$"
    name: str
    callback: Any
    params: tuple[str, ...]

    @property
    def takes_id(self) -> bool:
        return any(ID_PARAMS.match(p) for p in self.params)

    @property
    def is_admin(self) -> bool:
        return self.name.startswith("admin:")

    @property
    def is_api(self) -> bool:
        return self.template.startswith("api/")

    def path(self, object_id: int | None = None) -> str | None:
        def value(name: str) -> str:
            if ID_PARAMS.match(name):
                return str(object_id if object_id is not None else 1)
            return FIXED_VALUES.get(name, "x")

        # regex groups first: "(?P<pk>...)" also looks like a "<pk>" route parameter
        path = _REGEX_PARAM.sub(lambda m: value(m.group(1)), self.template)
        path = _ROUTE_PARAM.sub(lambda m: ".json" if m.group(1) == "drf_format_suffix" else value(m.group(2)), path)
        path = path.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
        if re.search(r"[()\[\]*+?|\\]", path):
            return None  # a regex we cannot turn into a path; reported by test_every_route_is_exercised
        return "/" + path


def _walk(patterns: list[Any], prefix: str, namespace: str, params: tuple[str, ...]) -> Iterator[Route]:
    for pattern in patterns:
        raw = str(pattern.pattern)
        own = tuple(m.group(1) for m in _REGEX_PARAM.finditer(raw)) + tuple(
            m.group(2) for m in _ROUTE_PARAM.finditer(_REGEX_PARAM.sub("", raw))
        )
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + raw, ns, params + own)
        elif isinstance(pattern, URLPattern):
            yield Route(
                template=prefix + raw,
                name=f"{namespace}{pattern.name or ''}",
                callback=pattern.callback,
                params=params + own,
            )


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns, "", "", ()))
