"""Version 1 of the REST API: one router, the OpenAPI schema and its docs pages."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from complaints.apis import ComplaintMetricsApi, TicketViewSet
from crm.tenancy.apis import AuditEventViewSet, CredentialViewSet, MeApi, MembershipViewSet
from customers.apis import CustomerViewSet, OrderViewSet, TouchpointViewSet, VehicleViewSet
from dashboards.apis import DashboardCustomersApi, DashboardFiguresApi
from followups.apis import FollowupViewSet
from loyalty.apis import (
    LedgerViewSet,
    LevelViewSet,
    LoyaltySummaryApi,
    MemberViewSet,
    RedemptionViewSet,
    ReferralViewSet,
    RewardViewSet,
)
from segmentation.apis import CustomerValueViewSet, DistributionApi, MigrationApi, SegmentationRunViewSet, SettingsApi
from surveys.apis import InvitationViewSet, ResponseViewSet, SurveyResultsApi, TemplateViewSet

router = DefaultRouter()
router.register("memberships", MembershipViewSet, basename="membership")
router.register("credentials", CredentialViewSet, basename="credential")
router.register("audit-events", AuditEventViewSet, basename="audit-event")
router.register("customers", CustomerViewSet, basename="customer")
router.register("vehicles", VehicleViewSet, basename="vehicle")
router.register("orders", OrderViewSet, basename="order")
router.register("touchpoints", TouchpointViewSet, basename="touchpoint")
router.register("complaints/tickets", TicketViewSet, basename="ticket")
router.register("surveys/templates", TemplateViewSet, basename="survey-template")
router.register("surveys/invitations", InvitationViewSet, basename="survey-invitation")
router.register("surveys/responses", ResponseViewSet, basename="survey-response")
router.register("loyalty/members", MemberViewSet, basename="loyalty-member")
router.register("loyalty/ledger", LedgerViewSet, basename="loyalty-ledger")
router.register("loyalty/rewards", RewardViewSet, basename="loyalty-reward")
router.register("loyalty/levels", LevelViewSet, basename="loyalty-level")
router.register("loyalty/redemptions", RedemptionViewSet, basename="loyalty-redemption")
router.register("loyalty/referrals", ReferralViewSet, basename="loyalty-referral")
router.register("followups", FollowupViewSet, basename="followup")
router.register("segmentation/values", CustomerValueViewSet, basename="customer-value")
router.register("segmentation/runs", SegmentationRunViewSet, basename="segmentation-run")


class PublicSchemaView(SpectacularAPIView):
    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    throttle_classes: list[type] = []


class PublicSwaggerView(SpectacularSwaggerView):
    authentication_classes: list[type] = []
    permission_classes: list[type] = []


class PublicRedocView(SpectacularRedocView):
    authentication_classes: list[type] = []
    permission_classes: list[type] = []


app_name = "v1"

urlpatterns = [
    path("me/", MeApi.as_view(), name="me"),
    path("complaints/metrics/", ComplaintMetricsApi.as_view(), name="complaint-metrics"),
    path("surveys/results/", SurveyResultsApi.as_view(), name="survey-results"),
    path("loyalty/summary/", LoyaltySummaryApi.as_view(), name="loyalty-summary"),
    path("dashboards/figures/", DashboardFiguresApi.as_view(), name="dashboard-figures"),
    path("dashboards/customers/", DashboardCustomersApi.as_view(), name="dashboard-customers"),
    path("segmentation/distribution/", DistributionApi.as_view(), name="segmentation-distribution"),
    path("segmentation/migration/", MigrationApi.as_view(), name="segmentation-migration"),
    path("segmentation/settings/", SettingsApi.as_view(), name="segmentation-settings"),
    path("schema/", PublicSchemaView.as_view(api_version="v1"), name="schema"),
    path("docs/", PublicSwaggerView.as_view(url_name="v1:schema"), name="docs"),
    path("redoc/", PublicRedocView.as_view(url_name="v1:schema"), name="redoc"),
    path("", include(router.urls)),
]
