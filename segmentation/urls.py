from django.urls import path

from segmentation import views

app_name = "segmentation"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("run/", views.run_now, name="run_now"),
    path("run/status/", views.run_status, name="run_status"),
    path("migration/", views.migration, name="migration"),
    path("customers/", views.customers, name="customers"),
    path("settings/", views.settings_page, name="settings"),
]
