"""URL patterns of customers.quality_views, included under customers/ (so /customers/quality/)."""

from django.urls import path

from customers import quality_views

urlpatterns = [
    path("quality/", quality_views.customer_quality, name="customer_quality"),
]
