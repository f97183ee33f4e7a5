"""How an app declares its REST API routes: one `ApiRoutes` in its api_urls.py.

    api = ApiRoutes()
    api.viewset("customers", CustomerViewSet, basename="customer")   # a router resource
    api.path("complaints/metrics/", ComplaintMetricsApi.as_view(), name="complaint-metrics")

config/api.py collects every app's routes under /api/v1/ (namespace "v1"): one router for the
viewsets, the plain paths beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern
from django.urls import path as url_path


@dataclass
class ApiRoutes:
    viewsets: list[tuple[str, Any, str]] = field(default_factory=list)
    paths: list[URLPattern] = field(default_factory=list)

    def viewset(self, prefix: str, viewset: Any, *, basename: str) -> None:
        self.viewsets.append((prefix, viewset, basename))

    def path(self, route: str, view: Any, *, name: str) -> None:
        self.paths.append(url_path(route, view, name=name))
