"""Version 1 of the REST API: every app's routes (its api_urls.py), the OpenAPI schema and its docs pages."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import include, path
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from complaints.api_urls import api as complaints_api
from crm.core.api_urls import api as core_api
from crm.tenancy.api_urls import api as tenancy_api
from customers.api_urls import api as customers_api
from dashboards.api_urls import api as dashboards_api
from followups.api_urls import api as followups_api
from loyalty.api_urls import api as loyalty_api
from sales.api_urls import api as sales_api
from segmentation.api_urls import api as segmentation_api
from surveys.api_urls import api as surveys_api

APPS = (
    core_api,
    tenancy_api,
    customers_api,
    complaints_api,
    surveys_api,
    loyalty_api,
    followups_api,
    segmentation_api,
    dashboards_api,
    sales_api,
)

router = DefaultRouter()
for app in APPS:
    for prefix, viewset, basename in app.viewsets:
        router.register(prefix, viewset, basename=basename)


class PublicSchemaView(SpectacularAPIView):
    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    throttle_classes: list[type] = []


# The two documentation pages render third-party UIs that set styles inline (and Redoc starts a web
# worker from a blob); they get exactly that on top of the strict policy, and still no inline script.
DOCS_PAGE_CSP = csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["blob:"], "img-src": ["data:"]})


@method_decorator(DOCS_PAGE_CSP, name="dispatch")
class PublicSwaggerView(SpectacularSwaggerSplitView):  # its script is a file of its own: no inline script
    authentication_classes: list[type] = []
    permission_classes: list[type] = []


@method_decorator(DOCS_PAGE_CSP, name="dispatch")
class PublicRedocView(SpectacularRedocView):
    authentication_classes: list[type] = []
    permission_classes: list[type] = []


app_name = "v1"

urlpatterns = [
    *(route for app in APPS for route in app.paths),
    path("schema/", PublicSchemaView.as_view(api_version="v1"), name="schema"),
    path("docs/", PublicSwaggerView.as_view(url_name="v1:schema"), name="docs"),
    path("redoc/", PublicRedocView.as_view(url_name="v1:schema"), name="redoc"),
    path("", include(router.urls)),
]
