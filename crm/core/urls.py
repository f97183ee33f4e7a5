"""The kernel's own pages at the site root: home, health check, nightly runs, notifications, roles."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from crm.core import health, views
from crm.tenancy import views as tenancy_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", login_not_required(health.healthz), name="healthz"),  # answered by HealthCheckMiddleware
    path("settings/nightly/", views.nightly_runs, name="nightly_runs"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
    path("notifications/<int:pk>/read/", views.notification_read, name="notification_read"),
    path("notifications/<int:pk>/open/", views.notification_open, name="notification_open"),
    path("permissions/", tenancy_views.permission_matrix, name="permissions"),
]
