"""REST API routes of complaints (collected by config/api.py under /api/v1/)."""

from complaints.apis import ComplaintMetricsApi, TicketViewSet
from crm.api.routes import ApiRoutes

api = ApiRoutes()
api.path("complaints/metrics/", ComplaintMetricsApi.as_view(), name="complaint-metrics")
api.viewset("complaints/tickets", TicketViewSet, basename="ticket")
