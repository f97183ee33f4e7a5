"""REST API routes of sales (collected by config/api.py under /api/v1/)."""

from crm.api.routes import ApiRoutes
from sales.apis import (
    DemoVehicleViewSet,
    LeadViewSet,
    SalesFunnelApi,
    ShowroomVisitViewSet,
    TestDriveSlotsApi,
    TestDriveViewSet,
)

api = ApiRoutes()
api.viewset("sales/leads", LeadViewSet, basename="sales-lead")
api.viewset("sales/test-drives", TestDriveViewSet, basename="sales-test-drive")
api.viewset("sales/demo-vehicles", DemoVehicleViewSet, basename="sales-demo-vehicle")
api.viewset("sales/showroom-visits", ShowroomVisitViewSet, basename="sales-showroom-visit")
api.path("sales/test-drive-slots/", TestDriveSlotsApi.as_view(), name="sales-test-drive-slots")
api.path("sales/funnel/", SalesFunnelApi.as_view(), name="sales-funnel")
