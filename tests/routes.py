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

    @property
    def gated_by_admin_site(self) -> bool:
        """Wrapped by the admin site's admin_view: a user the site refuses (AdminSite.has_permission)
        is redirected to its sign-in before the view runs, so the path's ids are never read."""
        return self.is_admin and (
            getattr(self.callback, "admin_site", None) is not None
            or getattr(self.callback, "model_admin", None) is not None
        )

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


def verb_refused_before_lookup(route: Route, method: str) -> bool:
    """A DRF view that does not serve `method` on this route: DRF's own dispatch authenticates,
    runs the view's permission checks (has_permission: no object yet) and throttles, then answers
    405 — nothing reads the path's ids. True only when the view keeps DRF's dispatch chain and
    none of its permission or throttle classes looks at the URL's arguments (view.kwargs)."""
    from rest_framework.views import APIView
    from rest_framework.viewsets import ViewSetMixin

    view_class = getattr(route.callback, "cls", None)
    if view_class is None or not issubclass(view_class, APIView):
        return False
    actions = getattr(route.callback, "actions", None)
    if actions is not None:
        if method in actions or view_class.initialize_request is not ViewSetMixin.initialize_request:
            return False
    elif hasattr(view_class, method):
        return False
    for name in ("dispatch", "initial", "check_permissions", "check_throttles", "http_method_not_allowed"):
        if getattr(view_class, name) is not getattr(APIView, name):
            return False
    checks = [c.has_permission for c in view_class.permission_classes] + [
        getattr(c, "get_cache_key", c.allow_request) for c in view_class.throttle_classes
    ]
    return not any("kwargs" in check.__code__.co_names for check in checks)


def format_suffix_twins(routes: list[Route]) -> set[Route]:
    """The DRF format-suffix twins among `routes` ("customers/(?P<pk>…)\\.(?P<format>…)") whose plain
    route is there too: the same name and the very same view (DRF's router makes one view per route
    and uses it for both patterns), taking the same parameters but `format`."""
    plain = {(r.name, id(r.callback), r.params) for r in routes if "format" not in r.params}
    return {
        r
        for r in routes
        if "format" in r.params
        and (r.name, id(r.callback), tuple(p for p in r.params if p != "format")) in plain
        and _renders_json_by_default(r.callback)
    }


def _renders_json_by_default(callback: Any) -> bool:
    # The plain route answers a request without an Accept header with the view's first renderer;
    # the twin (".json") with its JSON renderer. They render alike when the first one is JSON.
    view_class = getattr(callback, "cls", None)
    renderers = getattr(view_class, "renderer_classes", None) or []
    return bool(renderers) and getattr(renderers[0], "format", None) == "json"
