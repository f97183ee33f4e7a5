"""REST API routes of customers (collected by config/api.py under /api/v1/)."""

from crm.api.routes import ApiRoutes
from customers.apis import CustomerViewSet, OrderViewSet, TouchpointViewSet, VehicleViewSet

api = ApiRoutes()
api.viewset("customers", CustomerViewSet, basename="customer")
api.viewset("vehicles", VehicleViewSet, basename="vehicle")
api.viewset("orders", OrderViewSet, basename="order")
api.viewset("touchpoints", TouchpointViewSet, basename="touchpoint")
