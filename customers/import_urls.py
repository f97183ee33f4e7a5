"""Imports and exports of customer data, included at customers/ (no namespace)."""

from django.urls import URLPattern, path

from customers import import_views

urlpatterns: list[URLPattern] = [
    path("imports/", import_views.import_list, name="customer_imports"),
    path("imports/new/", import_views.import_new, name="customer_import_new"),
    path("imports/<int:pk>/", import_views.import_detail, name="customer_import"),
    path("imports/<int:pk>/progress/", import_views.import_progress, name="customer_import_progress"),
    path("imports/<int:pk>/commit/", import_views.import_commit, name="customer_import_commit"),
    path("imports/<int:pk>/errors.csv", import_views.import_error_report, name="customer_import_errors"),
    path("imports/template/<str:kind>.xlsx", import_views.import_template, name="customer_import_template"),
    path("export/", import_views.customer_export, name="customer_export"),
]
