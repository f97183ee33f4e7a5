"""REST API routes of the manager dashboard (collected by config/api.py under /api/v1/)."""

from crm.api.routes import ApiRoutes
from dashboards.apis import DashboardCustomersApi, DashboardFiguresApi

api = ApiRoutes()
api.path("dashboards/figures/", DashboardFiguresApi.as_view(), name="dashboard-figures")
api.path("dashboards/customers/", DashboardCustomersApi.as_view(), name="dashboard-customers")
