"""URL patterns of customers.quality_views (filled in by that feature)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
