"""REST API routes of follow-ups (collected by config/api.py under /api/v1/)."""

from crm.api.routes import ApiRoutes
from followups.apis import FollowupViewSet

api = ApiRoutes()
api.viewset("followups", FollowupViewSet, basename="followup")
