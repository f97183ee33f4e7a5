"""REST API routes of the kernel (collected by config/api.py under /api/v1/)."""

from crm.api.routes import ApiRoutes
from crm.core.apis import NotificationPreferencesApi, NotificationViewSet

api = ApiRoutes()
api.path("notifications/preferences/", NotificationPreferencesApi.as_view(), name="notification-preferences")
api.viewset("notifications", NotificationViewSet, basename="notification")
