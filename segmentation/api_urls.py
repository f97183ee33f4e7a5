"""REST API routes of segmentation (collected by config/api.py under /api/v1/)."""

from crm.api.routes import ApiRoutes
from segmentation.apis import CustomerValueViewSet, DistributionApi, MigrationApi, SegmentationRunViewSet, SettingsApi

api = ApiRoutes()
api.path("segmentation/distribution/", DistributionApi.as_view(), name="segmentation-distribution")
api.path("segmentation/migration/", MigrationApi.as_view(), name="segmentation-migration")
api.path("segmentation/settings/", SettingsApi.as_view(), name="segmentation-settings")
api.viewset("segmentation/values", CustomerValueViewSet, basename="customer-value")
api.viewset("segmentation/runs", SegmentationRunViewSet, basename="segmentation-run")
