"""REST API routes of surveys (collected by config/api.py under /api/v1/)."""

from crm.api.routes import ApiRoutes
from surveys.apis import InvitationViewSet, ResponseViewSet, SurveyResultsApi, TemplateViewSet

api = ApiRoutes()
api.path("surveys/results/", SurveyResultsApi.as_view(), name="survey-results")
api.viewset("surveys/templates", TemplateViewSet, basename="survey-template")
api.viewset("surveys/invitations", InvitationViewSet, basename="survey-invitation")
api.viewset("surveys/responses", ResponseViewSet, basename="survey-response")
