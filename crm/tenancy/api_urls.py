"""REST API routes of tenancy (collected by config/api.py under /api/v1/)."""

from crm.api.routes import ApiRoutes
from crm.tenancy.apis import AuditEventViewSet, CredentialViewSet, MeApi, MembershipViewSet

api = ApiRoutes()
api.path("me/", MeApi.as_view(), name="me")
api.viewset("memberships", MembershipViewSet, basename="membership")
api.viewset("credentials", CredentialViewSet, basename="credential")
api.viewset("audit-events", AuditEventViewSet, basename="audit-event")
